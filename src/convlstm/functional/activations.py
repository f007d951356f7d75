"""Activation functions by their Keras 3 names, each with its derivative.

Every activation takes ``(x, out=None)`` and may write its result into ``out`` (which may be
``x`` itself), so the ConvLSTM time loop can apply gate activations in place. Because the
pre-activations are then gone, every derivative is written in terms of the output ``y``:
``derivative(y) = f'(f^{-1}(y))``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


@dataclass(frozen=True)
class Activation:
    """A named elementwise function ``fn(x, out=None) -> y`` and its ``derivative(y)``.

    ``derivative`` is None for a user's plain callable, which can run forward but not backward.
    """

    name: str
    fn: Callable[..., np.ndarray]
    derivative: Callable[..., np.ndarray] | None = None
    derivative_takes_out: bool = False  # derivative(y, out=buffer) writes into the buffer

    def __call__(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return self.fn(x, out=out)

    def derivative_into(self, y: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``derivative(y)`` written into ``out`` (no temporary where the derivative allows)."""
        if self.derivative_takes_out:
            return self.derivative(y, out=out)
        out[...] = self.derivative(y)
        return out


def _store(y: np.ndarray, x: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    if out is None:
        return y.astype(x.dtype, copy=False)
    out[...] = y
    return out


def _linear(x, out=None):
    return _store(x, x, out) if out is not None else x.copy()


def _sigmoid_exp(x, out=None):
    # 1/(1+exp(-x)); for x below about -88 (float32) exp overflows to inf and the result is 0.
    y = np.negative(x, out=out)
    with np.errstate(over="ignore"):
        np.exp(y, out=y)
    y += 1.0
    return np.reciprocal(y, out=y)


def _sigmoid_tanh(x, out=None):
    # sigmoid(x) = (1 + tanh(x/2)) / 2: no overflow anywhere.
    y = np.multiply(x, 0.5, out=out)
    np.tanh(y, out=y)
    y *= 0.5
    y += 0.5
    return y


SIGMOID_VARIABLE = "CONVLSTM_SIGMOID"
_sigmoid_choice: list[str] = []  # "exp" or "tanh", chosen once per process
_sigmoid_timing = threading.Lock()  # one thread times the forms; others running wait for it


def _new_timing_lock() -> None:
    global _sigmoid_timing
    _sigmoid_timing = threading.Lock()  # a child forked mid-timing must not inherit it held


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_timing_lock)


def sigmoid_form() -> str:
    """How this process computes float sigmoids: ``"tanh"`` or ``"exp"``.

    ``CONVLSTM_SIGMOID`` decides when it says one of them; otherwise both forms are timed once,
    on 64k float32 values (about a millisecond), and the faster wins: which one is faster
    depends on the machine (NumPy's SIMD ``tanh`` and ``exp`` kernels differ by CPU). Both agree
    with the exact sigmoid within 1e-7 on float32.
    """
    forced = os.environ.get(SIGMOID_VARIABLE, "").strip().lower()
    if forced in ("exp", "tanh"):
        return forced
    if not _sigmoid_choice:
        with _sigmoid_timing:  # sample groups reach here together on their threads
            if not _sigmoid_choice:
                _sigmoid_choice.append(_faster_sigmoid())
    return _sigmoid_choice[0]


def _faster_sigmoid() -> str:
    x = np.linspace(-8.0, 8.0, 1 << 16, dtype=np.float32)
    out = np.empty_like(x)
    best = {}
    for form, function in (("exp", _sigmoid_exp), ("tanh", _sigmoid_tanh)) * 4:
        start = time.perf_counter()
        function(x, out=out)
        elapsed = time.perf_counter() - start
        best[form] = min(best.get(form, elapsed), elapsed)
    return min(best, key=best.get)


def _sigmoid(x, out=None):
    return (_sigmoid_tanh if sigmoid_form() == "tanh" else _sigmoid_exp)(x, out=out)


def _tanh_derivative(y, out=None):
    out = np.multiply(y, y, out=out)
    return np.subtract(1.0, out, out=out)  # 1 - y^2


def _sigmoid_derivative(y, out=None):
    out = np.subtract(1.0, y, out=out)
    out *= y  # y (1 - y)
    return out


def _hard_sigmoid(x, out=None):
    # Keras 3: relu6(x + 3) / 6 (Keras 2's was clip(0.2x + 0.5, 0, 1)).
    y = np.add(x, 3.0, out=out)
    np.clip(y, 0.0, 6.0, out=y)
    y /= 6.0
    return y


def _hard_sigmoid_keras2(x, out=None):
    # Keras 2 / tf.keras: clip(0.2x + 0.5, 0, 1); read from Keras 2 files (see convlstm.keras).
    y = np.multiply(x, 0.2, out=out)
    y += 0.5
    return np.clip(y, 0.0, 1.0, out=y)


def _elu(x, out=None):
    return _store(np.where(x > 0, x, np.expm1(np.minimum(x, 0))), x, out)


def _selu(x, out=None):
    negative = _SELU_ALPHA * np.expm1(np.minimum(x, 0))
    return _store(_SELU_SCALE * np.where(x > 0, x, negative), x, out)


def _softsign(x, out=None):
    return _store(x / (1.0 + np.abs(x)), x, out)


def _softplus(x, out=None):
    return _store(np.logaddexp(x, 0.0), x, out)


def _inside(y, low, high, slope=1.0):
    return np.where((y > low) & (y < high), slope, 0.0).astype(y.dtype)


ACTIVATIONS: dict[str, Activation] = {
    activation.name: activation
    for activation in (
        Activation("linear", _linear, np.ones_like),
        Activation("tanh", lambda x, out=None: np.tanh(x, out=out), _tanh_derivative, True),
        Activation("sigmoid", _sigmoid, _sigmoid_derivative, True),
        Activation("hard_sigmoid", _hard_sigmoid, lambda y: _inside(y, 0.0, 1.0, 1 / 6)),
        Activation("hard_sigmoid_keras2", _hard_sigmoid_keras2,
                   lambda y: _inside(y, 0.0, 1.0, 0.2)),
        Activation("relu", lambda x, out=None: np.maximum(x, 0.0, out=out),
                   lambda y: _inside(y, 0.0, np.inf)),
        Activation("relu6", lambda x, out=None: np.clip(x, 0.0, 6.0, out=out),
                   lambda y: _inside(y, 0.0, 6.0)),
        Activation("elu", _elu, lambda y: np.where(y > 0, 1.0, y + 1.0).astype(y.dtype)),
        Activation("selu", _selu, lambda y: np.where(
            y > 0, _SELU_SCALE, y + _SELU_SCALE * _SELU_ALPHA).astype(y.dtype)),
        Activation("softsign", _softsign, lambda y: (1 - np.abs(y)) ** 2),
        Activation("softplus", _softplus, lambda y: -np.expm1(-y)),
        Activation("exponential", lambda x, out=None: np.exp(x, out=out), lambda y: y.copy()),
    )
}


def leaky_relu(x: np.ndarray, negative_slope: float, out: np.ndarray | None = None) -> np.ndarray:
    """``x`` where positive, ``negative_slope * x`` elsewhere (Keras ``LeakyReLU``)."""
    return _store(np.where(x >= 0, x, x * negative_slope), x, out)


def leaky_relu_backward(
    d_y: np.ndarray, positive: np.ndarray, negative_slope: float
) -> np.ndarray:
    """Gradient through :func:`leaky_relu`, given where its output was positive."""
    return np.where(positive, d_y, d_y * negative_slope)


def get(owner: str, name: str, identifier: object) -> Activation:
    """Resolve a Keras activation name (or None, an Activation, or a callable) to an Activation.

    A plain callable ``f(x) -> y`` runs forward only; wrap it in ``Activation(name, fn,
    derivative)`` to train with it. Neither can be serialised by ``get_config``.
    """
    if isinstance(identifier, Activation):
        return identifier
    if identifier is None or isinstance(identifier, str):
        key = "linear" if identifier is None else identifier
        if key in ACTIVATIONS:
            return ACTIVATIONS[key]
        listed = ", ".join(sorted(ACTIVATIONS))
        raise ValueError(f"{owner}: unknown {name} {identifier!r}; expected one of {listed}.")
    if callable(identifier):
        function = identifier
        return Activation(
            getattr(function, "__name__", repr(function)),
            lambda x, out=None: _store(np.asarray(function(x)), x, out),
        )
    raise TypeError(f"{owner}: expected {name} to be a name or a callable; got {identifier!r}.")

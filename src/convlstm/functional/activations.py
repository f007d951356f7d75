"""Activation functions by their Keras 3 names.

Every activation takes ``(x, out=None)`` and may write its result into ``out`` (which may be
``x`` itself), so the ConvLSTM time loop can apply gate activations in place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


@dataclass(frozen=True)
class Activation:
    """A named elementwise function ``fn(x, out=None) -> y``."""

    name: str
    fn: Callable[..., np.ndarray]

    def __call__(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return self.fn(x, out=out)


def _linear(x, out=None):
    if out is None:
        return x.copy()
    out[...] = x
    return out


def _tanh(x, out=None):
    return np.tanh(x, out=out)


def _sigmoid(x, out=None):
    # 1/(1+exp(-x)) = (1 + tanh(x/2))/2: one transcendental, no overflow for large |x|.
    y = np.multiply(x, 0.5, out=out)
    np.tanh(y, out=y)
    y += 1.0
    y *= 0.5
    return y


def _hard_sigmoid(x, out=None):
    # Keras 3: relu6(x + 3) / 6.
    y = np.add(x, 3.0, out=out)
    np.clip(y, 0.0, 6.0, out=y)
    y /= 6.0
    return y


def _relu(x, out=None):
    return np.maximum(x, 0.0, out=out)


def _relu6(x, out=None):
    return np.clip(x, 0.0, 6.0, out=out)


def _elu(x, out=None):
    return _store(np.where(x > 0, x, np.expm1(np.minimum(x, 0))), x, out)


def _selu(x, out=None):
    y = np.where(x > 0, x, _SELU_ALPHA * np.expm1(np.minimum(x, 0))) * _SELU_SCALE
    return _store(y, x, out)


def _softsign(x, out=None):
    return _store(x / (1.0 + np.abs(x)), x, out)


def _softplus(x, out=None):
    return _store(np.logaddexp(x, 0.0), x, out)


def _silu(x, out=None):
    return _store(x * _sigmoid(x), x, out)


def _exponential(x, out=None):
    return np.exp(x, out=out)


def _store(y: np.ndarray, x: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    if out is None:
        return y.astype(x.dtype, copy=False)
    out[...] = y
    return out


def leaky_relu(x: np.ndarray, negative_slope: float, out: np.ndarray | None = None) -> np.ndarray:
    """``x`` where positive, ``negative_slope * x`` elsewhere (Keras ``LeakyReLU``)."""
    return _store(np.where(x >= 0, x, x * negative_slope), x, out)


ACTIVATIONS: dict[str, Activation] = {
    activation.name: activation
    for activation in (
        Activation("linear", _linear),
        Activation("tanh", _tanh),
        Activation("sigmoid", _sigmoid),
        Activation("hard_sigmoid", _hard_sigmoid),
        Activation("relu", _relu),
        Activation("relu6", _relu6),
        Activation("elu", _elu),
        Activation("selu", _selu),
        Activation("softsign", _softsign),
        Activation("softplus", _softplus),
        Activation("silu", _silu),
        Activation("exponential", _exponential),
    )
}
ALIASES = {"swish": "silu", None: "linear"}


def get(owner: str, name: str, identifier: object) -> Activation:
    """Resolve a Keras activation name (or None, or a callable ``f(x) -> y``) to an Activation.

    A callable is wrapped as-is under its ``__name__``; it cannot be serialised by ``get_config``.
    """
    if isinstance(identifier, Activation):
        return identifier
    if identifier is None or isinstance(identifier, str):
        key = ALIASES.get(identifier, identifier)
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

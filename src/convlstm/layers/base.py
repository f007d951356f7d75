"""What every layer shares: calling, weights, gradients, configs and a readable repr.

The training contract:

* ``params`` and ``grads`` are dicts with identical keys (the Keras weight names, in Keras
  order); a layer without weights has empty dicts.
* ``forward(x, training=True)`` keeps exactly one cache (the last training call's);
  ``backward(d_output)`` consumes it, fills ``grads`` and returns the gradient for the input.
  Without a training forward, ``backward`` raises ``RuntimeError``.
* A layer built from other layers (a stack, a wrapper, a model) lists them in ``sublayers()``;
  ``named_params()`` walks through them, so optimizers see every weight once under a unique name.

Also the plumbing the feed-forward layers share: :class:`CachedLayer` (the one-cache contract
above) and the checks of ``build``/``forward`` arguments.

Layers with weights (Dense, Conv2D, ...) compute in their ``dtype`` and cast the input to it.
Layers without weights keep a float32 or float64 input's dtype and cast anything else (ints,
bools, float16) to float32. No layer modifies the caller's array or returns a view of it.
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from convlstm import _validation as check
from convlstm import limits
from convlstm.registry import config_arguments


class Layer(ABC):
    """Base class: ``layer(x)`` is ``layer.forward(x)``; configs rebuild an equal layer."""

    params: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]

    @abstractmethod
    def forward(self, x: np.ndarray, **kwargs: Any) -> Any:
        """Compute the layer's output for ``x``."""

    @abstractmethod
    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, JSON-serialisable."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        """Build a layer from ``get_config()`` output (weights are not part of the config); a
        config that is not a dict, lacks a required argument or has an unknown one is refused."""
        with limits.building(cls, config):
            return cls(**config_arguments(cls, config, check.KERAS_NAMES))

    @property
    def trainable_params(self) -> tuple[str, ...]:
        """Keys of ``params`` an optimizer updates (all of them unless a layer says otherwise,
        as BatchNormalization does for its moving statistics)."""
        return tuple(getattr(self, "params", {}))

    def sublayers(self) -> list[Layer]:
        """The layers this one is made of (none for a plain layer)."""
        return []

    def backward_to_weights(self, d_output: np.ndarray) -> None:
        """Fill ``grads`` for the last training forward, without the input's gradient (the
        input is data). This runs the whole backward and drops its result; a layer that can
        skip the input's gradient overrides it."""
        self.backward(d_output)  # type: ignore[attr-defined]

    def named_params(self, prefix: str = "") -> Iterator[tuple[str, Layer, str]]:
        """Yield ``(unique_name, owning_layer, key)`` for every weight, sublayers included."""
        for key in getattr(self, "params", {}):
            yield f"{prefix}{key}", self, key
        for index, layer in enumerate(self.sublayers()):
            yield from layer.named_params(f"{prefix}{index}/")

    def get_weights(self) -> list[np.ndarray]:
        """Copies of every weight, sublayers included, in Keras order."""
        return [layer.params[key].copy() for _, layer, key in self.named_params()]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Replace every weight from a list in the order of :meth:`get_weights`.

        The count and every shape are checked before anything is replaced.
        """
        owner = f"{type(self).__name__}.set_weights"
        slots = list(self.named_params())
        if isinstance(weights, np.ndarray) or not isinstance(weights, Sequence):
            raise TypeError(
                f"{owner}: expected a list of {len(slots)} arrays; got {type(weights).__name__}."
            )
        if len(weights) != len(slots):
            names = ", ".join(name for name, _, _ in slots)
            raise ValueError(
                f"{owner}: expected {len(slots)} weights ({names}); got {len(weights)}."
            )
        arrays = []
        for index, ((name, layer, key), weight) in enumerate(zip(slots, weights)):
            label = f"weights[{index}] ({name})"
            current = layer.params[key]
            array = check.numeric_array(owner, label, weight, current.dtype)
            check.check_shape(owner, label, array, current.shape)
            arrays.append(array)
        for (_, layer, key), array in zip(slots, arrays):
            layer.params[key] = array.copy()

    def __repr__(self) -> str:
        try:
            config = self.get_config()
        except TypeError:  # a callable option cannot be serialised, but can still be shown
            return f"{type(self).__name__}(<custom callable>)"
        arguments = ", ".join(f"{key}={value!r}" for key, value in config.items())
        return f"{type(self).__name__}({arguments})"


@dataclass
class Kept:
    """What a :class:`CachedLayer` keeps from its last training forward."""

    cache: Any  # the layer's own cache (a named dataclass, or one array or shape)
    output_shape: tuple[int, ...]  # d_output must have it
    gradient_dtype: np.dtype  # d_output is cast to it


class CachedLayer(Layer):
    """A layer that keeps the cache of its last training forward for one ``backward`` call.

    Every forward ends with :meth:`_keep` (a training one stores its cache, an inference one
    drops the previous cache, as the recurrent layers do) and ``backward`` starts with
    :meth:`_consume`.
    """

    params: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]
    _cache: Kept | None = None

    def _keep(
        self, cache: Any, output: np.ndarray | None, gradient_dtype: np.dtype | None = None
    ) -> None:
        """Replace the cache: every forward calls this, an inference one with ``None``.

        ``d_output`` will be checked against the output's shape and cast to ``gradient_dtype``
        (default: the output's dtype).
        """
        if output is None:
            self._cache = None
            return
        self._cache = Kept(cache, output.shape, gradient_dtype or output.dtype)

    def _consume(self, d_output: object) -> tuple[Any, np.ndarray]:
        """The cache of the last forward (if it was a training one) and the checked
        ``d_output``; the cache is cleared."""
        owner = f"{type(self).__name__}.backward"
        if self._cache is None:
            raise RuntimeError(
                f"{owner}: no training forward to differentiate; call "
                "forward(x, training=True) before backward (each backward consumes its cache)."
            )
        kept = self._cache
        d_output = check.numeric_array(owner, "d_output", d_output, kept.gradient_dtype)
        check.check_shape(owner, "d_output", d_output, kept.output_shape)
        self._cache = None
        return kept.cache, d_output

    def _empty_weights(self) -> None:
        self.params = {}
        self.grads = {}

    def _set_new_weights(self, params: dict[str, np.ndarray]) -> None:
        self.params = params
        self.grads = {key: np.zeros_like(value) for key, value in params.items()}


def float_input(owner: str, x: object) -> np.ndarray:
    """``x`` as float32 or float64 (kept), or cast to float32 (ints, bools, float16)."""
    array = check.real_array(owner, "x", x)
    if array.dtype.name in check.FLOAT_DTYPES:
        return array
    return array.astype(np.float32)


def shape_arg(owner: str, name: str, value: object) -> tuple[int | None, ...]:
    """A shape given to ``build`` or ``compute_output_shape``: a sequence of ints >= 0 or None."""
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise TypeError(f"{owner}: expected {name} to be a tuple of ints; got {value!r}.")
    items = tuple(value)
    for item in items:
        if item is not None and (
            not isinstance(item, numbers.Integral) or isinstance(item, bool) or item < 0
        ):
            raise TypeError(
                f"{owner}: expected {name} to be a tuple of ints >= 0 (or None); got {value!r}."
            )
    return tuple(None if item is None else int(item) for item in items)


def training_arg(owner: str, training: object) -> bool:
    return check.boolean(owner, "training", training)


def float_arg(owner: str, name: str, value: object, minimum: float | None = None) -> float:
    """A finite real number (not a bool) as a float, optionally at least ``minimum``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: expected {name} to be a float; got {value!r}.")
    if minimum is not None and not value >= minimum:
        raise ValueError(f"{owner}: expected {name} to be a float >= {minimum}; got {value!r}.")
    if not math.isfinite(value):
        raise ValueError(f"{owner}: expected {name} to be a finite float; got {value!r}.")
    return float(value)

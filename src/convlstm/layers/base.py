"""What every layer shares: calling, weights, gradients, configs and a readable repr.

The training contract:

* ``params`` and ``grads`` are dicts with identical keys (the Keras weight names, in Keras
  order); a layer without weights has empty dicts.
* ``forward(x, training=True)`` keeps exactly one cache (the last training call's);
  ``backward(d_output)`` consumes it, fills ``grads`` and returns the gradient for the input.
  Without a training forward, ``backward`` raises ``RuntimeError``.
* A layer built from other layers (a stack, a wrapper, a model) lists them in ``sublayers()``;
  ``named_params()`` walks through them, so optimizers see every weight once under a unique name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from convlstm import _validation as check


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
        """Build a layer from ``get_config()`` output (weights are not part of the config)."""
        return cls(**config)

    @property
    def trainable_params(self) -> tuple[str, ...]:
        """Keys of ``params`` an optimizer updates (all of them unless a layer says otherwise,
        as BatchNormalization does for its moving statistics)."""
        return tuple(getattr(self, "params", {}))

    def sublayers(self) -> list[Layer]:
        """The layers this one is made of (none for a plain layer)."""
        return []

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

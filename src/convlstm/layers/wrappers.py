"""TimeDistributed: one layer applied to every time step."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np

from convlstm import _validation as check
from convlstm import limits
from convlstm.layers.base import CachedLayer, Layer, shape_arg, training_arg
from convlstm.registry import config_arguments, deserialize, register, serialize


@register
class TimeDistributed(CachedLayer):
    """Apply ``layer`` to every time step, as Keras' ``TimeDistributed``.

    (B, T, ...) is merged to (B*T, ...), passed through ``layer`` once, and split back to
    (B, T, ...); ``backward`` does the same with the gradients. The weights are the wrapped
    layer's (``sublayers()`` is ``[layer]``, so they appear once, named ``"0/kernel"``, ...).

    Args:
        layer: the layer applied to each step; it must map (batch, ...) to (batch, ...).
    """

    def __init__(self, layer: Layer) -> None:
        if not isinstance(layer, Layer):
            raise TypeError(
                f"{type(self).__name__}: expected layer to be a Layer; got {type(layer).__name__}."
            )
        self.layer = layer
        self._passes_training = "training" in inspect.signature(layer.forward).parameters
        self._empty_weights()

    def sublayers(self) -> list[Layer]:
        return [self.layer]

    @staticmethod
    def _merged(shape: tuple) -> tuple:
        B, T, *rest = shape
        return (None if B is None or T is None else B * T, *rest)

    def _checked(self, owner: str, name: str, shape: tuple) -> None:
        if len(shape) < 3:
            raise ValueError(
                f"{owner}: expected {name} of shape (batch, time, ...) with at least 3 axes; "
                f"got {shape!r}."
            )

    def build(self, input_shape: Sequence[int | None]) -> None:
        """Build the wrapped layer for one step's shape (batch*time, ...)."""
        owner = f"{type(self).__name__}.build"
        shape = shape_arg(owner, "input_shape", input_shape)
        self._checked(owner, "input_shape", shape)
        build = getattr(self.layer, "build", None)
        if build is not None:
            build(self._merged(shape))

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple:
        """(B, T, *inner[1:]) where inner is the wrapped layer's output shape for (B*T, ...)."""
        owner = f"{type(self).__name__}.compute_output_shape"
        shape = shape_arg(owner, "input_shape", input_shape)
        self._checked(owner, "input_shape", shape)
        inner = self.layer.compute_output_shape(self._merged(shape))
        return (shape[0], shape[1], *inner[1:])

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Run the wrapped layer on (B, T, ...) as one batch of B*T steps.

        Args:
            x: (B, T, ...), at least 3 axes.
            training: passed on to the wrapped layer (when its forward accepts it); also keep
                this layer's cache for :meth:`backward`.

        Returns:
            (B, T, ...), the wrapped layer's per-step output.
        """
        owner = f"{type(self).__name__}.forward"
        training = training_arg(owner, training)
        x = check.real_array(owner, "x", x)
        self._checked(owner, "x", x.shape)
        B, T = x.shape[:2]
        steps = x.reshape(B * T, *x.shape[2:])  # (B*T, ...)
        kwargs = {"training": training} if self._passes_training else {}
        y = self.layer.forward(steps, **kwargs)
        if not isinstance(y, np.ndarray):
            raise TypeError(
                f"{owner}: the wrapped {type(self.layer).__name__} returned "
                f"{type(y).__name__}; TimeDistributed needs a single array output."
            )
        y = y.reshape(B, T, *y.shape[1:])
        self._keep((B, T), y if training else None)
        return y

    def backward(self, d_output: np.ndarray) -> np.ndarray:
        """Backpropagate (B, T, ...) output gradients through the wrapped layer's last training
        forward; return the (B, T, ...) input gradient."""
        (B, T), d_output = self._consume(d_output)
        if not hasattr(self.layer, "backward"):
            raise TypeError(
                f"{type(self).__name__}.backward: the wrapped {type(self.layer).__name__} has "
                "no backward pass."
            )
        d_steps = self.layer.backward(d_output.reshape(B * T, *d_output.shape[2:]))
        return d_steps.reshape(B, T, *d_steps.shape[1:])

    def get_config(self) -> dict[str, Any]:
        return {"layer": serialize(self.layer)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.layer!r})"

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TimeDistributed:
        with limits.building(cls, config):
            return cls(deserialize(config_arguments(cls, config)["layer"]))

"""The activation layers: Activation (any named activation), Sigmoid, Tanh, ReLU, LeakyReLU and
Softmax, each ``y = f(x)`` with a backward pass; weightless, the input's float dtype kept."""

from __future__ import annotations

import numbers
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from convlstm import _validation as check
from convlstm.functional import activations
from convlstm.functional.dense_ops import (
    softmax,
    softmax_backward,
)
from convlstm.layers.base import CachedLayer, float_arg, float_input, shape_arg, training_arg
from convlstm.layers.kernel_layer import LayerActivation
from convlstm.registry import register


class _Elementwise(CachedLayer):
    """A weightless layer computing ``y = f(x)`` with the output shape of the input."""

    def build(self, input_shape: Sequence[int | None]) -> None:
        """Nothing to create."""

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple:
        return shape_arg(f"{type(self).__name__}.compute_output_shape", "input_shape", input_shape)

    @abstractmethod
    def _apply(self, owner: str, x: np.ndarray, training: bool) -> tuple[np.ndarray, Any]:
        """``(y, saved)``: the output and what ``_gradient`` needs (only used when training)."""

    @abstractmethod
    def _gradient(self, saved: Any, d_output: np.ndarray) -> np.ndarray:
        """The input's gradient from ``saved`` and the output's gradient."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Apply the function to ``x`` of any shape (float32/float64 kept, others cast)."""
        owner = f"{type(self).__name__}.forward"
        training = training_arg(owner, training)
        x = float_input(owner, x)
        y, saved = self._apply(owner, x, training)
        self._keep(saved, y if training else None)
        return y

    def backward(self, d_output: np.ndarray) -> np.ndarray:
        """The gradient of the input for ``d_output`` (the forward output's shape)."""
        saved, d_output = self._consume(d_output)
        return self._gradient(saved, d_output)


@register
class Activation(_Elementwise):
    """Apply a named activation, as Keras' ``Activation`` layer.

    Args:
        activation: a Keras name ("relu", "sigmoid", "tanh", "softmax" over the last axis,
            "linear", "elu", ...) or a callable (inference only).
    """

    def __init__(self, activation: str | Any) -> None:
        self.activation = LayerActivation(type(self).__name__, activation)
        self._empty_weights()

    def _apply(self, owner, x, training):
        return self.activation.apply(owner, x, training, in_place=False)

    def _gradient(self, saved, d_output):
        d_x = self.activation.backward(saved, d_output)
        return d_x.copy() if d_x is d_output else d_x

    def get_config(self) -> dict[str, Any]:
        return {"activation": self.activation.config(type(self).__name__)}


@register
class Sigmoid(Activation):
    """``1 / (1 + exp(-x))``; Keras' ``Activation("sigmoid")``."""

    def __init__(self) -> None:
        super().__init__("sigmoid")

    def get_config(self) -> dict[str, Any]:
        return {}


@register
class Tanh(Activation):
    """``tanh(x)``; Keras' ``Activation("tanh")``."""

    def __init__(self) -> None:
        super().__init__("tanh")

    def get_config(self) -> dict[str, Any]:
        return {}


@register
class ReLU(_Elementwise):
    """Rectified linear unit with Keras' ``ReLU`` options::

        f(x) = min(x, max_value)                 if x > threshold
        f(x) = negative_slope * (x - threshold)  otherwise

    At the kinks the derivative is the one Keras' backends use: 0 at ``x == threshold``, 1 at
    ``x == max_value``.

    Args:
        max_value: None (no cap) or a float >= 0.
        negative_slope: float >= 0, the slope below the threshold.
        threshold: float >= 0.
    """

    def __init__(
        self,
        max_value: float | None = None,
        negative_slope: float = 0.0,
        threshold: float = 0.0,
    ) -> None:
        owner = type(self).__name__
        self.max_value = (
            None if max_value is None else float_arg(owner, "max_value", max_value, 0.0)
        )
        self.negative_slope = float_arg(owner, "negative_slope", negative_slope, 0.0)
        self.threshold = float_arg(owner, "threshold", threshold, 0.0)
        self._empty_weights()

    def _apply(self, owner, x, training):
        above = x > self.threshold
        y = np.where(above, x, x.dtype.type(0.0))
        slope = above.astype(x.dtype) if training else None
        if self.max_value is not None:
            capped = y > self.max_value
            y[capped] = self.max_value
            if training:
                slope[capped] = 0.0
        if self.negative_slope:
            y += self.negative_slope * np.minimum(x - self.threshold, 0)
            if training:
                slope[x < self.threshold] = self.negative_slope
        return y, slope

    def _gradient(self, slope, d_output):
        return d_output * slope

    def get_config(self) -> dict[str, Any]:
        return {
            "max_value": self.max_value,
            "negative_slope": self.negative_slope,
            "threshold": self.threshold,
        }


@register
class LeakyReLU(_Elementwise):
    """``x`` where ``x >= 0``, ``negative_slope * x`` elsewhere; Keras' ``LeakyReLU``.

    Args:
        negative_slope: float >= 0 (Keras' default 0.3).
    """

    def __init__(self, negative_slope: float = 0.3) -> None:
        self.negative_slope = float_arg(type(self).__name__, "negative_slope", negative_slope, 0.0)
        self._empty_weights()

    def _apply(self, owner, x, training):
        y = activations.leaky_relu(x, self.negative_slope)
        # At x == 0 the slope is negative_slope, as the TensorFlow and torch gradients have it.
        return y, (x > 0 if training else None)

    def _gradient(self, positive, d_output):
        return activations.leaky_relu_backward(d_output, positive, self.negative_slope)

    def get_config(self) -> dict[str, Any]:
        return {"negative_slope": self.negative_slope}


@register
class Softmax(_Elementwise):
    """``exp(x) / sum(exp(x))`` over ``axis``; Keras' ``Softmax`` layer (without a mask).

    Args:
        axis: an int or a tuple of ints (default -1, the last axis).
    """

    def __init__(self, axis: int | Sequence[int] = -1) -> None:
        owner = type(self).__name__
        if isinstance(axis, numbers.Integral) and not isinstance(axis, bool):
            self.axis: int | tuple[int, ...] = int(axis)
        elif (
            isinstance(axis, Sequence)
            and not isinstance(axis, str)
            and len(axis) > 0
            and all(isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in axis)
        ):
            self.axis = tuple(int(a) for a in axis)
        else:
            raise TypeError(
                f"{owner}: expected axis to be an int or a tuple of ints; got {axis!r}."
            )
        self._empty_weights()

    def _apply(self, owner, x, training):
        axes = self.axis if isinstance(self.axis, tuple) else (self.axis,)
        if any(not -x.ndim <= a < x.ndim for a in axes):
            raise ValueError(
                f"{owner}: expected x with an axis {self.axis}; got shape "
                f"{check.shape_text(x.shape)}."
            )
        if len({a % x.ndim for a in axes}) < len(axes):
            raise ValueError(
                f"{owner}: expected axis {self.axis} to name distinct axes of x; got shape "
                f"{check.shape_text(x.shape)}, where two of them are the same axis."
            )
        y = softmax(x, self.axis) if x.size else np.zeros_like(x)  # no values: nothing to do
        return y, (y if training else None)

    def _gradient(self, y, d_output):
        return softmax_backward(y, d_output, self.axis)

    def get_config(self) -> dict[str, Any]:
        return {"axis": list(self.axis) if isinstance(self.axis, tuple) else self.axis}

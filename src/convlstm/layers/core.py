"""Dense, Flatten and Dropout, each with a forward and a backward pass.

The plumbing they share is in ``layers/base.py`` (:class:`~convlstm.layers.base.CachedLayer`,
argument checks) and ``layers/kernel_layer.py``; the activation layers are in
``layers/activation.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from convlstm import _validation as check
from convlstm.functional.dense_ops import (
    dense_backward,
    dense_forward,
)
from convlstm.layers.base import CachedLayer, float_input, shape_arg, training_arg
from convlstm.layers.kernel_layer import KernelCache, KernelLayer
from convlstm.layers.layout import DATA_FORMATS
from convlstm.registry import register


@register
class Dense(KernelLayer):
    """Densely connected layer on the last axis, as Keras' ``Dense``: ``activation(x @ W + b)``.

    Built lazily from the first input (or by :meth:`build`): ``Dense(10)`` needs no input size.

    Args:
        units: output features.
        activation: a Keras name ("relu", "sigmoid", "tanh", "softmax", ..., None = "linear") or
            a callable (inference only).
        use_bias: add a bias.
        kernel_initializer: a Keras initializer name.
        bias_initializer: a Keras initializer name.
        dtype: "float32" (default) or "float64"; inputs are cast to it.
        seed: seeds the initializers (None: fresh entropy).

    Weights (Keras order and layout): ``kernel`` (in_features, units), ``bias`` (units,).
    """

    def __init__(
        self,
        units: int,
        activation: str | Any = None,
        use_bias: bool = True,
        *,
        kernel_initializer: str = "glorot_uniform",
        bias_initializer: str = "zeros",
        dtype: str | np.dtype = "float32",
        seed: int | None = None,
    ) -> None:
        self.units = check.positive_int(type(self).__name__, "units", units)
        super().__init__(activation, use_bias, kernel_initializer, bias_initializer, dtype, seed)

    @property
    def in_features(self) -> int | None:
        """Size of the input's last axis, once built."""
        return self.params["kernel"].shape[0] if self.built else None

    def _expected(self) -> tuple:
        return ("batch", "...", self.in_features or "features")

    def build(self, input_shape: Sequence[int | None]) -> None:
        """Create the weights for inputs of ``input_shape`` (batch, ..., in_features)."""
        owner = f"{type(self).__name__}.build"
        shape = shape_arg(owner, "input_shape", input_shape)
        if len(shape) < 2 or not shape[-1] or (self.built and shape[-1] != self.in_features):
            raise ValueError(
                f"{owner}: expected input_shape {check.shape_text(self._expected())}; "
                f"got {shape!r}."
            )
        if not self.built:
            self._create_weights((shape[-1], self.units))

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple:
        """``(*input_shape[:-1], units)``."""
        shape = shape_arg(f"{type(self).__name__}.compute_output_shape", "input_shape", input_shape)
        return (*shape[:-1], self.units)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """``activation(x @ kernel + bias)``.

        Args:
            x: (batch, ..., in_features); integers are cast to the layer's dtype.
            training: keep the cache for :meth:`backward`.

        Returns:
            (batch, ..., units).
        """
        owner = f"{type(self).__name__}.forward"
        training = training_arg(owner, training)
        x = check.numeric_array(owner, "x", x, self.dtype)
        if x.ndim < 2 or (self.built and x.shape[-1] != self.in_features):
            raise ValueError(
                f"{owner}: expected x of shape {check.shape_text(self._expected())}; "
                f"got {check.shape_text(x.shape)}."
            )
        self.build(x.shape)
        z = dense_forward(x, self.params["kernel"], self.params.get("bias"))
        y, saved = self.activation.apply(owner, z, training, in_place=True)
        self._keep(KernelCache(x, saved), y if training else None)
        return y

    def backward(self, d_output: np.ndarray) -> np.ndarray:
        """Fill ``grads`` from d_output (batch, ..., units); return d_x (batch, ..., in)."""
        cache, d_output = self._consume(d_output)
        d_z = self.activation.backward(cache.activation_output, d_output)
        d_x, self.grads["kernel"], d_bias = dense_backward(d_z, cache.x, self.params["kernel"])
        if self.use_bias:
            self.grads["bias"] = d_bias
        return d_x

    def get_config(self) -> dict[str, Any]:
        return {"units": self.units, **self._shared_config()}


@register
class Flatten(CachedLayer):
    """Flatten every axis but the batch: (batch, ...) -> (batch, prod(...)), as Keras.

    Args:
        data_format: "channels_last" (default), or "channels_first", which first moves the
            channel axis 1 to the end so the features come out in channels-last order (Keras).
            None means "channels_last".
    """

    def __init__(self, data_format: str | None = "channels_last") -> None:
        owner = type(self).__name__
        data_format = "channels_last" if data_format is None else data_format
        self.data_format = check.choice(owner, "data_format", data_format, DATA_FORMATS)
        self._empty_weights()

    def build(self, input_shape: Sequence[int | None]) -> None:
        """Nothing to create; checks the shape."""
        self.compute_output_shape(input_shape)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple:
        owner = f"{type(self).__name__}.compute_output_shape"
        shape = shape_arg(owner, "input_shape", input_shape)
        if not shape:
            raise ValueError(f"{owner}: expected input_shape (batch, ...); got ().")
        rest = shape[1:]
        return (shape[0], None if None in rest else math.prod(rest))

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """(batch, ...) -> (batch, features); a (batch,) input becomes (batch, 1)."""
        owner = f"{type(self).__name__}.forward"
        training = training_arg(owner, training)
        x = float_input(owner, x)
        if x.ndim < 1:
            raise ValueError(f"{owner}: expected x of shape (batch, ...); got ().")
        moved = x
        if self.data_format == "channels_first" and x.ndim > 2:
            moved = np.moveaxis(x, 1, -1)
        y = moved.reshape(x.shape[0], math.prod(x.shape[1:]))
        if np.shares_memory(y, x):
            y = y.copy()
        self._keep(x.shape, y if training else None)
        return y

    def backward(self, d_output: np.ndarray) -> np.ndarray:
        x_shape, d_output = self._consume(d_output)
        if self.data_format == "channels_first" and len(x_shape) > 2:
            moved_shape = (x_shape[0], *x_shape[2:], x_shape[1])
            return np.moveaxis(d_output.reshape(moved_shape), -1, 1).copy()
        return d_output.reshape(x_shape).copy()

    def get_config(self) -> dict[str, Any]:
        return {"data_format": self.data_format}


@register
class Dropout(CachedLayer):
    """Inverted dropout, as Keras' ``Dropout``: only when ``training=True``.

    In training each value is kept with probability ``1 - rate`` and scaled by
    ``1 / (1 - rate)`` (dropped values become 0); at inference the input passes unchanged. The
    mask comes from ``self.rng``, a ``np.random.Generator`` seeded from ``seed`` at construction
    (never the global random state): a new layer with the same seed draws the same masks, and
    each training call draws the next one. ``backward`` reuses the last training call's mask.

    Args:
        rate: fraction of the values to drop, in [0, 1) (as ConvLSTM2D's dropout; Keras also
            accepts 1, which zeroes everything).
        seed: None (fresh entropy) or a non-negative int.
    """

    def __init__(self, rate: float, seed: int | None = None) -> None:
        owner = type(self).__name__
        self.rate = check.rate(owner, "rate", rate)
        self.seed = check.seed_arg(owner, seed)
        self.rng = np.random.default_rng(self.seed)
        self._empty_weights()

    def build(self, input_shape: Sequence[int | None]) -> None:
        """Nothing to create."""

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple:
        return shape_arg(f"{type(self).__name__}.compute_output_shape", "input_shape", input_shape)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Drop and rescale (training) or copy (inference) ``x`` of any shape."""
        owner = f"{type(self).__name__}.forward"
        training = training_arg(owner, training)
        x = float_input(owner, x)
        if not training or self.rate == 0.0:
            y, keep = x.copy(), None
        else:
            keep = self.rng.random(x.shape) >= self.rate
            y = np.where(keep, x / x.dtype.type(1.0 - self.rate), x.dtype.type(0.0))
        self._keep(keep, y if training else None)
        return y

    def backward(self, d_output: np.ndarray) -> np.ndarray:
        """The upstream gradient through the same mask and scale."""
        keep, d_output = self._consume(d_output)
        if keep is None:
            return d_output.copy()
        scale = d_output.dtype.type(1.0 - self.rate)
        return np.where(keep, d_output / scale, d_output.dtype.type(0.0))

    def get_config(self) -> dict[str, Any]:
        return {"rate": self.rate, "seed": self.seed}

"""Conv2D and Conv3D, Keras-compatible, on the kernels of ``functional.conv``: one matrix
product per kernel tap (see there for when windows are gathered instead)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from convlstm import _validation as check
from convlstm.functional.conv import conv_backward, conv_forward
from convlstm.functional.windows import output_size, resolve_pads
from convlstm.layers.base import shape_arg, training_arg
from convlstm.layers.kernel_layer import KernelCache, KernelLayer
from convlstm.layers.layout import DATA_FORMATS, SPATIAL_NAMES, Layout
from convlstm.registry import register


class _Conv(KernelLayer):
    """A convolution over ``rank`` spatial axes; Conv2D and Conv3D fix the rank.

    ``y = activation(conv(x, kernel) + bias)``, a cross-correlation as in Keras. Arguments and
    weights are Keras': ``kernel`` (*kernel_size, in_channels, filters), ``bias`` (filters,).
    """

    rank: int

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        padding: str = "valid",
        *,
        data_format: str = "channels_last",
        dilation_rate: int | Sequence[int] = 1,
        activation: str | Any = None,
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        bias_initializer: str = "zeros",
        dtype: str | np.dtype = "float32",
        seed: int | None = None,
    ) -> None:
        owner = type(self).__name__
        rank = self.rank
        self.filters = check.positive_int(owner, "filters", filters)
        self.kernel_size = check.int_tuple(owner, "kernel_size", kernel_size, rank)
        self.strides = check.int_tuple(owner, "strides", strides, rank)
        self.padding = check.padding_arg(owner, padding, rank, allow_explicit=False)
        self.data_format = check.choice(owner, "data_format", data_format, DATA_FORMATS)
        self._layout = Layout(self.data_format, rank)
        self.dilation_rate = check.int_tuple(owner, "dilation_rate", dilation_rate, rank)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                f"{owner}: strides > 1 is not compatible with dilation_rate > 1 (as in Keras); "
                f"got strides={self.strides} and dilation_rate={self.dilation_rate}."
            )
        super().__init__(activation, use_bias, kernel_initializer, bias_initializer, dtype, seed)

    # ------------------------------------------------------------------- shapes

    @property
    def in_channels(self) -> int | None:
        """Channels of the input, once built."""
        return self.params["kernel"].shape[-2] if self.built else None

    def _geometry(self, spatial: tuple[int, ...]):
        window, strides, dilation = self.kernel_size, self.strides, self.dilation_rate
        pads = resolve_pads(self.padding, spatial, window, strides, dilation)
        return pads, output_size(spatial, window, strides, pads, dilation)

    def _checked_shape(self, owner: str, name: str, shape: tuple) -> tuple[int, ...]:
        """Raise unless ``shape`` fits the layer; return the output's spatial sizes."""
        _, spatial, channels = (
            self._layout.split(shape) if len(shape) == self.rank + 2 else ((), (), None)
        )
        if (
            len(shape) != self.rank + 2
            or not channels
            or (self.built and channels != self.in_channels)
        ):
            raise ValueError(
                f"{owner}: expected {name} of shape "
                f"{check.shape_text(self._layout.names(self.in_channels or 'channels', 'batch'))}; "
                f"got {check.shape_text(shape)}."
            )
        # Axes are independent: an unknown (None) size gives an unknown output size on its axis.
        known = tuple(2**20 if size is None else size for size in spatial)
        out_sizes = tuple(
            None if size is None else out
            for size, out in zip(spatial, self._geometry(known)[1])
        )
        if min((out for out in out_sizes if out is not None), default=1) < 1:
            raise ValueError(
                f"{owner}: the {'x'.join(SPATIAL_NAMES[self.rank])} = {spatial} of {name} is too "
                f"small for kernel_size={self.kernel_size} with dilation_rate="
                f"{self.dilation_rate} and padding={self.padding!r}."
            )
        return out_sizes

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple:
        """The output shape for ``input_shape`` (None entries stay None)."""
        owner = f"{type(self).__name__}.compute_output_shape"
        shape = shape_arg(owner, "input_shape", input_shape)
        out_sizes = self._checked_shape(owner, "input_shape", shape)
        return self._layout.shape(shape[:1], out_sizes, self.filters)

    def build(self, input_shape: Sequence[int | None]) -> None:
        """Create the weights for inputs of ``input_shape`` (only the channel count matters)."""
        owner = f"{type(self).__name__}.build"
        shape = shape_arg(owner, "input_shape", input_shape)
        self._checked_shape(owner, "input_shape", shape)
        if not self.built:
            self._create_weights((*self.kernel_size, self._layout.split(shape)[2], self.filters))

    # ------------------------------------------------------------------ compute

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Convolve a batch.

        Args:
            x: (batch, *spatial, channels); channels_first: (batch, channels, *spatial).
                Integers are cast to the layer's dtype.
            training: keep the cache (the padded input) for :meth:`backward`.

        Returns:
            (batch, *spatial', filters) (channels_first: (batch, filters, *spatial')).
        """
        owner = f"{type(self).__name__}.forward"
        training = training_arg(owner, training)
        x = check.numeric_array(owner, "x", x, self.dtype)
        self._checked_shape(owner, "x", x.shape)
        self.build(x.shape)
        # One contiguous copy here; the kernels then read every tap without strided views.
        frames = self._contiguous(self._layout.to_channels_last, x)
        pads = self._geometry(frames.shape[1:-1])[0]
        z, padded = conv_forward(
            frames,
            self.params["kernel"],
            self.params.get("bias"),
            self.strides,
            pads,
            self.dilation_rate,
        )
        y, saved = self.activation.apply(owner, z, training, in_place=True)
        y = self._contiguous(self._layout.from_channels_last, y)
        self._keep(KernelCache(padded, saved, pads), y if training else None)
        return y

    def backward(self, d_output: np.ndarray) -> np.ndarray:
        """Fill ``grads`` from d_output (the output's shape); return d_x (the input's shape)."""
        cache, d_output = self._consume(d_output)
        d_output = self._contiguous(self._layout.to_channels_last, d_output)
        d_z = self.activation.backward(cache.activation_output, d_output)
        d_x, self.grads["kernel"], d_bias = conv_backward(
            d_z, cache.x, self.params["kernel"], self.strides, cache.pads, self.dilation_rate
        )
        if self.use_bias:
            self.grads["bias"] = d_bias
        return self._contiguous(self._layout.from_channels_last, d_x)

    def _contiguous(self, move: Any, array: np.ndarray) -> np.ndarray:
        """``move(array)`` as one contiguous copy when channels_first; ``array`` itself when
        channels_last (nothing moves)."""
        return np.ascontiguousarray(move(array)) if self._layout.channels_first else array

    def get_config(self) -> dict[str, Any]:
        return {
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": list(self.dilation_rate),
            **self._shared_config(),
        }


@register
class Conv2D(_Conv):
    """2-D convolution, as Keras' ``Conv2D``.

    Args:
        filters: output channels.
        kernel_size: int or (kh, kw).
        strides: int or pair.
        padding: "valid" or "same" ("same" gives ``ceil(n / stride)`` outputs, with TensorFlow's
            split: when the total padding is odd the extra row or column goes after).
        data_format: "channels_last" (batch, height, width, channels) or "channels_first"
            (batch, channels, height, width).
        dilation_rate: int or pair; strides > 1 together with dilation_rate > 1 is refused
            (as in Keras).
        activation: a Keras name (None = "linear") or a callable (inference only).
        use_bias: add a bias, as in Keras.
        kernel_initializer: a Keras initializer name.
        bias_initializer: a Keras initializer name.
        dtype: "float32" (default) or "float64".
        seed: seeds the initializers.

    Weights: ``kernel`` (kh, kw, in_channels, filters), ``bias`` (filters,). Built lazily from
    the first input, or by :meth:`build`. A training forward keeps the zero-padded input for
    the backward pass (a reference to the input itself when nothing is padded).
    """

    rank = 2


@register
class Conv3D(_Conv):
    """3-D convolution, as Keras' ``Conv3D``; the arguments are those of :class:`Conv2D` with
    triples for kernel_size, strides and dilation_rate.

    Input (batch, depth, height, width, channels) (channels_first: (batch, channels, depth,
    height, width)); weights ``kernel`` (kd, kh, kw, in_channels, filters) and ``bias``
    (filters,). The head of Keras' next-frame example is
    ``Conv3D(1, (3, 3, 3), activation="sigmoid", padding="same")``.
    """

    rank = 3

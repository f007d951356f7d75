"""Max pooling layers: MaxPooling3D (with the seed's positional pool_size, stride),
MaxPooling2D and MaxPooling1D, one implementation for all three."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from convlstm import _validation as check
from convlstm.functional.pooling import max_pool, max_pool_backward
from convlstm.functional.windows import output_size, resolve_pads
from convlstm.layers.base import CachedLayer
from convlstm.layers.layout import DATA_FORMATS, SPATIAL_NAMES, Layout
from convlstm.registry import register


class _MaxPooling(CachedLayer):
    """Max pooling over ``rank`` spatial axes, as Keras' ``MaxPooling{rank}D``."""

    rank: int

    def __init__(
        self,
        pool_size: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: str = "valid",
        data_format: str = "channels_last",
        strides: int | Sequence[int] | None = None,
    ) -> None:
        owner = type(self).__name__
        self.pool_size = check.int_tuple(owner, "pool_size", pool_size, self.rank)
        given = {"stride": stride, "strides": strides}
        stride = check.seed_keywords(
            owner, (), (), {name: value for name, value in given.items() if value is not None}
        ).get("stride", self.pool_size)
        self.stride = check.int_tuple(owner, "stride", stride, self.rank)
        self.padding = check.padding_arg(owner, padding, self.rank, allow_explicit=False)
        self.data_format = check.choice(owner, "data_format", data_format, DATA_FORMATS)
        self._layout = Layout(self.data_format, self.rank)
        self._empty_weights()

    def _geometry(self, spatial: tuple[int, ...]):
        ones = (1,) * self.rank
        pads = resolve_pads(self.padding, spatial, self.pool_size, self.stride, ones)
        return pads, output_size(spatial, self.pool_size, self.stride, pads, ones)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple:
        """The output shape for an input of ``input_shape`` (None sizes stay None)."""
        leading, spatial, channels = self._layout.split(input_shape)
        # Axes are independent: an unknown size (a None time) gives an unknown output size.
        known = tuple(2**20 if size is None else size for size in spatial)
        out = tuple(None if size is None else n
                    for size, n in zip(spatial, self._geometry(known)[1]))
        return self._layout.shape(leading, out, channels)

    def _from_channels_last(self, array: np.ndarray) -> np.ndarray:
        if self._layout.channels_first:
            return np.ascontiguousarray(self._layout.from_channels_last(array))
        return array

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Pool (B, *spatial, C) (channels_first: (B, C, *spatial)); the dtype is kept.

        With ``training=True`` the winners are kept for :meth:`backward`.
        """
        owner = f"{type(self).__name__}.forward"
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"{owner}: expected x to be a real numeric array; got dtype {x.dtype}.")
        check.check_shape(owner, "x", x, self._layout.names("channels", "batch"))
        volumes = self._layout.to_channels_last(x)
        spatial = volumes.shape[1:-1]
        pads, out = self._geometry(spatial)
        if min(spatial) < 1:
            names = ", ".join(SPATIAL_NAMES[self.rank])
            raise ValueError(f"{owner}: expected x with every one of ({names}) >= 1; got "
                             f"{check.shape_text(spatial)}.")
        if min(out) < 1:
            raise ValueError(
                f"{owner}: a window of pool_size={self.pool_size} does not fit in the "
                f"({', '.join(SPATIAL_NAMES[self.rank])}) = {spatial} of x under padding='valid'."
            )
        pooled, cache = max_pool(volumes, self.pool_size, self.stride, pads, training)
        output = self._from_channels_last(pooled)
        # Integer inputs pool to integers; their gradients are still floats.
        self._keep(cache, output if training else None, np.result_type(output, np.float32))
        return output

    def backward(self, d_output: np.ndarray) -> np.ndarray:
        """Route each window's gradient to its maximum: the first in scan order on ties (as
        PyTorch); overlapping windows add up. Returns the input's gradient."""
        cache, d_output = self._consume(d_output)
        d_x = max_pool_backward(self._layout.to_channels_last(d_output), cache)
        return self._from_channels_last(d_x)

    def get_config(self) -> dict[str, Any]:
        return {
            "pool_size": list(self.pool_size),
            "stride": list(self.stride),
            "padding": self.padding,
            "data_format": self.data_format,
        }


@register
class MaxPooling3D(_MaxPooling):
    """Max pooling over three spatial axes, as Keras' ``MaxPooling3D``.

    On a ConvLSTM2D output (B, T, H, W, C), time is the first pooled axis: with the seed's
    ``MaxPooling3D((2, 2, 2), (2, 2, 2))``, (1, 10, 32, 32, 32) becomes (1, 5, 16, 16, 32).

    Args:
        pool_size: int or (pd, ph, pw) window.
        stride: int or triple; None means pool_size.
        strides: Keras' name for ``stride`` (give one of the two).
        padding: "valid" (windows that fit; output ``floor((n - p)/s) + 1``) or "same" (output
            ``ceil(n/s)``, TensorFlow's split with the odd cell after; padded cells never win).
        data_format: "channels_last" (B, D, H, W, C) or "channels_first" (B, C, D, H, W).
    """

    rank = 3

    def __init__(
        self,
        pool_size: int | Sequence[int] = (2, 2, 2),
        stride: int | Sequence[int] | None = None,
        padding: str = "valid",
        data_format: str = "channels_last",
        *,
        strides: int | Sequence[int] | None = None,
    ) -> None:
        super().__init__(pool_size, stride, padding, data_format, strides)


@register
class MaxPooling2D(_MaxPooling):
    """Max pooling over height and width, as Keras' ``MaxPooling2D``; arguments as
    :class:`MaxPooling3D` with pairs: (B, H, W, C) (channels_first: (B, C, H, W))."""

    rank = 2

    def __init__(
        self,
        pool_size: int | Sequence[int] = (2, 2),
        stride: int | Sequence[int] | None = None,
        padding: str = "valid",
        data_format: str = "channels_last",
        *,
        strides: int | Sequence[int] | None = None,
    ) -> None:
        super().__init__(pool_size, stride, padding, data_format, strides)


@register
class MaxPooling1D(_MaxPooling):
    """Max pooling over one axis, as Keras' ``MaxPooling1D``; arguments as :class:`MaxPooling3D`
    with one int: (B, W, C) (channels_first: (B, C, W)). Keras' default ``pool_size`` is 2."""

    rank = 1

    def __init__(
        self,
        pool_size: int | Sequence[int] = 2,
        stride: int | Sequence[int] | None = None,
        padding: str = "valid",
        data_format: str = "channels_last",
        *,
        strides: int | Sequence[int] | None = None,
    ) -> None:
        super().__init__(pool_size, stride, padding, data_format, strides)

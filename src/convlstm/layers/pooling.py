"""MaxPooling3D, Keras-compatible, with the seed's positional (pool_size, stride)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from convlstm import _validation as check
from convlstm.functional.pooling import max_pool3d
from convlstm.functional.windows import output_size, resolve_pads
from convlstm.layers.base import Layer

DATA_FORMATS = ("channels_last", "channels_first")


class MaxPooling3D(Layer):
    """Max pooling over three spatial axes, as Keras' ``MaxPooling3D``.

    On a ConvLSTM2D output (B, T, H, W, C), time is the first pooled axis: with the seed's
    ``MaxPooling3D((2, 2, 2), (2, 2, 2))``, (1, 10, 32, 32, 32) becomes (1, 5, 16, 16, 32).

    Args:
        pool_size: int or (pd, ph, pw) window.
        stride: int or triple; None means pool_size (Keras' ``strides``).
        padding: "valid" (windows that fit; output ``floor((n - p)/s) + 1``) or "same" (output
            ``ceil(n/s)``, TensorFlow's split with the odd cell after; padded cells never win).
        data_format: "channels_last" (B, D, H, W, C) or "channels_first" (B, C, D, H, W).
    """

    def __init__(
        self,
        pool_size: int | Sequence[int] = (2, 2, 2),
        stride: int | Sequence[int] | None = None,
        padding: str = "valid",
        data_format: str = "channels_last",
    ) -> None:
        owner = type(self).__name__
        self.pool_size = check.int_tuple(owner, "pool_size", pool_size, 3)
        self.stride = (
            self.pool_size if stride is None else check.int_tuple(owner, "stride", stride, 3)
        )
        self.padding = check.padding_arg(owner, padding, 3, allow_explicit=False)
        self.data_format = check.choice(owner, "data_format", data_format, DATA_FORMATS)

    def _geometry(self, spatial: tuple[int, int, int]):
        pads = resolve_pads(self.padding, spatial, self.pool_size, self.stride, (1, 1, 1))
        return pads, output_size(spatial, self.pool_size, self.stride, pads, (1, 1, 1))

    def compute_output_shape(self, input_shape: Sequence[int]) -> tuple[int, ...]:
        """The output shape for an input of ``input_shape``."""
        shape = tuple(input_shape)
        spatial = shape[2:] if self.data_format == "channels_first" else shape[1:4]
        _, out = self._geometry(spatial)
        if self.data_format == "channels_first":
            return (*shape[:2], *out)
        return (shape[0], *out, shape[4])

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Pool (B, D, H, W, C) (channels_first: (B, C, D, H, W)); the dtype is kept."""
        owner = f"{type(self).__name__}.forward"
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"{owner}: expected x to be a real numeric array; got dtype {x.dtype}.")
        names = ("batch", "channels", "depth", "height", "width")
        if self.data_format == "channels_last":
            names = ("batch", "depth", "height", "width", "channels")
        check.check_shape(owner, "x", x, names)
        volumes = np.moveaxis(x, 1, -1) if self.data_format == "channels_first" else x
        spatial = volumes.shape[1:4]
        pads, out = self._geometry(spatial)
        if min(out) < 1:
            raise ValueError(
                f"{owner}: a window of pool_size={self.pool_size} does not fit in the "
                f"(depth, height, width) = {spatial} of x under padding='valid'."
            )
        pooled = max_pool3d(volumes, self.pool_size, self.stride, pads)
        return np.moveaxis(pooled, -1, 1).copy() if self.data_format == "channels_first" else pooled

    def get_config(self) -> dict[str, Any]:
        return {
            "pool_size": list(self.pool_size),
            "stride": list(self.stride),
            "padding": self.padding,
            "data_format": self.data_format,
        }

"""Where the channels axis is: the user's ``data_format`` against the channels-last layout every
kernel computes in. One helper for the convolutions, the pooling layers and the ConvLSTM family.

A shape here is ``(*leading, *spatial, channels)`` (channels_last) or
``(*leading, channels, *spatial)`` (channels_first): ``leading`` is (batch,) for a frame and
(batch, time) for a sequence, and there are ``rank`` spatial axes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DATA_FORMATS = ("channels_last", "channels_first")
SPATIAL_NAMES = {1: ("width",), 2: ("height", "width"), 3: ("depth", "height", "width")}


@dataclass(frozen=True)
class Layout:
    """The channels-first moves for arrays with ``rank`` spatial axes.

    Args:
        data_format: "channels_last" or "channels_first" (checked by the layer's options).
        rank: the number of spatial axes (1, 2 or 3).
    """

    data_format: str
    rank: int

    @property
    def channels_first(self) -> bool:
        return self.data_format == "channels_first"

    def names(self, channels: object, *leading: object) -> tuple:
        """The expected shape for error messages, e.g. ``("batch", "time", "height", "width",
        3)``: ``leading`` and ``channels`` as given, spatial axes by name."""
        spatial = SPATIAL_NAMES[self.rank]
        if self.channels_first:
            return (*leading, channels, *spatial)
        return (*leading, *spatial, channels)

    def shape(self, leading: Sequence, spatial: Sequence, channels: object) -> tuple:
        """The user's shape for these leading axes, spatial sizes and channels."""
        if self.channels_first:
            return (*leading, channels, *spatial)
        return (*leading, *spatial, channels)

    def split(self, shape: Sequence) -> tuple[tuple, tuple, object]:
        """``(leading, spatial, channels)`` of a shape in the user's layout."""
        shape = tuple(shape)
        lead = len(shape) - self.rank - 1
        if self.channels_first:
            return shape[:lead], shape[lead + 1 :], shape[lead]
        return shape[:lead], shape[lead:-1], shape[-1]

    def to_channels_last(self, array: np.ndarray) -> np.ndarray:
        """The array channels-last (a view; the array itself when it already is)."""
        return np.moveaxis(array, -self.rank - 1, -1) if self.channels_first else array

    def from_channels_last(self, array: np.ndarray) -> np.ndarray:
        """A channels-last array in the user's layout (a view; the array itself when
        channels_last)."""
        return np.moveaxis(array, -1, -self.rank - 1) if self.channels_first else array

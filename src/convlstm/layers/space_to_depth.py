"""SpaceToDepth and DepthToSpace: weightless rearrangements of sequences of frames, as
TensorFlow's ``tf.nn.space_to_depth`` and ``tf.nn.depth_to_space`` (DCR order) applied per frame.

With block ``(bh, bw)`` (an int ``b`` means ``(b, b)``), a frame (H, W, C) becomes
(H / bh, W / bw, C * bh * bw)::

    out[i, j, (dy * bw + dx) * C + c] = x[i * bh + dy, j * bw + dx, c]

for ``0 <= dy < bh``, ``0 <= dx < bw``, ``0 <= c < C``. DepthToSpace is the exact inverse. The
channel order is the same under ``data_format="channels_first"`` (TensorFlow's NCHW). Each
direction is one reshape, one transpose and one copy; a permutation's gradient is the inverse
permutation, so each layer's backward is the other's forward kernel.
"""

from __future__ import annotations

import numbers
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from convlstm import _validation as check
from convlstm.layers.base import CachedLayer, float_input, shape_arg, training_arg
from convlstm.layers.layout import DATA_FORMATS
from convlstm.registry import register

# ------------------------------------------------------------------------------------ kernels


def space_to_depth(x: np.ndarray, block: tuple[int, int], channels_first: bool) -> np.ndarray:
    """Move (bh, bw) blocks of pixels into channels, as ``tf.nn.space_to_depth``.

    Args:
        x: (..., H, W, C); channels_first: (..., C, H, W). H and W divisible by bh and bw.
        block: (bh, bw).
        channels_first: the layout of ``x`` and of the result.

    Returns:
        (..., H/bh, W/bw, bh*bw*C) (channels_first: (..., bh*bw*C, H/bh, W/bw)), a new
        C-contiguous array with
        ``out[..., i, j, (dy*bw + dx)*C + c] = x[..., i*bh + dy, j*bw + dx, c]``.
    """
    bh, bw = block
    lead, n = x.shape[:-3], x.ndim - 3
    if channels_first:
        C, H, W = x.shape[-3:]
        blocks = x.reshape(*lead, C, H // bh, bh, W // bw, bw)
        # (..., C, Ho, dy, Wo, dx) -> (..., dy, dx, C, Ho, Wo)
        order = (n + 2, n + 4, n, n + 1, n + 3)
        out_shape = (*lead, bh * bw * C, H // bh, W // bw)
    else:
        H, W, C = x.shape[-3:]
        blocks = x.reshape(*lead, H // bh, bh, W // bw, bw, C)
        # (..., Ho, dy, Wo, dx, C) -> (..., Ho, Wo, dy, dx, C)
        order = (n, n + 2, n + 1, n + 3, n + 4)
        out_shape = (*lead, H // bh, W // bw, bh * bw * C)
    return blocks.transpose(*range(n), *order).copy().reshape(out_shape)


def depth_to_space(x: np.ndarray, block: tuple[int, int], channels_first: bool) -> np.ndarray:
    """Move channels into (bh, bw) blocks of pixels, as ``tf.nn.depth_to_space`` (DCR): the
    exact inverse of :func:`space_to_depth`.

    Args:
        x: (..., H, W, C); channels_first: (..., C, H, W). C divisible by bh*bw.
        block: (bh, bw).
        channels_first: the layout of ``x`` and of the result.

    Returns:
        (..., H*bh, W*bw, D) (channels_first: (..., D, H*bh, W*bw)) with D = C/(bh*bw), a new
        C-contiguous array with
        ``out[..., i*bh + dy, j*bw + dx, d] = x[..., i, j, (dy*bw + dx)*D + d]``.
    """
    bh, bw = block
    lead, n = x.shape[:-3], x.ndim - 3
    if channels_first:
        C, H, W = x.shape[-3:]
        D = C // (bh * bw)
        blocks = x.reshape(*lead, bh, bw, D, H, W)
        # (..., dy, dx, D, H, W) -> (..., D, H, dy, W, dx)
        order = (n + 2, n + 3, n, n + 4, n + 1)
        out_shape = (*lead, D, H * bh, W * bw)
    else:
        H, W, C = x.shape[-3:]
        D = C // (bh * bw)
        blocks = x.reshape(*lead, H, W, bh, bw, D)
        # (..., H, W, dy, dx, D) -> (..., H, dy, W, dx, D)
        order = (n, n + 2, n + 1, n + 3, n + 4)
        out_shape = (*lead, H * bh, W * bw, D)
    return blocks.transpose(*range(n), *order).copy().reshape(out_shape)


# ------------------------------------------------------------------------------------- layers


def block_size_arg(owner: str, value: object) -> tuple[int, int]:
    """``block_size`` as (bh, bw): a positive int, or a pair of positive ints."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        size = check.positive_int(owner, "block_size", value)
        return size, size
    items = tuple(value) if isinstance(value, Sequence) and not isinstance(value, str) else ()
    what = f"{owner}: expected block_size to be a positive int or a pair of positive ints"
    if len(items) != 2 or not all(
        isinstance(item, numbers.Integral) and not isinstance(item, bool) for item in items
    ):
        raise TypeError(f"{what}; got {value!r}.")
    if min(items) < 1:
        raise ValueError(f"{what}; got {value!r}.")
    return int(items[0]), int(items[1])


class _BlockRearrange(CachedLayer):
    """What SpaceToDepth and DepthToSpace share: options, shape checks, forward and backward."""

    def __init__(
        self, block_size: int | Sequence[int], data_format: str | None = "channels_last"
    ) -> None:
        owner = type(self).__name__
        self.block = block_size_arg(owner, block_size)
        data_format = "channels_last" if data_format is None else data_format
        self.data_format = check.choice(owner, "data_format", data_format, DATA_FORMATS)
        self._empty_weights()

    @property
    def block_size(self) -> int | tuple[int, int]:
        """The block as given: an int when square, else (bh, bw)."""
        bh, bw = self.block
        return bh if bh == bw else self.block

    @property
    def _channels_first(self) -> bool:
        return self.data_format == "channels_first"

    def _block_text(self) -> str:
        return str(self.block_size)

    def _names(self) -> tuple[str, ...]:
        if self._channels_first:
            return ("batch", "time", "channels", "height", "width")
        return ("batch", "time", "height", "width", "channels")

    def _split(self, shape: tuple) -> tuple:
        """(C, H, W) of a sequence shape in this layer's data_format."""
        if self._channels_first:
            return shape[2], shape[3], shape[4]
        return shape[4], shape[2], shape[3]

    def _join(self, shape: tuple, C: Any, H: Any, W: Any) -> tuple:
        if self._channels_first:
            return (*shape[:2], C, H, W)
        return (*shape[:2], H, W, C)

    @abstractmethod
    def _output_chw(self, owner: str, C: Any, H: Any, W: Any) -> tuple:
        """The output's (C, H, W) (None stays None); raises ``ValueError`` if not divisible."""

    @abstractmethod
    def _rearrange(self, x: np.ndarray) -> np.ndarray:
        """The forward kernel."""

    @abstractmethod
    def _inverse(self, d_output: np.ndarray) -> np.ndarray:
        """The inverse kernel (the backward pass of a permutation)."""

    def build(self, input_shape: Sequence[int | None]) -> None:
        """Nothing to create; checks the shape."""
        self.compute_output_shape(input_shape)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple:
        """The output shape for ``input_shape``; unknown (None) dimensions stay None."""
        owner = f"{type(self).__name__}.compute_output_shape"
        shape = shape_arg(owner, "input_shape", input_shape)
        if len(shape) != 5:
            raise ValueError(
                f"{owner}: expected input_shape {check.shape_text(self._names())}; got {shape!r}."
            )
        return self._join(shape, *self._output_chw(owner, *self._split(shape)))

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Rearrange every frame of ``x`` (shapes in the class docstring); float32 and float64
        are kept, other real dtypes cast to float32. The result is a new array.

        With ``training=True`` the cache for :meth:`backward` is kept.
        """
        owner = f"{type(self).__name__}.forward"
        training = training_arg(owner, training)
        x = float_input(owner, x)
        check.check_shape(owner, "x", x, self._names())
        self._output_chw(owner, *self._split(x.shape))
        y = self._rearrange(x)
        self._keep(None, y if training else None)
        return y

    def backward(self, d_output: np.ndarray) -> np.ndarray:
        """The input's gradient: ``d_output`` put back by the inverse permutation."""
        _, d_output = self._consume(d_output)
        return self._inverse(d_output)

    def get_config(self) -> dict[str, Any]:
        block = self.block_size
        return {
            "block_size": block if isinstance(block, int) else list(block),
            "data_format": self.data_format,
        }


@register
class SpaceToDepth(_BlockRearrange):
    """Move each (bh, bw) block of pixels into the channels, frame by frame, as
    ``tf.nn.space_to_depth``::

        out[b, t, i, j, (dy * bw + dx) * C + c] = x[b, t, i * bh + dy, j * bw + dx, c]

    Input (B, T, H, W, C), output (B, T, H/bh, W/bw, C*bh*bw); with
    ``data_format="channels_first"``, (B, T, C, H, W) -> (B, T, C*bh*bw, H/bh, W/bw) with the
    same channel order. H and W must be divisible by bh and bw.

    Args:
        block_size: a positive int b (square blocks), or a pair (bh, bw).
        data_format: "channels_last" (default; None means it) or "channels_first".
    """

    def _output_chw(self, owner, C, H, W):
        bh, bw = self.block
        if (H is not None and H % bh) or (W is not None and W % bw):
            raise ValueError(
                f"{owner}: expected height and width divisible by block_size "
                f"{self._block_text()}; got ({H}, {W})."
            )
        return (
            None if C is None else C * bh * bw,
            None if H is None else H // bh,
            None if W is None else W // bw,
        )

    def _rearrange(self, x):
        return space_to_depth(x, self.block, self._channels_first)

    def _inverse(self, d_output):
        return depth_to_space(d_output, self.block, self._channels_first)


@register
class DepthToSpace(_BlockRearrange):
    """Move channels into (bh, bw) blocks of pixels, frame by frame, as
    ``tf.nn.depth_to_space`` (DCR order), the exact inverse of :class:`SpaceToDepth`::

        out[b, t, i * bh + dy, j * bw + dx, c] = x[b, t, i, j, (dy * bw + dx) * D + c]

    Input (B, T, H, W, C), output (B, T, H*bh, W*bw, D) with D = C/(bh*bw); with
    ``data_format="channels_first"``, (B, T, C, H, W) -> (B, T, D, H*bh, W*bw) with the same
    channel order. C must be divisible by bh*bw.

    Args:
        block_size: a positive int b (square blocks), or a pair (bh, bw).
        data_format: "channels_last" (default; None means it) or "channels_first".
    """

    def _output_chw(self, owner, C, H, W):
        bh, bw = self.block
        if C is not None and C % (bh * bw):
            raise ValueError(
                f"{owner}: expected channels divisible by {bh * bw} (block_size "
                f"{self._block_text()}); got {C}."
            )
        return (
            None if C is None else C // (bh * bw),
            None if H is None else H * bh,
            None if W is None else W * bw,
        )

    def _rearrange(self, x):
        return depth_to_space(x, self.block, self._channels_first)

    def _inverse(self, d_output):
        return space_to_depth(d_output, self.block, self._channels_first)

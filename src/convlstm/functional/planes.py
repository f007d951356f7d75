"""Window gathering for channels-first planes (C, ..., H, W), the ConvLSTM's inner layout.

With the channels outermost, each kernel tap copies whole image rows, and a convolution is
``kernel^T (4F, kh*kw*C) @ columns (kh*kw*C, pixels)``, whose output rows are the gates: each
gate is then a contiguous block of rows.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from convlstm.functional.threads import split_run
from convlstm.functional.windows import Pads, output_size, window_slice


def interior(padded: np.ndarray, pads: Pads) -> np.ndarray:
    """The unpadded part of (..., Hp, Wp) planes padded by ``pads`` (a view)."""
    (top, bottom), (left, right) = pads
    return padded[..., top : padded.shape[-2] - bottom, left : padded.shape[-1] - right]


def im2col_planes(
    padded: np.ndarray,
    window: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    out_hw: tuple[int, int],
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Gather every window of padded planes.

    Args:
        padded: (C, ..., Hp, Wp), padding included.
        window, stride, dilation: (kh, kw) and per-axis ints.
        out_hw: (H', W'), the number of window positions.
        out: optional (kh, kw, C, ..., H', W') buffer to fill.

    Returns:
        (kh, kw, C, ..., H', W'); reshaped to (kh*kw*C, -1) its rows follow a Keras kernel's
        (kh, kw, C) order.
    """
    (kh, kw), (sh, sw), (dh, dw), (Ho, Wo) = window, stride, dilation, out_hw
    if out is None:
        out = np.empty((kh, kw, *padded.shape[:-2], Ho, Wo), padded.dtype)
    for i in range(kh):
        rows = window_slice(i * dh, sh, Ho)
        for j in range(kw):
            out[i, j] = padded[..., rows, window_slice(j * dw, sw, Wo)]
    return out


def col2im_planes(
    d_cols: np.ndarray,
    padded_shape: tuple[int, ...],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The adjoint of :func:`im2col_planes`: scatter-add window gradients onto padded planes.

    Args:
        d_cols: (kh, kw, C, ..., H', W').
        padded_shape: (C, ..., Hp, Wp).
        stride, dilation: as given to :func:`im2col_planes`.
        out: optional (C, ..., Hp, Wp) buffer to overwrite.

    Returns:
        (C, ..., Hp, Wp); a pixel under several windows gets the sum of their gradients.
    """
    kh, kw = d_cols.shape[:2]
    Ho, Wo = d_cols.shape[-2:]
    (sh, sw), (dh, dw) = stride, dilation
    if out is None:
        out = np.zeros(padded_shape, d_cols.dtype)
    else:
        out[...] = 0.0
    for i in range(kh):
        rows = window_slice(i * dh, sh, Ho)
        for j in range(kw):
            out[..., rows, window_slice(j * dw, sw, Wo)] += d_cols[i, j]
    return out


class Windows:
    """im2col and its adjoint for one convolution geometry, with buffers made once.

    Inputs are channels-first planes (C, B, H, W); columns are (kh*kw*C, pixels) in the row
    order of a Keras kernel reshaped to (kh*kw*C, F). Large batches are gathered and scattered
    on several threads, by samples.
    """

    def __init__(
        self,
        in_shape: tuple[int, ...],
        window: tuple[int, int],
        stride: tuple[int, int],
        pads: Pads,
        dilation: tuple[int, int],
        dtype: np.dtype,
        cols: np.ndarray | None = None,
    ) -> None:
        *lead, H, W = in_shape
        self.window, self.stride, self.pads, self.dilation = window, stride, pads, dilation
        self.out_hw = output_size((H, W), window, stride, pads, dilation)
        (top, bottom), (left, right) = pads
        self.padded_shape = (*lead, top + H + bottom, left + W + right)
        padded = top + bottom + left + right > 0
        self.padded = np.zeros(self.padded_shape, dtype) if padded else None
        cols_shape = (*window, *lead, *self.out_hw)
        self.cols = np.empty(cols_shape, dtype) if cols is None else cols.reshape(cols_shape)
        self.rows = window[0] * window[1] * lead[0]
        self.pixels = self.out_hw[0] * self.out_hw[1]  # per sample
        self.d_padded: np.ndarray | None = None  # made by the first scatter

    def columns(self, x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """The windows of ``x`` (times ``mask``) as (kh*kw*C, pixels), in the reused buffer."""
        split_run(partial(self._gather, x, mask), self.cols.shape[3], self.rows * self.pixels)
        return self.cols.reshape(self.rows, -1)

    def _gather(self, x: np.ndarray, mask: np.ndarray | None, samples: slice) -> None:
        x = x[:, samples]
        mask = None if mask is None else mask[:, samples]
        if self.padded is None:
            source = x if mask is None else x * mask
        else:
            source = self.padded[:, samples]
            inside = interior(source, self.pads)
            if mask is None:
                inside[...] = x
            else:
                np.multiply(x, mask, out=inside)
        im2col_planes(source, self.window, self.stride, self.dilation, self.out_hw,
                      out=self.cols[:, :, :, samples])

    def scatter(self, d_columns: np.ndarray) -> np.ndarray:
        """The adjoint of :meth:`columns` (without the mask): (kh*kw*C, pixels) -> x's shape.

        The result is a view of a buffer that the next call overwrites.
        """
        if self.d_padded is None:
            self.d_padded = np.empty(self.padded_shape, self.cols.dtype)
        d_columns = d_columns.reshape(self.cols.shape)
        split_run(partial(self._scatter, d_columns), self.cols.shape[3], self.rows * self.pixels)
        return interior(self.d_padded, self.pads)

    def _scatter(self, d_columns: np.ndarray, samples: slice) -> None:
        col2im_planes(d_columns[:, :, :, samples], self.padded_shape, self.stride, self.dilation,
                      out=self.d_padded[:, samples])

"""Window gathering for channels-first planes (C, ..., *spatial), the ConvLSTM's inner layout.

With the channels outermost, each kernel tap copies whole image rows, and a convolution is
``kernel^T (4F, kh*kw*C) @ columns (kh*kw*C, pixels)``, whose output rows are the gates: each
gate is then a contiguous block of rows.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np

from convlstm.functional.threads import split_run
from convlstm.functional.windows import Pads, output_size, taps


def interior(padded: np.ndarray, pads: Pads) -> np.ndarray:
    """The unpadded part of (..., *padded_spatial) planes padded by ``pads`` (a view)."""
    spatial = padded.shape[len(padded.shape) - len(pads) :]
    return padded[(..., *(slice(before, size - after)
                          for size, (before, after) in zip(spatial, pads)))]


def im2col_planes(
    padded: np.ndarray,
    window: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    out_sizes: tuple[int, ...],
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Gather every window of padded planes, for any number of spatial axes.

    Args:
        padded: (C, ..., *padded_spatial), padding included.
        window, stride, dilation: one int per spatial axis, e.g. (kh, kw).
        out_sizes: the number of window positions per axis, e.g. (H', W').
        out: optional (*window, C, ..., *out_sizes) buffer to fill.

    Returns:
        (*window, C, ..., *out_sizes); reshaped to (prod(window)*C, -1) its rows follow a Keras
        kernel's (*window, C) order.
    """
    if out is None:
        lead = padded.shape[: len(padded.shape) - len(window)]
        out = np.empty((*window, *lead, *out_sizes), padded.dtype)
    for tap, source in taps(window, stride, dilation, out_sizes):
        out[tap] = padded[(..., *source)]
    return out


def col2im_planes(
    d_cols: np.ndarray,
    padded_shape: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The adjoint of :func:`im2col_planes`: scatter-add window gradients onto padded planes.

    Args:
        d_cols: (*window, C, ..., *out_sizes).
        padded_shape: (C, ..., *padded_spatial).
        stride, dilation: as given to :func:`im2col_planes`.
        out: optional (C, ..., *padded_spatial) buffer to overwrite.

    Returns:
        (C, ..., *padded_spatial); a pixel under several windows gets the sum of their gradients.
    """
    rank = len(stride)
    window, out_sizes = d_cols.shape[:rank], d_cols.shape[len(d_cols.shape) - rank :]
    if out is None:
        out = np.zeros(padded_shape, d_cols.dtype)
    else:
        out[...] = 0.0
    for tap, target in taps(window, stride, dilation, out_sizes):
        out[(..., *target)] += d_cols[tap]
    return out


class Windows:
    """im2col and its adjoint for one convolution geometry, with buffers made once.

    Inputs are channels-first planes (C, B, *spatial); columns are (prod(window)*C, pixels) in
    the row order of a Keras kernel reshaped to (prod(window)*C, F). Large batches are gathered
    and scattered on several threads, by samples.
    """

    def __init__(
        self,
        in_shape: tuple[int, ...],
        window: tuple[int, ...],
        stride: tuple[int, ...],
        pads: Pads,
        dilation: tuple[int, ...],
        dtype: np.dtype,
        cols: np.ndarray | None = None,
    ) -> None:
        rank = len(window)
        lead, spatial = in_shape[: len(in_shape) - rank], in_shape[len(in_shape) - rank :]
        self.window, self.stride, self.pads, self.dilation = window, stride, pads, dilation
        self.out_sizes = output_size(spatial, window, stride, pads, dilation)
        self.padded_shape = (*lead, *(before + n + after
                                      for n, (before, after) in zip(spatial, pads)))
        padded = any(before or after for before, after in pads)
        self.padded = np.zeros(self.padded_shape, dtype) if padded else None
        cols_shape = (*window, *lead, *self.out_sizes)
        self.cols = np.empty(cols_shape, dtype) if cols is None else cols.reshape(cols_shape)
        self.rows = math.prod(window) * lead[0]
        self.pixels = math.prod(self.out_sizes)  # per sample
        self.batch_axis = rank + 1  # of the columns: (*window, C, B, *out_sizes)
        self.d_padded: np.ndarray | None = None  # made by the first scatter

    def _samples(self, samples: slice) -> tuple[slice, ...]:
        """The index of ``samples`` in the columns' batch axis."""
        return (*(slice(None),) * self.batch_axis, samples)

    def columns(self, x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """The windows of ``x`` (times ``mask``) as (prod(window)*C, pixels), in the reused
        buffer."""
        batch = self.cols.shape[self.batch_axis]
        split_run(partial(self._gather, x, mask), batch, self.rows * self.pixels)
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
        im2col_planes(source, self.window, self.stride, self.dilation, self.out_sizes,
                      out=self.cols[self._samples(samples)])

    def scatter(self, d_columns: np.ndarray) -> np.ndarray:
        """The adjoint of :meth:`columns` (without the mask): (prod(window)*C, pixels) -> x's
        shape.

        The result is a view of a buffer that the next call overwrites.
        """
        if self.d_padded is None:
            self.d_padded = np.empty(self.padded_shape, self.cols.dtype)
        d_columns = d_columns.reshape(self.cols.shape)
        batch = self.cols.shape[self.batch_axis]
        split_run(partial(self._scatter, d_columns), batch, self.rows * self.pixels)
        return interior(self.d_padded, self.pads)

    def _scatter(self, d_columns: np.ndarray, samples: slice) -> None:
        col2im_planes(d_columns[self._samples(samples)], self.padded_shape, self.stride,
                      self.dilation, out=self.d_padded[:, samples])

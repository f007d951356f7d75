"""Window gathering for channels-first planes (C, ..., *spatial), the ConvLSTM's inner layout.

With the channels outermost, each kernel tap copies whole image rows, and a convolution is
``kernel^T (4F, kh*kw*C) @ columns (kh*kw*C, pixels)``, whose output rows are the gates: each
gate is then a contiguous block of rows.

When the output has the input's size (stride 1, "same" padding: every recurrent convolution,
and the usual input convolution) a tap is a shift of the flattened image: tap (dy, dx) of the
output pixel p reads the input's flat position p + dy'*W + dx', where dy', dx' are the tap's
offsets from the window's centre. One contiguous copy per tap then gathers it, with no padded
copy of the input: what falls outside the image (the first or last rows of a shift, and the
column that wraps around to the neighbouring row) is zero, written afterwards
(:class:`_Shift`). At 16x16 pixels this is about twice as fast as copying image rows of 16
floats, and the scatter (its adjoint) likewise.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
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


@dataclass(frozen=True)
class _Shift:
    """One kernel tap of a stride-1 geometry whose output has the input's size, as a shift of
    flattened images (see the module docstring).

    Output pixel p (flat, within one image) reads the input's flat position p + ``offset``.
    Only outputs in [start, stop) read inside the image's rows; of those, the ones in each
    ``outside`` region (an index of the spatial axes: the columns, or for 3-D the rows too,
    where the tap falls off an edge and the shift wraps to the neighbouring row) are zero.
    """

    offset: int
    start: int
    stop: int
    outside: tuple[tuple[slice, ...], ...]


@functools.cache
def shifts(
    spatial: tuple[int, ...], window: tuple[int, ...], pads: Pads, dilation: tuple[int, ...]
) -> tuple[_Shift, ...]:
    """The :class:`_Shift` of every tap, in the (*window) order of a Keras kernel, for a
    stride-1 convolution whose output has the input's size ``spatial`` (made once per
    geometry)."""
    flat_strides = [math.prod(spatial[axis + 1 :]) for axis in range(len(spatial))]
    result = []
    for tap in itertools.product(*map(range, window)):
        # how far the tap reads from the output pixel, per axis
        offsets = [k * d - before for k, d, (before, _) in zip(tap, dilation, pads)]
        offset = sum(o * s for o, s in zip(offsets, flat_strides))
        rows_start = max(0, -offsets[0]) * flat_strides[0]
        rows_stop = (spatial[0] - max(0, offsets[0])) * flat_strides[0]
        start = max(rows_start, -offset)
        stop = max(start, min(rows_stop, math.prod(spatial) - offset))
        outside = []
        for axis in range(1, len(spatial)):
            n, o = spatial[axis], offsets[axis]
            edge = slice(0, min(-o, n)) if o < 0 else slice(max(n - o, 0), n)
            if o:
                outside.append(tuple(edge if k == axis else slice(None)
                                     for k in range(len(spatial))))
        result.append(_Shift(offset, start, stop, tuple(outside)))
    return tuple(result)


def zero_edges(taps_as_shifts: tuple[_Shift, ...], out: np.ndarray) -> None:
    """Zero each tap's outputs outside [start, stop) (those whose window reads above or below
    the image), which :func:`shift_columns` never writes: once for a reused buffer.

    Args:
        taps_as_shifts: from :func:`shifts`.
        out: (*window, C, B, *spatial) columns.
    """
    rank = (out.ndim - 2) // 2
    flat_out = out.reshape(len(taps_as_shifts), -1, math.prod(out.shape[out.ndim - rank :]))
    for shift, tap in zip(taps_as_shifts, flat_out):
        tap[..., : shift.start] = 0.0
        tap[..., shift.stop :] = 0.0


def shift_columns(source: np.ndarray, taps_as_shifts: tuple[_Shift, ...], out: np.ndarray) -> None:
    """Gather every window by shifts: :func:`im2col_planes` for a geometry of :func:`shifts`.

    Args:
        source: (C, B, *spatial) planes, no padding, each image contiguous.
        taps_as_shifts: from :func:`shifts`.
        out: (*window, C, B, *spatial) columns to fill, whose edges are zero already
            (:func:`zero_edges`: a reused buffer's edges are zeroed once, not on every call).
    """
    C, B, *spatial = source.shape
    flat_source = source.reshape(C, B, -1)  # a view: each image is contiguous
    flat_out = out.reshape(len(taps_as_shifts), C, B, -1)
    for shift, tap in zip(taps_as_shifts, flat_out):
        tap[..., shift.start : shift.stop] = flat_source[
            ..., shift.start + shift.offset : shift.stop + shift.offset]
        for region in shift.outside:
            tap.reshape(C, B, *spatial)[(..., *region)] = 0.0


def shift_scatter(d_cols: np.ndarray, taps_as_shifts: tuple[_Shift, ...], out: np.ndarray) -> None:
    """The adjoint of :func:`shift_columns`: ``out`` (C, B, *spatial) is overwritten by the sum
    of the window gradients ``d_cols`` (*window, C, B, *spatial), which are consumed (their
    ``outside`` regions are zeroed)."""
    C, B, *spatial = out.shape
    flat_out = out.reshape(C, B, -1)
    flat_out[...] = 0.0
    for shift, tap in zip(taps_as_shifts, d_cols.reshape(len(taps_as_shifts), C, B, -1)):
        for region in shift.outside:
            tap.reshape(C, B, *spatial)[(..., *region)] = 0.0
        flat_out[..., shift.start + shift.offset : shift.stop + shift.offset] += tap[
            ..., shift.start : shift.stop]


def _flat_images(x: np.ndarray, rank: int) -> bool:
    """Whether each image of ``x`` (..., *spatial) (its last ``rank`` axes) is contiguous."""
    expected = x.itemsize
    for size, stride in zip(x.shape[::-1][:rank], x.strides[::-1][:rank]):
        if size > 1 and stride != expected:
            return False
        expected *= size
    return True


COPY_WORK = 2
"""Elements a gather or scatter moves per element of elementwise work (see
``threads.split_run``): a copy costs less than an arithmetic pass. Split at m's first layer,
(32, 8, 16, 16) planes, a gather took 254 us on two threads against 75 on one; at c's
(64, 4, 64, 64) 725 against 1099."""


class Windows:
    """im2col and its adjoint for one convolution geometry, with buffers made once.

    Inputs are channels-first planes (C, B, *spatial); columns are (prod(window)*C, pixels) in
    the row order of a Keras kernel reshaped to (prod(window)*C, F). Geometries with stride 1
    whose output has the input's size gather by shifts (:func:`shift_columns`), the others
    through a padded copy (:func:`im2col_planes`). Large batches are gathered and scattered on
    several threads, by samples.
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
        self.shifts = (shifts(tuple(spatial), tuple(window), tuple(map(tuple, pads)),
                              tuple(dilation))
                       if all(s == 1 for s in stride) and self.out_sizes == spatial else None)
        # The input as the gather reads it: padded for im2col_planes; for shifts, unpadded,
        # used when the input's images are not contiguous or a mask multiplies it.
        padded = self.shifts is None and any(before or after for before, after in pads)
        self.padded_shape = (*lead, *(before + n + after
                                      for n, (before, after) in zip(spatial, pads)))
        self.source_shape = self.padded_shape if self.shifts is None else in_shape
        self.source = np.zeros(self.source_shape, dtype) if padded else None
        cols_shape = (*window, *lead, *self.out_sizes)
        self.cols = np.empty(cols_shape, dtype) if cols is None else cols.reshape(cols_shape)
        if self.shifts is not None:
            zero_edges(self.shifts, self.cols)  # only Windows writes its columns
        self.rows = math.prod(window) * lead[0]
        self.pixels = math.prod(self.out_sizes)  # per sample
        self.batch_axis = rank + 1  # of the columns: (*window, C, B, *out_sizes)
        self.d_source: np.ndarray | None = None  # made by the first scatter

    def _samples(self, samples: slice) -> tuple[slice, ...]:
        """The index of ``samples`` in the columns' batch axis."""
        return (*(slice(None),) * self.batch_axis, samples)

    def columns(self, x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """The windows of ``x`` (times ``mask``) as (prod(window)*C, pixels), in the reused
        buffer."""
        staged = self.shifts is not None and (mask is not None
                                              or not _flat_images(x, len(self.window)))
        if staged and self.source is None:
            self.source = np.empty(self.source_shape, self.cols.dtype)
        batch = self.cols.shape[self.batch_axis]
        split_run(partial(self._gather, x, mask, staged), batch,
                  self.rows * self.pixels // COPY_WORK)
        return self.cols.reshape(self.rows, -1)

    def _gather(self, x: np.ndarray, mask: np.ndarray | None, staged: bool,
                samples: slice) -> None:
        x = x[:, samples]
        mask = None if mask is None else mask[:, samples]
        out = self.cols[self._samples(samples)]
        if self.shifts is not None:
            if staged:  # copied (times the mask) into contiguous images
                source = self.source[:, samples]
                if mask is None:
                    np.copyto(source, x)
                else:
                    np.multiply(x, mask, out=source)
                x = source
            shift_columns(x, self.shifts, out)
            return
        if self.source is None:
            source = x if mask is None else x * mask
        else:
            source = self.source[:, samples]
            inside = interior(source, self.pads)
            if mask is None:
                inside[...] = x
            else:
                np.multiply(x, mask, out=inside)
        im2col_planes(source, self.window, self.stride, self.dilation, self.out_sizes, out=out)

    def scatter(self, d_columns: np.ndarray) -> np.ndarray:
        """The adjoint of :meth:`columns` (without the mask): (prod(window)*C, pixels) -> x's
        shape. ``d_columns`` may be overwritten.

        The result is a view of a buffer that the next call overwrites.
        """
        if self.d_source is None:
            self.d_source = np.empty(self.source_shape, self.cols.dtype)
        d_columns = d_columns.reshape(self.cols.shape)
        batch = self.cols.shape[self.batch_axis]
        split_run(partial(self._scatter, d_columns), batch, self.rows * self.pixels // COPY_WORK)
        return self.d_source if self.shifts is not None else interior(self.d_source, self.pads)

    def _scatter(self, d_columns: np.ndarray, samples: slice) -> None:
        d_columns, out = d_columns[self._samples(samples)], self.d_source[:, samples]
        if self.shifts is not None:
            shift_scatter(d_columns, self.shifts, out)
        else:
            col2im_planes(d_columns, self.padded_shape, self.stride, self.dilation, out=out)

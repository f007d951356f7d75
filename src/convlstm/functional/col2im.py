"""N-d window gather (``im2col_nd``) and its adjoint, the scatter-add ``col2im_nd``.

``windows.im2col`` and ``windows.col2im`` are the 2-D pair (Conv2D, ConvLSTM2D); these two are
the same operations for any number of spatial axes (Conv3D), checked against the 2-D pair in
the tests.
"""

from __future__ import annotations

import itertools

import numpy as np

from convlstm.functional.windows import window_slice


def _taps(window: tuple[int, ...], stride, dilation, out_sizes):
    """Yield ``(offsets, source)``: a kernel tap and the padded input's slice it reads."""
    for offsets in itertools.product(*map(range, window)):
        source = tuple(
            window_slice(offset * d, s, n)
            for offset, d, s, n in zip(offsets, dilation, stride, out_sizes)
        )
        yield offsets, (slice(None), *source)


def im2col_nd(
    padded: np.ndarray,
    window: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    out_sizes: tuple[int, ...],
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Gather every window of an already padded batch, for any number of spatial axes.

    Args:
        padded: (N, *padded_sizes, C), padding included.
        window: kernel size per spatial axis, e.g. (kd, kh, kw).
        stride, dilation: per-axis ints.
        out_sizes: the number of window positions per axis, e.g. (D', H', W').
        out: optional (N, *out_sizes, *window, C) buffer to fill.

    Returns:
        (N, *out_sizes, *window, C): each position's window in the (k..., C) order of a Keras
        kernel, so ``cols.reshape(-1, prod(window)*C) @ kernel.reshape(-1, F)`` convolves.
    """
    N, C = padded.shape[0], padded.shape[-1]
    if out is None:
        out = np.empty((N, *out_sizes, *window, C), dtype=padded.dtype)
    positions = (slice(None),) * (1 + len(window))
    for offsets, source in _taps(window, stride, dilation, out_sizes):
        out[(*positions, *offsets)] = padded[source]
    return out


def col2im_nd(
    cols: np.ndarray,
    padded_shape: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
) -> np.ndarray:
    """Scatter-add window values back onto the padded input: the adjoint of ``im2col_nd``.

    Args:
        cols: (N, *out_sizes, *window, C), e.g. the gradient of the loss for each gathered value.
        padded_shape: (N, *padded_sizes, C), the shape of the array the windows were read from.
        stride, dilation: per-axis ints, as for the gather.

    Returns:
        (N, *padded_sizes, C): every pixel receives the sum over all windows that read it
        (zero where no window reached, such as the rows a "valid" stride skips).
    """
    rank = len(stride)
    out_sizes, window = cols.shape[1 : 1 + rank], cols.shape[1 + rank : 1 + 2 * rank]
    padded = np.zeros(padded_shape, dtype=cols.dtype)
    positions = (slice(None),) * (1 + rank)
    # Within one tap the strided positions are distinct, so ``+=`` never drops a collision.
    for offsets, target in _taps(window, stride, dilation, out_sizes):
        padded[target] += cols[(*positions, *offsets)]
    return padded

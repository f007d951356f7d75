"""Window gathering for channels-first planes (C, ..., H, W), the ConvLSTM's inner layout.

With the channels outermost, each kernel tap copies whole image rows, and a convolution is
``kernel^T (4F, kh*kw*C) @ columns (kh*kw*C, pixels)``, whose output rows are the gates: each
gate is then a contiguous block of rows.
"""

from __future__ import annotations

import numpy as np

from convlstm.functional.windows import Pads, window_slice


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

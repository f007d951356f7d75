"""2-D convolution (cross-correlation, as Keras and PyTorch) as one im2col matrix product."""

from __future__ import annotations

import numpy as np

from convlstm.functional.windows import Pads, im2col, output_size, zero_pad


def conv2d(
    x: np.ndarray,
    kernel: np.ndarray,
    bias: np.ndarray | None,
    stride: tuple[int, int],
    pads: Pads,
    dilation: tuple[int, int],
) -> np.ndarray:
    """Convolve a batch of frames.

    Args:
        x: (N, H, W, C) frames.
        kernel: (kh, kw, C, F), Keras layout.
        bias: (F,) or None.
        stride, dilation: per-axis ints.
        pads: ((top, bottom), (left, right)) zero padding.

    Returns:
        (N, H', W', F).
    """
    kh, kw, C, F = kernel.shape
    out_hw = output_size(x.shape[1:3], (kh, kw), stride, pads, dilation)
    cols = im2col(zero_pad(x, pads), (kh, kw), stride, dilation, out_hw)
    out = cols.reshape(-1, kh * kw * C) @ kernel.reshape(kh * kw * C, F)  # (N*H'*W', F)
    if bias is not None:
        out += bias
    return out.reshape(x.shape[0], *out_hw, F)

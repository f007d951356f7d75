"""N-d convolution (cross-correlation, as Keras and PyTorch) of channels-last batches, forward
and backward: the kernels of Conv2D and Conv3D.

Arrays in, arrays out; no state and no validation.
"""

from __future__ import annotations

import math

import numpy as np

from convlstm.functional.windows import (
    Pads,
    crop,
    im2col,
    output_size,
    taps,
    window_slice,
    zero_pad,
)

# A convolution runs as one matrix product per kernel tap, on the strided view of the input
# that the tap reads: it never copies the input, but adds (output channels) values per output
# position per tap. Gathering the windows first (im2col) instead copies prod(window) * (input
# channels) values per position (27x the input for a 3x3x3 kernel), then multiplies once; that
# moves less memory only when the output channels outnumber the input channels by more than
# GATHER_RATIO (measured on Conv2D and Conv3D): a 1-filter head's input gradient, say.
GATHER_RATIO = 4


def _gathered_product(
    padded: np.ndarray,
    kernel: np.ndarray,
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    out_sizes: tuple[int, ...],
) -> np.ndarray:
    """The convolution (N, *out_sizes, F) of padded (N, *padded_sizes, C) with kernel
    (*window, C, F) as im2col and one matrix product."""
    cols = im2col(padded, kernel.shape[:-2], stride, dilation, out_sizes)
    size = math.prod(kernel.shape[:-1])
    z = cols.reshape(-1, size) @ kernel.reshape(size, -1)  # (N * prod(out_sizes), F)
    return z.reshape(*cols.shape[: 1 + len(out_sizes)], -1)


def conv_forward(
    x: np.ndarray,
    kernel: np.ndarray,
    bias: np.ndarray | None,
    stride: tuple[int, ...],
    pads: Pads,
    dilation: tuple[int, ...],
) -> tuple[np.ndarray, np.ndarray]:
    """N-d convolution (cross-correlation, as Keras), one matrix product per kernel tap
    (gathered with im2col when F > GATHER_RATIO * C; see above).

    Args:
        x: (N, *spatial, C) channels-last batch (2 or 3 spatial axes, or any other number).
        kernel: (*window, C, F), Keras layout.
        bias: (F,) or None.
        stride, dilation: per-axis ints.
        pads: ``(before, after)`` zero padding per spatial axis.

    Returns:
        ``(z, padded)``: z (N, *out_sizes, F), and the zero-padded input (N, *padded_sizes, C)
        that :func:`conv_backward` needs (``x`` itself when nothing is padded).
    """
    window, (C, F) = kernel.shape[:-2], kernel.shape[-2:]
    out_sizes = output_size(x.shape[1:-1], window, stride, pads, dilation)
    padded = zero_pad(x, pads)
    if F > GATHER_RATIO * C:
        z = _gathered_product(padded, kernel, stride, dilation, out_sizes)
    else:
        z = np.zeros((x.shape[0], *out_sizes, F), dtype=kernel.dtype)
        for tap, source in taps(window, stride, dilation, out_sizes):
            z += padded[(slice(None), *source)] @ kernel[tap]
    if bias is not None:
        z += bias
    return z, padded


def conv_backward(
    d_z: np.ndarray,
    padded: np.ndarray,
    kernel: np.ndarray,
    stride: tuple[int, ...],
    pads: Pads,
    dilation: tuple[int, ...],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`conv_forward`, tap by tap (the input gradient is gathered with
    im2col when C > GATHER_RATIO * F; see above).

    Args:
        d_z: (N, *out_sizes, F).
        padded: (N, *padded_sizes, C), the padded input from the forward pass.
        kernel: (*window, C, F).
        stride, pads, dilation: as in the forward pass.

    Returns:
        ``(d_x, d_kernel, d_bias)`` of shapes (N, *spatial, C), kernel.shape and (F,).
    """
    N, *out_sizes, F = d_z.shape
    window, C = kernel.shape[:-2], kernel.shape[-2]
    rows = tuple(range(len(window)))  # the axes (N, *out_sizes[:-1]) of a per-row product
    d_kernel = np.empty_like(kernel)
    for tap, source in taps(window, stride, dilation, out_sizes):
        # (C, W') @ (W', F) for each row of the tap's view, summed over the rows: the strided
        # view is read in place (a reshape to (N*prod(out_sizes), C) would copy it).
        d_kernel[tap] = (padded[(slice(None), *source)].swapaxes(-1, -2) @ d_z).sum(axis=rows)
    padded_sizes = padded.shape[1:-1]
    if C > GATHER_RATIO * F:
        # The input gradient is a convolution too: of d_z spread out to stride steps and
        # padded by the window's reach d*(k-1) on both sides, with the kernel flipped and its
        # C and F axes swapped.
        reach = [d * (k - 1) for k, d in zip(window, dilation)]
        spread = np.zeros((N, *(p + r for p, r in zip(padded_sizes, reach)), F), d_z.dtype)
        spread[(slice(None), *map(window_slice, reach, stride, out_sizes))] = d_z
        flipped = kernel[(slice(None, None, -1),) * len(window)].swapaxes(-1, -2)
        ones = (1,) * len(window)
        d_padded = _gathered_product(spread, flipped, ones, dilation, padded_sizes)
    else:
        d_padded = np.zeros(padded.shape, dtype=d_z.dtype)
        for tap, source in taps(window, stride, dilation, out_sizes):
            d_padded[(slice(None), *source)] += d_z @ kernel[tap].T
    d_x = np.ascontiguousarray(crop(d_padded, pads))
    return d_x, d_kernel, d_z.reshape(-1, F).sum(axis=0)

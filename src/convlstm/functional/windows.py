"""Window arithmetic shared by convolution and pooling: sizes, padding and im2col.

Padding is always resolved to explicit ``(before, after)`` pairs per spatial axis before a kernel
runs, so the kernels never see the words "same" or "valid".
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np

Pads = tuple[tuple[int, int], ...]


def same_pads(size: int, window: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's "same" padding for one axis: output ``ceil(size / stride)``.

    When the total padding is odd, the extra row or column goes after (bottom or right).
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (window - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def resolve_pads(
    padding: str | tuple[int, ...],
    sizes: tuple[int, ...],
    window: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
) -> Pads:
    """Explicit ``(before, after)`` pairs for "same", "valid" or symmetric per-axis ints."""
    if padding == "same":
        return tuple(map(same_pads, sizes, window, stride, dilation))
    if padding == "valid":
        return ((0, 0),) * len(sizes)
    return tuple((amount, amount) for amount in padding)


def output_size(
    sizes: tuple[int, ...],
    window: tuple[int, ...],
    stride: tuple[int, ...],
    pads: Pads,
    dilation: tuple[int, ...],
) -> tuple[int, ...]:
    """Output length per axis: ``(size + before + after - dilation*(window-1) - 1)//stride + 1``.

    A length below 1 means the window does not fit; callers turn that into an error.
    """
    return tuple(
        (size + before + after - d * (k - 1) - 1) // s + 1
        for size, k, s, (before, after), d in zip(sizes, window, stride, pads, dilation)
    )


def zero_pad(x: np.ndarray, pads: Pads, fill: float = 0.0) -> np.ndarray:
    """Pad the spatial axes of ``x`` (N, *spatial, C) with ``fill``; no copy when pads are 0."""
    if not any(before or after for before, after in pads):
        return x
    spatial = x.shape[1:-1]
    padded_shape = tuple(n + before + after for n, (before, after) in zip(spatial, pads))
    padded = np.full((x.shape[0], *padded_shape, x.shape[-1]), fill, dtype=x.dtype)
    interior = tuple(slice(before, before + n) for n, (before, _) in zip(spatial, pads))
    padded[(slice(None), *interior)] = x
    return padded


def window_slice(offset: int, stride: int, count: int) -> slice:
    """Slice of the ``count`` positions ``offset, offset + stride, ...`` along one axis."""
    return slice(offset, offset + stride * (count - 1) + 1, stride)


def taps(
    window: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    out_sizes: tuple[int, ...],
) -> Iterator[tuple[tuple[int, ...], tuple[slice, ...]]]:
    """``(tap, source)`` for each kernel tap, in the (*window) order of a Keras kernel.

    ``tap`` is the tap's index into the window; ``source`` holds one slice per spatial axis:
    the positions of the padded input that this tap reads, one per output position, so
    ``padded[(..., *source, slice(None))]`` is shaped (..., *out_sizes, C). The slices are made
    once per axis, not once per tap.
    """
    per_axis = [
        [window_slice(offset * d, s, n) for offset in range(k)]
        for k, s, d, n in zip(window, stride, dilation, out_sizes)
    ]
    return zip(itertools.product(*map(range, window)), itertools.product(*per_axis))


def im2col(
    padded: np.ndarray,
    window: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    out_sizes: tuple[int, ...],
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Gather every window of an already padded input, for any number of spatial axes.

    The spatial axes are the ``len(window)`` axes before the last (channel) axis; any axes
    before them (batch, time) are carried along.

    Args:
        padded: (..., *padded_sizes, C), padding included.
        window: kernel size per spatial axis, e.g. (kh, kw) or (kd, kh, kw).
        stride, dilation: per-axis ints.
        out_sizes: the number of window positions per axis, e.g. (H', W').
        out: optional (..., *out_sizes, *window, C) buffer to fill.

    Returns:
        (..., *out_sizes, *window, C): entry ``[..., *position]`` is the window at that output
        position in the (*window, C) order of a Keras kernel, so
        ``cols.reshape(-1, prod(window)*C) @ kernel.reshape(-1, F)`` is the convolution.
    """
    if out is None:
        lead = padded.shape[: -1 - len(window)]
        out = np.empty((*lead, *out_sizes, *window, padded.shape[-1]), padded.dtype)
    for tap, source in taps(window, stride, dilation, out_sizes):
        out[(..., *tap, slice(None))] = padded[(..., *source, slice(None))]
    return out


def col2im(
    d_cols: np.ndarray,
    padded_shape: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The adjoint of :func:`im2col`: scatter-add window gradients back onto the padded input.

    Args:
        d_cols: (..., *out_sizes, *window, C) gradients of the gathered windows.
        padded_shape: (..., *padded_sizes, C), the shape :func:`im2col` read from.
        stride, dilation: as given to :func:`im2col` (their length is the number of spatial
            axes).
        out: optional zero-filled buffer of ``padded_shape`` to accumulate into.

    Returns:
        (..., *padded_sizes, C): every element gets the sum of the gradients of all windows that
        read it (zero where no window reached, such as the rows a "valid" stride skips).
    """
    rank = len(stride)
    out_sizes = d_cols.shape[-1 - 2 * rank : -1 - rank]
    window = d_cols.shape[-1 - rank : -1]
    if out is None:
        out = np.zeros(padded_shape, dtype=d_cols.dtype)
    # Within one tap the strided positions are distinct, so ``+=`` never drops a collision.
    for tap, target in taps(window, stride, dilation, out_sizes):
        out[(..., *target, slice(None))] += d_cols[(..., *tap, slice(None))]
    return out


def crop(padded: np.ndarray, pads: Pads) -> np.ndarray:
    """The interior of (..., *spatial, C) frames padded by ``pads`` (a view)."""
    spatial = padded.shape[-1 - len(pads) : -1]
    interior = tuple(slice(before, size - after) for size, (before, after) in zip(spatial, pads))
    return padded[(..., *interior, slice(None))]

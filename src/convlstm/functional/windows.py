"""Window arithmetic shared by convolution and pooling: sizes, padding and im2col.

Padding is always resolved to explicit ``(before, after)`` pairs per spatial axis before a kernel
runs, so the kernels never see the words "same" or "valid".
"""

from __future__ import annotations

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


def im2col(
    padded: np.ndarray,
    window: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    out_hw: tuple[int, int],
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Gather every 2-D window of an already padded batch of frames.

    Args:
        padded: (..., Hp, Wp, C) frames, padding included, any leading axes.
        window: (kh, kw).
        stride, dilation: per-axis ints.
        out_hw: (H', W'), the number of window positions.
        out: optional (..., H', W', kh, kw, C) buffer to fill.

    Returns:
        (..., H', W', kh, kw, C): entry ``[..., y, x]`` flattened is the window at output pixel
        (y, x), in the (kh, kw, C) order of a Keras kernel, so ``cols.reshape(-1, kh*kw*C) @
        kernel.reshape(kh*kw*C, F)`` is the convolution.
    """
    (kh, kw), (sh, sw), (dh, dw), (Ho, Wo) = window, stride, dilation, out_hw
    if out is None:
        out = np.empty((*padded.shape[:-3], Ho, Wo, kh, kw, padded.shape[-1]), padded.dtype)
    for i in range(kh):
        rows = window_slice(i * dh, sh, Ho)
        for j in range(kw):
            out[..., i, j, :] = padded[..., rows, window_slice(j * dw, sw, Wo), :]
    return out


def col2im(
    d_cols: np.ndarray,
    padded_shape: tuple[int, ...],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The adjoint of :func:`im2col`: scatter-add window gradients back onto the padded frames.

    Args:
        d_cols: (..., H', W', kh, kw, C) gradients of the gathered windows.
        padded_shape: (..., Hp, Wp, C), the shape :func:`im2col` read from.
        stride, dilation: as given to :func:`im2col`.
        out: optional zero-filled buffer of ``padded_shape`` to accumulate into.

    Returns:
        (..., Hp, Wp, C); a pixel covered by several windows gets the sum of their gradients.
    """
    Ho, Wo, kh, kw = d_cols.shape[-5:-1]
    (sh, sw), (dh, dw) = stride, dilation
    if out is None:
        out = np.zeros(padded_shape, dtype=d_cols.dtype)
    for i in range(kh):
        rows = window_slice(i * dh, sh, Ho)
        for j in range(kw):
            out[..., rows, window_slice(j * dw, sw, Wo), :] += d_cols[..., i, j, :]
    return out


def crop(padded: np.ndarray, pads: Pads) -> np.ndarray:
    """The interior of (..., *spatial, C) frames padded by ``pads`` (a view)."""
    spatial = padded.shape[-1 - len(pads) : -1]
    interior = tuple(slice(before, size - after) for size, (before, after) in zip(spatial, pads))
    return padded[(..., *interior, slice(None))]

"""Max pooling over the spatial axes of (N, *spatial, C) arrays, any number of spatial axes."""

from __future__ import annotations

import itertools

import numpy as np

from convlstm.functional.windows import Pads, crop, output_size, window_slice, zero_pad


def _offset_views(padded: np.ndarray, pool_size, stride, out_size):
    """(k, view) for each offset inside the window, in scan order; view k holds the k-th
    element of every window, shaped like the output."""
    for k, offset in enumerate(itertools.product(*map(range, pool_size))):
        spatial = tuple(map(window_slice, offset, stride, out_size))
        yield k, (slice(None), *spatial, slice(None))


def max_pool(
    x: np.ndarray,
    pool_size: tuple[int, ...],
    stride: tuple[int, ...],
    pads: Pads,
    training: bool = False,
) -> tuple[np.ndarray, tuple | None]:
    """Maximum of every window.

    Args:
        x: (N, *spatial, C).
        pool_size, stride: one int per spatial axis.
        pads: (before, after) per spatial axis; padded cells hold -inf, so they never win.
        training: also return the cache :func:`max_pool_backward` needs: which offset won each
            window (the first maximum in scan order on ties, as PyTorch).

    Returns:
        (N, *out_spatial, C) and the cache (None unless training).
    """
    out_size = output_size(x.shape[1:-1], pool_size, stride, pads, (1,) * len(pool_size))
    padded = zero_pad(x, pads, fill=-np.inf)
    out = winner = None
    # One vectorised pass per offset inside the window: prod(pool_size) passes in all.
    for k, index in _offset_views(padded, pool_size, stride, out_size):
        view = padded[index]
        if out is None:
            out = view.copy()
            winner = np.zeros(out.shape, np.int32) if training else None
            continue
        if training:
            winner[view > out] = k  # strict: an equal later value does not take the window
        np.maximum(out, view, out=out)
    cache = (winner, padded.shape, pads, pool_size, stride) if training else None
    return out, cache


def max_pool_backward(d_out: np.ndarray, cache: tuple) -> np.ndarray:
    """Route each window's gradient to the element that won it; overlapping windows add up.

    Args:
        d_out: (N, *out_spatial, C).
        cache: from :func:`max_pool` with ``training=True``.

    Returns:
        (N, *spatial, C), the input's shape.
    """
    winner, padded_shape, pads, pool_size, stride = cache
    d_padded = np.zeros(padded_shape, d_out.dtype)
    for k, index in _offset_views(d_padded, pool_size, stride, d_out.shape[1:-1]):
        d_padded[index] += np.where(winner == k, d_out, 0)
    return crop(d_padded, pads)

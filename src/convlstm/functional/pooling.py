"""Max pooling over the spatial axes of (N, *spatial, C) arrays, any number of spatial axes.

Pooling only moves memory, so the kernels work block by block: a block is a few samples, or a
range of rows of the first spatial axis of one sample, small enough (``BLOCK_BYTES``) for its
passes to stay in the CPU cache instead of streaming the whole array through memory once per pass.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from convlstm.functional import threads
from convlstm.functional.windows import Pads, crop, output_size, window_slice, zero_pad

BLOCK_BYTES = 1 << 21
"""Input bytes per block: about what the passes over one block keep in the L2/L3 caches."""


def _blocks(
    padded_shape: tuple[int, ...],
    itemsize: int,
    out_rows: int,
    row_window: int,
    row_stride: int,
    block_bytes: int,
) -> Iterator[tuple[slice, slice, slice]]:
    """(samples, output rows, input rows) of each block, rows along the first spatial axis."""
    batch = padded_shape[0]
    row_bytes = itemsize * int(np.prod(padded_shape[2:]))
    sample_bytes = row_bytes * padded_shape[1]
    if sample_bytes <= block_bytes:
        step = block_bytes // max(sample_bytes, 1)
        for first in range(0, batch, step):
            yield slice(first, first + step), slice(None), slice(None)
        return
    step = max(block_bytes // (row_bytes * row_stride), 1)
    for sample in range(batch):
        for first in range(0, out_rows, step):
            last = min(first + step, out_rows)
            # Output rows [first, last) read input rows [first*s, (last-1)*s + window).
            inputs = slice(first * row_stride, (last - 1) * row_stride + row_window)
            yield slice(sample, sample + 1), slice(first, last), inputs


def _each_block(work: Callable[[slice, slice, slice], None],
                blocks: Iterator[tuple[slice, slice, slice]], block_elements: int,
                parallel: bool = True) -> None:
    """Call ``work(samples, output rows, input rows)`` on every one of ``blocks`` (of
    :func:`_blocks`), spread over the threads (:func:`threads.split_run`) when ``parallel``:
    only for work whose blocks write nothing another block reads or writes."""
    blocks = list(blocks)

    def run(items: slice) -> None:
        for block in blocks[items]:
            work(*block)

    if parallel:
        threads.split_run(run, len(blocks), block_elements)
    else:
        run(slice(None))


def _offset_views(window, stride, out_size) -> Iterator[tuple[int, tuple[slice, ...]]]:
    """(k, index) for each offset inside the window, in scan order; ``block[index]`` holds the
    k-th element of every window of ``block``, shaped like the block's output."""
    for k, offset in enumerate(itertools.product(*map(range, window))):
        spatial = tuple(map(window_slice, offset, stride, out_size))
        yield k, (slice(None), *spatial, slice(None))


def _separable_max(block: np.ndarray, window, stride, out_size, out: np.ndarray) -> None:
    """The maximum of each window as one max per axis in turn (max is separable): one pass per
    window element along each axis, instead of one pass per element of the whole window."""
    rank = len(window)
    for axis, (size, step, count) in enumerate(zip(window, stride, out_size), start=1):
        lead = (slice(None),) * axis
        views = [block[(*lead, window_slice(t, step, count))] for t in range(size)]
        target = out if axis == rank else None
        if size == 1:
            block = views[0]
            if target is not None:
                target[...] = block
            continue
        block = np.maximum(views[0], views[1], out=target)
        for view in views[2:]:
            np.maximum(block, view, out=block)


def _max_with_winner(
    block: np.ndarray, window, stride, out_size, out: np.ndarray, winner: np.ndarray
) -> None:
    """The maximum of each window and which offset holds it (the first in scan order on ties)."""
    greater = np.empty(out.shape, bool)
    code = np.empty(out.shape, winner.dtype)
    winner[...] = 0
    for k, index in _offset_views(window, stride, out_size):
        view = block[index]
        if k == 0:
            out[...] = view
            continue
        # Offsets come in increasing k, so the last strictly greater one is the largest such k:
        # max(winner, k * greater) keeps it without a data-dependent branch per element.
        np.greater(view, out, out=greater)
        np.multiply(greater, k, out=code, dtype=code.dtype)
        np.maximum(winner, code, out=winner)
        np.maximum(out, view, out=out)


def _winner_dtype(window: tuple[int, ...]) -> np.dtype:
    return np.min_scalar_type(int(np.prod(window)) - 1)


@dataclass
class MaxPoolCache:
    """What :func:`max_pool_backward` needs from a training :func:`max_pool`."""

    winner: np.ndarray  # (N, *out_spatial, C): scan-order offset of each window's maximum
    padded_shape: tuple[int, ...]  # (N, *padded_spatial, C) of the -inf padded input
    pads: Pads  # (before, after) per spatial axis
    window: tuple[int, ...]
    stride: tuple[int, ...]
    block_bytes: int  # the forward's blocks, which the backward walks again


def max_pool(
    x: np.ndarray,
    window: tuple[int, ...],
    stride: tuple[int, ...],
    pads: Pads,
    training: bool = False,
    block_bytes: int = BLOCK_BYTES,
) -> tuple[np.ndarray, MaxPoolCache | None]:
    """Maximum of every window.

    Args:
        x: (N, *spatial, C).
        window, stride: the pooling window and its step, one int per spatial axis.
        pads: (before, after) per spatial axis; padded cells hold -inf, so they never win.
        training: also return the cache :func:`max_pool_backward` needs: which offset won each
            window (the first maximum in scan order on ties, as PyTorch).
        block_bytes: input bytes per block (see the module docstring).

    Returns:
        (N, *out_spatial, C) and the cache (None unless training).
    """
    out_size = output_size(x.shape[1:-1], window, stride, pads, (1,) * len(window))
    padded = zero_pad(x, pads, fill=-np.inf)
    out = np.empty((x.shape[0], *out_size, x.shape[-1]), x.dtype)
    winner = np.empty(out.shape, _winner_dtype(window)) if training else None

    def pool(samples: slice, out_rows: slice, in_rows: slice) -> None:
        block = padded[samples, in_rows]
        block_out = out[samples, out_rows]
        block_size = block_out.shape[1:-1]
        if training:
            _max_with_winner(block, window, stride, block_size, block_out,
                             winner[samples, out_rows])
        else:
            _separable_max(block, window, stride, block_size, block_out)

    # Blocks only read the input (overlapping rows included) and write their own outputs.
    _each_block(pool, _blocks(padded.shape, padded.itemsize, out_size[0], window[0], stride[0],
                              block_bytes), block_bytes // padded.itemsize)
    cache = None
    if training:
        cache = MaxPoolCache(winner, padded.shape, pads, window, stride, block_bytes)
    return out, cache


def _route_tiles(d_block_out: np.ndarray, block_winner: np.ndarray, window: tuple[int, ...],
                 d_block: np.ndarray) -> None:
    """Backward of a block whose windows tile it exactly (stride == window, no remainder):
    ``d_block`` (n, *spatial, C) is overwritten, every cell once.

    Each offset's gradients are routed in the output's layout, where every pass is contiguous
    (``routed[k] = d_out * (winner == k)``), then one copy puts them in the block's memory
    order (n, o1, k1, o2, k2, ..., C). Writing each offset straight into the block instead
    takes 8 strided passes of C floats at a time, about 15% slower at (2, 2, 2).
    """
    n, *out_size, C = d_block_out.shape
    rank = len(window)
    routed = np.empty((math.prod(window), *d_block_out.shape), d_block_out.dtype)
    codes = np.arange(len(routed), dtype=block_winner.dtype).reshape(-1, *(1,) * (rank + 2))
    np.equal(block_winner, codes, out=routed, casting="unsafe")  # 1.0 where offset k won
    routed *= d_block_out
    # (k1, ..., kr, n, o1, ..., or, C) -> (n, o1, k1, ..., or, kr, C)
    order = [rank, *(axis for i in range(rank) for axis in (rank + 1 + i, i)), 2 * rank + 1]
    tiles = d_block.reshape(n, *(size for pair in zip(out_size, window) for size in pair), C)
    np.copyto(tiles, routed.reshape(*window, *d_block_out.shape).transpose(order))


def max_pool_backward(d_out: np.ndarray, cache: MaxPoolCache) -> np.ndarray:
    """Route each window's gradient to the element that won it; overlapping windows add up.

    Args:
        d_out: (N, *out_spatial, C).
        cache: from :func:`max_pool` with ``training=True``.

    Returns:
        (N, *spatial, C), the input's shape.
    """
    winner, padded_shape, pads = cache.winner, cache.padded_shape, cache.pads
    window, stride, block_bytes = cache.window, cache.stride, cache.block_bytes
    # Without overlap every input cell gets at most one window's gradient: write, don't add.
    overlapping = any(s < k for s, k in zip(stride, window))
    # Windows that tile the padded input write every cell: no zero fill.
    tiled = tuple(stride) == tuple(window) and all(
        n == out * k for n, out, k in zip(padded_shape[1:-1], d_out.shape[1:-1], window))
    d_padded = (np.empty if tiled else np.zeros)(padded_shape, d_out.dtype)

    def route(samples: slice, out_rows: slice, in_rows: slice) -> None:
        d_block = d_padded[samples, in_rows]
        d_block_out = d_out[samples, out_rows]
        block_winner = winner[samples, out_rows]
        if tiled:
            _route_tiles(d_block_out, block_winner, window, d_block)
            return
        is_winner = np.empty(block_winner.shape, bool)
        for k, index in _offset_views(window, stride, d_block_out.shape[1:-1]):
            np.equal(block_winner, k, out=is_winner)
            if overlapping:
                d_block[index] += d_block_out * is_winner
            else:
                np.multiply(d_block_out, is_winner, out=d_block[index])

    # Overlapping windows add into input rows that the next block shares: one thread then.
    _each_block(route, _blocks(padded_shape, d_out.itemsize, d_out.shape[1], window[0],
                               stride[0], block_bytes),
                block_bytes // d_out.itemsize, parallel=not overlapping)
    return crop(d_padded, pads)

"""Scratch arrays kept between calls: a kernel takes its large internal buffers from here and
gives them back when it is done, so that the next call of the same shape reuses their memory.

Fresh memory costs a page fault per page on first touch, and a training step allocates tens of
megabytes of scratch (docs/benchmarks.md has the counts). Only buffers whose last reader is
known are given back (a layer's training cache once its BPTT is done, a call's own scratch at
its end); arrays returned to the caller never come from here.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict

import numpy as np

MAX_KEPT_BYTES = 1 << 30
"""At most this many bytes of free buffers are kept; beyond it the longest-kept go first."""

_free: OrderedDict[tuple[tuple[int, ...], str], list[np.ndarray]] = OrderedDict()  # oldest
# shape first, so that buffers of shapes no longer used are the first to go
_kept = [0]  # bytes in _free
_lock = threading.Lock()  # sample groups take and give from several threads


def take(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialized array of ``shape`` and ``dtype``: a kept one when there is one."""
    key = (tuple(shape), np.dtype(dtype).str)
    with _lock:
        kept = _free.get(key)
        if kept:
            array = kept.pop()
            _kept[0] -= array.nbytes
            return array
    return np.empty(shape, dtype)


def give(*arrays: np.ndarray | None) -> None:
    """Keep ``arrays`` (from :func:`take`; None is skipped) for later calls. The caller must
    hold no other reference that it will read or write again."""
    with _lock:
        for array in arrays:
            if array is None or array.nbytes > MAX_KEPT_BYTES:
                continue
            key = (array.shape, array.dtype.str)
            kept = _free.setdefault(key, [])
            _free.move_to_end(key)
            if any(other is array for other in kept):  # given twice, kept once
                continue
            kept.append(array)
            _kept[0] += array.nbytes
            while _kept[0] > MAX_KEPT_BYTES:  # let the longest-kept go
                oldest = next(iter(_free))
                _kept[0] -= _free[oldest].pop(0).nbytes
                if not _free[oldest]:
                    del _free[oldest]


def clear() -> None:
    """Let every kept buffer go (their memory returns to the allocator)."""
    with _lock:
        _free.clear()
        _kept[0] = 0


def _forget_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # a forked child may inherit it held by a thread it lacks
    _free.clear()
    _kept[0] = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)

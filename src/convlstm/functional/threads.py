"""Elementwise work split over threads.

NumPy runs each ufunc call on one thread but releases the GIL inside its loops, so independent
slices of a step's elementwise work (gate activations, the cell update, writing the output) can
run at once on the cores that the BLAS matrix products already use. The thread count is
``CONVLSTM_NUM_THREADS``, else ``OMP_NUM_THREADS`` (which BLAS follows too), else the number of
CPUs this process may run on.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

MIN_ELEMENTS_PER_THREAD = 1 << 18
"""Below about this many elements of work per thread, handing work to a thread costs more than
running it here."""

_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}  # by (process id, threads): a forked
# child inherits the parent's pools without their threads, so it must make its own.


def thread_count() -> int:
    """Threads for elementwise work (see the module docstring); at least 1."""
    for name in ("CONVLSTM_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def split_run(function: Callable[[slice], None], count: int, elements_per_item: int) -> None:
    """Call ``function(items)`` on contiguous slices covering ``range(count)``, one per thread.

    Args:
        function: works on the items of its slice only (the slices never overlap).
        count: number of items (for the ConvLSTM step, samples of the batch).
        elements_per_item: elements of work per item, to decide how many threads pay off.
    """
    worth = count * elements_per_item // MIN_ELEMENTS_PER_THREAD
    threads = min(thread_count(), count, worth) if worth > 1 else 1
    if threads <= 1:
        function(slice(0, count))
        return
    bounds = [count * k // threads for k in range(threads + 1)]
    slices = [slice(start, stop) for start, stop in itertools.pairwise(bounds)]
    key = (os.getpid(), threads)
    if key not in _pools:
        _pools[key] = ThreadPoolExecutor(threads, thread_name_prefix="convlstm")
    for _ in _pools[key].map(function, slices):  # re-raises a worker's exception here
        pass

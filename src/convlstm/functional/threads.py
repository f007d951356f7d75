"""Elementwise work split over threads, and BLAS's threads kept out of its way.

NumPy runs each ufunc call on one thread but releases the GIL inside its loops, so independent
slices of a step's elementwise work (gate activations, the cell update, writing the output) can
run at once on the cores that the BLAS matrix products already use. The thread count is
``CONVLSTM_NUM_THREADS``, else ``OMP_NUM_THREADS`` (which BLAS follows too), else the number of
CPUs this process may run on.

A recurrence alternates short matrix products with that elementwise work, and OpenBLAS's
threads keep spinning on their cores for a while after each product: there they fight the
elementwise threads (measured: see README, Design for speed). :func:`recurrence` therefore runs a
layer's time loop with BLAS on one thread when threadpoolctl is importable (it is optional; without
it the environment decides), unless ``CONVLSTM_BLAS_THREADS`` says otherwise.

A recurrence over a batch of several samples runs coarser still: :func:`run_groups` gives each
thread whole groups of samples (:func:`sample_groups`) for the whole time loop, so work changes
hands once per call instead of several times per step.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, TypeVar

import numpy as np

MIN_ELEMENTS_PER_THREAD = 1 << 19
"""Below about this many elements of work per thread, handing work to a thread costs more than
running it here."""

MIN_PRODUCT_COLUMNS = 512
MAX_PRODUCT_PARTS = 8
PRODUCT_WORK = 16
"""Multiply-adds of a matrix product that count as one element of elementwise work (a product
runs them about this much faster than an elementwise pass touches memory)."""

MIN_GROUP_PIXELS = 1024
MAX_GROUPS = 8
"""A recurrence over a batch runs as groups of whole samples (:func:`sample_groups`), each of
at least this many pixels a step, at most this many groups."""

_pools: dict[tuple[int, int, Any], ThreadPoolExecutor] = {}  # by (process id, threads of a
# split, whose: "groups", or the group thread splitting, None outside groups); the pool holds
# one fewer thread, the caller being the other. Groups and the splits inside each group
# thread use pools of their own, so that no pool's thread waits for work queued behind
# itself and each group thread gets its whole share. A forked child inherits the parent's
# pools without their threads, so it must make its own.
_pools_lock = threading.Lock()
_share = threading.local()  # inside a group: .threads (this thread's share), .slot (which)


def thread_count() -> int:
    """Threads for elementwise work (see the module docstring); at least 1. Inside a group of
    :func:`run_groups`, this thread's share of them."""
    share = getattr(_share, "threads", None)
    if share is not None:
        return share
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
    _on_threads(function, _even_slices(count, threads), getattr(_share, "slot", None))


def _even_slices(count: int, parts: int) -> list[slice]:
    bounds = [count * k // parts for k in range(parts + 1)]
    return [slice(start, stop) for start, stop in itertools.pairwise(bounds)]


def _on_threads(function: Callable[[slice], None], slices: list[slice], whose: Any) -> None:
    """``function(items)`` for each of ``slices`` at once, one thread each, on the pool of
    ``whose`` (see ``_pools``); the calling thread takes the first slice itself (one thread
    fewer to wake per call). Returns once every slice is done, then re-raises the first
    error."""
    key = (os.getpid(), len(slices), whose)
    pool = _pools.get(key)
    if pool is None:  # made once per key; the lock only keeps two threads from both making it
        with _pools_lock:
            pool = _pools.get(key)
            if pool is None:
                pool = _pools[key] = ThreadPoolExecutor(len(slices) - 1,
                                                        thread_name_prefix="convlstm")
    others = [pool.submit(function, items) for items in slices[1:]]
    try:
        function(slices[0])
    finally:
        wait(others)  # no slice may still be running when this returns, error or not
    for other in others:
        other.result()  # re-raises a worker's exception here


def sample_groups(batch: int, sample_pixels: int) -> list[slice]:
    """Contiguous groups of whole samples covering ``range(batch)``: as many as give each group
    at least :data:`MIN_GROUP_PIXELS` pixels, at most :data:`MAX_GROUPS`. Set by the shape
    alone, never by the thread count, so any number of threads computes the same bits."""
    groups = max(1, min(MAX_GROUPS, batch, batch * sample_pixels // MIN_GROUP_PIXELS))
    return _even_slices(batch, groups)


Result = TypeVar("Result")


def run_groups(function: Callable[[int], Result], count: int) -> list[Result]:
    """``[function(index) for index in range(count)]``, the groups of work spread over the
    threads: each thread runs a contiguous run of groups, one after another, and splits its own
    work over its share of the threads (:func:`thread_count` inside ``function``). A
    recurrence run this way hands work between threads once per call instead of several times
    per step. Only while BLAS runs on one thread (inside :func:`recurrence`, pinned): else the
    groups run here, one after another, each split over every thread as before."""
    threads = min(thread_count(), count) if _single_blas[0] else 1
    if threads <= 1:
        return [function(index) for index in range(count)]
    results: list[Any] = [None] * count
    share = max(1, thread_count() // threads)

    def run(indices: slice) -> None:
        outer = getattr(_share, "threads", None), getattr(_share, "slot", None)
        _share.threads, _share.slot = share, indices.start
        try:
            for index in range(indices.start, indices.stop):
                results[index] = function(index)
        finally:
            _share.threads, _share.slot = outer

    _on_threads(run, _even_slices(count, threads), "groups")
    return results


BLAS_THREADS_VARIABLE = "CONVLSTM_BLAS_THREADS"
_single_blas = [0]  # > 0 inside recurrence() while BLAS runs on one thread: split products
_controllers: dict[int, Any] = {}  # threadpoolctl's controller, by process id (see _pools)


def _blas_controller() -> Any | None:
    """threadpoolctl's controller of the loaded BLAS libraries, or None without threadpoolctl."""
    pid = os.getpid()
    if pid not in _controllers:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _controllers[pid] = None
        else:
            _controllers[pid] = ThreadpoolController().select(user_api="blas")
    return _controllers[pid]


def recurrence_blas_threads() -> int | None:
    """BLAS threads inside a recurrence: ``CONVLSTM_BLAS_THREADS`` if set (0: leave BLAS as
    the environment set it), else 1; None means leave BLAS alone."""
    value = os.environ.get(BLAS_THREADS_VARIABLE, "").strip()
    if value.isdigit():
        return int(value) or None
    return 1


@contextlib.contextmanager
def recurrence() -> Iterator[None]:
    """Run a recurrence's time loop with BLAS on :func:`recurrence_blas_threads` threads
    (through threadpoolctl, when importable), restoring BLAS's threads afterwards."""
    threads, controller = recurrence_blas_threads(), _blas_controller()
    if threads is None or controller is None or not controller.lib_controllers:
        yield
        return
    # Each library's own setter: threadpoolctl's limit() reads every library's info again on
    # each call (19 us against 6 here), and a stream enters once per frame.
    libraries = controller.lib_controllers
    previous = [library.get_num_threads() for library in libraries]
    for library in libraries:
        library.set_num_threads(threads)
    _single_blas[0] += threads == 1
    try:
        yield
    finally:
        _single_blas[0] -= threads == 1
        for library, count in zip(libraries, previous):
            library.set_num_threads(count)


def _column_parts(columns: int) -> list[slice]:
    """The column blocks a split product works on: set by the shape alone (at most
    ``MAX_PRODUCT_PARTS`` blocks of at least ``MIN_PRODUCT_COLUMNS``), never by the thread
    count, so any number of threads computes the same bits."""
    return _even_slices(columns, max(1, min(MAX_PRODUCT_PARTS, columns // MIN_PRODUCT_COLUMNS)))


def split_matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = a @ b``, the columns of ``b`` and ``out`` cut into blocks (:func:`_column_parts`)
    split over the elementwise threads while BLAS runs on one thread (inside
    :func:`recurrence`); elsewhere one ``np.matmul`` with BLAS's own threads.

    Args:
        a: (M, K). b: (K, N). out: (M, N).
    """
    if not _single_blas[0]:
        return np.matmul(a, b, out=out)
    parts = _column_parts(b.shape[1])

    def work(items: slice) -> None:
        for columns in parts[items]:
            np.matmul(a, b[:, columns], out=out[:, columns])

    split_run(work, len(parts), a.shape[0] * a.shape[1] * parts[0].stop // PRODUCT_WORK)
    return out


def split_matmul_transposed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b.T``, a sum over the columns of both: one partial product per column block
    (:func:`_column_parts`), the blocks split over the threads as in :func:`split_matmul`, the
    partial sums added in block order.

    Args:
        a: (M, N). b: (K, N). Returns (M, K).
    """
    if not _single_blas[0]:
        return a @ b.T
    parts = _column_parts(a.shape[1])
    partial: list[np.ndarray | None] = [None] * len(parts)

    def work(items: slice) -> None:
        for k in range(items.start, items.stop):
            partial[k] = a[:, parts[k]] @ b[:, parts[k]].T

    split_run(work, len(parts), a.shape[0] * b.shape[0] * parts[0].stop // PRODUCT_WORK)
    total = partial[0]
    for other in partial[1:]:
        total += other
    return total

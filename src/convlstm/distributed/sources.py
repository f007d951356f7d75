"""Where the samples come from and go to: arrays in memory, ``.npy`` files read through memory
maps, zarr and dask arrays; the argument checks every entry point shares."""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable
from typing import Any

import dask
import dask.array as da
import numpy as np
from distributed import Client, as_completed

from convlstm import _validation as check
from convlstm.models import Sequential


def check_model(owner: str, model: object) -> Sequential:
    if not isinstance(model, Sequential):
        raise TypeError(f"{owner}: expected a convlstm Sequential model; got "
                        f"{type(model).__name__}.")
    return model



class NpyFile:
    """A ``.npy`` file's array, memory-mapped in whichever process reads it: Dask pickles this
    small description (path, shape, dtype), never the data.

    Each read maps the file, copies the rows and drops the map, so the pages read do not stay
    in the worker's resident memory, which Dask's memory limit watches."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.path.abspath(os.fspath(path))
        header = np.load(self.path, mmap_mode="r", allow_pickle=False)
        self.shape, self.dtype, self.ndim = header.shape, header.dtype, header.ndim

    def __getitem__(self, index: Any) -> np.ndarray:
        return np.array(np.load(self.path, mmap_mode="r", allow_pickle=False)[index])

    def __len__(self) -> int:
        return self.shape[0]

    def __dask_tokenize__(self) -> tuple:
        return ("npy", self.path, os.stat(self.path).st_mtime_ns, self.shape, self.dtype.str)


def is_zarr(x: object) -> bool:
    return type(x).__module__.split(".")[0] == "zarr" and hasattr(x, "oindex")


def source(owner: str, name: str, x: object, dask_ok: bool) -> Any:
    """``x`` as an in-memory array, a :class:`NpyFile`, a zarr array or (``dask_ok``) a dask
    array; paths name a ``.npy`` file or a zarr store."""
    if isinstance(x, (str, os.PathLike)):
        path = os.fspath(x)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{owner}: no such file or store for {name}: {path!r}.")
        if path.endswith(".npy"):
            return NpyFile(path)
        import zarr

        try:
            return zarr.open_array(path, mode="r")
        except Exception as error:  # zarr raises several kinds for a foreign folder or file
            raise ValueError(f"{owner}: {name}={path!r} is neither a .npy file nor a zarr "
                             f"array ({error}).") from None
    if isinstance(x, np.memmap) and isinstance(x.base, mmap.mmap) and str(
        x.filename
    ).endswith(".npy"):
        npy = NpyFile(x.filename)  # the whole file, as np.load(path, mmap_mode="r") maps it
        if npy.shape == x.shape and npy.dtype == x.dtype:
            return npy
    if isinstance(x, np.ndarray) or is_zarr(x):
        return x
    if isinstance(x, da.Array):
        if dask_ok:
            return x
        raise TypeError(f"{owner}: expected {name} to be a NumPy array, a memory-mapped .npy, "
                        "a zarr array or a path; got a dask array (write it with "
                        "dask.array.to_zarr and pass the store).")
    raise TypeError(f"{owner}: expected {name} to be a NumPy array, a memory-mapped .npy, a "
                    f"zarr{' or dask' if dask_ok else ''} array, or the path of a .npy file or "
                    f"zarr store; got {type(x).__name__}.")


def part(array: Any, rows: np.ndarray) -> Any:
    """What a task needs to get ``rows`` of ``array`` (a :func:`source`): the rows themselves
    for an array in memory (sent with the task), else the file's description and the rows'
    numbers."""
    if isinstance(array, np.ndarray):
        return array[rows]
    return (array, rows)


def read(piece: Any) -> np.ndarray:
    """The rows a :func:`part` describes, read where the task runs."""
    if isinstance(piece, np.ndarray):
        return piece
    array, rows = piece
    if isinstance(array, NpyFile):
        return array[rows]
    unique, inverse = np.unique(rows, return_inverse=True)  # zarr wants sorted, unique rows
    return np.asarray(array.oindex[unique])[inverse]


def samples(x: Any, *, batch_size: int = 32) -> da.Array:
    """``x`` as a dask array chunked by ``batch_size`` samples (whole along every other axis).

    Args:
        x: a NumPy array, a memory-mapped ``.npy``, a zarr or dask array, or the path of a
            ``.npy`` file or zarr store; files are read by whichever worker computes a chunk.
        batch_size: samples per chunk.

    Returns:
        A lazy (N, ...) dask array.
    """
    return as_samples("distributed.samples", x,
                    check.positive_int("distributed.samples", "batch_size", batch_size))


def as_samples(owner: str, x: Any, batch_size: int) -> da.Array:
    array = source(owner, "x", x, dask_ok=True)
    if len(array.shape) < 2 or array.shape[0] == 0:
        raise ValueError(f"{owner}: expected x of shape (samples, ...) with at least one "
                         f"sample; got {tuple(array.shape)}.")
    data = array if isinstance(array, da.Array) else da.from_array(array, chunks=batch_size)
    return data.rechunk({0: batch_size, **{axis: -1 for axis in range(1, data.ndim)}})


def write(array: da.Array, path: str | os.PathLike, *, client: Client | None = None,
          progress: Callable[[int, int], None] | None = None) -> str:
    """Compute ``array`` chunk by chunk into a zarr store or a ``.npy`` file, written by the
    workers: the client never holds the result, and memory stays bounded by a few chunks.

    Args:
        array: a dask array chunked along its first axis only (as :func:`predict` returns).
        path: a ``.npy`` file or a zarr store (any other name), on a path the workers share.
        client: as :func:`predict`.
        progress: called as ``progress(chunks_done, chunks)`` after every chunk written.

    Returns:
        The path written.
    """
    path = os.fspath(path)
    if not isinstance(array, da.Array) or any(len(c) != 1 for c in array.chunks[1:]):
        raise TypeError("distributed.write: expected a dask array chunked along its first axis "
                        "only.")
    if path.endswith(".npy"):
        np.lib.format.open_memmap(path, mode="w+", dtype=array.dtype, shape=array.shape).flush()
        target: Any = NpyFile(path)
    else:
        import zarr

        target = zarr.open_array(path, mode="w", shape=array.shape, dtype=array.dtype,
                                 chunks=(max(array.chunks[0]), *array.shape[1:]))
    starts = np.cumsum((0, *array.chunks[0][:-1]))
    store = dask.delayed(write_block, pure=False)
    writes = [store(block, target, int(start))
              for block, start in zip(array.to_delayed().ravel(), starts)]
    if client is None:
        dask.compute(*writes)
        if progress is not None:
            progress(len(writes), len(writes))
        return path
    futures = client.compute(writes)
    for done, future in enumerate(as_completed(futures), start=1):
        future.result()  # raises the chunk's error, if any
        if progress is not None:
            progress(done, len(writes))
    return path


def write_block(block: np.ndarray, target: Any, start: int) -> None:
    if isinstance(target, NpyFile):
        out = np.load(target.path, mmap_mode="r+", allow_pickle=False)
        out[start : start + len(block)] = block
        out.flush()
    else:
        target[start : start + len(block)] = block




def pair(owner: str, x: object, y: object,
         names: tuple[str, str] = ("x", "y")) -> tuple[Any, Any]:
    """``x`` and ``y`` as :func:`source` arrays with the same number (>= 1) of samples."""
    x, y = (source(owner, name, value, dask_ok=False) for name, value in zip(names, (x, y)))
    if len(x.shape) == 0 or len(y.shape) == 0 or x.shape[0] != y.shape[0]:
        raise ValueError(f"{owner}: expected {names[0]} and {names[1]} with the same number of "
                         f"samples; got shapes {tuple(x.shape)} and {tuple(y.shape)}.")
    if x.shape[0] == 0:
        raise ValueError(f"{owner}: expected at least one sample in {names[0]} and "
                         f"{names[1]}; got none.")
    return x, y

"""Beyond one machine: batch inference and synchronous data-parallel training on Dask.

The same code runs on a laptop and on a cluster; only the client differs::

    client = connect()                       # a local cluster, one worker process per core
    client = connect("tcp://10.0.0.5:8786")  # the scheduler of a real cluster

- :func:`predict` and :func:`forecast` map a model over the samples of an array too large for
  one machine and return a lazy dask array chunked by samples. The model travels to each worker
  once per call (scattered to every worker, or one task of the graph without a client) and is
  built there once, then reused for every chunk. Files (``.npy``, zarr) are read by the workers.
- :func:`fit` trains synchronously: every global batch is cut into one shard per worker; each
  worker computes the loss and the gradients of its shard with the current weights; the client
  adds them up weighted by shard size, applies the model's compiled optimizer once and
  broadcasts the new weights. Without BatchNormalization the weights equal ``model.fit``'s for
  the same seed to float rounding, for any number of workers. BatchNormalization uses each
  shard's own batch statistics (as PyTorch's DDP without SyncBatchNorm); its moving statistics
  are averaged over the shards, weighted by their sizes.

A worker that dies costs a retry of its task, not the run: Dask reschedules it, and the result
is the same because a shard's gradients depend only on the weights and rows it is given.

Needs Dask (``pip install 'numpy-convlstm[distributed]'``); the rest of the package does not.
"""

from __future__ import annotations

import hashlib
import json
import math
import mmap
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

try:
    import dask
    import dask.array as da
    from distributed import Client
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "convlstm.distributed needs Dask: pip install 'numpy-convlstm[distributed]' "
        f"({error})."
    ) from None

from convlstm import forecasting, training_metrics
from convlstm.callbacks import Callback
from convlstm.models import History, Sequential, run_epochs

CONNECT_TIMEOUT = 10.0
"""Seconds :func:`connect` (and :func:`fit` given an address) waits for a scheduler, and
:func:`fit` waits for its first worker, before raising."""

__all__ = ["CONNECT_TIMEOUT", "connect", "fit", "forecast", "predict", "samples", "write"]


# ------------------------------------------------------------------------------- the client

def connect(
    scheduler: str | None = None,
    *,
    workers: int | None = None,
    timeout: float | None = None,
) -> Client:
    """A Dask client for the scheduler at ``scheduler``, else for a new local cluster.

    Args:
        scheduler: an address such as ``"tcp://10.0.0.5:8786"``; None starts a local cluster of
            ``workers`` processes with one thread each, closed when the client closes.
        workers: local worker processes (default: one per core); only without ``scheduler``.
        timeout: seconds to wait for the scheduler (default :data:`CONNECT_TIMEOUT`).

    Returns:
        A connected ``distributed.Client`` (use it as a context manager, or ``close()`` it).

    Raises:
        ConnectionError: the scheduler cannot be reached within ``timeout`` seconds.
    """
    if scheduler is not None and workers is not None:
        raise ValueError("distributed.connect: give either scheduler or workers, not both.")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ValueError(f"distributed.connect: expected workers to be a positive int; got "
                         f"{workers!r}.")
    if scheduler is None:
        return Client(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                      processes=True, dashboard_address=":0")
    if not isinstance(scheduler, str):
        raise TypeError(f"distributed.connect: expected scheduler to be an address such as "
                        f"'tcp://host:8786'; got {type(scheduler).__name__}.")
    timeout = CONNECT_TIMEOUT if timeout is None else timeout
    try:
        return Client(scheduler, timeout=timeout)
    except (OSError, TimeoutError) as error:
        raise ConnectionError(
            f"distributed.connect: cannot reach the Dask scheduler at {scheduler} within "
            f"{timeout:g} s ({error})."
        ) from None


def _client(owner: str, client: object) -> Client:
    if isinstance(client, Client):
        return client
    if isinstance(client, str):
        return connect(client)
    raise TypeError(f"{owner}: expected client to be a distributed.Client or a scheduler "
                    f"address; got {type(client).__name__}.")


# ------------------------------------------------------------------ the model on the workers

class _ModelSpec:
    """What rebuilds a model in another process: its config, metadata, loss and weights.

    ``token`` names it in each worker's cache, so a worker builds a model once per spec."""

    def __init__(self, model: Sequential, weights: bool = True) -> None:
        from convlstm.registry import serialize

        self.config = json.dumps(serialize(model))
        self.metadata = dict(model.metadata)
        self.metrics = list(getattr(model, "metrics", []))
        self.loss = model.loss
        self.weights = model.get_weights() if weights else None
        digest = hashlib.sha256(self.config.encode())
        for weight in self.weights or ():
            digest.update(np.ascontiguousarray(weight).tobytes())
        self.token = digest.hexdigest() if weights else uuid.uuid4().hex

    def build(self) -> Sequential:
        from convlstm.registry import deserialize

        model = deserialize(json.loads(self.config))
        model.ensure_built()
        if self.weights is not None:
            model.set_weights(self.weights)
        model.metadata, model.loss = dict(self.metadata), self.loss
        return model


class _Entry:
    def __init__(self, model: Sequential) -> None:
        self.model, self.lock = model, threading.Lock()


_MODELS: OrderedDict[str, _Entry] = OrderedDict()  # this process's models, newest last
_MODELS_KEPT = 2
_MODELS_LOCK = threading.Lock()
_BUILDS = 0  # models this process has built (the tests read it to prove weights travel once)


def _model_entry(spec: _ModelSpec) -> _Entry:
    """The model of ``spec``, built once per process; a worker's threads share it (one at a
    time, under the entry's lock, since a training forward keeps a cache)."""
    global _BUILDS
    with _MODELS_LOCK:
        entry = _MODELS.get(spec.token)
        if entry is None:
            entry = _MODELS[spec.token] = _Entry(spec.build())
            _BUILDS += 1
            while len(_MODELS) > _MODELS_KEPT:
                _MODELS.popitem(last=False)
        _MODELS.move_to_end(spec.token)
        return entry


def _build_count() -> int:
    return _BUILDS


def _check_model(owner: str, model: object) -> Sequential:
    if not isinstance(model, Sequential):
        raise TypeError(f"{owner}: expected a convlstm Sequential model; got "
                        f"{type(model).__name__}.")
    return model


def _positive_int(owner: str, name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{owner}: expected {name} to be a positive int; got {value!r}.")
    return int(value)


# -------------------------------------------------------------------------------- the data

class _NpyFile:
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


def _is_zarr(x: object) -> bool:
    return type(x).__module__.split(".")[0] == "zarr" and hasattr(x, "oindex")


def _source(owner: str, name: str, x: object, dask_ok: bool) -> Any:
    """``x`` as an in-memory array, a :class:`_NpyFile`, a zarr array or (``dask_ok``) a dask
    array; paths name a ``.npy`` file or a zarr store."""
    if isinstance(x, (str, os.PathLike)):
        path = os.fspath(x)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{owner}: no such file or store for {name}: {path!r}.")
        if path.endswith(".npy"):
            return _NpyFile(path)
        import zarr

        try:
            return zarr.open_array(path, mode="r")
        except Exception as error:  # zarr raises several kinds for a foreign folder or file
            raise ValueError(f"{owner}: {name}={path!r} is neither a .npy file nor a zarr "
                             f"array ({error}).") from None
    if isinstance(x, np.memmap) and isinstance(x.base, mmap.mmap) and str(
        x.filename
    ).endswith(".npy"):
        npy = _NpyFile(x.filename)  # the whole file, as np.load(path, mmap_mode="r") maps it
        if npy.shape == x.shape and npy.dtype == x.dtype:
            return npy
    if isinstance(x, np.ndarray) or _is_zarr(x):
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


def _part(source: Any, rows: np.ndarray) -> Any:
    """What a task needs to get ``rows`` of ``source``: the rows themselves for an array in
    memory (sent with the task), else the file's description and the row numbers."""
    if isinstance(source, np.ndarray):
        return source[rows]
    return (source, rows)


def _read(part: Any) -> np.ndarray:
    """The rows described by :func:`_part`, read where the task runs."""
    if isinstance(part, np.ndarray):
        return part
    source, rows = part
    if isinstance(source, _NpyFile):
        return source[rows]
    unique, inverse = np.unique(rows, return_inverse=True)  # zarr wants sorted, unique rows
    return np.asarray(source.oindex[unique])[inverse]


# ---------------------------------------------------------------------------------- predict

def predict(model: Sequential, x: Any, *, client: Client | None = None,
            batch_size: int = 32) -> da.Array:
    """``model.predict(x)`` on Dask: lazy, chunked by ``batch_size`` samples.

    Args:
        model: a built (or buildable from ``x``) Sequential; it need not be compiled.
        x: (N, ...) samples in the model's input layout: a NumPy array, a memory-mapped
            ``.npy`` (``np.load(path, mmap_mode="r")``), a zarr array, a dask array, or the
            path of a ``.npy`` file or zarr store. Workers read files themselves, so the path
            must be one they share.
        client: a ``distributed.Client`` (a local cluster or a remote scheduler); None uses
            Dask's default scheduler (or the current client, if there is one).
        batch_size: samples per chunk, and per forward pass.

    Returns:
        A dask array of the predictions, (N, ...) chunked by ``batch_size`` samples;
        ``.compute()`` gives the NumPy array ``model.predict(x)`` gives, to float rounding.
    """
    return _map_samples("distributed.predict", model, x, client, batch_size, None)


def forecast(model: Sequential, x: Any, frames: int, *, client: Client | None = None,
             batch_size: int = 32) -> da.Array:
    """:func:`convlstm.forecast` (``frames`` frames after each sequence of ``x``) on Dask.

    Args and returns as :func:`predict`; the result is (N, frames, H, W, C).
    """
    frames = _positive_int("distributed.forecast", "frames", frames)
    return _map_samples("distributed.forecast", model, x, client, batch_size, frames)


def _map_samples(owner: str, model: Sequential, x: Any, client: Client | None,
                 batch_size: int, frames: int | None) -> da.Array:
    _check_model(owner, model)
    batch_size = _positive_int(owner, "batch_size", batch_size)
    if client is not None and not isinstance(client, Client):
        raise TypeError(f"{owner}: expected client to be a distributed.Client or None; got "
                        f"{type(client).__name__}.")
    data = _samples(owner, x, batch_size)
    sample = tuple(data.shape[1:])
    if model.input_shape is None:
        model.build((None, *sample))
    expected = tuple(model.input_shape)
    if len(expected) != len(sample) or any(e not in (None, s) for e, s in zip(expected, sample)):
        raise ValueError(f"{owner}: expected samples of shape {expected} (the model's input); "
                         f"got {sample}.")
    weights = model.get_weights()
    dtype = np.result_type(*[w.dtype for w in weights]) if weights else np.dtype("float32")
    if frames is None:
        tail = tuple(model.compute_output_shape((1, *sample))[1:])
    else:
        tail = (frames, *sample[1:])
    spec = _ModelSpec(model)
    spec_ref = (client.scatter(spec, broadcast=True, hash=False) if client is not None
                else dask.delayed(spec, name=f"convlstm-model-{spec.token}", traverse=False))
    blocks = data.to_delayed().ravel()
    apply = dask.delayed(_predict_block, pure=True)
    pieces = [
        da.from_array(np.empty((0, *tail), dtype), chunks=-1) if n == 0 else
        da.from_delayed(apply(block, spec_ref, batch_size, dtype.str, frames), (n, *tail), dtype)
        for block, n in zip(blocks, data.chunks[0])
    ]
    return da.concatenate(pieces, axis=0)


def samples(x: Any, *, batch_size: int = 32) -> da.Array:
    """``x`` as a dask array chunked by ``batch_size`` samples (whole along every other axis).

    Args:
        x: a NumPy array, a memory-mapped ``.npy``, a zarr or dask array, or the path of a
            ``.npy`` file or zarr store; files are read by whichever worker computes a chunk.
        batch_size: samples per chunk.

    Returns:
        A lazy (N, ...) dask array.
    """
    return _samples("distributed.samples", x,
                    _positive_int("distributed.samples", "batch_size", batch_size))


def _samples(owner: str, x: Any, batch_size: int) -> da.Array:
    source = _source(owner, "x", x, dask_ok=True)
    if len(source.shape) < 2 or source.shape[0] == 0:
        raise ValueError(f"{owner}: expected x of shape (samples, ...) with at least one "
                         f"sample; got {tuple(source.shape)}.")
    data = source if isinstance(source, da.Array) else da.from_array(source, chunks=batch_size)
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
        target: Any = _NpyFile(path)
    else:
        import zarr

        target = zarr.open_array(path, mode="w", shape=array.shape, dtype=array.dtype,
                                 chunks=(max(array.chunks[0]), *array.shape[1:]))
    starts = np.cumsum((0, *array.chunks[0][:-1]))
    store = dask.delayed(_write_block, pure=False)
    writes = [store(block, target, int(start))
              for block, start in zip(array.to_delayed().ravel(), starts)]
    if client is None:
        dask.compute(*writes)
        if progress is not None:
            progress(len(writes), len(writes))
        return path
    from distributed import as_completed

    futures = client.compute(writes)
    for done, future in enumerate(as_completed(futures), start=1):
        future.result()  # raises the chunk's error, if any
        if progress is not None:
            progress(done, len(writes))
    return path


def _write_block(block: np.ndarray, target: Any, start: int) -> None:
    if isinstance(target, _NpyFile):
        out = np.load(target.path, mmap_mode="r+", allow_pickle=False)
        out[start : start + len(block)] = block
        out.flush()
    else:
        target[start : start + len(block)] = block


def _predict_block(block: np.ndarray, spec: _ModelSpec, batch_size: int, dtype: str,
                   frames: int | None) -> np.ndarray:
    """One chunk's predictions, with this process's copy of the model."""
    entry = _model_entry(spec)
    with entry.lock:
        if frames is None:
            out = entry.model.predict(block, batch_size=batch_size)
        else:
            out = forecasting.forecast(entry.model, block, frames, batch_size=batch_size)
    return np.asarray(out, dtype=dtype)


# -------------------------------------------------------------------------------------- fit

def _metric_sums(metrics: list, y: np.ndarray, prediction: np.ndarray) -> list[tuple]:
    """Each compiled metric's running sums (``total``, ``count``) over one shard: the client
    adds them up, so a metric over the shards is the metric over the batch."""
    fresh = [training_metrics.get(metric) for metric in metrics]
    for metric in fresh:
        metric.update(y, prediction)
    return [(metric.total, metric.count) for metric in fresh]


def _shard_gradients(spec: _ModelSpec, weights: list[np.ndarray], x_part: Any, y_part: Any,
                     scale: float) -> tuple[float, dict[str, np.ndarray], list[np.ndarray],
                                            list[tuple]]:
    """A worker's share of one step: the loss of its shard, its gradients times ``scale``
    (shard size / batch size, so the shards' sum is the batch's gradient), the weights that are
    not trained (BatchNormalization's moving statistics) after its forward, and the metrics'
    sums."""
    x, y = _read(x_part), _read(y_part)
    entry = _model_entry(spec)
    with entry.lock:
        model = entry.model
        model.set_weights(weights)
        loss, prediction = model.compute_gradients(x, y)
        _, grads = model.trainable_weights()
        grads = {name: grad * grad.dtype.type(scale) for name, grad in grads.items()}
        frozen = [owner.params[key].copy() for _, owner, key in model.named_params()
                  if key not in owner.trainable_params]
    return loss, grads, frozen, _metric_sums(spec.metrics, y, prediction)


def _batch_loss(spec: _ModelSpec, weights: list[np.ndarray], x_part: Any,
                y_part: Any) -> tuple[float, list[tuple]]:
    """The loss and the metrics' sums of one evaluation batch (inference mode)."""
    x, y = _read(x_part), _read(y_part)
    entry = _model_entry(spec)
    with entry.lock:
        entry.model.set_weights(weights)
        prediction = entry.model.forward(x)
    return entry.model.loss(y, prediction), _metric_sums(spec.metrics, y, prediction)


def fit(
    model: Sequential,
    x: Any,
    y: Any,
    *,
    client: Client | str,
    epochs: int = 1,
    batch_size: int = 32,
    validation_data: tuple[Any, Any] | None = None,
    validation_split: float = 0.0,
    shuffle: bool = True,
    seed: int | None = None,
    callbacks: Sequence[Callback] | None = None,
    verbose: int = 1,
) -> History:
    """``model.fit`` with synchronous data parallelism over the workers of ``client``.

    Every global batch (the batches ``model.fit`` would make: the same shuffling from
    ``seed``) is cut into one shard per worker. Each worker computes its shard's loss and
    gradients with the current weights; the client adds them up weighted by shard size, applies
    the compiled optimizer once and broadcasts the new weights.

    Args:
        model: a compiled Sequential; it is trained in place, on the client.
        x, y: inputs and targets with the same number of samples: NumPy arrays (each step's
            rows are sent with its tasks), memory-mapped ``.npy`` files, zarr arrays, or paths
            of ``.npy`` files or zarr stores (read by the workers from a path they share).
        client: a ``distributed.Client``, or a scheduler address to connect to.
        epochs, batch_size, validation_data, validation_split, shuffle, seed, callbacks,
        verbose: as :meth:`Sequential.fit`; validation batches are evaluated on the workers.

    Returns:
        A :class:`convlstm.History`, as ``model.fit`` returns.

    Raises:
        RuntimeError: the model is not compiled.
        ConnectionError: ``client`` is an address that cannot be reached.
        TimeoutError: the cluster has no worker after :data:`CONNECT_TIMEOUT` seconds.
    """
    owner = "distributed.fit"
    _check_model(owner, model)
    if model.optimizer is None or model.loss is None:
        raise RuntimeError(f"{owner}: call model.compile(optimizer=..., loss=...) first.")
    epochs = _positive_int(owner, "epochs", epochs)
    batch_size = _positive_int(owner, "batch_size", batch_size)
    x_source, y_source = _pair(owner, x, y)
    train_rows = np.arange(x_source.shape[0])
    validation = None
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError(f"{owner}: expected validation_data to be a pair (x_val, y_val); "
                            f"got {type(validation_data).__name__}.")
        x_val, y_val = _pair(owner, *validation_data)
        validation = (x_val, y_val, np.arange(x_val.shape[0]))
    elif validation_split:
        if not 0.0 < validation_split < 1.0:
            raise ValueError(f"{owner}: expected validation_split in (0, 1); got "
                             f"{validation_split}.")
        split = math.floor(len(train_rows) * (1.0 - validation_split))
        train_rows, held_out = train_rows[:split], train_rows[split:]
        validation = (x_source, y_source, held_out)
    owned = isinstance(client, str)  # connected here, so closed here
    client = _client(owner, client)
    try:
        return _fit(owner, model, client, x_source, y_source, train_rows, validation, epochs,
                    batch_size, shuffle, seed, callbacks, verbose)
    finally:
        if owned:
            client.close()


def _fit(owner: str, model: Sequential, client: Client, x_source: Any, y_source: Any,
         train_rows: np.ndarray, validation: tuple | None, epochs: int, batch_size: int,
         shuffle: bool, seed: int | None, callbacks: Sequence[Callback] | None,
         verbose: int) -> History:
    """:func:`fit`'s loop, once its arguments are checked: ``model.fit``'s, step for step."""
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
    except TimeoutError:
        raise TimeoutError(f"{owner}: the cluster has no worker after {CONNECT_TIMEOUT:g} s."
                           ) from None
    model.ensure_built()
    if model.input_shape is None:
        model.build((None, *x_source.shape[1:]))
    trainer = _Trainer(client, model, batch_size)

    return run_epochs(
        model, len(train_rows), lambda chosen: trainer.step(x_source, y_source,
                                                             train_rows[chosen]),
        None if validation is None else (lambda: trainer.evaluate(*validation)),
        epochs=epochs, batch_size=batch_size, shuffle=shuffle, callbacks=callbacks or (),
        verbose=verbose, seed=seed)


class _Trainer:
    """The client's side of synchronous data parallelism for one :func:`fit` call."""

    def __init__(self, client: Client, model: Sequential, batch_size: int) -> None:
        self.client, self.model, self.batch_size = client, model, batch_size
        self.workers = sorted(client.scheduler_info()["workers"])
        # the config and loss travel once; the weights once per step
        self.spec = client.scatter(_ModelSpec(model, weights=False), broadcast=True, hash=False)
        self.frozen = [(owner, key) for _, owner, key in model.named_params()
                       if key not in owner.trainable_params]

    def _weights(self) -> Any:
        """The current weights, sent to every worker once."""
        return self.client.scatter([self.model.get_weights()], broadcast=True, hash=False)[0]

    def _submit(self, function: Callable, index: int, *arguments: Any) -> Any:
        worker = self.workers[index % len(self.workers)]
        return self.client.submit(function, *arguments, pure=False, workers=[worker],
                                  allow_other_workers=True)

    def step(self, x: Any, y: Any, rows: np.ndarray) -> float:
        """One optimizer step on the samples ``rows``; returns the batch's loss."""
        weights = self._weights()
        shards = [part for part in np.array_split(rows, len(self.workers)) if len(part)]
        futures = [
            self._submit(_shard_gradients, index, self.spec, weights, _part(x, shard),
                         _part(y, shard), len(shard) / len(rows))
            for index, shard in enumerate(shards)
        ]
        results = self.client.gather(futures)
        sizes = [len(shard) for shard in shards]
        loss = sum(result[0] * size for result, size in zip(results, sizes)) / len(rows)
        grads = dict(results[0][1])
        for _, shard_grads, _, _ in results[1:]:
            for name, grad in shard_grads.items():
                grads[name] = grads[name] + grad
        params, _ = self.model.trainable_weights()
        self.model.optimizer.apply(params, grads)
        for slot, (owner, key) in enumerate(self.frozen):
            # BatchNormalization's moving statistics: the shards' values, weighted by size
            owner.params[key][...] = sum(result[2][slot] * (size / len(rows))
                                         for result, size in zip(results, sizes))
        _add_sums(self.model.metrics, [result[3] for result in results])
        return float(loss)

    def evaluate(self, x: Any, y: Any, rows: np.ndarray) -> dict[str, float]:
        """``model.evaluate(..., return_dict=True)`` over ``rows``: the same batches, evaluated
        on the workers."""
        weights = self._weights()
        batches = [rows[start : start + self.batch_size]
                   for start in range(0, len(rows), self.batch_size)]
        futures = [self._submit(_batch_loss, index, self.spec, weights, _part(x, batch),
                                _part(y, batch)) for index, batch in enumerate(batches)]
        results = self.client.gather(futures)
        tracked = [training_metrics.get(metric) for metric in self.model.metrics]
        _add_sums(tracked, [sums for _, sums in results])
        loss = sum(loss * len(batch) for (loss, _), batch in zip(results, batches)) / len(rows)
        return {"loss": float(loss), **{metric.name: metric.result() for metric in tracked}}


def _add_sums(metrics: list, shards: list[list[tuple]]) -> None:
    """Add the shards' running sums, in shard order, into ``metrics``."""
    for sums in shards:
        for metric, (total, count) in zip(metrics, sums):
            metric.total += total
            metric.count += count


def _pair(owner: str, x: object, y: object) -> tuple[Any, Any]:
    x, y = _source(owner, "x", x, dask_ok=False), _source(owner, "y", y, dask_ok=False)
    if len(x.shape) == 0 or len(y.shape) == 0 or x.shape[0] != y.shape[0]:
        raise ValueError(f"{owner}: expected x and y with the same number of samples; got "
                         f"shapes {tuple(x.shape)} and {tuple(y.shape)}.")
    if x.shape[0] == 0:
        raise ValueError(f"{owner}: expected at least one sample; got none.")
    return x, y

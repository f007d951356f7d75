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

Needs Dask (``pip install -e '.[distributed]'`` from a clone); the rest of the package does not.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

try:
    from distributed import Client
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "convlstm.distributed needs Dask: pip install 'dask[array]' distributed zarr (from a "
        "clone: pip install -e '.[distributed]') "
        f"({error})."
    ) from None

from convlstm.callbacks import Callback
from convlstm.distributed.inference import forecast, predict
from convlstm.distributed.sources import check_model, pair, samples, write
from convlstm.distributed.training import train
from convlstm.fit_arguments import fit_options, training_samples, validation_pair
from convlstm.models import History, Sequential

CONNECT_TIMEOUT = 10.0
"""Seconds :func:`connect` (and :func:`fit` given an address) waits for a scheduler, and
:func:`fit` waits for its first worker, before raising."""

__all__ = ["CONNECT_TIMEOUT", "connect", "fit", "forecast", "predict", "samples", "write"]


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


def _check_targets(owner: str, model: Sequential, x: Any, y: Any, names: tuple[str, str]) -> None:
    """Refuse targets whose sample shape is not the model's output for ``x``, before any work
    reaches the cluster."""
    sample = tuple(x.shape[1:])
    if model.input_shape is None:
        model.build((None, *sample))
    expected = tuple(model.compute_output_shape((None, *sample))[1:])
    given = tuple(y.shape[1:])
    if len(expected) != len(given) or any(e not in (None, g) for e, g in zip(expected, given)):
        raise ValueError(f"{owner}: expected {names[1]} of shape (samples, *{expected}), the "
                         f"model's output for {names[0]} of shape {tuple(x.shape)}; got "
                         f"{tuple(y.shape)}.")


def _client(owner: str, client: object) -> Client:
    if isinstance(client, Client):
        return client
    if isinstance(client, str):
        return connect(client)
    raise TypeError(f"{owner}: expected client to be a distributed.Client or a scheduler "
                    f"address; got {type(client).__name__}.")


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
        x: the inputs: a NumPy array (each step's rows are sent with its tasks), a
            memory-mapped ``.npy`` file, a zarr array, or the path of a ``.npy`` file or zarr
            store (read by the workers from a path they share).
        y: the targets, with as many samples as ``x``, in the same forms.
        client: a ``distributed.Client``, or a scheduler address to connect to.
        epochs: as :meth:`Sequential.fit`.
        batch_size: as :meth:`Sequential.fit`.
        validation_data: as :meth:`Sequential.fit`; validation batches are evaluated on the
            workers.
        validation_split: as :meth:`Sequential.fit`.
        shuffle: as :meth:`Sequential.fit`.
        seed: as :meth:`Sequential.fit`.
        callbacks: as :meth:`Sequential.fit`.
        verbose: as :meth:`Sequential.fit`.

    Returns:
        A :class:`convlstm.History`, as ``model.fit`` returns.

    Raises:
        RuntimeError: the model is not compiled.
        ConnectionError: ``client`` is an address that cannot be reached.
        TimeoutError: the cluster has no worker after :data:`CONNECT_TIMEOUT` seconds.
    """
    owner = "distributed.fit"
    check_model(owner, model)
    if model.optimizer is None or model.loss is None:
        raise RuntimeError(f"{owner}: call model.compile(optimizer=..., loss=...) first.")
    options = fit_options(owner, epochs=epochs, batch_size=batch_size, shuffle=shuffle,
                          callbacks=callbacks, verbose=verbose, seed=seed)
    x_source, y_source = pair(owner, x, y)
    train_rows = np.arange(x_source.shape[0])
    validation = None
    if validation_data is not None:
        x_val, y_val = pair(owner, *validation_pair(owner, validation_data),
                            names=("x_val", "y_val"))
        validation = (x_val, y_val, np.arange(x_val.shape[0]))
    else:
        split = training_samples(owner, len(train_rows), validation_split)
        if split < len(train_rows):
            train_rows, held_out = train_rows[:split], train_rows[split:]
            validation = (x_source, y_source, held_out)
    _check_targets(owner, model, x_source, y_source, ("x", "y"))
    if validation is not None and validation_data is not None:
        _check_targets(owner, model, validation[0], validation[1], ("x_val", "y_val"))
    owned = isinstance(client, str)  # connected here, so closed here
    client = _client(owner, client)
    try:
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
        except TimeoutError:
            raise TimeoutError(f"{owner}: the cluster has no worker after "
                               f"{CONNECT_TIMEOUT:g} s.") from None
        return train(model, client, x_source, y_source, train_rows, validation, **options)
    finally:
        if owned:
            client.close()



"""Synchronous data-parallel training: the client's side of every step."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import CancelledError
from typing import Any

import numpy as np
from distributed import Client

from convlstm import training_metrics
from convlstm.callbacks import Callback
from convlstm.distributed.sources import part
from convlstm.distributed.tasks import ModelSpec, batch_loss, shard_gradients
from convlstm.models import History, Sequential, train_epochs

LOST_DATA_ATTEMPTS = 3
"""How many times a step or an evaluation is sent before lost scattered data is an error."""


def train(model: Sequential, client: Client, x: Any, y: Any, rows: np.ndarray,
          validation: tuple | None, *, epochs: int, batch_size: int, shuffle: bool,
          seed: int | None, callbacks: list[Callback], verbose: int) -> History:
    """:func:`convlstm.distributed.fit` once its arguments are checked: ``model.fit``'s epochs
    (:func:`convlstm.models.train_epochs`), each step spread over the workers of ``client``.

    Args:
        model: the compiled model, trained in place.
        client: a client with at least one worker.
        x, y: the samples (see :func:`convlstm.distributed.sources.source`).
        rows: the indices of the training samples in ``x`` and ``y``.
        validation: ``(x_val, y_val, rows)``, or None.
        epochs, batch_size, shuffle, seed, callbacks, verbose: as ``model.fit``.
    """
    model.ensure_built()
    if model.input_shape is None:
        model.build((None, *x.shape[1:]))
    trainer = Trainer(client, model, batch_size)

    return train_epochs(
        model, len(rows), lambda chosen: trainer.step(x, y, rows[chosen]),
        None if validation is None else (lambda: trainer.evaluate(*validation)),
        epochs=epochs, batch_size=batch_size, shuffle=shuffle, callbacks=callbacks,
        verbose=verbose, seed=seed)


class Trainer:
    """The client's side of synchronous data parallelism for one
    :func:`convlstm.distributed.fit` call."""

    def __init__(self, client: Client, model: Sequential, batch_size: int) -> None:
        self.client, self.model, self.batch_size = client, model, batch_size
        self.workers = sorted(client.scheduler_info()["workers"])  # one shard each, every step
        self.spec = self._scatter(ModelSpec(model, weights=False))  # config and loss: once
        self.frozen = [(owner, key) for _, owner, key in model.named_params()
                       if key not in owner.trainable_params]

    def _scatter(self, value: Any) -> Any:
        """``value`` sent to every worker now (a future)."""
        return self.client.scatter([value], broadcast=True, hash=False)[0]

    def _run(self, function: Callable, parts: list[tuple]) -> list:
        """``function(spec, weights, *part)`` for each of ``parts`` on the workers, in order,
        with the current weights.

        Scattered data has no recipe to recompute it: once Dask keeps a single copy (its
        memory manager drops spare replicas) and that worker dies, the tasks that need it are
        cancelled. Then the spec and the weights are sent again and the tasks rerun, up to
        :data:`LOST_DATA_ATTEMPTS` times in all; the result is the same, since a task depends
        only on what it is given."""
        for _ in range(LOST_DATA_ATTEMPTS - 1):
            try:
                return self._send(function, parts)
            except CancelledError:
                if self.client.status != "running":  # closing, not lost data: stop here
                    raise
                self.spec = self._scatter(ModelSpec(self.model, weights=False))
        return self._send(function, parts)

    def _send(self, function: Callable, parts: list[tuple]) -> list:
        weights = self._scatter(self.model.get_weights())
        futures = [
            self.client.submit(function, self.spec, weights, *part, pure=False,
                               workers=[self.workers[index % len(self.workers)]],
                               allow_other_workers=True)
            for index, part in enumerate(parts)
        ]
        try:
            return self.client.gather(futures)
        except CancelledError:
            self.client.cancel(futures)  # a failed attempt leaves nothing running
            raise

    def step(self, x: Any, y: Any, rows: np.ndarray) -> float:
        """One optimizer step on the samples ``rows``; returns the batch's loss."""
        shards = [shard for shard in np.array_split(rows, len(self.workers)) if len(shard)]
        results = self._run(shard_gradients, [(part(x, shard), part(y, shard),
                                               len(shard) / len(rows)) for shard in shards])
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
        add_sums(self.model.metrics, [result[3] for result in results])
        return float(loss)

    def evaluate(self, x: Any, y: Any, rows: np.ndarray) -> dict[str, float]:
        """``model.evaluate(..., return_dict=True)`` over ``rows``: the same batches, evaluated
        on the workers."""
        batches = [rows[start : start + self.batch_size]
                   for start in range(0, len(rows), self.batch_size)]
        results = self._run(batch_loss, [(part(x, batch), part(y, batch)) for batch in batches])
        tracked = [training_metrics.get(metric) for metric in self.model.metrics]
        add_sums(tracked, [sums for _, sums in results])
        loss = sum(loss * len(batch) for (loss, _), batch in zip(results, batches)) / len(rows)
        return {"loss": float(loss), **{metric.name: metric.result() for metric in tracked}}


def add_sums(metrics: list, shards: list[list[tuple]]) -> None:
    """Add the shards' running sums, in shard order, into ``metrics``."""
    for sums in shards:
        for metric, (total, count) in zip(metrics, sums):
            metric.total += total
            metric.count += count

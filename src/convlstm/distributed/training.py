"""Synchronous data-parallel training: the client's side of every step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from distributed import Client

from convlstm import training_metrics
from convlstm.callbacks import Callback
from convlstm.distributed.sources import part
from convlstm.distributed.tasks import ModelSpec, batch_loss, shard_gradients
from convlstm.models import History, Sequential, train_epochs


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
        self.workers = sorted(client.scheduler_info()["workers"])
        # the config and loss travel once; the weights once per step
        self.spec = client.scatter(ModelSpec(model, weights=False), broadcast=True, hash=False)
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
            self._submit(shard_gradients, index, self.spec, weights, part(x, shard),
                         part(y, shard), len(shard) / len(rows))
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
        add_sums(self.model.metrics, [result[3] for result in results])
        return float(loss)

    def evaluate(self, x: Any, y: Any, rows: np.ndarray) -> dict[str, float]:
        """``model.evaluate(..., return_dict=True)`` over ``rows``: the same batches, evaluated
        on the workers."""
        weights = self._weights()
        batches = [rows[start : start + self.batch_size]
                   for start in range(0, len(rows), self.batch_size)]
        futures = [self._submit(batch_loss, index, self.spec, weights, part(x, batch),
                                part(y, batch)) for index, batch in enumerate(batches)]
        results = self.client.gather(futures)
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

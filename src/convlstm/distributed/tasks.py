"""What runs on the workers: a model rebuilt once per process from its spec, and the tasks of
inference and training that use it."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections import OrderedDict
from typing import Any

import numpy as np

from convlstm import forecasting, training_metrics
from convlstm.distributed.sources import read
from convlstm.models import Sequential


class ModelSpec:
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


def model_entry(spec: ModelSpec) -> _Entry:
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


def build_count() -> int:
    return _BUILDS



def predict_block(block: np.ndarray, spec: ModelSpec, batch_size: int, dtype: str,
                   frames: int | None) -> np.ndarray:
    """One chunk's predictions, with this process's copy of the model."""
    entry = model_entry(spec)
    with entry.lock:
        if frames is None:
            out = entry.model.predict(block, batch_size=batch_size)
        else:
            out = forecasting.forecast(entry.model, block, frames, batch_size=batch_size)
    return np.asarray(out, dtype=dtype)



def metric_sums(metrics: list, y: np.ndarray, prediction: np.ndarray) -> list[tuple]:
    """Each compiled metric's running sums (``total``, ``count``) over one shard: the client
    adds them up, so a metric over the shards is the metric over the batch."""
    fresh = [training_metrics.get(metric) for metric in metrics]
    for metric in fresh:
        metric.update(y, prediction)
    return [(metric.total, metric.count) for metric in fresh]


def shard_gradients(spec: ModelSpec, weights: list[np.ndarray], x_part: Any, y_part: Any,
                     scale: float) -> tuple[float, dict[str, np.ndarray], list[np.ndarray],
                                            list[tuple]]:
    """A worker's share of one step: the loss of its shard, its gradients times ``scale``
    (shard size / batch size, so the shards' sum is the batch's gradient), the weights that are
    not trained (BatchNormalization's moving statistics) after its forward, and the metrics'
    sums."""
    x, y = read(x_part), read(y_part)
    entry = model_entry(spec)
    with entry.lock:
        model = entry.model
        model.set_weights(weights)
        loss, prediction = model.compute_gradients(x, y)
        _, grads = model.trainable_weights()
        grads = {name: grad * grad.dtype.type(scale) for name, grad in grads.items()}
        frozen = [owner.params[key].copy() for _, owner, key in model.named_params()
                  if key not in owner.trainable_params]
    return loss, grads, frozen, metric_sums(spec.metrics, y, prediction)


def batch_loss(spec: ModelSpec, weights: list[np.ndarray], x_part: Any,
                y_part: Any) -> tuple[float, list[tuple]]:
    """The loss and the metrics' sums of one evaluation batch (inference mode)."""
    x, y = read(x_part), read(y_part)
    entry = model_entry(spec)
    with entry.lock:
        entry.model.set_weights(weights)
        prediction = entry.model.forward(x)
    return entry.model.loss(y, prediction), metric_sums(spec.metrics, y, prediction)

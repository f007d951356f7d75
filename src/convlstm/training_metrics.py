"""Metrics that ``compile(metrics=[...])`` adds to ``fit``, ``evaluate`` and ``History``, by
Keras name or as objects, computed as Keras 3 computes them.

Each metric is a running mean over every value seen since its last ``reset()``: ``fit`` resets
them at the start of each epoch and updates them with each batch's predictions made before that
batch's update (so an epoch's value is the mean over the epoch, as Keras reports it); the
validation pass and ``evaluate`` use fresh copies. (These are training metrics over whole
batches; for per-horizon forecasting scores see :mod:`convlstm.metrics`.)

| name (alias) | value per element or sample | result |
| --- | --- | --- |
| ``mean_absolute_error`` (``mae``) | ``abs(y_pred - y_true)`` | the mean |
| ``mean_squared_error`` (``mse``) | ``(y_pred - y_true) ** 2`` | the mean |
| ``root_mean_squared_error`` (``rmse``) | ``(y_pred - y_true) ** 2`` | the mean's square root |
| ``binary_accuracy`` | ``y_true == (y_pred > 0.5)`` | the mean |
| ``categorical_accuracy`` | ``argmax(y_true) == argmax(y_pred)`` over the last axis | the mean |
| ``accuracy`` (``acc``) | chosen by the loss, as Keras chooses (below) | the mean |

``accuracy`` is binary accuracy with binary crossentropy, categorical accuracy with categorical
crossentropy, and ``y_true == y_pred`` otherwise.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from convlstm import _validation as check
from convlstm import losses


class Metric(ABC):
    """A running mean of per-element (or per-sample) values.

    Args:
        name: the key in logs and ``History`` (default: the metric's Keras name).
    """

    default_name = "metric"

    def __init__(self, name: str | None = None) -> None:
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"{type(self).__name__}: expected name to be a non-empty str; got "
                            f"{name!r}.")
        self.name = name or self.default_name
        self.reset()

    def reset(self) -> None:
        """Forget every value seen."""
        self.total, self.count = 0.0, 0

    def update(self, y_true: np.ndarray, y_pred: np.ndarray) -> None:
        """Add a batch: ``y_true`` and ``y_pred`` of the same shape, samples first."""
        owner = f"{type(self).__name__}.update"
        y_true, y_pred = (check.real_array(owner, name, value)
                          for name, value in (("y_true", y_true), ("y_pred", y_pred)))
        if y_true.shape != y_pred.shape:
            raise ValueError(f"{owner}: expected y_true and y_pred of the same shape; got "
                             f"{check.shape_text(y_true.shape)} and "
                             f"{check.shape_text(y_pred.shape)}.")
        if y_true.size == 0:  # an empty batch adds nothing (argmax has no empty answer)
            return
        values = self._values(y_true.astype(np.float64), y_pred.astype(np.float64))
        self.total += float(values.sum())
        self.count += values.size

    def result(self) -> float:
        """The mean so far (0.0 before any value, as Keras)."""
        return self.total / self.count if self.count else 0.0

    @abstractmethod
    def _values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        """The values whose mean is the metric, from float64 arrays."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class MeanAbsoluteError(Metric):
    default_name = "mean_absolute_error"

    def _values(self, y_true, y_pred):
        return np.abs(y_pred - y_true)


class MeanSquaredError(Metric):
    default_name = "mean_squared_error"

    def _values(self, y_true, y_pred):
        return (y_pred - y_true) ** 2


class RootMeanSquaredError(MeanSquaredError):
    default_name = "root_mean_squared_error"

    def result(self) -> float:
        return float(np.sqrt(super().result()))


class BinaryAccuracy(Metric):
    """``y_true == (y_pred > threshold)``.

    Args:
        name: as :class:`Metric`.
        threshold: predictions above it count as 1.
    """

    default_name = "binary_accuracy"

    def __init__(self, name: str | None = None, threshold: float = 0.5) -> None:
        self.threshold = check.finite_number(type(self).__name__, "threshold", threshold,
                                             "a finite float")
        super().__init__(name)

    def _values(self, y_true, y_pred):
        return y_true == (y_pred > self.threshold)


class CategoricalAccuracy(Metric):
    default_name = "categorical_accuracy"

    def _values(self, y_true, y_pred):
        return np.argmax(y_true, axis=-1) == np.argmax(y_pred, axis=-1)


class Accuracy(Metric):
    default_name = "accuracy"

    def _values(self, y_true, y_pred):
        return y_true == y_pred


METRICS: dict[str, type[Metric]] = {
    "mean_absolute_error": MeanAbsoluteError,
    "mae": MeanAbsoluteError,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "root_mean_squared_error": RootMeanSquaredError,
    "rmse": RootMeanSquaredError,
    "binary_accuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
}
ACCURACY_NAMES = ("accuracy", "acc")


def get(identifier: Any, loss: losses.Loss | None = None) -> Metric:
    """A fresh metric for a Keras name (named as given, as Keras names it) or a copy of a
    :class:`Metric`'s kind and name.

    Args:
        identifier: a name in ``METRICS``, ``"accuracy"``/``"acc"``, or a ``Metric``.
        loss: the compiled loss, which decides what ``"accuracy"`` means.
    """
    if isinstance(identifier, Metric):
        fresh = copy.copy(identifier)
        fresh.reset()
        return fresh
    if not isinstance(identifier, str):
        raise TypeError(f"compile: expected each metric to be a name or a Metric; got "
                        f"{identifier!r}.")
    if identifier in ACCURACY_NAMES:
        kind = {losses.BinaryCrossentropy: BinaryAccuracy,
                losses.CategoricalCrossentropy: CategoricalAccuracy}.get(type(loss), Accuracy)
        return kind(name=identifier)
    if identifier not in METRICS:
        listed = ", ".join(repr(name) for name in (*METRICS, *ACCURACY_NAMES))
        raise ValueError(f"compile: unknown metric {identifier!r}; expected one of {listed}.")
    return METRICS[identifier](name=identifier)

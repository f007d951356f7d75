"""Callbacks for ``Sequential.fit``: progress lines, early stopping, time limits, checkpoints.

A callback's hooks receive the epoch (or batch) index and a ``logs`` dict such as
``{"loss": 0.12, "val_loss": 0.15, "seconds": 3.2}``; ``self.model`` is the model being fitted.
"""

from __future__ import annotations

import math
import numbers
import os
import string
import time
from collections.abc import Callable
from typing import Any

from convlstm import _validation as check
from convlstm import training_metrics


class Callback:
    """Base class: override the hooks you need."""

    model: Any = None

    def on_train_begin(self, logs: dict[str, float]) -> None:
        """Before the first epoch."""

    def on_epoch_begin(self, epoch: int, logs: dict[str, float]) -> None:
        """Before each epoch."""

    def on_batch_end(self, batch: int, logs: dict[str, float]) -> None:
        """After each training step, with that batch's ``loss``."""

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """After each epoch, with its mean ``loss`` (and ``val_loss``) and ``seconds``."""

    def on_train_end(self, logs: dict[str, float]) -> None:
        """After the last epoch, or after a callback stopped training."""


class ProgressLogger(Callback):
    """One line per epoch through ``print_fn``: ``epoch 3/10  loss 0.0123  val_loss 0.0140
    (2.1 s)``. ``fit(verbose=1)`` adds one that prints; pass ``verbose=0`` to stay silent."""

    def __init__(self, print_fn: Callable[[str], None] = print) -> None:
        if not callable(print_fn):
            raise TypeError(f"ProgressLogger: expected print_fn to be a callable; got "
                            f"{print_fn!r}.")
        self.print_fn = print_fn
        self.epochs = 0

    def on_train_begin(self, logs: dict[str, float]) -> None:
        self.epochs = int(logs.get("epochs", 0))

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        values = "  ".join(f"{k} {v:.4g}" for k, v in logs.items() if k != "seconds")
        self.print_fn(f"epoch {epoch + 1}/{self.epochs}  {values}  ({logs['seconds']:.1f} s)")


class TimeLimit(Callback):
    """Stops training after the step during which ``seconds`` have passed since the first
    ``fit`` it saw began (so one limit can span several ``fit`` calls).

    Args:
        seconds: the training time allowed, > 0.
    """

    def __init__(self, seconds: float) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not (
            0 < seconds < math.inf
        ):
            raise ValueError(f"TimeLimit: expected seconds to be a positive finite number; got "
                             f"{seconds!r}.")
        self.seconds = float(seconds)
        self.started: float | None = None

    def on_train_begin(self, logs: dict[str, float]) -> None:
        if self.started is None:
            self.started = time.perf_counter()

    def on_batch_end(self, batch: int, logs: dict[str, float]) -> None:
        if time.perf_counter() - self.started >= self.seconds:
            self.model.stop_training = True


class StepLimit(Callback):
    """Stops training after ``steps`` training steps, counted over every ``fit`` it is given to.

    Args:
        steps: the steps allowed, a positive int.
    """

    def __init__(self, steps: int) -> None:
        if not isinstance(steps, numbers.Integral) or isinstance(steps, bool) or steps < 1:
            raise ValueError(f"StepLimit: expected steps to be a positive int; got {steps!r}.")
        self.steps, self.done = int(steps), 0

    def on_batch_end(self, batch: int, logs: dict[str, float]) -> None:
        self.done += 1
        if self.done >= self.steps:
            self.model.stop_training = True


class _Monitor(Callback):
    """Tracks the best value of ``monitor`` ("min" or "max" mode)."""

    def __init__(self, monitor: str, mode: str, min_delta: float) -> None:
        owner = type(self).__name__
        if mode not in ("min", "max"):
            raise ValueError(f"{owner}: expected mode 'min' or 'max'; got {mode!r}.")
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(f"{owner}: expected monitor to be the name of a logged value such as "
                            f"'val_loss'; got {monitor!r}.")
        self.monitor, self.mode = monitor, mode
        self.min_delta = abs(check.finite_number(owner, "min_delta", min_delta, "a finite float"))
        self.best = math.inf if mode == "min" else -math.inf

    def _improved(self, logs: dict[str, float]) -> bool:
        if self.monitor not in logs:
            raise ValueError(
                f"{type(self).__name__}: monitor {self.monitor!r} is not among the logged "
                f"values {sorted(logs)}; pass validation data to monitor 'val_loss'."
            )
        value = logs[self.monitor]
        better = (
            value < self.best - self.min_delta
            if self.mode == "min"
            else value > self.best + self.min_delta
        )
        if better:
            self.best = value
        return better


class EarlyStopping(_Monitor):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs;
    optionally put back the weights of the best epoch."""

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        mode: str = "min",
        restore_best_weights: bool = False,
    ) -> None:
        super().__init__(monitor, mode, min_delta)
        self.patience = check.non_negative_int("EarlyStopping", "patience", patience)
        self.restore_best_weights = check.boolean(
            "EarlyStopping", "restore_best_weights", restore_best_weights)
        self.wait = 0
        self.best_weights = None
        self.stopped_epoch: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if self._improved(logs):
            self.wait = 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: dict[str, float]) -> None:
        if self.stopped_epoch is not None and self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(_Monitor):
    """Save the model in the native format after every epoch, or only when ``monitor``
    improved with ``save_best_only``.

    ``filepath`` may hold format fields, as Keras: ``{epoch}`` (counted from 1), ``{loss}``, the
    name of a compiled metric known to :mod:`convlstm.training_metrics` (``{mae}``), and each of
    those with ``val_`` (``{val_loss:.4f}``). Any other field is refused here, and a field with
    no value at the end of an epoch (``{val_loss}`` without validation data) is an error then.
    """

    def __init__(
        self,
        filepath: str,
        monitor: str = "val_loss",
        save_best_only: bool = False,
        mode: str = "min",
    ) -> None:
        super().__init__(monitor, mode, 0.0)
        self.filepath = _checked_pattern(filepath)
        self.save_best_only = check.boolean("ModelCheckpoint", "save_best_only", save_best_only)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if self.save_best_only and not self._improved(logs):
            return
        missing = sorted(set(_fields(self.filepath)) - {"epoch", *logs})
        if missing:
            raise ValueError(
                f"ModelCheckpoint: expected every field of filepath {self.filepath!r} among the "
                f"logged values {sorted(logs)}; got {', '.join(missing)} without a value (pass "
                "validation data for val_ fields)."
            )
        self.model.save(self.filepath.format(epoch=epoch + 1, **logs))


# The values a checkpoint's filepath may name: the epoch, the loss and the known metrics.
_LOGGED = ("loss", *training_metrics.METRICS, *training_metrics.ACCURACY_NAMES)
CHECKPOINT_FIELDS = ("epoch", *_LOGGED, *(f"val_{name}" for name in _LOGGED))


def _fields(pattern: str) -> list[str]:
    """The field names of a format string (``""`` for ``{}``)."""
    return [field for _, field, _, _ in string.Formatter().parse(pattern) if field is not None]


def _checked_pattern(filepath: object) -> str:
    """``filepath`` as a string whose format fields are known and format a sample epoch."""
    owner = "ModelCheckpoint"
    if not isinstance(filepath, (str, os.PathLike)):
        raise TypeError(f"{owner}: expected filepath to be a path (str or os.PathLike); got "
                        f"{filepath!r}.")
    pattern = os.fspath(filepath)
    expected = ("a path whose {fields} are epoch, loss or a metric name (with val_ for "
                "validation), e.g. 'model_{epoch:02d}_{val_loss:.3f}.npz'")
    try:
        fields = _fields(pattern)
    except ValueError as error:  # a lone brace
        raise ValueError(f"{owner}: expected filepath to be {expected}; got {pattern!r} "
                         f"({error}).") from None
    unknown = [field or "{}" for field in fields if field not in CHECKPOINT_FIELDS]
    if unknown:
        raise ValueError(f"{owner}: expected filepath to be {expected}; got {pattern!r} with "
                         f"unknown field(s) {', '.join(unknown)}.")
    try:
        pattern.format(epoch=1, **dict.fromkeys(CHECKPOINT_FIELDS[1:], 0.5))
    except (ValueError, TypeError) as error:  # a format spec that does not fit the value
        raise ValueError(f"{owner}: expected filepath to be {expected}; got {pattern!r} "
                         f"({error}).") from None
    return pattern

"""Callbacks for ``Sequential.fit``: progress lines, early stopping, time limits, checkpoints.

A callback's hooks receive the epoch (or batch) index and a ``logs`` dict such as
``{"loss": 0.12, "val_loss": 0.15, "seconds": 3.2}``; ``self.model`` is the model being fitted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any


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
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"StepLimit: expected steps to be a positive int; got {steps!r}.")
        self.steps, self.done = steps, 0

    def on_batch_end(self, batch: int, logs: dict[str, float]) -> None:
        self.done += 1
        if self.done >= self.steps:
            self.model.stop_training = True


class _Monitor(Callback):
    """Tracks the best value of ``monitor`` ("min" or "max" mode)."""

    def __init__(self, monitor: str, mode: str, min_delta: float) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"{type(self).__name__}: expected mode 'min' or 'max'; got {mode!r}.")
        self.monitor, self.mode, self.min_delta = monitor, mode, abs(min_delta)
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
        self.patience = patience
        self.restore_best_weights = restore_best_weights
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
    """Save the model in the native format after every epoch (``filepath`` may contain
    ``{epoch}``), or only when ``monitor`` improved with ``save_best_only``."""

    def __init__(
        self,
        filepath: str,
        monitor: str = "val_loss",
        save_best_only: bool = False,
        mode: str = "min",
    ) -> None:
        super().__init__(monitor, mode, 0.0)
        self.filepath = str(filepath)
        self.save_best_only = save_best_only

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if self.save_best_only and not self._improved(logs):
            return
        self.model.save(self.filepath.format(epoch=epoch + 1, **logs))

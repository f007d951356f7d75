"""What the ``convlstm`` command shares between its subcommands: the usage error and the
progress bar. Together with :mod:`convlstm.cli` and :mod:`convlstm.demo`, the only code that
prints."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from convlstm.callbacks import Callback


class UsageError(Exception):
    """A problem with the user's input: reported in one line, exit status 2."""


class ProgressBar(Callback):
    """``step 40/300 [#####.....] loss 0.0213  1m05s left`` on a stream (stderr by default).

    On a terminal the line is redrawn in place (and cleared, so a shorter line leaves nothing
    behind); elsewhere (a log file, a pipe) a full line is printed every tenth of the way.

    Args:
        total_steps: the steps the bar runs to.
        stream: where to write.
        loss_name: the label of the loss, e.g. "bce".
    """

    def __init__(self, total_steps: int, stream: TextIO | None = None,
                 loss_name: str = "loss") -> None:
        self.total, self.stream = total_steps, stream or sys.stderr
        self.loss_name = loss_name
        self.step, self.started = 0, time.perf_counter()
        self.interactive = self.stream.isatty()
        self.losses: list[float] = []

    def on_batch_end(self, batch: int, logs: dict[str, float]) -> None:
        self.step += 1
        self.losses.append(logs["loss"])
        if not self.interactive and self.step % max(1, self.total // 10) and self.step < self.total:
            return
        elapsed = time.perf_counter() - self.started
        left = elapsed / self.step * max(0, self.total - self.step)
        filled = min(20, round(20 * self.step / self.total))
        line = (f"step {self.step}/{self.total} [{'#' * filled}{'.' * (20 - filled)}] "
                f"{self.loss_name} {logs['loss']:.4f}  {duration(left)} left")
        if self.interactive:
            end = "" if self.step < self.total else "\n"
            print(f"\r\x1b[K{line}", end=end, file=self.stream, flush=True)
        else:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        """End the line on a terminal when training stopped before the last step."""
        if self.interactive and 0 < self.step < self.total:
            print(file=self.stream, flush=True)


def duration(seconds: float) -> str:
    """``1m05s`` or ``42s``."""
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"

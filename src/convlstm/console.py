"""What the ``convlstm`` command shares between its subcommands: the usage error, the refusal
of flags that do nothing, the output folder and the progress bar. Together with
:mod:`convlstm.cli` and :mod:`convlstm.demo`, the only code that prints."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TextIO

from convlstm.callbacks import Callback


class UsageError(Exception):
    """A problem with the user's input: reported in one line, exit status 2."""


def refuse_unused(given: set[str], flags: tuple[str, ...], where: str) -> None:
    """Refuse the ``flags`` written in ``given`` that do nothing ``where`` (e.g. "with --data"),
    rather than ignore them silently."""
    unused = [flag for flag in flags if flag in given]
    if unused:
        raise UsageError(f"{'/'.join(unused)}: {'has' if len(unused) == 1 else 'have'} no "
                         f"effect {where}")


def output_folder(out: str | os.PathLike) -> Path:
    """``--out`` made if it does not exist; refuses a file, or a folder that cannot be made or
    written to."""
    if not os.fspath(out):  # Path("") is the current folder
        raise UsageError("--out: expected a folder; got ''")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out: {out} is a file, not a folder")
    if out.is_symlink() and not out.exists():
        raise UsageError(f"--out: {out} is a symbolic link to nothing")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"--out: cannot make the folder {out}: {error.strerror}") from None
    if not os.access(out, os.W_OK):
        raise UsageError(f"--out: the folder {out} is not writable")
    return out


class ProgressBar(Callback):
    """A training progress bar on a stream (stderr by default), with labelled metrics.

    On a terminal or in a notebook it is a tqdm bar when tqdm is installed, else a line redrawn
    in place (and cleared, so a shorter line leaves nothing behind):
    ``step 40/300 [#####...............] bce 0.0213  mae 0.0410  1m05s left``. Elsewhere (a log
    file, a pipe) that line is printed whole every tenth of the way, with no carriage returns.

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
        self.interactive = self.stream.isatty() or "ipykernel" in sys.modules
        self.losses: list[float] = []
        self.bar = _tqdm_bar(total_steps, self.stream) if self.interactive else None

    def on_batch_end(self, batch: int, logs: dict[str, float]) -> None:
        self.step += 1
        self.losses.append(logs["loss"])
        values = {self.loss_name if key == "loss" else key: f"{value:.4f}"
                  for key, value in logs.items()}
        if self.bar is not None:
            self.bar.set_postfix(values, refresh=False)
            self.bar.update(1)
            return
        if not self.interactive and self.step % max(1, self.total // 10) and self.step < self.total:
            return
        labelled = "  ".join(f"{key} {value}" for key, value in values.items())
        line = progress_line("step", self.step, self.total, self.started, labelled)
        if self.interactive:
            end = "" if self.step < self.total else "\n"
            print(f"\r\x1b[K{line}", end=end, file=self.stream, flush=True)
        else:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        """End the bar (also when training stopped before the last step)."""
        if self.bar is not None:
            self.bar.close()
        elif self.interactive and 0 < self.step < self.total:
            print(file=self.stream, flush=True)


def _tqdm_bar(total: int, stream: TextIO):
    """A tqdm bar (the notebook widget in Jupyter), or None without tqdm."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, file=stream, unit="step", dynamic_ncols=True, leave=True)


def progress_line(unit: str, done: int, total: int, started: float, middle: str = "") -> str:
    """``step 40/300 [###.................] <middle>  1m05s left``, the time left extrapolated
    from ``started`` (a ``time.perf_counter()``)."""
    left = (time.perf_counter() - started) / done * max(0, total - done)
    filled = min(20, round(20 * done / total))
    bar = "#" * filled + "." * (20 - filled)
    return f"{unit} {done}/{total} [{bar}] " + (f"{middle}  " if middle else "") + (
        f"{duration(left)} left")


def duration(seconds: float) -> str:
    """``1m05s`` or ``42s``."""
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"

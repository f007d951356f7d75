"""The ``convlstm`` command's argument parsing: a parser whose errors are one line, typed
parsers for numeric flags (each refuses a value outside its range by the flag's name), and
the translation of a lower layer's argument names into the flags behind them."""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable
from typing import Any, NoReturn

EXIT_USAGE = 2

FLAGS = {"batch_size": "--batch-size", "learning_rate": "--learning-rate",
         "validation_split": "--validation-split", "opset": "--opset"}
"""Python arguments that the command fills from one flag each: their names in a lower layer's
error message become the flag's."""


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that reports a usage error in one line (``convlstm train: error:
    argument --batch-size: expected an integer >= 1; got 0``), exit status 2, and takes no
    abbreviated flags (so the flags given can be told from the argument list)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


class DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default, unless it has none (None, a flag) or its help names it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


def integer(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """A parser of integers from ``minimum`` to ``maximum`` (no upper bound: None)."""
    wanted = f"an integer >= {minimum}" if maximum is None else (
        f"an integer from {minimum} to {maximum:,}")

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}; got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"expected {wanted}; got {value}")
        return value

    return parse


def number(above: float, below: float = math.inf, or_equal: bool = False,
           up_to: bool = False) -> Callable[[str], float]:
    """A parser of finite numbers greater than ``above`` (``or_equal``: or equal to it) and
    less than ``below`` (``up_to``: or equal to it)."""
    wanted = f"a finite number {'>=' if or_equal else '>'} {above:g}" + (
        f" and {'<=' if up_to else '<'} {below:g}" if below < math.inf else "")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}; got {text!r}") from None
        if not (above <= value if or_equal else above < value) or not (
                value <= below if up_to else value < below) or not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected {wanted}; got {text!r}")
        return value

    return parse


def given_flags(argv: list[str]) -> set[str]:
    """The flags written in ``argv`` (``--filters 8`` and ``--filters=8`` alike)."""
    return {token.split("=", 1)[0] for token in argv if token.startswith("--")}


def in_flag_terms(message: str) -> str:
    """``message`` with the Python argument names of :data:`FLAGS` replaced by their flags,
    where they stand alone: not inside a path or a quoted name (``runs/batch_size.npy``)."""
    for name, flag in FLAGS.items():
        message = re.sub(rf"(?<![\w./\\'\"-]){name}(?![\w/\\'\"-]|\.\w)", flag, message)
    return message


def report(command: str, error: BaseException | str) -> int:
    """Print ``convlstm <command>: error: <error>`` as one line on stderr; returns 2."""
    text = " ".join(in_flag_terms(str(error)).split())
    print(f"convlstm {command}: error: {text}", file=sys.stderr)
    return EXIT_USAGE

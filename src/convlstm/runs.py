"""A training run's folder, as ``convlstm train`` keeps it: ``model.npz``, ``training.json``
(the progress and the architecture flags) and, for Moving MNIST, ``optimizer.npz``. Every file
is written whole or not at all; a folder that holds a run is only continued (``--resume``) or
replaced (``--overwrite``), and a resumed run keeps its architecture."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from convlstm import limits, saving
from convlstm._files import atomic_write, regular_file
from convlstm.console import UsageError
from convlstm.optimizers import Optimizer

MODEL, STATE, OPTIMIZER = "model.npz", "training.json", "optimizer.npz"
ARCHITECTURE_FLAGS = ("--filters", "--layers", "--kernel")
"""The flags that shape the model; a resumed run must not change them."""


def check_folder(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to start a run over one (without ``overwrite``) or to resume nothing."""
    held = [name for name in (MODEL, STATE, OPTIMIZER) if (out / name).exists()]
    if resume and not {MODEL, STATE} <= set(held):
        raise UsageError(f"--resume: nothing to resume in {out}: it needs {MODEL} and {STATE}; "
                         f"it has {', '.join(held) or 'neither'}")
    if not resume and held and not overwrite:
        raise UsageError(f"--out: {out} already holds a run ({', '.join(held)}); pass --resume "
                         "to continue it or --overwrite to start again")


def architecture(args: Any) -> dict[str, int]:
    """The architecture flags' values, as ``training.json`` records them."""
    return {flag: getattr(args, flag[2:]) for flag in ARCHITECTURE_FLAGS}


def check_architecture(state: dict, args: Any, given: set[str], path: Path) -> None:
    """Refuse architecture flags given on ``--resume`` that differ from the checkpoint's,
    listing each difference."""
    saved, wanted = state.get("architecture", {}), architecture(args)
    differences = [f"{flag} is {saved[flag]} in the checkpoint, {wanted[flag]} given"
                   for flag in ARCHITECTURE_FLAGS
                   if flag in given and flag in saved and saved[flag] != wanted[flag]]
    if differences:
        raise UsageError(f"--resume: the model in {path.parent} was trained with other "
                         f"architecture flags: {'; '.join(differences)} (leave them out to "
                         "keep the checkpoint's)")


def read_state(path: Path, kinds: dict[str, type | tuple[type, ...]]) -> dict:
    """``training.json``, checked: a dict whose entries ``kinds`` names have those types (ints
    not negative), with an optional ``architecture`` of :data:`ARCHITECTURE_FLAGS` values."""
    try:
        regular_file(f"--resume: {path}", str(path), "a training.json file")
        with open(path, "rb") as file:  # no more than the limit: a larger file is refused
            text = file.read(limits.MAX_CONFIG_BYTES + 1)
        state = limits.parse_config(f"--resume: {path}", text, "training.json")
    except OSError as error:
        raise UsageError(f"--resume: cannot read {path}: {error.strerror}") from None
    except ValueError as error:
        raise UsageError(str(error)) from None
    if not isinstance(state, dict):
        wrong = list(kinds)
    else:
        wrong = [key for key, kind in kinds.items() if not _fits(state.get(key), kind)]
        flags = state.get("architecture", {})
        if not isinstance(flags, dict) or not all(
                flag in ARCHITECTURE_FLAGS and _fits(value, int) for flag, value in flags.items()):
            wrong.append("architecture")
    if wrong:
        expected = ", ".join(f"{key} ({_kind_name(kinds.get(key, dict))})" for key in wrong)
        raise UsageError(f"--resume: {path} is not a training state of this command: expected "
                         f"{expected}")
    return state


def _fits(value: object, kind: type | tuple[type, ...]) -> bool:
    """Whether ``value`` is of ``kind``: a number finite and not negative (a bool is no number),
    a list of numbers or nulls (the losses; NaN is a loss that diverged)."""
    if isinstance(value, bool):
        return kind is bool
    if isinstance(value, list):
        return kind is list and all(item is None or (isinstance(item, (int, float))
                                                     and not isinstance(item, bool))
                                    for item in value)
    if isinstance(value, (int, float)):
        return isinstance(value, kind) and math.isfinite(value) and value >= 0
    return isinstance(value, kind)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    """``int`` -> "int >= 0", ``list`` -> "list of numbers", as :func:`_fits` takes them."""
    names = {int: "int >= 0", float: "finite float >= 0", list: "list of numbers",
             dict: "dict of --flag: int"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(item, item.__name__) for item in kinds)


def save_optimizer(optimizer: Optimizer, path: Path) -> None:
    """The optimizer's step count and slots (Adam's moments), so a resumed run continues them."""
    with atomic_write(path) as file:
        np.savez(file, **optimizer.state_arrays())


def restore_optimizer(optimizer: Optimizer, path: Path, params: dict[str, np.ndarray]) -> None:
    """Put back what :func:`save_optimizer` wrote (nothing when an older run has no file),
    checked against the model's trainable ``params`` (by name, as ``optimizer`` keys them):
    a non-negative integer ``iterations``, and float slots only for those params, of their
    shapes."""
    if not os.path.lexists(path):
        return  # an older run: the moments start again from zero
    where = f"--resume: {path}"
    try:
        regular_file(where, str(path), "an optimizer.npz file")
        saved = saving.read_arrays(where, str(path), "optimizer state")
        optimizer.load_state_arrays(saved, params, where)
    except ValueError as error:
        raise UsageError(str(error)) from None

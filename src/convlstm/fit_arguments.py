"""The arguments of a training run (``Sequential.fit``, ``run_epochs``,
``convlstm.distributed.fit``), checked once before any data is touched or any cluster is
reached."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from convlstm import _validation as check
from convlstm.callbacks import Callback


def fit_options(
    owner: str, *, epochs: object, batch_size: object, shuffle: object, callbacks: object,
    verbose: object, seed: object,
) -> dict[str, Any]:
    """The arguments of :meth:`Sequential.fit` that :func:`run_epochs` takes, checked (before
    any data is touched or any cluster is reached) and normalised: ints, a bool, a list of
    callbacks (None is none), verbose 0, 1 or 2.

    Raises:
        TypeError: an argument of the wrong kind (bools are not counts).
        ValueError: a count below 1, a verbose other than 0, 1 or 2.
    """
    if callbacks is None:
        callbacks = []
    if isinstance(callbacks, (str, Callback)) or not isinstance(callbacks, Sequence) or not all(
            isinstance(callback, Callback) for callback in callbacks):
        raise TypeError(f"{owner}: expected callbacks to be a list of convlstm.callbacks "
                        f"objects; got {check.describe(callbacks)}.")
    if isinstance(verbose, bool):
        verbose = int(verbose)
    if not isinstance(verbose, (int, np.integer)) or verbose not in (0, 1, 2):
        raise ValueError(f"{owner}: expected verbose to be 0, 1 or 2; got {verbose!r}.")
    return {
        "epochs": check.positive_int(owner, "epochs", epochs),
        "batch_size": check.positive_int(owner, "batch_size", batch_size),
        "shuffle": check.boolean(owner, "shuffle", shuffle),
        "callbacks": list(callbacks),
        "verbose": int(verbose),
        "seed": check.seed_arg(owner, seed),
    }


def validation_pair(owner: str, validation_data: object) -> tuple[Any, Any]:
    """``validation_data`` as its two items, ``(x_val, y_val)``."""
    if not isinstance(validation_data, (tuple, list)):
        raise TypeError(f"{owner}: expected validation_data to be a pair (x_val, y_val); got "
                        f"{check.describe(validation_data)}.")
    if len(validation_data) != 2:
        raise ValueError(f"{owner}: expected validation_data to be a pair (x_val, y_val); got "
                         f"{len(validation_data)} items.")
    return validation_data[0], validation_data[1]


def training_samples(owner: str, samples: int, validation_split: object) -> int:
    """How many of ``samples`` stay for training when the last ``validation_split`` of them
    is held out (all of them for a split of 0); both parts must keep a sample."""
    if isinstance(validation_split, (bool, np.bool_)) or not isinstance(validation_split,
                                                                        numbers.Real):
        raise TypeError(f"{owner}: expected validation_split in [0, 1) (a float); got "
                        f"{validation_split!r}.")
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"{owner}: expected validation_split in [0, 1); got "
                         f"{validation_split!r}.")
    if validation_split == 0:
        return samples
    split = math.floor(samples * (1.0 - validation_split))
    if not 0 < split < samples:
        raise ValueError(
            f"{owner}: expected validation_split to leave at least one training and one "
            f"validation sample of the {samples}; got {validation_split!r} ({samples - split} "
            "held out)."
        )
    return split

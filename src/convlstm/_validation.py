"""Argument checks shared by every layer.

Each check raises ``TypeError`` for a value of the wrong kind and ``ValueError`` for a value of
the right kind but wrong size or shape, with a message naming the owner (``"ConvLSTM2D"`` or
``"ConvLSTM2D.forward"``), the argument, what was expected and what was given.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Sequence

import numpy as np

FLOAT_DTYPES = ("float32", "float64")


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def positive_int(owner: str, name: str, value: object) -> int:
    """Return ``value`` as an int, requiring an integer >= 1."""
    if not _is_int(value):
        raise TypeError(f"{owner}: expected {name} to be a positive int; got {value!r}.")
    if value < 1:
        raise ValueError(f"{owner}: expected {name} to be a positive int; got {value!r}.")
    return int(value)


def non_negative_int(owner: str, name: str, value: object) -> int:
    """Return ``value`` as an int, requiring an integer >= 0."""
    if not _is_int(value):
        raise TypeError(f"{owner}: expected {name} to be an int >= 0; got {value!r}.")
    if value < 0:
        raise ValueError(f"{owner}: expected {name} to be an int >= 0; got {value!r}.")
    return int(value)


def finite_number(
    owner: str, name: str, value: object, what: str, valid: Callable[[float], bool] = math.isfinite
) -> float:
    """Return ``value`` as a float if it is a finite real number (not a bool) for which ``valid``
    holds; ``what`` describes the expectation in the message (``"a positive float"``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: expected {name} to be {what}; got {value!r}.")
    number = float(value)
    if not (math.isfinite(number) and valid(number)):
        raise ValueError(f"{owner}: expected {name} to be {what}; got {value!r}.")
    return number


def int_tuple(owner: str, name: str, value: object, length: int, minimum: int = 1) -> tuple:
    """Return ``value`` (an int or a sequence of ``length`` ints) as a tuple of ints >= minimum."""
    what = f"an int >= {minimum} or a tuple of {length} such ints"
    if _is_int(value):
        items = (value,) * length
    elif isinstance(value, Sequence) and not isinstance(value, str):
        items = tuple(value)
        if len(items) != length or not all(_is_int(item) for item in items):
            raise TypeError(f"{owner}: expected {name} to be {what}; got {value!r}.")
    else:
        raise TypeError(f"{owner}: expected {name} to be {what}; got {value!r}.")
    if any(item < minimum for item in items):
        raise ValueError(f"{owner}: expected {name} to be {what}; got {value!r}.")
    return tuple(int(item) for item in items)


def padding_arg(owner: str, value: object, length: int, allow_explicit: bool) -> str | tuple:
    """Normalise a padding argument.

    Returns ``"same"`` or ``"valid"`` for the Keras names (any case), or, when ``allow_explicit``,
    a tuple of ``length`` non-negative ints for symmetric zero padding given as an int or tuple.
    """
    if isinstance(value, str):
        mode = value.lower()
        if mode in ("same", "valid"):
            return mode
        raise ValueError(f"{owner}: expected padding to be 'same' or 'valid'; got {value!r}.")
    if not allow_explicit:
        raise TypeError(f"{owner}: expected padding to be 'same' or 'valid'; got {value!r}.")
    return int_tuple(owner, "padding", value, length, minimum=0)


def rate(owner: str, name: str, value: object) -> float:
    """Return ``value`` as a float in [0, 1) (a dropout rate)."""
    return finite_number(owner, name, value, "a float in [0, 1)", lambda v: 0.0 <= v < 1.0)


def choice(owner: str, name: str, value: object, options: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``options``."""
    if not isinstance(value, str) or value not in options:
        listed = ", ".join(repr(option) for option in options)
        raise ValueError(f"{owner}: expected {name} to be one of {listed}; got {value!r}.")
    return value


def boolean(owner: str, name: str, value: object) -> bool:
    """Return ``value`` if it is a bool (NumPy bools included)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: expected {name} to be True or False; got {value!r}.")
    return bool(value)


def float_dtype(owner: str, value: object) -> np.dtype:
    """Return the NumPy dtype for ``"float32"`` or ``"float64"`` (or the dtype objects)."""
    try:
        dtype = np.dtype(value)
    except (TypeError, ValueError, SyntaxError):  # NumPy parses strings such as "0:" or "01"
        dtype = None
    if dtype is None or dtype.name not in FLOAT_DTYPES:
        raise ValueError(f"{owner}: expected dtype to be 'float32' or 'float64'; got {value!r}.")
    return dtype


def seed_arg(owner: str, value: object) -> int | None:
    """Return ``value`` if it is None or a non-negative int: a ``TypeError`` for another kind,
    a ``ValueError`` for a negative int."""
    if value is None:
        return None
    if not _is_int(value) or value < 0:
        error = TypeError if not _is_int(value) else ValueError
        raise error(f"{owner}: expected seed to be None or a non-negative int; got {value!r}.")
    return int(value)


def shape_text(names: Sequence[object]) -> str:
    """Format a shape whose entries are ints or dimension names: ``(batch, time, 32, 32, 1)``."""
    items = [str(name) for name in names]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def describe(value: object) -> str:
    """A short account of what was given: an array's shape and dtype, a sequence's length and
    item kinds, or the repr of anything else (cut to 60 characters)."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {shape_text(value.shape)} and dtype {value.dtype}"
    if isinstance(value, Sequence) and not isinstance(value, str):
        return f"a {type(value).__name__} of {len(value)} items ({item_kinds(value)})"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def item_kinds(items: Sequence[object]) -> str:
    """The kinds of the first few ``items``: ``"list of length 2, None"``."""
    def kind(item: object) -> str:
        if isinstance(item, np.ndarray):
            return f"array of shape {shape_text(item.shape)}"
        if isinstance(item, Sequence) and not isinstance(item, str):
            return f"{type(item).__name__} of length {len(item)}"
        return "None" if item is None else type(item).__name__

    return ", ".join(kind(item) for item in items[:4]) + (", ..." if len(items) > 4 else "")


def real_array(owner: str, name: str, value: object) -> np.ndarray:
    """``np.asarray(value)``, refusing ragged nesting and complex, object, string or other
    non-real kinds."""
    try:
        array = np.asarray(value)
    except ValueError:  # NumPy refuses nested lists of unequal lengths
        raise ValueError(
            f"{owner}: expected {name} to be a rectangular numeric array; got a ragged "
            f"{type(value).__name__} (nested sequences of unequal lengths)."
        ) from None
    if array.dtype.kind not in "biuf":
        given = f"dtype {array.dtype}" if isinstance(value, np.ndarray) or array.ndim else (
            describe(value))
        raise TypeError(
            f"{owner}: expected {name} to be a real numeric array (bool, int or float); "
            f"got {given}."
        )
    return array


def numeric_array(owner: str, name: str, value: object, dtype: np.dtype) -> np.ndarray:
    """Return ``value`` as an array of ``dtype``.

    When ``value`` already is an array of ``dtype`` it is returned itself (no copy), so callers
    must not write into the result; anything else is converted to a new array. Integers and
    booleans are cast; complex, object, string or other kinds raise ``TypeError``.
    """
    return real_array(owner, name, value).astype(dtype, copy=False)


def fits_in_memory(owner: str, what: str, shape: Sequence[int], dtype: np.dtype) -> None:
    """Raise ``ValueError`` when an array of ``shape`` and ``dtype`` would need more bytes than
    this machine's memory (the request would fail or thrash rather than compute); ``what``
    names the array and the arguments that set its shape."""
    needed = math.prod(int(n) for n in shape) * np.dtype(dtype).itemsize
    if needed > _physical_memory():
        raise ValueError(
            f"{owner}: expected {what} to fit in this machine's "
            f"{_physical_memory() / 2**30:,.1f} GiB of memory; got {shape_text(shape)}, "
            f"{needed / 2**30:,.1f} GiB of {np.dtype(dtype)}."
        )


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX: assume a large machine
        return 1 << 40


def check_shape(owner: str, name: str, array: np.ndarray, expected: Sequence[object]) -> None:
    """Raise ``ValueError`` unless ``array.shape`` matches ``expected``.

    ``expected`` holds ints (which must match) and strings (names of free dimensions).
    """
    shape = array.shape
    matches = len(shape) == len(expected) and all(
        isinstance(want, str) or want == got for want, got in zip(expected, shape, strict=False)
    )
    if not matches:
        raise ValueError(
            f"{owner}: expected {name} of shape {shape_text(expected)}; got {shape_text(shape)}."
        )


# Keras 3's names for the seed's arguments (the ConvRNN layers and cells, MaxPooling): one table.
KERAS_NAMES = {"filters": "out_channels", "strides": "stride", "dilation_rate": "dilation"}


def seed_keywords(owner: str, positional: Sequence[str], args: Sequence[object],
                  kwargs: dict[str, object]) -> dict[str, object]:
    """``args`` bound to the names ``positional``, with ``kwargs``, every Keras name of
    :data:`KERAS_NAMES` replaced by the seed's; giving one argument twice is a ``TypeError``."""
    if len(args) > len(positional):
        raise TypeError(
            f"{owner}: expected at most {len(positional)} positional arguments "
            f"({', '.join(positional)}); got {len(args)}."
        )
    given = dict(kwargs)
    for name, value in zip(positional, args):
        if name in given:
            raise TypeError(f"{owner}: got {name} both by position and by keyword.")
        given[name] = value
    for keras, seed in KERAS_NAMES.items():
        if keras in given:
            if seed in given:
                raise TypeError(
                    f"{owner}: got both {seed} and {keras} (Keras' name for {seed}); pass one."
                )
            given[seed] = given.pop(keras)
    return given

"""The limits a model file must keep, in one place, and the checks that enforce them.

A file (native ``.npz``, Keras ``.keras``/``.h5``) is untrusted input: its config could nest
thousands deep, describe a million layers or a weight of terabytes. Loading checks these limits
before it parses, builds or allocates anything bigger than them, and refuses with a
``ValueError`` naming the file, the limit and what the file asked for. Each limit is a module
constant, so a program that needs more can raise it (``convlstm.limits.MAX_WEIGHT_ELEMENTS =
...``) before loading.
"""

from __future__ import annotations

import contextvars
import json
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

MAX_CONFIG_BYTES = 4 * 2**20
"""Bytes of one model config's JSON (a native file's config, a ``.keras`` file's config.json
or metadata.json, a legacy ``.h5`` file's model_config)."""
MAX_CONFIG_DEPTH = 100
"""Nesting of JSON lists and objects in a config (a plain model nests about 6 deep)."""
MAX_CONFIG_OBJECTS = 10_000
"""Objects with a ``class_name`` in one config (layers, wrapped layers, initializers, ...),
each stacked cell of a ``num_layers`` layer counted as one."""
MAX_STACKED_CELLS = 1_000
"""``num_layers`` of one ConvLSTM or ConvGRU layer."""
MAX_INTEGER_BITS = 256
"""Bits of one integer in a config (a seed may be large; no shape or count comes near)."""
MAX_FILE_ARRAYS = 10_000
"""Arrays in one native model file."""
MAX_WEIGHT_ELEMENTS = 2**28
"""Elements of one weight array (1 GiB as float32) read from a file or built while loading."""
MAX_TOTAL_WEIGHT_ELEMENTS = 2**29
"""Elements of all the weights of one loaded model (2 GiB as float32)."""
MAX_WEIGHTS_FILE_BYTES = 8 * MAX_TOTAL_WEIGHT_ELEMENTS + 2**26
"""Bytes of the HDF5 weights inside a ``.keras`` archive: every weight as float64, plus 64 MiB
of HDF5 structure."""

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NESTING = np.zeros(256, np.int32)  # +1 for each byte that opens a list or object, -1 closes
_NESTING[list(b"[{")], _NESTING[list(b"]}")] = 1, -1


def parse_config(where: str, text: str | bytes, what: str) -> Any:
    """The JSON value of ``text`` (``what`` names it in messages, e.g. "config.json"), after
    checking :data:`MAX_CONFIG_BYTES`, :data:`MAX_CONFIG_DEPTH` and :func:`check_config`."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    if len(data) > MAX_CONFIG_BYTES:
        raise ValueError(f"{where}: {what} is {len(data):,} bytes; expected at most "
                         f"MAX_CONFIG_BYTES = {MAX_CONFIG_BYTES:,}.")
    depth = json_depth(data)
    if depth > MAX_CONFIG_DEPTH:
        raise ValueError(f"{where}: {what} nests {depth} levels deep; expected at most "
                         f"MAX_CONFIG_DEPTH = {MAX_CONFIG_DEPTH}.")
    try:
        value = json.loads(data, object_pairs_hook=_unique_keys)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{where}: {what} is not valid JSON ({error}).") from None
    except ValueError as error:  # a repeated key, or an integer beyond int()'s digit limit
        raise ValueError(f"{where}: {what} is refused: {error}.") from None
    check_config(where, value, what)
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's dict; a key given twice is refused (which one counts is ambiguous:
    parsers differ)."""
    value = dict(pairs)
    if len(value) < len(pairs):
        seen: set[str] = set()
        repeated = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise ValueError(f"it repeats the key {repeated[:40]!r} in one object")
    return value


def json_depth(data: bytes) -> int:
    """The deepest nesting of lists and objects in JSON ``data`` (brackets inside strings do not
    count), found without parsing it."""
    steps = _NESTING[np.frombuffer(_STRING.sub(b'""', data), np.uint8)]
    return int(np.cumsum(steps).max(initial=0))


def check_config(where: str, value: Any, what: str = "the config") -> None:
    """Refuse a parsed config that describes more than :data:`MAX_CONFIG_OBJECTS` objects, one
    layer of more than :data:`MAX_STACKED_CELLS` stacked cells, nests deeper than
    :data:`MAX_CONFIG_DEPTH` or holds an integer of more than :data:`MAX_INTEGER_BITS`; walks
    without recursion."""
    objects = 0
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > MAX_CONFIG_DEPTH:
            raise ValueError(f"{where}: {what} nests more than MAX_CONFIG_DEPTH = "
                             f"{MAX_CONFIG_DEPTH} levels deep.")
        if isinstance(item, int) and item.bit_length() > MAX_INTEGER_BITS:
            raise ValueError(f"{where}: {what} holds an integer of {item.bit_length():,} bits; "
                             f"expected at most MAX_INTEGER_BITS = {MAX_INTEGER_BITS}.")
        if isinstance(item, dict):
            if "class_name" in item:
                objects += 1 + _extra_cells(where, item)
            pending += [(child, depth + 1) for child in item.values()]
        elif isinstance(item, list):
            pending += [(child, depth + 1) for child in item]
        if objects > MAX_CONFIG_OBJECTS:
            raise ValueError(f"{where}: {what} describes more than MAX_CONFIG_OBJECTS = "
                             f"{MAX_CONFIG_OBJECTS:,} layers and other objects.")


def _extra_cells(where: str, spec: dict) -> int:
    """The cells beyond the first of a layer spec with an int ``num_layers`` (0 otherwise)."""
    config = spec.get("config")
    cells = config.get("num_layers") if isinstance(config, dict) else None
    if not isinstance(cells, int) or isinstance(cells, bool):
        return 0
    if cells > MAX_STACKED_CELLS:
        raise ValueError(f"{where}: layer {str(spec['class_name'])[:40]!r} has num_layers = "
                         f"{cells}; expected at most MAX_STACKED_CELLS = {MAX_STACKED_CELLS:,}.")
    return max(0, cells - 1)


def check_array(where: str, name: str, shape: tuple[int, ...], elements_so_far: int = 0) -> int:
    """Refuse an array of ``shape`` that exceeds :data:`MAX_WEIGHT_ELEMENTS`, or that brings
    the total to more than :data:`MAX_TOTAL_WEIGHT_ELEMENTS`; returns the new total."""
    elements = math.prod(shape)
    if elements > MAX_WEIGHT_ELEMENTS:
        raise ValueError(f"{where}: {name} of shape {tuple(shape)} has {elements:,} elements; "
                         f"expected at most MAX_WEIGHT_ELEMENTS = {MAX_WEIGHT_ELEMENTS:,}.")
    total = elements_so_far + elements
    if total > MAX_TOTAL_WEIGHT_ELEMENTS:
        raise ValueError(f"{where}: the weights reach {total:,} elements with {name}; expected "
                         f"at most MAX_TOTAL_WEIGHT_ELEMENTS = {MAX_TOTAL_WEIGHT_ELEMENTS:,}.")
    return total


class _Budget:
    def __init__(self, where: str) -> None:
        self.where, self.elements = where, 0


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("budget", default=None)


@contextmanager
def weight_budget(where: str) -> Iterator[None]:
    """While the block runs, every weight an initializer draws is charged by
    :func:`charge_weight` against the limits (``where`` starts the error message)."""
    token = _BUDGET.set(_Budget(where))
    try:
        yield
    finally:
        _BUDGET.reset(token)


@contextmanager
def building(cls: type, config: Any) -> Iterator[None]:
    """The limits while ``cls.from_config`` builds from ``config``: the outermost call checks the
    config (:func:`check_config`, ``num_layers`` of ``cls`` itself included) and opens a
    :func:`weight_budget`; the calls it makes for nested layers (and the ones a file's loading
    makes) share the budget already open."""
    if _BUDGET.get() is not None:
        yield
        return
    where = f"{cls.__name__}.from_config"
    check_config(where, {"class_name": cls.__name__, "config": config})
    with weight_budget(where):
        yield


def budget_open() -> bool:
    """Whether a :func:`weight_budget` is open: a file, a config or a command's flags are
    building a model, and its weights answer to the limits (stricter than the machine's
    memory) as they are drawn."""
    return _BUDGET.get() is not None


def charge_weight(shape: tuple[int, ...]) -> None:
    """Called before a weight of ``shape`` is drawn: refuses it inside :func:`weight_budget`
    when it breaks a limit; does nothing outside one."""
    budget = _BUDGET.get()
    if budget is not None:
        budget.elements = check_array(budget.where, "a weight", shape, budget.elements)

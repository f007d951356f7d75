"""The native model file: one ``.npz`` holding a JSON config and the weights.

Loading reads it with ``allow_pickle=False`` and rebuilds layers from a fixed registry of
classes, so a file can never run code. Entries: ``format`` ("numpy-convlstm"), ``version``,
``config`` (the JSON of ``serialize(model)``) and ``weight_0000``, ``weight_0001``, ... in
``model.get_weights()`` order; optionally ``state_<layer>_<cell>_h`` / ``_c``, the carried states
of stateful recurrent layers (numbered in the order :func:`_stateful_layers` walks them);
optionally ``metadata``, the JSON of a model's ``metadata`` dict.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
import zlib
from typing import Any, BinaryIO

import numpy as np

from convlstm import limits
from convlstm._files import atomic_write, path_text, regular_file, writable_path
from convlstm.registry import deserialize, serialize

FORMAT = "numpy-convlstm"
VERSION = 1
NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0,
               (2, 0): np.lib.format.read_array_header_2_0}


def _stateful_layers(layer: Any) -> list[Any]:
    """Every stateful recurrent layer inside ``layer`` (itself included), depth first (a
    Bidirectional is found through its two layers)."""
    recurrent = hasattr(layer, "state_names")
    found = [layer] if recurrent and getattr(layer, "stateful", False) else []
    for sublayer in layer.sublayers():
        found += _stateful_layers(sublayer)
    return found


def save(model: Any, path: str | os.PathLike, include_states: bool = False) -> str:
    """Write ``model`` (any registered layer, a Sequential included) to ``path``; returns the
    path written (``.npz`` is appended when missing, as ``np.savez`` does).

    With ``include_states``, the carried states of stateful recurrent layers are saved too,
    and :func:`load` puts them back.
    """
    path = writable_path("save", path)
    if not path.endswith(".npz"):
        path = writable_path("save", path + ".npz")
    entries = {
        "format": np.array(FORMAT),
        "version": np.array(VERSION),
        "config": np.array(json.dumps(serialize(model))),
    }
    if getattr(model, "metadata", None):
        entries["metadata"] = np.array(json.dumps(model.metadata))
    # Through named_params, not get_weights: a layer not built yet is saved with no weights.
    for index, (_, layer, key) in enumerate(model.named_params()):
        entries[f"weight_{index:04d}"] = layer.params[key]
    if include_states:
        for index, layer in enumerate(_stateful_layers(model)):
            for cell, states in enumerate(layer.states or []):
                for name, state in zip(layer.state_names, states):
                    entries[f"state_{index:04d}_{cell:02d}_{name}"] = state
    with atomic_write(path) as file:  # a crash never leaves half a model file
        np.savez(file, **entries)
    return path


def read_arrays(where: str, path: str, what: str = "numpy-convlstm model file"
                ) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` archive at ``path`` (a regular file), each header checked
    against :mod:`convlstm.limits` before its data is read; ``what`` names the file's kind in
    errors, which start with ``where``."""
    try:
        with open(path, "rb") as stream:
            if stream.read(len(np.lib.format.MAGIC_PREFIX)) == np.lib.format.MAGIC_PREFIX:
                raise ValueError(f"{where} is not a {what} (a bare array).")
            with zipfile.ZipFile(stream) as archive:
                members = archive.infolist()
                if len(members) > limits.MAX_FILE_ARRAYS:
                    raise ValueError(f"{where} holds {len(members):,} arrays; expected at most "
                                     f"MAX_FILE_ARRAYS = {limits.MAX_FILE_ARRAYS:,}.")
                entries, elements = {}, 0
                for member in members:
                    name = member.filename.removesuffix(".npy")
                    if name in entries:  # which one counts would be the reader's whim
                        raise ValueError(f"{where} holds two arrays named {name[:80]!r}.")
                    with archive.open(member) as file:
                        entries[name], elements = _read_array(where, name, file,
                                                              member.file_size, elements)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as error:
        if str(error).startswith(where):
            raise
        raise ValueError(f"{where} is not a readable {what} (a truncated or corrupted .npz: "
                         f"{error}).") from None
    return entries


def _read_array(where: str, name: str, file: BinaryIO, size: int,
                elements: int) -> tuple[np.ndarray, int]:
    """The .npy array in ``file`` (``size`` bytes) and the elements read so far with it; its
    header is checked first: no objects, within the limits, the size it promises."""
    header = NPY_HEADERS.get(np.lib.format.read_magic(file))
    if header is None:
        raise ValueError(f"{where}: {name} is not a .npy array of format 1 or 2.")
    shape, _, dtype = header(file)
    if dtype.hasobject:
        raise ValueError(f"{where}: {name} is an object array, which is never unpickled; "
                         "expected numbers or text.")
    elements = limits.check_array(where, name, shape, elements)
    if size != file.tell() + math.prod(shape) * dtype.itemsize:
        raise ValueError(f"{where}: {name} is truncated or corrupted (its header does not "
                         "match its size).")
    file.seek(0)
    return np.lib.format.read_array(file, allow_pickle=False), elements


def _text(where: str, entries: dict[str, np.ndarray], name: str) -> str:
    """The 0-d text entry ``name``."""
    entry = entries.get(name)
    if entry is None or entry.shape != () or entry.dtype.kind != "U":
        raise ValueError(f"{where} has no {name} text; expected a numpy-convlstm model file "
                         f"(entries {', '.join(sorted(entries)[:8])}).")
    return str(entry)


def _version(where: str, entries: dict[str, np.ndarray]) -> int:
    entry = entries.get("version")
    if entry is None or entry.shape != () or entry.dtype.kind not in "iu":
        got = "none" if entry is None else f"{entry.dtype} {entry.shape}"
        raise ValueError(f"{where} has no integer format version; expected an integer "
                         f"1 to {VERSION}; got {got}.")
    if not 1 <= int(entry) <= VERSION:
        raise ValueError(f"{where} has format version {int(entry)}; this library reads 1 to "
                         f"{VERSION}" + ("; upgrade numpy-convlstm." if entry > VERSION else "."))
    return int(entry)


def load(path: str | os.PathLike) -> Any:
    """Read a model written by :func:`save`.

    The file is checked against the limits of :mod:`convlstm.limits` (config size and nesting,
    layers, weight sizes) before anything is built from it.

    Raises:
        FileNotFoundError: no such file.
        TypeError: ``path`` is not a str or os.PathLike.
        ValueError: the file is a folder or a device, truncated, corrupted, not this format,
            breaks a limit, or its weights do not fit its config; the message names the file
            and what is wrong.
    """
    path = path_text("load", path)
    where = f"load: {path!r}"
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: no such file {path!r}.")
    regular_file(where, path, "a model file")
    entries = read_arrays(where, path)
    if entries.get("format", np.array("")).tobytes() != np.array(FORMAT).tobytes():
        raise ValueError(f"{where} is not a numpy-convlstm model file (no format tag).")
    _version(where, entries)
    config = limits.parse_config(where, _text(where, entries, "config"), "the model config")
    try:
        with limits.weight_budget(where):
            model = deserialize(config)
            if hasattr(model, "ensure_built"):
                model.ensure_built()
    except (TypeError, ValueError) as error:
        if str(error).startswith(where):
            raise
        raise ValueError(f"{where} has an invalid model config: {error}") from None
    names = sorted(name for name in entries if name.startswith("weight_"))
    try:
        if names or any(True for _ in model.named_params()):  # else: a layer not built yet
            model.set_weights([entries[name] for name in names])
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where} has weights that do not fit its config: {error}") from None
    if "metadata" in entries:
        metadata = limits.parse_config(where, _text(where, entries, "metadata"), "the metadata")
        if not isinstance(metadata, dict) or not hasattr(model, "metadata"):
            raise ValueError(f"{where} has metadata that is not a model's dict.")
        model.metadata = metadata
    for index, layer in enumerate(_stateful_layers(model)):
        prefix = f"state_{index:04d}_"
        cells = sorted({name[len(prefix) : len(prefix) + 2] for name in entries
                        if name.startswith(prefix)})
        if cells:
            try:
                layer.reset_states([[entries[f"{prefix}{cell}_{name}"]
                                     for name in layer.state_names] for cell in cells])
            except (KeyError, TypeError, ValueError) as error:
                raise ValueError(f"{where} has invalid carried states: {error}") from None
    return model

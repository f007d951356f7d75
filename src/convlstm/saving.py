"""The native model file: one ``.npz`` holding a JSON config and the weights.

Loading reads it with ``allow_pickle=False`` and rebuilds layers from a fixed registry of
classes, so a file can never run code. Entries: ``format`` ("numpy-convlstm"), ``version``,
``config`` (the JSON of ``serialize(model)``) and ``weight_0000``, ``weight_0001``, ... in
``model.get_weights()`` order; optionally ``state_<layer>_<cell>_h`` / ``_c``, the carried states
of stateful recurrent layers (numbered in the order :func:`_stateful_layers` walks them);
optionally ``metadata``, the JSON of a model's ``metadata`` dict.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from convlstm._files import atomic_write
from convlstm.registry import deserialize, serialize

FORMAT = "numpy-convlstm"
VERSION = 1


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
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
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


def load(path: str | os.PathLike) -> Any:
    """Read a model written by :func:`save`.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is truncated, corrupted, not this format, or its weights do not
            fit its config; the message names the file and what is wrong.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: no such file {path!r}.")
    try:
        # From memory: np.load(path) leaves its file open when the archive is unreadable.
        archive = np.load(io.BytesIO(Path(path).read_bytes()), allow_pickle=False)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise ValueError(
            f"load: {path!r} is not a readable numpy-convlstm model file ({error})."
        ) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"load: {path!r} is not a numpy-convlstm model file (a bare array).")
    try:
        with archive:
            entries = {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise ValueError(f"load: {path!r} is truncated or corrupted ({error}).") from None
    if str(entries.get("format", "")) != FORMAT:
        raise ValueError(f"load: {path!r} is not a numpy-convlstm model file (no format tag).")
    if int(entries["version"]) > VERSION:
        raise ValueError(
            f"load: {path!r} has format version {int(entries['version'])}; this library reads "
            f"up to {VERSION}; upgrade numpy-convlstm."
        )
    try:
        model = deserialize(json.loads(str(entries["config"])))
    except (KeyError, json.JSONDecodeError, TypeError, ValueError) as error:
        raise ValueError(f"load: {path!r} has an invalid model config: {error}") from None
    names = sorted(name for name in entries if name.startswith("weight_"))
    if hasattr(model, "ensure_built"):
        model.ensure_built()
    try:
        if names or any(True for _ in model.named_params()):  # else: a layer not built yet
            model.set_weights([entries[name] for name in names])
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"load: {path!r} has weights that do not fit its config: {error}"
        ) from None
    if "metadata" in entries:
        try:
            metadata = json.loads(str(entries["metadata"]))
        except json.JSONDecodeError as error:
            raise ValueError(f"load: {path!r} has invalid metadata: {error}") from None
        if not isinstance(metadata, dict) or not hasattr(model, "metadata"):
            raise ValueError(f"load: {path!r} has metadata that is not a model's dict.")
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
                raise ValueError(f"load: {path!r} has invalid carried states: {error}") from None
    return model

"""The files: :func:`load_keras` reads ``.keras`` archives, ``.weights.h5`` and legacy ``.h5``
files; :func:`save_keras` writes a ``.keras`` archive or a ``.weights.h5`` file."""

from __future__ import annotations

import io
import json
import os
import zipfile
import zlib
from typing import Any

from convlstm import limits
from convlstm._files import atomic_write, path_text, regular_file, writable_path
from convlstm.keras.from_keras import import_model
from convlstm.keras.mapping import (
    FIXED_ZIP_TIME,
    HDF5_SIGNATURE,
    KERAS_FORMAT_VERSION,
    KerasLayer,
    as_text,
    require_h5py,
    sequential_class,
)
from convlstm.keras.to_keras import export
from convlstm.keras.weights import assign_weights, read_keras3, read_legacy, write_weights
from convlstm.layers.base import Layer


def _read_member(where: str, archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    info = archive.getinfo(name)
    if info.file_size > limit:
        raise ValueError(f"{where}: {name} is {info.file_size:,} bytes; expected at most "
                         f"{limit:,} (convlstm.limits).")
    try:
        return archive.read(name)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as error:
        raise ValueError(f"{where}: {name} is corrupted ({error}).") from None


def _read_archive(where: str, path: str) -> tuple[Any, str, bytes]:
    """Config, Keras version and weights file of a ``.keras`` archive."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(
            f"{where} is not a readable .keras archive (a truncated or corrupted zip: {error})."
        ) from None
    with archive:
        listed = archive.namelist()
        names = set(listed)
        twice = sorted(name for name in names & {"config.json", "metadata.json",
                                                 "model.weights.h5"} if listed.count(name) > 1)
        if twice:  # which copy counts would be the reader's whim
            raise ValueError(f"{where} holds {twice[0]} twice.")
        if "config.json" not in names:
            raise ValueError(
                f"{where} has no config.json; a Keras 3 .keras archive holds config.json, "
                f"metadata.json and model.weights.h5; found {sorted(names)}."
            )
        config = limits.parse_config(
            where, _read_member(where, archive, "config.json", limits.MAX_CONFIG_BYTES),
            "config.json")
        version = "3"
        if "metadata.json" in names:
            metadata = limits.parse_config(
                where, _read_member(where, archive, "metadata.json", limits.MAX_CONFIG_BYTES),
                "metadata.json",
            )
            if isinstance(metadata, dict):
                version = str(metadata.get("keras_version", version))
        if "model.weights.h5" not in names:
            hint = ""
            if "model.weights.npz" in names:
                hint = " (it has model.weights.npz; only the default h5 weights are supported)"
            elif "model.weights.json" in names:
                hint = " (its weights are sharded; only unsharded h5 weights are supported)"
            raise ValueError(
                f"{where} has no model.weights.h5{hint}; missing weights; found {sorted(names)}."
            )
        weights = _read_member(where, archive, "model.weights.h5", limits.MAX_WEIGHTS_FILE_BYTES)
    return config, version, weights


def _open_h5(where: str, h5py: Any, source: str | io.BytesIO) -> Any:
    try:
        return h5py.File(source, "r")
    except (OSError, ValueError) as error:
        raise ValueError(f"{where} is not a readable HDF5 file ({error}).") from None


def _target(
    where: str,
    model: Layer | None,
    config: object,
    file_spec: object,
    version: str,
) -> tuple[Layer, list[KerasLayer]]:
    """The model to fill and its Keras layers: ``model``, else one built from ``config``,
    else from the file's own config."""
    if model is not None:
        if not isinstance(model, sequential_class()):
            raise TypeError(
                f"load_keras: expected model to be a convlstm Sequential; got "
                f"{type(model).__name__}."
            )
        return model, export(model, with_config=False)[1]
    if config is not None:
        if isinstance(config, (str, os.PathLike)):
            config_path = os.fspath(config)
            regular_file(f"load_keras: the config {config_path!r}", config_path, "a .json file")
            try:
                with open(config_path, "rb") as stream:
                    text = stream.read(limits.MAX_CONFIG_BYTES + 1)
            except OSError as error:
                raise ValueError(
                    f"load_keras: cannot read the config {config_path!r} ({error})."
                ) from None
            config = limits.parse_config(f"load_keras: {config_path!r}", text, "the config file")
        if not isinstance(config, dict):
            raise TypeError(
                f"load_keras: expected config to be a Keras config dict or a .json path; got "
                f"{type(config).__name__}."
            )
        return import_model(where, config, str(config.get("keras_version", version)))
    if file_spec is None:
        raise ValueError(
            f"{where} holds weights only, no model config; pass model= (a Sequential built "
            "here) or config= (a Keras config dict or .json file)."
        )
    return import_model(where, file_spec, version)


def load_keras(
    path: str | os.PathLike,
    model: Layer | None = None,
    config: dict | str | os.PathLike | None = None,
) -> Layer:
    """Read a Keras file into a model of this library.

    Args:
        path: a Keras 3 ``.keras`` archive, a Keras 3 ``.weights.h5`` file, or a legacy
            ``.h5`` file (Keras 3's or tf.keras 2.x's ``model.save``/``save_weights``).
        model: load the weights into this Sequential (built here) instead of building one;
            its layers must line up with the file's (as :func:`save_keras` would write them).
        config: for a weights-only file, the Keras model config: a dict, or the path of a
            ``.json`` file (``model.to_json()``).

    Returns:
        A :class:`~convlstm.Sequential` with the file's weights (``model`` itself if given).

    Raises:
        ImportError: h5py is not installed.
        FileNotFoundError: no such file.
        ValueError: the file is truncated, corrupted or not a Keras file; it holds a layer
            this library does not have or a branching model; or a weight does not fit. The
            message names the file and what is wrong.
    """
    h5py = require_h5py("load_keras")
    path = path_text("load_keras", path)
    where = f"load_keras: {path!r}"
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_keras: no such file {path!r}.")
    regular_file(where, path, "a Keras .keras or .h5 file")
    if model is not None and config is not None:
        raise ValueError("load_keras: pass model= or config=, not both.")
    if isinstance(config, (str, os.PathLike)) and not os.path.exists(config):
        raise FileNotFoundError(f"load_keras: no such config file {os.fspath(config)!r}.")
    try:
        return _load(where, h5py, path, model, config)
    except (OSError, RuntimeError) as error:  # HDF5 data that h5py cannot read
        raise ValueError(f"{where} is truncated or corrupted ({error}).") from None


def _load(where: str, h5py: Any, path: str, model: Layer | None, config: object) -> Layer:
    with open(path, "rb") as stream:
        head = stream.read(8)
    if head.startswith(b"PK") or (path.endswith(".keras") and head != HDF5_SIGNATURE):
        spec, version, weights = _read_archive(where, path)
        target, layers = _target(where, model, config, spec, version)
        with _open_h5(f"{where} (model.weights.h5)", h5py, io.BytesIO(weights)) as h5:
            assign_weights(read_keras3(where, h5, layers))
        return target
    if head != HDF5_SIGNATURE and not path.endswith((".h5", ".hdf5")):
        raise ValueError(
            f"{where} is not a Keras file: expected a .keras zip archive or an HDF5 .h5 file; "
            f"it starts with {head!r}."
        )
    with _open_h5(where, h5py, path) as h5:
        if "model_weights" in h5 or "layer_names" in h5.attrs:  # legacy .h5
            group = h5.get("model_weights", h5)
            version = as_text(h5.attrs.get("keras_version", group.attrs.get("keras_version", "2")))
            spec = None
            if "model_config" in h5.attrs:
                spec = limits.parse_config(where, as_text(h5.attrs["model_config"]), "model_config")
            target, layers = _target(where, model, config, spec, version)
            assign_weights(read_legacy(where, group, layers))
        elif any(key in h5 for key in ("layers", "vars", "_layer_checkpoint_dependencies")):
            target, layers = _target(where, model, config, None, "3")
            assign_weights(read_keras3(where, h5, layers))
        else:
            raise ValueError(
                f"{where} is an HDF5 file but not a Keras one: it has neither 'model_weights' "
                f"(legacy .h5) nor 'layers' (.weights.h5); found {sorted(h5)[:10]}."
            )
    return target


def save_keras(model: Layer, path: str | os.PathLike) -> str:
    """Write ``model`` for Keras 3: a ``.keras`` archive, or with a ``.weights.h5`` path the
    weights alone (for ``keras_model.load_weights``). Returns the path written.

    The Keras model is a Sequential with an InputLayer of the model's input shape. A
    ConvLSTM2D stack of ``num_layers`` becomes that many Keras ConvLSTM2D layers (each followed
    by a LeakyReLU when ``leaky_relu_slope`` is set); int padding becomes a ZeroPadding3D before
    a "valid" ConvLSTM2D; ``stride`` becomes ``strides``.
    """
    h5py = require_h5py("save_keras")
    path = writable_path("save_keras", path)
    if not path.endswith((".keras", ".weights.h5")):
        raise ValueError(
            f"save_keras: expected a path ending in .keras or .weights.h5; got {path!r}."
        )
    weights_only = path.endswith(".weights.h5")
    config, layers = export(model, with_config=not weights_only)
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        write_weights(h5, layers)
    if weights_only:
        with atomic_write(path) as file:
            file.write(buffer.getvalue())
        return path
    metadata = {"keras_version": KERAS_FORMAT_VERSION, "producer": "numpy-convlstm"}
    with atomic_write(path) as file, zipfile.ZipFile(file, "w") as archive:
        for name, data in (
            ("metadata.json", json.dumps(metadata).encode()),
            ("config.json", json.dumps(config).encode()),
            ("model.weights.h5", buffer.getvalue()),
        ):
            archive.writestr(zipfile.ZipInfo(name, date_time=FIXED_ZIP_TIME), data)
    return path

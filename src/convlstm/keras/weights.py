"""The HDF5 weight layouts: Keras 3 (``layers/<name>/vars/<i>``, in ``.keras`` archives and
``.weights.h5`` files) and legacy ``.h5`` (``model_weights/<layer>/<weight names>``), read into
our layers with every name and shape checked, and written in Keras 3's layout."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from convlstm import limits
from convlstm.keras.mapping import KerasLayer, as_text, snake_case, unique_name
from convlstm.layers.base import Layer


def _attr_list(group: Any, name: str) -> list[str]:
    """A list-of-strings attribute, also when Keras split it into ``name0``, ``name1``, ..."""
    if name in group.attrs:
        values = list(np.atleast_1d(group.attrs[name]))
    else:
        values, chunk = [], 0
        while f"{name}{chunk}" in group.attrs:
            values += list(np.atleast_1d(group.attrs[f"{name}{chunk}"]))
            chunk += 1
    return [as_text(value) for value in values if not isinstance(value, (float, np.floating))]


def _checked(
    where: str, keras_layer: KerasLayer, arrays: list[tuple[str, Any]],
    slots: list[tuple[Layer, str]] | None = None,
) -> list[tuple[Layer, str, np.ndarray]]:
    """Pair a layer's file datasets with its slots (default: ``all_slots()``), checking the
    count, kind and every shape before a dataset's data is read."""
    slots = keras_layer.all_slots() if slots is None else slots
    label = f"{where}: layer {keras_layer.name!r} ({keras_layer.class_name})"
    if len(arrays) != len(slots):
        raise ValueError(
            f"{label} has {len(arrays)} weights in the file "
            f"({', '.join(name for name, _ in arrays) or 'none'}); the layer here has "
            f"{len(slots)} ({', '.join(key for _, key in slots)})."
        )
    pairs = []
    for (name, array), (owner, key) in zip(arrays, slots):
        current = owner.params[key]
        if not hasattr(array, "dtype") or array.dtype.kind not in "fiu":
            raise ValueError(f"{label}: weight {name!r} has dtype "
                             f"{getattr(array, 'dtype', type(array).__name__)}; expected floats.")
        if array.shape != current.shape:
            raise ValueError(
                f"{label}: weight {name!r} has shape {array.shape} in the file; the layer's "
                f"{key} has shape {current.shape}."
            )
        try:
            pairs.append((owner, key, np.asarray(array[()])))
        except (OSError, ValueError, TypeError) as error:
            raise ValueError(f"{label}: weight {name!r} cannot be read ({error}).") from None
    return pairs


def _walk_vars(where: str, group: Any, path: str, depth: int = 1) -> Iterator[tuple[str, Any]]:
    """A Keras 3 layer group's datasets (unread) in Keras' order: its ``vars/0..n``, then its
    sub-objects' (sorted by attribute name, private ones last, as Keras walks them)."""
    if depth > limits.MAX_CONFIG_DEPTH:
        raise ValueError(f"{where}: the group {path[:80]!r}... nests more than "
                         f"MAX_CONFIG_DEPTH = {limits.MAX_CONFIG_DEPTH} levels deep.")
    if "vars" in group:
        keys = list(group["vars"])
        if not all(key.isdigit() for key in keys):
            raise ValueError(f"{where}: expected {path}/vars to hold 0, 1, ...; got {keys}.")
        for key in sorted(keys, key=int):
            yield f"{path}/vars/{key}", group["vars"][key]
    children = sorted(
        (key for key in group if key != "vars" and hasattr(group[key], "keys")),
        key=lambda key: f"~{key}" if key.startswith("_") else key,
    )
    for key in children:
        yield from _walk_vars(where, group[key], f"{path}/{key}", depth + 1)


def read_keras3(where: str, h5: Any, layers: list[KerasLayer]) -> list:
    """Weights from the Keras 3 layout: ``layers/<snake_case class>[_n]/.../vars/<i>``."""
    root = "layers"
    if root not in h5 and "_layer_checkpoint_dependencies" in h5:
        root = "_layer_checkpoint_dependencies"  # .keras files of Keras 2.13
    used: dict[str, int] = {}
    assignments = []
    for keras_layer in layers:
        path = f"{root}/{unique_name(snake_case(keras_layer.class_name), used)}"
        if not keras_layer.all_slots():
            continue
        if path not in h5:
            raise ValueError(
                f"{where}: the file has no weights for layer {keras_layer.name!r} "
                f"({keras_layer.class_name}): expected the group {path!r}; missing weights."
            )
        arrays = list(_walk_vars(where, h5[path], path))
        assignments += _checked(where, keras_layer, arrays)
    return assignments


def read_legacy(where: str, group: Any, layers: list[KerasLayer]) -> list:
    """Weights from the legacy layout: ``layer_names``, then each layer's ``weight_names``
    in order; layers are matched by order (as Keras does)."""
    saved = []
    for name in _attr_list(group, "layer_names"):
        if name not in group:
            raise ValueError(
                f"{where}: layer_names lists {name!r} but the file has no such group."
            )
        weight_names = _attr_list(group[name], "weight_names")
        if weight_names:
            saved.append((name, weight_names))
    wanted = [layer for layer in layers if layer.all_slots()]
    if len(saved) != len(wanted):
        raise ValueError(
            f"{where}: the file has weights for {len(saved)} layers "
            f"({', '.join(name for name, _ in saved) or 'none'}); the model has {len(wanted)} "
            f"layers with weights ({', '.join(layer.name for layer in wanted)})."
        )
    assignments = []
    for (name, weight_names), keras_layer in zip(saved, wanted):
        arrays = []
        for weight_name in weight_names:
            if weight_name not in group[name]:
                raise ValueError(
                    f"{where}: layer {name!r} lists weight {weight_name!r} but the file has no "
                    "such dataset; missing weights."
                )
            arrays.append((weight_name, group[name][weight_name]))
        assignments += _checked(where, keras_layer, arrays, keras_layer.legacy_slots)
    return assignments


def assign_weights(assignments: list[tuple[Layer, str, np.ndarray]]) -> None:
    """Assign checked weights (all checks passed, so a failure leaves the model unchanged)."""
    for owner, key, array in assignments:
        owner.params[key] = np.array(array, dtype=owner.params[key].dtype)


def _write_layer(h5: Any, path: str, keras_layer: KerasLayer) -> None:
    group = h5.create_group(f"{path}/vars")
    group.attrs["name"] = keras_layer.name
    for index, (owner, key) in enumerate(keras_layer.slots):
        group.create_dataset(str(index), data=owner.params[key])
    for attribute, child in keras_layer.children:
        _write_layer(h5, f"{path}/{attribute}", child)


def write_weights(h5: Any, layers: list[KerasLayer]) -> None:
    """The Keras 3 weights layout (what ``model.save_weights`` writes)."""
    h5.create_group("vars").attrs["name"] = "sequential"
    used: dict[str, int] = {}
    for keras_layer in layers:
        name = unique_name(snake_case(keras_layer.class_name), used)
        _write_layer(h5, f"layers/{name}", keras_layer)

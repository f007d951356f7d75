"""Keras files in and out: Keras 3 ``.keras`` archives and ``.weights.h5`` files, and legacy
``.h5`` files written by Keras 3 or by tf.keras 2.x.

:func:`load_keras` returns a :class:`~convlstm.Sequential` with the file's weights;
:func:`save_keras` writes a ``.keras`` archive (or, for a ``.weights.h5`` path, the weights
alone) that ``keras.saving.load_model`` (Keras 3) loads and runs to the same outputs.

Reading a file never runs code from it: configs are parsed as JSON and every Keras layer goes
through :data:`LAYER_MAPS`, the one table of what is supported and how each argument is renamed.

Supported Keras layers (Sequential models and single-path Functional models)::

    Keras                     here
    ConvLSTM2D                ConvLSTM2D  filters -> out_channels, strides -> stride,
                                          dilation_rate -> dilation, in_channels from the
                                          input shape tracked through the model
    ZeroPadding3D             only right before a ConvLSTM2D with padding="valid", padding
                              height and width symmetrically and time not at all: it becomes
                              that layer's int padding (save_keras writes int padding so)
    Conv2D, Conv3D, Dense     same names (groups=1, no LoRA)
    MaxPooling2D/3D           strides -> stride
    BatchNormalization        same names (no renorm, no virtual batches)
    Flatten, Dropout, ReLU, Softmax, Activation, TimeDistributed   same names
    LeakyReLU                 negative_slope (Keras 2: alpha)
    InputLayer                skipped; it gives the input shape

A LeakyReLU after a ConvLSTM2D stays a separate layer. Initializers are kept by name when this
library knows them (they do not affect loaded weights); regularizers and constraints, which
only act in training, are dropped.

hard_sigmoid. Keras 2 and tf.keras 2.x define ``hard_sigmoid(x) = clip(0.2 x + 0.5, 0, 1)``
(and ConvLSTM2D's default ``recurrent_activation`` there is "hard_sigmoid"); Keras 3 defines
it as ``relu6(x + 3) / 6``. The file decides: its ``keras_version`` (``metadata.json`` in a
``.keras`` archive, the root attribute of an ``.h5`` file, the top-level key of a JSON config)
is read, and when the major version is below 3, "hard_sigmoid" becomes
:data:`HARD_SIGMOID_KERAS2`; otherwise it is the library's (Keras 3) "hard_sigmoid". A legacy
``.h5`` file without a version is taken as Keras 2; a ``.weights.h5`` file and a config without
one as Keras 3.

h5py is an optional dependency: ``pip install 'numpy-convlstm[keras]'``.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convlstm import initializers
from convlstm.functional import activations
from convlstm.layers.base import Layer
from convlstm.layers.conv import Conv2D, Conv3D
from convlstm.layers.convlstm import ConvLSTM2D
from convlstm.layers.core import Activation as ActivationLayer
from convlstm.layers.core import Dense, Dropout, Flatten, LeakyReLU, ReLU, Softmax
from convlstm.layers.normalization import BatchNormalization
from convlstm.layers.pooling import MaxPooling2D, MaxPooling3D
from convlstm.layers.wrappers import TimeDistributed
from convlstm.registry import layer_class

KERAS_FORMAT_VERSION = "3.15.1"  # the Keras version whose .keras layout save_keras writes
INSTALL_HINT = "pip install 'numpy-convlstm[keras]'"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_MAX_CONFIG_BYTES = 64 * 2**20
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
HARD_SIGMOID_KERAS2 = activations.ACTIVATIONS["hard_sigmoid_keras2"]
"""Keras 2's ``hard_sigmoid``: ``clip(0.2 x + 0.5, 0, 1)``, derivative 0.2 inside (0, 1)."""


# ------------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Arg:
    """One constructor argument: its Keras name, our name, and how the value converts.

    ``kind``: "value" (as is), "activation" (a Keras activation name), "initializer" (a Keras
    initializer, kept by name when known) or "axis" (Keras 2 may store an axis as ``[4]``).
    ``export``: written by :func:`save_keras` (False for Keras 2 aliases such as ``alpha``).
    """

    keras: str
    ours: str
    kind: str = "value"
    export: bool = True


@dataclass(frozen=True)
class LayerMap:
    """How one Keras layer class becomes one of ours, and back.

    ``requires``: Keras options supported only at one value (anything else is refused).
    ``has_dtype``: the layer takes ``dtype`` (from the Keras dtype policy).
    ``defaults``: Keras' defaults where ours differ, for configs that leave them out
    (``keras2_defaults`` on top for files of Keras < 3).
    """

    keras: str
    ours: type[Layer]
    args: tuple[Arg, ...] = ()
    requires: tuple[tuple[str, Any], ...] = ()
    has_dtype: bool = False
    defaults: tuple[tuple[str, Any], ...] = ()
    keras2_defaults: tuple[tuple[str, Any], ...] = ()


def _same(*names: str) -> tuple[Arg, ...]:
    return tuple(Arg(name, name) for name in names)


def _inits(*names: str) -> tuple[Arg, ...]:
    return tuple(Arg(name, name, "initializer") for name in names)


_KERNEL_ARGS = (
    Arg("activation", "activation", "activation"),
    *_same("use_bias"),
    *_inits("kernel_initializer", "bias_initializer"),
)
_CONV_ARGS = (
    *_same("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate"),
    *_KERNEL_ARGS,
)
_POOL_ARGS = (*_same("pool_size"), Arg("strides", "stride"), *_same("padding", "data_format"))
_NO_LORA = (("lora_rank", None),)

LAYER_MAPS: dict[str, LayerMap] = {
    mapping.keras: mapping
    for mapping in (
        LayerMap(
            "ConvLSTM2D",
            ConvLSTM2D,
            (
                Arg("filters", "out_channels"),
                *_same("kernel_size", "padding"),
                Arg("strides", "stride"),
                Arg("dilation_rate", "dilation"),
                Arg("activation", "activation", "activation"),
                Arg("recurrent_activation", "recurrent_activation", "activation"),
                *_same("use_bias", "unit_forget_bias"),
                *_inits("kernel_initializer", "recurrent_initializer", "bias_initializer"),
                *_same("return_sequences", "return_state", "go_backwards", "stateful"),
                *_same("dropout", "recurrent_dropout", "data_format"),
            ),
            has_dtype=True,
            defaults=(("padding", "valid"), ("return_sequences", False)),
            keras2_defaults=(("recurrent_activation", "hard_sigmoid"),),
        ),
        LayerMap("Conv2D", Conv2D, _CONV_ARGS, (("groups", 1), *_NO_LORA), has_dtype=True),
        LayerMap("Conv3D", Conv3D, _CONV_ARGS, (("groups", 1), *_NO_LORA), has_dtype=True),
        LayerMap("Dense", Dense, (*_same("units"), *_KERNEL_ARGS), _NO_LORA, has_dtype=True),
        LayerMap(
            "BatchNormalization",
            BatchNormalization,
            (
                Arg("axis", "axis", "axis"),
                *_same("momentum", "epsilon", "center", "scale"),
                *_inits("beta_initializer", "gamma_initializer"),
                *_inits("moving_mean_initializer", "moving_variance_initializer"),
            ),
            (("renorm", False), ("virtual_batch_size", None), ("adjustment", None)),
            has_dtype=True,
        ),
        LayerMap("MaxPooling2D", MaxPooling2D, _POOL_ARGS),
        LayerMap("MaxPooling3D", MaxPooling3D, _POOL_ARGS),
        LayerMap("Flatten", Flatten, _same("data_format")),
        LayerMap("Dropout", Dropout, _same("rate", "seed"), (("noise_shape", None),)),
        LayerMap("Activation", ActivationLayer, (Arg("activation", "activation", "activation"),)),
        LayerMap("ReLU", ReLU, _same("max_value", "negative_slope", "threshold")),
        LayerMap(
            "LeakyReLU",
            LeakyReLU,
            (Arg("negative_slope", "negative_slope"), Arg("alpha", "negative_slope", export=False)),
        ),
        LayerMap("Softmax", Softmax, _same("axis")),
        LayerMap("TimeDistributed", TimeDistributed),  # its "layer" converts recursively
    )
}
"""Keras class name -> our class and argument renames; InputLayer and ZeroPadding3D are
handled by the model walk (see the module docstring)."""

SUPPORTED_LAYERS = tuple(sorted([*LAYER_MAPS, "InputLayer", "ZeroPadding3D"]))
_EXPORT_MAPS: dict[type[Layer], LayerMap] = {m.ours: m for m in LAYER_MAPS.values()}


# ------------------------------------------------------------------------------ small helpers


def _sequential() -> type[Layer]:
    """The Sequential class, found in the registry: ``models`` imports this module for
    ``Sequential.save_keras``, so importing ``models`` here would make a cycle."""
    return layer_class("Sequential")


def _require_h5py(owner: str) -> Any:
    try:
        import h5py
    except ImportError:
        raise ImportError(
            f"{owner}: reading and writing Keras files needs h5py, which is not installed; "
            f"{INSTALL_HINT}"
        ) from None
    return h5py


def _snake(name: str) -> str:
    """Keras' ``to_snake_case``: "ConvLSTM2D" -> "conv_lstm2d", "Conv2D" -> "conv2d"."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _unique(name: str, used: dict[str, int]) -> str:
    """``name``, then ``name_1``, ``name_2``, ... (how Keras names a container's entries)."""
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def _major(version: str) -> int:
    match = re.match(r"\s*(\d+)", version)
    return int(match.group(1)) if match else 3


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, (bytes, np.bytes_)) else str(value)


def _shape_text(shape: Sequence[int | None] | None) -> str:
    if shape is None:
        return "unknown"
    return "(" + ", ".join("None" if n is None else str(n) for n in shape) + ")"


@dataclass
class _KerasLayer:
    """One Keras layer as a file stores it: class, name and the weights it holds here.

    ``slots``: ``(owner, key)`` of our params, in Keras' variable order. ``children``: Keras'
    sub-objects holding the weights instead (``("cell", ...)`` of a ConvLSTM2D,
    ``("layer", ...)`` of a TimeDistributed); only :func:`save_keras` needs them.
    """

    class_name: str
    name: str
    slots: list[tuple[Layer, str]] = field(default_factory=list)
    children: list[tuple[str, _KerasLayer]] = field(default_factory=list)

    def all_slots(self) -> list[tuple[Layer, str]]:
        slots = list(self.slots)
        for _, child in self.children:
            slots += child.all_slots()
        return slots


def _slots(layer: Layer) -> list[tuple[Layer, str]]:
    return [(owner, key) for _, owner, key in layer.named_params()]


# ----------------------------------------------------------------------------- Keras -> here


def _spec_parts(where: str, spec: object) -> tuple[str, Any]:
    """``(class_name, config)`` of a serialised Keras object, checked."""
    if not isinstance(spec, dict) or not isinstance(spec.get("class_name"), str):
        raise ValueError(
            f"{where}: expected a Keras config with a 'class_name'; got {str(spec)[:80]!r}."
        )
    config = spec.get("config", {})
    if not isinstance(config, (dict, list)):
        raise ValueError(
            f"{where}: expected the config of {spec['class_name']} to be a dict; "
            f"got {str(config)[:80]!r}."
        )
    return spec["class_name"], config


def _activation(label: str, value: object, version: str) -> object:
    """A Keras activation (name, or Keras 3's function dict) as our name or Activation."""
    if isinstance(value, dict) and isinstance(value.get("config"), str):
        value = value["config"]  # {"class_name": "function", "config": "relu", ...}
    if value is None:
        return "linear"
    if not isinstance(value, str):
        raise ValueError(f"{label}: expected an activation name; got {str(value)[:80]!r}.")
    if value == "hard_sigmoid" and _major(version) < 3:
        return HARD_SIGMOID_KERAS2
    return value


def _initializer(value: object) -> str | None:
    """A Keras initializer as our name, or None when this library does not know it."""
    if isinstance(value, dict):
        value = _snake(str(value.get("class_name", "")))
    if isinstance(value, str) and value in initializers.INITIALIZERS:
        return value
    return None


def _dtype(label: str, value: object) -> str:
    """The float dtype of a Keras dtype (a name or a DTypePolicy dict)."""
    if isinstance(value, dict):
        value = (value.get("config") or {}).get("name")
    if value is None:
        return "float32"
    if value not in ("float32", "float64"):
        raise ValueError(
            f"{label}: dtype policy {value!r} is not supported; expected 'float32' or 'float64'."
        )
    return str(value)


def _import_value(label: str, arg: Arg, value: object, version: str) -> object:
    if arg.kind == "activation":
        return _activation(f"{label} {arg.keras}", value, version)
    if arg.kind == "initializer":
        return _initializer(value)
    if arg.kind == "axis" and isinstance(value, list):
        if len(value) != 1:
            raise ValueError(f"{label}: expected one {arg.keras}; got {value!r}.")
        return value[0]
    return value


def _channels(label: str, shape: tuple, data_format: str) -> int:
    axis = 2 if data_format == "channels_first" else -1
    if len(shape) != 5 or shape[axis] is None:
        raise ValueError(
            f"{label}: expected an input of shape (batch, time, height, width, channels) "
            f"({data_format}) with known channels; the input shape here is {_shape_text(shape)}."
        )
    return int(shape[axis])


def _convert(
    where: str, spec: object, shape: tuple, version: str, padding: tuple[int, int] | None = None
) -> tuple[Layer, str]:
    """Our layer for one Keras layer spec whose input has ``shape``; also its Keras name."""
    class_name, config = _spec_parts(where, spec)
    if not isinstance(config, dict):
        raise ValueError(f"{where}: expected the config of {class_name} to be a dict.")
    name = str(config.get("name", _snake(class_name)))
    label = f"{where}: layer {name!r} ({class_name})"
    mapping = LAYER_MAPS.get(class_name)
    if mapping is None:
        raise ValueError(
            f"{label} is not supported by this library; supported layers: "
            f"{', '.join(SUPPORTED_LAYERS)}."
        )
    for key, expected in mapping.requires:
        if config.get(key, expected) != expected:
            raise ValueError(
                f"{label}: {key}={config[key]!r} is not supported; expected {key}={expected!r}."
            )
    keras2_defaults = mapping.keras2_defaults if _major(version) < 3 else ()
    config = {**dict(mapping.defaults), **dict(keras2_defaults), **config}
    kwargs: dict[str, Any] = {}
    for arg in mapping.args:
        value = config.get(arg.keras)
        if arg.keras not in config or (value is None and arg.kind != "activation"):
            continue  # our default, which is Keras' unless ``defaults`` says otherwise
        value = _import_value(label, arg, value, version)
        if value is not None:
            kwargs[arg.ours] = value
    if mapping.has_dtype:
        kwargs["dtype"] = _dtype(label, config.get("dtype"))
    if mapping.ours is ConvLSTM2D:
        kwargs["in_channels"] = _channels(label, shape, kwargs.get("data_format", "channels_last"))
        if padding is not None:
            kwargs["padding"] = padding
    if mapping.ours is TimeDistributed:
        if len(shape) < 3:
            raise ValueError(
                f"{label}: expected an input of shape (batch, time, ...); the input shape here "
                f"is {_shape_text(shape)}."
            )
        merged = (None, *shape[2:])
        kwargs["layer"] = _convert(where, config.get("layer"), merged, version)[0]
    try:
        return mapping.ours(**kwargs), name
    except (TypeError, ValueError) as error:
        raise ValueError(f"{label}: {error}") from None


def _tensor_sources(value: object) -> list[str]:
    """Names of the layers whose outputs a Keras 3 node's args/kwargs hold."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            return [str(value["config"]["keras_history"][0])]
        return [name for item in value.values() for name in _tensor_sources(item)]
    if isinstance(value, (list, tuple)):
        return [name for item in value for name in _tensor_sources(item)]
    return []


def _node_sources(node: object) -> list[str]:
    if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
        return _tensor_sources([node.get("args", []), node.get("kwargs", {})])
    if isinstance(node, list):  # Keras 2: [[layer_name, node_index, tensor_index, kwargs], ...]
        return [str(item[0]) for item in node if isinstance(item, list) and item]
    return []


def _endpoint_names(value: object) -> list[str]:
    """Layer names of a Functional config's input_layers / output_layers."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list) and value and isinstance(value[0], str):
        return [value[0]]  # a single ["name", 0, 0]
    return [str(item[0]) for item in value or []]


def _single_path(where: str, config: dict) -> list[dict]:
    """The layers of a Functional config, input to output; refuse anything but one path."""
    specs = config.get("layers", [])
    by_name = {str(spec.get("name") or spec["config"]["name"]): spec for spec in specs}
    inputs = _endpoint_names(config.get("input_layers"))
    outputs = _endpoint_names(config.get("output_layers"))
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(
            f"{where}: the Functional model has {len(inputs)} inputs and {len(outputs)} outputs; "
            "only single-path models (one input, one output, no branches) can be loaded."
        )
    consumers: dict[str, list[str]] = {}
    for name, spec in by_name.items():
        nodes = spec.get("inbound_nodes") or []
        if spec.get("class_name") == "InputLayer" and not nodes:
            continue
        if len(nodes) != 1:
            raise ValueError(
                f"{where}: layer {name!r} ({spec.get('class_name')}) is called {len(nodes)} "
                "times; shared layers are not supported, only single-path models."
            )
        sources = _node_sources(nodes[0])
        if len(sources) != 1:
            raise ValueError(
                f"{where}: layer {name!r} ({spec.get('class_name')}) takes {len(sources)} "
                f"inputs ({', '.join(sources)}); the model branches, and only single-path "
                "models can be loaded."
            )
        consumers.setdefault(sources[0], []).append(name)
    path = [inputs[0]]
    while path[-1] != outputs[0]:
        following = consumers.get(path[-1], [])
        if len(following) != 1:
            raise ValueError(
                f"{where}: the output of layer {path[-1]!r} feeds {len(following)} layers "
                f"({', '.join(following) or 'none'}); the model branches, and only single-path "
                "models can be loaded."
            )
        path.append(following[0])
    if len(path) != len(by_name) or path[-1] in consumers:
        raise ValueError(
            f"{where}: the Functional model has layers off its input-to-output path; only "
            "single-path models can be loaded."
        )
    return [by_name[name] for name in path]


def _shape_entry(value: object) -> tuple | None:
    if isinstance(value, list) and all(n is None or isinstance(n, int) for n in value):
        return tuple(value)
    return None


def _layer_specs(where: str, spec: object) -> tuple[list[dict], tuple | None]:
    """The model's Keras layers along its path (InputLayer removed) and its input shape."""
    class_name, config = _spec_parts(where, spec)
    if class_name == "Sequential":
        specs = config if isinstance(config, list) else config.get("layers", [])
    elif class_name in ("Functional", "Model"):
        if not isinstance(config, dict):
            raise ValueError(f"{where}: expected the Functional config to be a dict.")
        specs = _single_path(where, config)
    else:
        specs = [spec]  # a single layer
    if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
        raise ValueError(f"{where}: expected the model's layers to be a list of configs.")
    candidates: list[object] = []
    for index, layer in enumerate(specs):
        layer_config = layer.get("config", {})
        if layer.get("class_name") == "InputLayer":
            if index > 0:
                raise ValueError(f"{where}: an InputLayer inside the model is not supported.")
            candidates += [layer_config.get("batch_shape"), layer_config.get("batch_input_shape")]
    layers = [layer for layer in specs if layer.get("class_name") != "InputLayer"]
    if layers:
        first = layers[0].get("config", {})
        candidates += [first.get("batch_input_shape"), first.get("batch_shape")]
        candidates.append((layers[0].get("build_config") or {}).get("input_shape"))
    if isinstance(spec, dict):
        candidates.append((spec.get("build_config") or {}).get("input_shape"))
    if isinstance(config, dict):
        candidates.append(config.get("build_input_shape"))
    shapes = [_shape_entry(value) for value in candidates]
    return layers, next((shape for shape in shapes if shape is not None), None)


_PROBES = (1031, 2053)


def _probe(shape: tuple, size: int) -> tuple:
    return tuple(size if n is None and i > 0 else n for i, n in enumerate(shape))


def _output_shape(layer: Layer, shape: tuple) -> tuple:
    """``layer``'s output shape; unknown (None) sizes other than the batch are found by
    computing with two different stand-ins and keeping what depends on neither."""
    if None not in shape[1:]:
        return tuple(layer.compute_output_shape(shape))
    first, second = (tuple(layer.compute_output_shape(_probe(shape, p))) for p in _PROBES)
    return tuple(a if a == b else None for a, b in zip(first, second))


def _padding_pairs(label: str, config: dict) -> tuple[tuple[int, int], ...]:
    value = config.get("padding", 1)
    if isinstance(value, int):
        return ((value, value),) * 3
    pairs = tuple((p, p) if isinstance(p, int) else tuple(p) for p in value)
    if len(pairs) != 3 or not all(len(p) == 2 for p in pairs):
        raise ValueError(f"{label}: expected padding of three (before, after) pairs; got {value}.")
    return pairs  # type: ignore[return-value]


def _fused_padding(where: str, spec: dict, following: dict | None) -> tuple[int, int]:
    """The int padding of the ConvLSTM2D after a ZeroPadding3D, or a refusal."""
    config = spec.get("config", {})
    label = f"{where}: layer {config.get('name', 'zero_padding3d')!r} (ZeroPadding3D)"
    pairs = _padding_pairs(label, config)
    nxt = (following or {}).get("config", {})
    data_format = nxt.get("data_format") or "channels_last"
    if (
        following is None
        or following.get("class_name") != "ConvLSTM2D"
        or nxt.get("padding") != "valid"
        or (config.get("data_format") or "channels_last") != data_format
        or pairs[0] != (0, 0)
        or any(before != after for before, after in pairs[1:])
    ):
        raise ValueError(
            f"{label}: ZeroPadding3D is supported only right before a ConvLSTM2D with "
            "padding='valid' and the same data_format, padding only height and width, each "
            f"symmetrically ([[0, 0], [ph, ph], [pw, pw]]); got padding="
            f"{[list(p) for p in pairs]} before "
            f"{(following or {}).get('class_name', 'the end of the model')}."
        )
    return pairs[1][0], pairs[2][0]


def _import_model(where: str, spec: object, version: str) -> tuple[Layer, list[_KerasLayer]]:
    """Our Sequential for a Keras model config (weights not loaded) and its Keras layers."""
    try:
        return _import_layers(where, spec, version)
    except (KeyError, IndexError, AttributeError, TypeError) as error:
        raise ValueError(
            f"{where}: the Keras config is malformed ({type(error).__name__}: {error})."
        ) from None


def _import_layers(where: str, spec: object, version: str) -> tuple[Layer, list[_KerasLayer]]:
    specs, input_shape = _layer_specs(where, spec)
    shape = input_shape
    if shape is None:
        raise ValueError(
            f"{where}: the model's input shape is not recorded (no InputLayer, batch_input_shape "
            "or build_config); it is needed to size the layers."
        )
    model = _sequential()()
    keras_layers: list[_KerasLayer] = []
    index = 0
    while index < len(specs):
        spec_i = specs[index]
        padding = None
        if spec_i.get("class_name") == "ZeroPadding3D":
            following = specs[index + 1] if index + 1 < len(specs) else None
            padding = _fused_padding(where, spec_i, following)
            keras_layers.append(_KerasLayer("ZeroPadding3D", str(spec_i["config"].get("name"))))
            index += 1
            spec_i = specs[index]
        layer, name = _convert(where, spec_i, shape, version, padding)
        label = f"{where}: layer {name!r} ({spec_i['class_name']})"
        try:
            model.add(layer)
            if hasattr(layer, "build"):
                layer.build(_probe(shape, _PROBES[0]))
            output_shape = _output_shape(layer, shape)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{label}: {error}") from None
        if None in shape[1:] and any(_PROBES[0] in w.shape for w in layer.get_weights()):
            raise ValueError(
                f"{label}: its weights depend on an axis whose size is unknown (None) in its "
                f"input shape {_shape_text(shape)}."
            )
        shape = output_shape
        keras_layers.append(_KerasLayer(spec_i["class_name"], name, _slots(layer)))
        index += 1
    if model.layers:
        model.build(input_shape)  # records input_shape (None sizes too); weights exist already
    return model, keras_layers


def from_keras_config(config: dict | str, keras_version: str | None = None) -> Layer:
    """Build our model (fresh weights) from a Keras model config: a dict, or its JSON text.

    Args:
        config: ``model.get_config()``-style ``{"class_name": ..., "config": ...}``, or
            ``model.to_json()`` output.
        keras_version: the Keras version that wrote it (decides "hard_sigmoid"); default: the
            config's own ``keras_version`` key, else "3".
    """
    where = "from_keras_config"
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except json.JSONDecodeError as error:
            raise ValueError(f"{where}: the config is not valid JSON ({error}).") from None
    version = keras_version or str(config.get("keras_version", "3"))
    return _import_model(where, config, version)[0]


# ----------------------------------------------------------------------------- here -> Keras


def _policy(dtype: str) -> dict[str, Any]:
    return {
        "module": "keras",
        "class_name": "DTypePolicy",
        "config": {"name": dtype},
        "registered_name": None,
    }


def _layer_spec(class_name: str, config: dict, input_shape: tuple | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "module": "keras.layers",
        "class_name": class_name,
        "config": config,
        "registered_name": None,
    }
    if input_shape is not None:
        spec["build_config"] = {"input_shape": list(input_shape)}
    return spec


def _our_config(layer: Layer) -> dict[str, Any]:
    """``layer.get_config()``, refusing what Keras 3 cannot express."""
    owner = type(layer).__name__
    for attribute in ("activation", "recurrent_activation"):
        if getattr(getattr(layer, attribute, None), "name", None) == "hard_sigmoid_keras2":
            raise ValueError(
                f"save_keras: {owner} uses Keras 2's hard_sigmoid (clip(0.2x + 0.5, 0, 1)) as "
                f"its {attribute}, which Keras 3 does not have; Keras 3's 'hard_sigmoid' is "
                "relu6(x + 3) / 6."
            )
    try:
        return layer.get_config()
    except TypeError as error:
        raise ValueError(f"save_keras: {error}") from None


class _Exporter:
    """Walks our Sequential, producing Keras layer specs and where each one's weights are."""

    def __init__(self, with_config: bool) -> None:
        self.with_config = with_config
        self.names: dict[str, int] = {}
        self.specs: list[dict[str, Any]] = []
        self.layers: list[_KerasLayer] = []

    def name(self, class_name: str) -> str:
        return _unique(_snake(class_name), self.names)

    def config(self, layer: Layer, mapping: LayerMap, our_config: dict) -> dict:
        """The Keras config entries of ``mapping``'s arguments found in ``our_config``."""
        config = {}
        for arg in mapping.args:
            if arg.export and our_config.get(arg.ours) is not None:
                config[arg.keras] = our_config[arg.ours]
        if mapping.has_dtype:
            config["dtype"] = _policy(layer.dtype.name)
        return config

    def add(self, keras_layer: _KerasLayer, config: dict, dtype: str, shape: tuple | None) -> None:
        self.layers.append(keras_layer)
        if self.with_config:
            full = {"name": keras_layer.name, "trainable": True, "dtype": _policy(dtype), **config}
            self.specs.append(_layer_spec(keras_layer.class_name, full, shape))

    def mapped(self, layer: Layer, shape: tuple, dtype: str) -> tuple[str, dict, _KerasLayer]:
        """Class name, config and Keras layer of a layer that maps one to one."""
        if isinstance(layer, ActivationLayer):  # Sigmoid and Tanh too
            config = {}
            if self.with_config:
                _our_config(layer)  # refuses callables and Keras 2's hard_sigmoid
                config["activation"] = layer.activation.name
            return "Activation", config, _KerasLayer("Activation", self.name("Activation"))
        mapping = _EXPORT_MAPS.get(type(layer))
        if mapping is None or mapping.ours is ConvLSTM2D:
            raise ValueError(
                f"save_keras: {type(layer).__name__} has no Keras counterpart here; the layers "
                f"that export are {', '.join(sorted(c.__name__ for c in _EXPORT_MAPS))}."
            )
        class_name = mapping.keras
        keras_layer = _KerasLayer(class_name, self.name(class_name), _slots(layer))
        config: dict[str, Any] = {}
        if mapping.ours is TimeDistributed:
            inner_shape = (None, *shape[2:])
            inner_class, inner_config, inner = self.mapped(layer.layer, inner_shape, dtype)
            keras_layer.slots = []
            keras_layer.children = [("layer", inner)]
            if self.with_config:
                inner_full = {"name": inner.name, "trainable": True, "dtype": _policy(dtype),
                              **inner_config}
                config["layer"] = _layer_spec(inner_class, inner_full, None)
        elif self.with_config:
            config = self.config(layer, mapping, _our_config(layer))
        return class_name, config, keras_layer

    def convlstm(self, layer: ConvLSTM2D, shape: tuple, dtype: str) -> tuple:
        """Keras layers of our ConvLSTM2D stack: per cell an optional ZeroPadding3D, a
        ConvLSTM2D and, with leaky_relu_slope, a LeakyReLU. Returns the output shape."""
        if self.with_config and layer.stateful:
            raise ValueError(
                "save_keras: ConvLSTM2D with stateful=True does not export (a stateful Keras "
                "layer needs a fixed batch size); export a copy with stateful=False."
            )
        our_config = _our_config(layer) if self.with_config else {}
        channels_first = layer.data_format == "channels_first"
        B, T, *rest = shape
        hw = tuple(rest[1:] if channels_first else rest[:2])
        last = layer.num_layers - 1
        for k, cell in enumerate(layer.cells):
            H, W = hw
            padding = cell.padding
            if isinstance(padding, tuple):
                if any(padding):
                    ph, pw = padding
                    pads = {
                        "padding": [[0, 0], [ph, ph], [pw, pw]],
                        "data_format": layer.data_format,
                    }
                    zero_padding = _KerasLayer("ZeroPadding3D", self.name("ZeroPadding3D"))
                    self.add(zero_padding, pads, dtype, None)
                    H, W = H + 2 * ph, W + 2 * pw
                padding = "valid"
            C = cell.in_channels
            in_shape = (B, T, C, H, W) if channels_first else (B, T, H, W, C)
            cell_layer = _KerasLayer("ConvLSTMCell", "conv_lstm_cell", _slots(cell))
            keras_layer = _KerasLayer("ConvLSTM2D", self.name("ConvLSTM2D"))
            keras_layer.children = [("cell", cell_layer)]
            config = {}
            if self.with_config:
                cell_config = {
                    **our_config,
                    "padding": padding,
                    "return_sequences": layer.return_sequences if k == last else True,
                    "go_backwards": layer.go_backwards and k == 0,
                }
                config = self.config(cell, LAYER_MAPS["ConvLSTM2D"], cell_config)
            self.add(keras_layer, config, dtype, in_shape)
            hw = cell.output_hw(*hw)
            if layer.leaky_relu_slope is not None:
                leaky = _KerasLayer("LeakyReLU", self.name("LeakyReLU"))
                self.add(leaky, {"negative_slope": layer.leaky_relu_slope}, dtype, None)
        return tuple(layer.compute_output_shape(shape))

    def layer(self, layer: Layer, shape: tuple, dtype: str) -> tuple:
        """Export one of our layers; returns its output shape."""
        if isinstance(layer, ConvLSTM2D):
            return self.convlstm(layer, shape, dtype)
        _, config, keras_layer = self.mapped(layer, shape, dtype)
        self.add(keras_layer, config, dtype, shape if keras_layer.all_slots() else None)
        return tuple(layer.compute_output_shape(shape))


def _model_dtype(model: Layer) -> str:
    for _, owner, _ in model.named_params():
        dtype = getattr(owner, "dtype", None)
        if dtype is not None:
            return np.dtype(dtype).name
    return "float32"


def _export(model: Layer, with_config: bool) -> tuple[dict[str, Any], list[_KerasLayer]]:
    """The Keras 3 config of ``model`` (when ``with_config``) and its Keras layers."""
    owner = "save_keras"
    if not isinstance(model, _sequential()):
        raise TypeError(f"{owner}: expected a convlstm Sequential; got {type(model).__name__}.")
    if model.input_shape is None:
        raise ValueError(
            f"{owner}: the model's input shape is unknown; pass input_shape= to Sequential or "
            "call the model on data first."
        )
    model.ensure_built()
    dtype = _model_dtype(model)
    exporter = _Exporter(with_config)
    shape: tuple = (None, *model.input_shape)
    for layer in model.layers:
        shape = exporter.layer(layer, shape, dtype)
    if not with_config:
        return {}, exporter.layers
    batch_shape = [None, *model.input_shape]
    input_layer = {
        "module": "keras.layers",
        "class_name": "InputLayer",
        "config": {
            "batch_shape": batch_shape,
            "dtype": dtype,
            "sparse": False,
            "ragged": False,
            "name": "input_layer",
            "optional": False,
        },
        "registered_name": None,
    }
    config = {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": "sequential",
            "trainable": True,
            "dtype": _policy(dtype),
            "layers": [input_layer, *exporter.specs],
        },
        "registered_name": None,
        "build_config": {"input_shape": batch_shape},
        "compile_config": None,
    }
    return config, exporter.layers


def to_keras_config(model: Layer) -> dict[str, Any]:
    """The Keras 3 config (``keras.saving.deserialize_keras_object`` input) of ``model``."""
    return _export(model, with_config=True)[0]


# ---------------------------------------------------------------------------------- weights


def _attr_list(group: Any, name: str) -> list[str]:
    """A list-of-strings attribute, also when Keras split it into ``name0``, ``name1``, ..."""
    if name in group.attrs:
        values = list(np.atleast_1d(group.attrs[name]))
    else:
        values, chunk = [], 0
        while f"{name}{chunk}" in group.attrs:
            values += list(np.atleast_1d(group.attrs[f"{name}{chunk}"]))
            chunk += 1
    return [_text(value) for value in values if not isinstance(value, (float, np.floating))]


def _checked(
    where: str, keras_layer: _KerasLayer, arrays: list[tuple[str, np.ndarray]]
) -> list[tuple[Layer, str, np.ndarray]]:
    """Pair a layer's file arrays with its slots, checking the count, kind and every shape."""
    slots = keras_layer.all_slots()
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
        if array.dtype.kind not in "fiu":
            raise ValueError(f"{label}: weight {name!r} has dtype {array.dtype}; expected floats.")
        if array.shape != current.shape:
            raise ValueError(
                f"{label}: weight {name!r} has shape {array.shape} in the file; the layer's "
                f"{key} has shape {current.shape}."
            )
        pairs.append((owner, key, array))
    return pairs


def _walk_vars(where: str, group: Any, path: str) -> Iterator[tuple[str, np.ndarray]]:
    """A Keras 3 layer group's arrays in Keras' order: its ``vars/0..n``, then its sub-objects'
    (sorted by attribute name, private ones last, as Keras walks them)."""
    if "vars" in group:
        keys = list(group["vars"])
        if not all(key.isdigit() for key in keys):
            raise ValueError(f"{where}: expected {path}/vars to hold 0, 1, ...; got {keys}.")
        for key in sorted(keys, key=int):
            yield f"{path}/vars/{key}", np.asarray(group["vars"][key][()])
    children = sorted(
        (key for key in group if key != "vars" and hasattr(group[key], "keys")),
        key=lambda key: f"~{key}" if key.startswith("_") else key,
    )
    for key in children:
        yield from _walk_vars(where, group[key], f"{path}/{key}")


def _read_keras3(where: str, h5: Any, layers: list[_KerasLayer]) -> list:
    """Weights from the Keras 3 layout: ``layers/<snake_case class>[_n]/.../vars/<i>``."""
    root = "layers"
    if root not in h5 and "_layer_checkpoint_dependencies" in h5:
        root = "_layer_checkpoint_dependencies"  # .keras files of Keras 2.13
    used: dict[str, int] = {}
    assignments = []
    for keras_layer in layers:
        path = f"{root}/{_unique(_snake(keras_layer.class_name), used)}"
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


def _read_legacy(where: str, group: Any, layers: list[_KerasLayer]) -> list:
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
            arrays.append((weight_name, np.asarray(group[name][weight_name][()])))
        assignments += _checked(where, keras_layer, arrays)
    return assignments


def _commit(assignments: list[tuple[Layer, str, np.ndarray]]) -> None:
    """Assign checked weights (all checks passed, so a failure leaves the model unchanged)."""
    for owner, key, array in assignments:
        owner.params[key] = np.array(array, dtype=owner.params[key].dtype)


def _write_layer(h5: Any, path: str, keras_layer: _KerasLayer) -> None:
    group = h5.create_group(f"{path}/vars")
    group.attrs["name"] = keras_layer.name
    for index, (owner, key) in enumerate(keras_layer.slots):
        group.create_dataset(str(index), data=owner.params[key])
    for attribute, child in keras_layer.children:
        _write_layer(h5, f"{path}/{attribute}", child)


def _write_weights(h5: Any, layers: list[_KerasLayer]) -> None:
    """The Keras 3 weights layout (what ``model.save_weights`` writes)."""
    h5.create_group("vars").attrs["name"] = "sequential"
    used: dict[str, int] = {}
    for keras_layer in layers:
        _write_layer(h5, f"layers/{_unique(_snake(keras_layer.class_name), used)}", keras_layer)


# ------------------------------------------------------------------------------------ files


def _read_member(where: str, archive: zipfile.ZipFile, name: str, limit: int | None) -> bytes:
    info = archive.getinfo(name)
    if limit is not None and info.file_size > limit:
        raise ValueError(f"{where}: {name} is {info.file_size} bytes; expected at most {limit}.")
    try:
        return archive.read(name)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as error:
        raise ValueError(f"{where}: {name} is corrupted ({error}).") from None


def _json(where: str, text: bytes | str, what: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{where}: {what} is not valid JSON ({error}).") from None


def _read_archive(where: str, path: str) -> tuple[Any, str, bytes]:
    """Config, Keras version and weights file of a ``.keras`` archive."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(
            f"{where} is not a readable .keras archive (a truncated or corrupted zip: {error})."
        ) from None
    with archive:
        names = set(archive.namelist())
        if "config.json" not in names:
            raise ValueError(
                f"{where} has no config.json; a Keras 3 .keras archive holds config.json, "
                f"metadata.json and model.weights.h5; found {sorted(names)}."
            )
        config = _json(where, _read_member(where, archive, "config.json", _MAX_CONFIG_BYTES),
                       "config.json")
        version = "3"
        if "metadata.json" in names:
            metadata = _json(
                where, _read_member(where, archive, "metadata.json", _MAX_CONFIG_BYTES),
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
        weights = _read_member(where, archive, "model.weights.h5", None)
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
) -> tuple[Layer, list[_KerasLayer]]:
    """The model to fill and its Keras layers: ``model``, else one built from ``config``,
    else from the file's own config."""
    if model is not None:
        if not isinstance(model, _sequential()):
            raise TypeError(
                f"load_keras: expected model to be a convlstm Sequential; got "
                f"{type(model).__name__}."
            )
        return model, _export(model, with_config=False)[1]
    if config is not None:
        if isinstance(config, (str, os.PathLike)):
            config_path = os.fspath(config)
            try:
                with open(config_path, encoding="utf-8") as stream:
                    text = stream.read()
            except OSError as error:
                raise ValueError(
                    f"load_keras: cannot read the config {config_path!r} ({error})."
                ) from None
            config = _json(f"load_keras: {config_path!r}", text, "the config file")
        if not isinstance(config, dict):
            raise TypeError(
                f"load_keras: expected config to be a Keras config dict or a .json path; got "
                f"{type(config).__name__}."
            )
        return _import_model(where, config, str(config.get("keras_version", version)))
    if file_spec is None:
        raise ValueError(
            f"{where} holds weights only, no model config; pass model= (a Sequential built "
            "here) or config= (a Keras config dict or .json file)."
        )
    return _import_model(where, file_spec, version)


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
    h5py = _require_h5py("load_keras")
    path = os.fspath(path)
    where = f"load_keras: {path!r}"
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load_keras: no such file {path!r}.")
    if model is not None and config is not None:
        raise ValueError("load_keras: pass model= or config=, not both.")
    with open(path, "rb") as stream:
        head = stream.read(8)
    if head.startswith(b"PK") or (path.endswith(".keras") and head != HDF5_SIGNATURE):
        spec, version, weights = _read_archive(where, path)
        target, layers = _target(where, model, config, spec, version)
        with _open_h5(f"{where} (model.weights.h5)", h5py, io.BytesIO(weights)) as h5:
            _commit(_read_keras3(where, h5, layers))
        return target
    if head != HDF5_SIGNATURE and not path.endswith((".h5", ".hdf5")):
        raise ValueError(
            f"{where} is not a Keras file: expected a .keras zip archive or an HDF5 .h5 file; "
            f"it starts with {head!r}."
        )
    with _open_h5(where, h5py, path) as h5:
        if "model_weights" in h5 or "layer_names" in h5.attrs:  # legacy .h5
            group = h5.get("model_weights", h5)
            version = _text(h5.attrs.get("keras_version", group.attrs.get("keras_version", "2")))
            spec = None
            if "model_config" in h5.attrs:
                spec = _json(where, _text(h5.attrs["model_config"]), "model_config")
            target, layers = _target(where, model, config, spec, version)
            _commit(_read_legacy(where, group, layers))
        elif any(key in h5 for key in ("layers", "vars", "_layer_checkpoint_dependencies")):
            target, layers = _target(where, model, config, None, "3")
            _commit(_read_keras3(where, h5, layers))
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
    h5py = _require_h5py("save_keras")
    path = os.fspath(path)
    if not path.endswith((".keras", ".weights.h5")):
        raise ValueError(
            f"save_keras: expected a path ending in .keras or .weights.h5; got {path!r}."
        )
    weights_only = path.endswith(".weights.h5")
    config, layers = _export(model, with_config=not weights_only)
    if weights_only:
        with h5py.File(path, "w") as h5:
            _write_weights(h5, layers)
        return path
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        _write_weights(h5, layers)
    metadata = {"keras_version": KERAS_FORMAT_VERSION, "producer": "numpy-convlstm"}
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in (
            ("metadata.json", json.dumps(metadata).encode()),
            ("config.json", json.dumps(config).encode()),
            ("model.weights.h5", buffer.getvalue()),
        ):
            archive.writestr(zipfile.ZipInfo(name, date_time=_FIXED_ZIP_TIME), data)
    return path

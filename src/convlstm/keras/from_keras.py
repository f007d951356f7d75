"""Keras -> here: a Keras model config (Sequential or single-path Functional) becomes our
Sequential, layer by layer through :data:`~convlstm.keras.mapping.LAYER_MAPS`."""

from __future__ import annotations

from typing import Any

from convlstm import initializers
from convlstm.keras.mapping import (
    HARD_SIGMOID_KERAS2,
    LAYER_MAPS,
    SUPPORTED_LAYERS,
    Arg,
    KerasLayer,
    keras_layer_of,
    major_version,
    sequential_class,
    shape_text,
    snake_case,
)
from convlstm.layers.base import Layer
from convlstm.layers.bidirectional import Bidirectional
from convlstm.layers.convlstm import ConvLSTM
from convlstm.layers.layout import Layout
from convlstm.layers.wrappers import TimeDistributed
from convlstm.limits import check_config, parse_config, weight_budget


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
    if value == "hard_sigmoid" and major_version(version) < 3:
        return HARD_SIGMOID_KERAS2
    return value


def _initializer(value: object) -> str | None:
    """A Keras initializer as our name, or None when this library does not know it."""
    if isinstance(value, dict):
        value = snake_case(str(value.get("class_name", "")))
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


def _channels(label: str, shape: tuple, layout: Layout) -> int:
    _, _, channels = layout.split(shape) if len(shape) == layout.rank + 3 else (0, 0, None)
    if channels is None:
        expected = ", ".join(map(str, layout.names("channels", "batch", "time")))
        raise ValueError(
            f"{label}: expected an input of shape ({expected}) ({layout.data_format}) with "
            f"known channels; the input shape here is {shape_text(shape)}."
        )
    return int(channels)


def _convert(
    where: str, spec: object, shape: tuple, version: str, padding: tuple[int, int] | None = None
) -> tuple[Layer, str]:
    """Our layer for one Keras layer spec whose input has ``shape``; also its Keras name."""
    class_name, config = _spec_parts(where, spec)
    if not isinstance(config, dict):
        raise ValueError(f"{where}: expected the config of {class_name} to be a dict.")
    name = str(config.get("name", snake_case(class_name)))
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
    keras2_defaults = mapping.keras2_defaults if major_version(version) < 3 else ()
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
    if issubclass(mapping.ours, ConvLSTM):
        layout = Layout(kwargs.get("data_format", "channels_last"), mapping.ours.options_class.rank)
        kwargs["in_channels"] = _channels(label, shape, layout)
        if padding is not None:
            kwargs["padding"] = padding
    if mapping.ours is Bidirectional:
        kwargs["layer"] = _convert(where, config.get("layer"), shape, version)[0]
        if config.get("backward_layer") is not None:
            kwargs["backward_layer"] = _convert(where, config["backward_layer"], shape, version)[0]
    if mapping.ours is TimeDistributed:
        if len(shape) < 3:
            raise ValueError(
                f"{label}: expected an input of shape (batch, time, ...); the input shape here "
                f"is {shape_text(shape)}."
            )
        merged = (None, *shape[2:])
        kwargs["layer"] = _convert(where, config.get("layer"), merged, version)[0]
    try:
        return mapping.ours(**kwargs), name
    except (TypeError, ValueError) as error:
        raise ValueError(f"{label}: {str(error).removeprefix(where + ': ')}") from None


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


def import_model(where: str, spec: object, version: str) -> tuple[Layer, list[KerasLayer]]:
    """Our Sequential for a Keras model config (weights not loaded) and its Keras layers."""
    check_config(where, spec)
    try:
        with weight_budget(where):
            return _import_layers(where, spec, version)
    except (KeyError, IndexError, AttributeError, TypeError) as error:
        raise ValueError(
            f"{where}: the Keras config is malformed ({type(error).__name__}: {error})."
        ) from None


def _import_layers(where: str, spec: object, version: str) -> tuple[Layer, list[KerasLayer]]:
    specs, input_shape = _layer_specs(where, spec)
    shape = input_shape
    if shape is None:
        raise ValueError(
            f"{where}: the model's input shape is not recorded (no InputLayer, batch_input_shape "
            "or build_config); it is needed to size the layers."
        )
    model = sequential_class()()
    keras_layers: list[KerasLayer] = []
    index = 0
    while index < len(specs):
        spec_i = specs[index]
        padding = None
        if spec_i.get("class_name") == "ZeroPadding3D":
            following = specs[index + 1] if index + 1 < len(specs) else None
            padding = _fused_padding(where, spec_i, following)
            keras_layers.append(KerasLayer("ZeroPadding3D", str(spec_i["config"].get("name"))))
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
            raise ValueError(f"{label}: {str(error).removeprefix(where + ': ')}") from None
        if None in shape[1:] and any(_PROBES[0] in w.shape for w in layer.get_weights()):
            raise ValueError(
                f"{label}: its weights depend on an axis whose size is unknown (None) in its "
                f"input shape {shape_text(shape)}."
            )
        shape = output_shape
        keras_layers.append(keras_layer_of(layer, spec_i["class_name"], name))
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
        config = parse_config(where, config, "the config")
    if not isinstance(config, dict):
        raise TypeError(f"{where}: expected config to be a Keras config dict or its JSON text; "
                        f"got {type(config).__name__}.")
    version = keras_version or str(config.get("keras_version", "3"))
    return import_model(where, config, version)[0]

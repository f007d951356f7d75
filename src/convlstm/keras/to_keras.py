"""Here -> Keras: our Sequential becomes a Keras 3 model config, with the Keras layer (name and
weight slots) of each of ours, for :mod:`convlstm.keras.weights` to write."""

from __future__ import annotations

from typing import Any

import numpy as np

from convlstm.keras.mapping import (
    EXPORT_MAPS,
    LAYER_MAPS,
    KerasLayer,
    LayerMap,
    sequential_class,
    snake_case,
    unique_name,
    weight_slots,
)
from convlstm.layers.activation import Activation as ActivationLayer
from convlstm.layers.base import Layer
from convlstm.layers.bidirectional import Bidirectional
from convlstm.layers.convlstm import ConvLSTM
from convlstm.layers.wrappers import TimeDistributed


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
        self.layers: list[KerasLayer] = []

    def name(self, class_name: str) -> str:
        return unique_name(snake_case(class_name), self.names)

    def config(self, layer: Layer, mapping: LayerMap, our_config: dict) -> dict:
        """The Keras config entries of ``mapping``'s arguments found in ``our_config``."""
        config = {}
        for arg in mapping.args:
            if arg.export and our_config.get(arg.ours) is not None:
                config[arg.keras] = our_config[arg.ours]
        if mapping.has_dtype:
            config["dtype"] = _policy(layer.dtype.name)
        return config

    def add(self, keras_layer: KerasLayer, config: dict, dtype: str, shape: tuple | None) -> None:
        self.layers.append(keras_layer)
        if self.with_config:
            full = {"name": keras_layer.name, "trainable": True, "dtype": _policy(dtype), **config}
            self.specs.append(_layer_spec(keras_layer.class_name, full, shape))

    def mapped(self, layer: Layer, shape: tuple, dtype: str) -> tuple[str, dict, KerasLayer]:
        """Class name, config and Keras layer of a layer that maps one to one."""
        if isinstance(layer, ActivationLayer):  # Sigmoid and Tanh too
            config = {}
            if self.with_config:
                _our_config(layer)  # refuses callables and Keras 2's hard_sigmoid
                config["activation"] = layer.activation.name
            return "Activation", config, KerasLayer("Activation", self.name("Activation"))
        mapping = EXPORT_MAPS.get(type(layer))
        if mapping is None or issubclass(mapping.ours, (ConvLSTM, Bidirectional)):
            raise ValueError(
                f"save_keras: {type(layer).__name__} has no Keras counterpart here; the layers "
                f"that export are {', '.join(sorted(c.__name__ for c in EXPORT_MAPS))}."
            )
        class_name = mapping.keras
        keras_layer = KerasLayer(class_name, self.name(class_name), weight_slots(layer))
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

    def convlstm(self, layer: ConvLSTM, shape: tuple, dtype: str) -> tuple:
        """Keras layers of our ConvLSTM1D/2D/3D stack: per cell an optional ZeroPadding3D
        (2-D only), a ConvLSTM{rank}D and, with leaky_relu_slope, a LeakyReLU. Returns the
        output shape."""
        layout = layer.options.layout
        (B, T), spatial, _ = layout.split(shape)
        for k, cell in enumerate(layer.cells):
            padding = cell.padding
            if isinstance(padding, tuple):
                if any(padding):
                    spatial = self.zero_padding(type(layer).__name__, padding, layer.data_format,
                                                spatial, dtype)
                padding = "valid"
            in_shape = layout.shape((B, T), spatial, cell.in_channels)
            keras_layer, config = self.recurrent(layer, k, padding, self.name)
            self.add(keras_layer, config, dtype, in_shape)
            spatial = cell.options.output_spatial(tuple(spatial))
            if layer.leaky_relu_slope is not None:
                leaky = KerasLayer("LeakyReLU", self.name("LeakyReLU"))
                self.add(leaky, {"negative_slope": layer.leaky_relu_slope}, dtype, None)
        return tuple(layer.compute_output_shape(shape))

    def recurrent(self, layer: ConvLSTM, k: int, padding: str, name: Any) -> tuple:
        """The Keras layer (with its cell's weights) and config of cell ``k`` of ``layer``;
        ``name(class_name)`` names it."""
        class_name = type(layer).__name__
        if self.with_config and layer.stateful:
            raise ValueError(
                f"save_keras: {class_name} with stateful=True does not export (a stateful Keras "
                "layer needs a fixed batch size); export a copy with stateful=False."
            )
        if layer.peephole:
            raise ValueError(
                f"save_keras: {class_name} with peephole=True has no Keras counterpart (Keras' "
                "ConvLSTM has no peephole connections); keep it in the native format "
                "(model.save) or export a ConvLSTM2D to ONNX."
            )
        cell = layer.cells[k]
        cell_layer = KerasLayer("ConvLSTMCell", "conv_lstm_cell", weight_slots(cell))
        keras_layer = KerasLayer(class_name, name(class_name))
        keras_layer.children = [("cell", cell_layer)]
        if not self.with_config:
            return keras_layer, {}
        last = k == layer.num_layers - 1
        cell_config = {
            **_our_config(layer),
            "padding": padding,
            "return_sequences": layer.return_sequences if last else True,
            "go_backwards": layer.go_backwards and k == 0,
        }
        return keras_layer, self.config(cell, LAYER_MAPS[class_name], cell_config)

    def bidirectional(self, layer: Bidirectional, shape: tuple, dtype: str) -> tuple:
        """A Keras Bidirectional of two single ConvLSTM layers."""
        keras_layer = KerasLayer("Bidirectional", self.name("Bidirectional"))
        config: dict[str, Any] = {"merge_mode": layer.merge_mode}
        for attribute, inner in (("backward_layer", layer.backward_layer),
                                 ("forward_layer", layer.forward_layer)):
            if inner.num_layers > 1 or inner.leaky_relu_slope is not None:
                raise ValueError(
                    f"save_keras: a Bidirectional around a ConvLSTM stack or one with "
                    f"leaky_relu_slope ({attribute}: num_layers={inner.num_layers}, "
                    f"leaky_relu_slope={inner.leaky_relu_slope}) has no one Keras layer; "
                    "wrap single layers."
                )
            padding = "valid" if isinstance(inner.padding, tuple) else inner.padding
            if isinstance(inner.padding, tuple) and any(inner.padding):
                raise ValueError(
                    f"save_keras: {type(inner).__name__} inside Bidirectional with padding="
                    f"{inner.padding} does not export; use 'same' or 'valid'."
                )
            prefix = attribute.removesuffix("_layer")
            inner_layer, inner_config = self.recurrent(
                inner, 0, padding, lambda class_name, p=prefix: f"{p}_{snake_case(class_name)}")
            keras_layer.children.append((attribute, inner_layer))
            if self.with_config and (attribute == "forward_layer" or layer.get_config().get(
                    "backward_layer")):
                full = {"name": inner_layer.name, "trainable": True, "dtype": _policy(dtype),
                        **inner_config}
                key = "layer" if attribute == "forward_layer" else attribute
                config[key] = _layer_spec(inner_layer.class_name, full, None)
        self.add(keras_layer, config if self.with_config else {}, dtype, shape)
        return tuple(layer.compute_output_shape(shape))

    def zero_padding(self, class_name: str, padding: tuple, data_format: str, spatial: tuple,
                     dtype: str) -> tuple:
        """The ZeroPadding3D (over time, height, width) before a ConvLSTM2D with int padding;
        returns the padded frame size. Other ranks have no such Keras layer to load back."""
        if class_name != "ConvLSTM2D":
            raise ValueError(
                f"save_keras: {class_name} with padding={padding} does not export (Keras "
                f"pads only 'same' or 'valid' there); export a copy with padding='same' or "
                "'valid'."
            )
        ph, pw = padding
        pads = {"padding": [[0, 0], [ph, ph], [pw, pw]], "data_format": data_format}
        self.add(KerasLayer("ZeroPadding3D", self.name("ZeroPadding3D")), pads, dtype, None)
        return tuple(n + 2 * p for n, p in zip(spatial, padding))

    def layer(self, layer: Layer, shape: tuple, dtype: str) -> tuple:
        """Export one of our layers; returns its output shape."""
        if isinstance(layer, ConvLSTM):
            return self.convlstm(layer, shape, dtype)
        if isinstance(layer, Bidirectional):
            return self.bidirectional(layer, shape, dtype)
        _, config, keras_layer = self.mapped(layer, shape, dtype)
        self.add(keras_layer, config, dtype, shape if keras_layer.all_slots() else None)
        return tuple(layer.compute_output_shape(shape))


def _model_dtype(model: Layer) -> str:
    for _, owner, _ in model.named_params():
        dtype = getattr(owner, "dtype", None)
        if dtype is not None:
            return np.dtype(dtype).name
    return "float32"


def export(model: Layer, with_config: bool) -> tuple[dict[str, Any], list[KerasLayer]]:
    """The Keras 3 config of ``model`` (when ``with_config``) and its Keras layers."""
    owner = "save_keras"
    if not isinstance(model, sequential_class()):
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
    return export(model, with_config=True)[0]

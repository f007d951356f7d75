"""The one table of supported Keras layers (:data:`LAYER_MAPS`: class, argument renames,
required values, defaults) and the small helpers both directions share."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convlstm.functional import activations
from convlstm.layers.activation import Activation as ActivationLayer
from convlstm.layers.activation import LeakyReLU, ReLU, Softmax
from convlstm.layers.base import Layer
from convlstm.layers.bidirectional import Bidirectional
from convlstm.layers.conv import Conv2D, Conv3D
from convlstm.layers.convlstm import ConvLSTM2D
from convlstm.layers.convlstm_ranks import ConvLSTM1D, ConvLSTM3D
from convlstm.layers.core import Dense, Dropout, Flatten
from convlstm.layers.normalization import BatchNormalization
from convlstm.layers.pooling import MaxPooling1D, MaxPooling2D, MaxPooling3D
from convlstm.layers.wrappers import TimeDistributed
from convlstm.registry import layer_class

KERAS_FORMAT_VERSION = "3.15.1"  # the Keras version whose .keras layout save_keras writes
INSTALL_HINT = "pip install h5py (from a clone: pip install -e '.[keras]')"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
HARD_SIGMOID_KERAS2 = activations.ACTIVATIONS["hard_sigmoid_keras2"]
"""Keras 2's ``hard_sigmoid``: ``clip(0.2 x + 0.5, 0, 1)``, derivative 0.2 inside (0, 1)."""




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
_CONVLSTM_ARGS = (
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
)
_POOL_ARGS = (*_same("pool_size"), Arg("strides", "stride"), *_same("padding", "data_format"))
_NO_LORA = (("lora_rank", None),)

LAYER_MAPS: dict[str, LayerMap] = {
    mapping.keras: mapping
    for mapping in (
        *(
            LayerMap(
                cls.__name__,
                cls,
                _CONVLSTM_ARGS,
                has_dtype=True,
                defaults=(("padding", "valid"), ("return_sequences", False)),
                keras2_defaults=(("recurrent_activation", "hard_sigmoid"),),
            )
            for cls in (ConvLSTM1D, ConvLSTM2D, ConvLSTM3D)
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
        LayerMap("MaxPooling1D", MaxPooling1D, _POOL_ARGS),
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
        LayerMap("Bidirectional", Bidirectional, _same("merge_mode")),  # "layer" too
    )
}
"""Keras class name -> our class and argument renames; InputLayer and ZeroPadding3D are
handled by the model walk (see the :mod:`convlstm.keras` docstring)."""

SUPPORTED_LAYERS = tuple(sorted([*LAYER_MAPS, "InputLayer", "ZeroPadding3D"]))
EXPORT_MAPS: dict[type[Layer], LayerMap] = {m.ours: m for m in LAYER_MAPS.values()}




def sequential_class() -> type[Layer]:
    """The Sequential class, found in the registry: ``models`` imports this package for
    ``Sequential.save_keras``, so importing ``models`` here would make a cycle."""
    return layer_class("Sequential")


def require_h5py(owner: str) -> Any:
    try:
        import h5py
    except ImportError:
        raise ImportError(
            f"{owner}: reading and writing Keras files needs h5py, which is not installed; "
            f"{INSTALL_HINT}"
        ) from None
    return h5py


def snake_case(name: str) -> str:
    """Keras' ``to_snake_case``: "ConvLSTM2D" -> "conv_lstm2d", "Conv2D" -> "conv2d"."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_name(name: str, used: dict[str, int]) -> str:
    """``name``, then ``name_1``, ``name_2``, ... (how Keras names a container's entries)."""
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def major_version(version: str) -> int:
    match = re.match(r"\s*(\d+)", version)
    return int(match.group(1)) if match else 3


def as_text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, (bytes, np.bytes_)) else str(value)


def shape_text(shape: Sequence[int | None] | None) -> str:
    if shape is None:
        return "unknown"
    return "(" + ", ".join("None" if n is None else str(n) for n in shape) + ")"


@dataclass
class KerasLayer:
    """One Keras layer as a file stores it: class, name and the weights it holds here.

    ``slots``: ``(owner, key)`` of our params, in Keras' variable order. ``children``: Keras'
    sub-objects holding the weights instead (``("cell", ...)`` of a ConvLSTM2D,
    ``("layer", ...)`` of a TimeDistributed, ``("backward_layer", ...)`` and
    ``("forward_layer", ...)`` of a Bidirectional), in the order a ``.keras`` file's groups are
    read (by attribute name). ``legacy_slots``: the slots in a legacy ``.h5`` file's
    ``weight_names`` order where that differs (a Bidirectional's: forward first).
    """

    class_name: str
    name: str
    slots: list[tuple[Layer, str]] = field(default_factory=list)
    children: list[tuple[str, KerasLayer]] = field(default_factory=list)
    legacy_slots: list[tuple[Layer, str]] | None = None

    def all_slots(self) -> list[tuple[Layer, str]]:
        slots = list(self.slots)
        for _, child in self.children:
            slots += child.all_slots()
        return slots


def weight_slots(layer: Layer) -> list[tuple[Layer, str]]:
    return [(owner, key) for _, owner, key in layer.named_params()]


def keras_layer_of(layer: Layer, class_name: str, name: str) -> KerasLayer:
    """The Keras layer an imported layer of ours is read from: its weight slots, or for a
    Bidirectional its two directions (a ``.keras`` file stores backward_layer first)."""
    if not isinstance(layer, Bidirectional):
        return KerasLayer(class_name, name, weight_slots(layer))
    directions = [
        (attribute, KerasLayer(type(inner).__name__, attribute, weight_slots(inner)))
        for attribute, inner in (("backward_layer", layer.backward_layer),
                                 ("forward_layer", layer.forward_layer))
    ]
    return KerasLayer(class_name, name, children=directions, legacy_slots=weight_slots(layer))

"""The registry that turns ``{"class_name": ..., "config": ...}`` back into layers and models.

Only the classes listed here can be rebuilt, so reading a config never runs other code.
"""

from __future__ import annotations

from typing import Any

from convlstm.layers.base import Layer
from convlstm.layers.conv import Conv2D, Conv3D
from convlstm.layers.convlstm import ConvLSTM2D, ConvLSTM2DCell
from convlstm.layers.core import (
    Activation,
    Dense,
    Dropout,
    Flatten,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from convlstm.layers.normalization import BatchNormalization
from convlstm.layers.pooling import MaxPooling2D, MaxPooling3D
from convlstm.layers.space_to_depth import DepthToSpace, SpaceToDepth
from convlstm.layers.wrappers import TimeDistributed
from convlstm.models import Sequential

LAYER_CLASSES: dict[str, type[Layer]] = {
    cls.__name__: cls
    for cls in (
        Activation,
        BatchNormalization,
        Conv2D,
        Conv3D,
        ConvLSTM2D,
        ConvLSTM2DCell,
        Dense,
        DepthToSpace,
        Dropout,
        Flatten,
        LeakyReLU,
        MaxPooling2D,
        MaxPooling3D,
        ReLU,
        Sigmoid,
        Softmax,
        SpaceToDepth,
        Tanh,
        TimeDistributed,
        Sequential,
    )
}


def serialize(layer: Layer) -> dict[str, Any]:
    """``{"class_name": ..., "config": ...}`` for a layer of a registered class."""
    name = type(layer).__name__
    if LAYER_CLASSES.get(name) is not type(layer):
        raise TypeError(
            f"serialize: {name} is not a registered layer class; expected one of "
            f"{sorted(LAYER_CLASSES)}."
        )
    return {"class_name": name, "config": layer.get_config()}


def deserialize(spec: object) -> Layer:
    """Rebuild a layer from :func:`serialize` output."""
    if not isinstance(spec, dict) or set(spec) != {"class_name", "config"}:
        raise TypeError(
            f"deserialize: expected a dict with keys 'class_name' and 'config'; got {spec!r:.80}."
        )
    cls = LAYER_CLASSES.get(spec["class_name"])
    if cls is None:
        raise ValueError(
            f"deserialize: unknown layer class {spec['class_name']!r}; expected one of "
            f"{sorted(LAYER_CLASSES)}."
        )
    return cls.from_config(spec["config"])

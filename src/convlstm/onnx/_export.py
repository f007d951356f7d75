"""Assemble the ONNX model from the layer converters, check it, and write it atomically."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper

from convlstm._files import atomic_write
from convlstm._version import __version__
from convlstm.layers.base import Layer
from convlstm.onnx._graph import Builder, Tensor, value_info
from convlstm.onnx._layers import Context, convert_layer

OWNER = "convlstm.onnx.export"


def build_model(layers: Sequence[Layer], shape: tuple, dtype: np.dtype, opset: int,
                states: bool, mask: bool) -> onnx.ModelProto:
    """The checked ONNX model of ``layers`` for inputs of ``shape`` (dynamic sizes named)."""
    builder = Builder(opset)
    ctx = Context(builder, states, "mask" if mask else None)
    if mask:
        ctx.inputs.insert(0, helper.make_tensor_value_info("mask", TensorProto.BOOL,
                                                           list(shape[:2])))
    x = Tensor("x", shape, np.dtype(dtype))
    for index, layer in enumerate(layers):
        x = convert_layer(ctx, layer, x, f"layer {index} ({type(layer).__name__})")
    builder.op("Identity", [x.name], outputs=["y"])
    graph = helper.make_graph(
        builder.nodes, "numpy_convlstm",
        [value_info("x", shape, dtype), *ctx.inputs],
        [value_info("y", x.shape, x.dtype), *ctx.outputs],
        builder.initializers,
    )
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="numpy-convlstm",
                              producer_version=__version__)
    model.ir_version = helper.find_min_ir_version_for(opsets)
    onnx.checker.check_model(model, full_check=True)
    return model


def write_model(model: onnx.ModelProto, path: str) -> None:
    """Write the model whole to ``path`` (a temporary file beside it, then a rename)."""
    data = model.SerializeToString()
    try:
        with atomic_write(path) as file:
            file.write(data)
    except OSError as error:
        raise ValueError(f"{OWNER}: cannot write {path!r}: {error.strerror or error}.") from error

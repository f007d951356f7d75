"""The ConvLSTM states at the ONNX graph's edges: optional initial-state inputs (zeros by
default) and final-state outputs, moved between the layer's data_format and the converter's
internal frame layout ((F, H, W) in float32, (H, W, F) in float64)."""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import numpy_helper

from convlstm.onnx._graph import Builder, value_info


def state_to_user(b: Builder, state: str, user_cf: bool, f32: bool) -> str:
    """A (B, *frame) state from the internal layout to the layer's data_format."""
    if f32 and not user_cf:
        return b.transpose(state, (0, 2, 3, 1))
    if not f32 and user_cf:
        return b.transpose(state, (0, 3, 1, 2))
    return state


def user_state_shape(state_shape: tuple, user_cf: bool, f32: bool) -> tuple:
    F, H, W = state_shape if f32 else (state_shape[2], *state_shape[:2])
    return (F, H, W) if user_cf else (H, W, F)


def initial_state(ctx: Any, name: str, batch: str, state_shape: tuple, dtype: np.dtype,
                   user_cf: bool, f32: bool) -> str:
    """Zeros (B, *state) in the internal layout; with ``states``, an optional graph input in
    the layer's data_format (default zeros, broadcast over the batch)."""
    b = ctx.b
    shape = b.op("Concat", [batch, b.ints(state_shape)], axis=0)
    if not ctx.states:
        zero = numpy_helper.from_array(np.zeros(1, dtype))
        return b.op("ConstantOfShape", [shape], value=zero)
    user_shape = user_state_shape(state_shape, user_cf, f32)
    ctx.inputs.append(value_info(name, ("state_batch", *user_shape), dtype))
    # An input with an initializer of the same name is optional: the initializer is its default.
    b.initializers.append(numpy_helper.from_array(np.zeros((1, *user_shape), dtype), name))
    state = name
    if f32 and not user_cf:
        state = b.transpose(state, (0, 3, 1, 2))
    elif not f32 and user_cf:
        state = b.transpose(state, (0, 2, 3, 1))
    return b.op("Expand", [state, shape])


def state_output(ctx: Any, name: str, state: str, state_shape: tuple, dtype: np.dtype,
                  user_cf: bool, f32: bool) -> None:
    b = ctx.b
    b.op("Identity", [state_to_user(b, state, user_cf, f32)], outputs=[name])
    user_shape = user_state_shape(state_shape, user_cf, f32)
    ctx.outputs.append(value_info(name, ("batch", *user_shape), dtype))

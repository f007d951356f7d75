"""The recurrent states at the ONNX graph's edges: optional initial-state inputs (zeros by
default) and final-state outputs, moved between the layer's data_format and the converter's
internal frame layout ((F, *spatial) in float32, (*spatial, F) in float64)."""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import numpy_helper

from convlstm.onnx._graph import Builder, value_info


def _perm(rank: int, to_user: bool, user_cf: bool, f32: bool) -> tuple[int, ...]:
    """The transpose of a (B, *frame) state of ``rank`` axes between the internal layout and
    the user's (identity where they agree)."""
    if f32 == user_cf:
        return tuple(range(rank))
    to_last = (0, *range(2, rank), 1)  # (B, F, *S) -> (B, *S, F)
    to_first = (0, rank - 1, *range(1, rank - 1))
    return to_last if f32 == to_user else to_first


def state_to_user(b: Builder, state: str, rank: int, user_cf: bool, f32: bool) -> str:
    """A (B, *frame) state from the internal layout to the layer's data_format."""
    return b.transpose(state, _perm(rank, True, user_cf, f32))


def user_state_shape(state_shape: tuple, user_cf: bool, f32: bool) -> tuple:
    F, *S = state_shape if f32 else (state_shape[-1], *state_shape[:-1])
    return (F, *S) if user_cf else (*S, F)


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
    state = b.transpose(name, _perm(len(state_shape) + 1, False, user_cf, f32))
    return b.op("Expand", [state, shape])


def state_output(ctx: Any, name: str, state: str, state_shape: tuple, dtype: np.dtype,
                 user_cf: bool, f32: bool) -> None:
    b = ctx.b
    b.op("Identity", [state_to_user(b, state, len(state_shape) + 1, user_cf, f32)],
         outputs=[name])
    user_shape = user_state_shape(state_shape, user_cf, f32)
    ctx.outputs.append(value_info(name, ("batch", *user_shape), dtype))

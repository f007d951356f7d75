"""One converter per layer class: each emits the ONNX nodes computing what the layer's
inference forward computes, with the same arithmetic (same constants, same order of operations
where it matters). A layer is read only through its ``get_config()`` (the options, as the
native file stores them), ``get_weights()`` (Keras order and layout) and ``sublayers()``.

Every converter takes the export context, the layer, its config and its input :class:`Tensor`
(in the layout the layer's forward sees), and returns the output :class:`Tensor`. A layer or
an option that cannot be exported raises ``ValueError``/``TypeError`` naming it, before any
file is written.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from convlstm.layers.activation import Activation, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from convlstm.layers.base import Layer
from convlstm.layers.bidirectional import Bidirectional
from convlstm.layers.conv import Conv2D, Conv3D
from convlstm.layers.convlstm import ConvLSTM2D
from convlstm.layers.convlstm_ranks import ConvLSTM1D
from convlstm.layers.core import Dense, Dropout, Flatten
from convlstm.layers.normalization import BatchNormalization
from convlstm.layers.pooling import MaxPooling2D, MaxPooling3D
from convlstm.layers.space_to_depth import DepthToSpace, SpaceToDepth
from convlstm.layers.wrappers import TimeDistributed
from convlstm.onnx._graph import (
    INT64_MAX,
    Builder,
    Tensor,
    conv_out_size,
    explicit_pads,
    is_static,
    value_info,
)
from convlstm.onnx._states import initial_state, state_output, state_to_user

_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


class Context:
    """What converters share: the main graph's builder and the optional state inputs/outputs."""

    def __init__(self, builder: Builder, states: bool, mask: str | None = None) -> None:
        self.b = builder
        self.states = states
        self.mask = mask  # the name of the (batch, time) bool mask input, if there is one
        self.inputs: list = []  # extra graph inputs (value infos), with zero defaults
        self.outputs: list = []  # extra graph outputs (value infos)
        self.recurrent_layers = 0

    def refuse(self, where: str, what: str, error: type = ValueError) -> None:
        raise error(f"convlstm.onnx.export: {where}: {what}")


# -------------------------------------------------------------------------------- activations


def activation(b: Builder, name: str, x: str, dtype: np.dtype) -> str:
    """Keras activation ``name`` on ``x``, computed as ``functional.activations`` computes it."""
    def c(value):
        return b.scalar(value, dtype)

    if name == "linear":
        return x
    simple = {"tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu", "exponential": "Exp"}
    if name in simple:
        return b.op(simple[name], [x])
    if name == "relu6":
        return b.op("Clip", [x, c(0.0), c(6.0)])
    if name == "hard_sigmoid":  # Keras 3: relu6(x + 3) / 6
        return b.op("Div", [b.op("Clip", [b.op("Add", [x, c(3.0)]), c(0.0), c(6.0)]), c(6.0)])
    if name == "hard_sigmoid_keras2":  # Keras 2: clip(0.2 x + 0.5, 0, 1)
        scaled = b.op("Add", [b.op("Mul", [x, c(0.2)]), c(0.5)])
        return b.op("Clip", [scaled, c(0.0), c(1.0)])
    if name in ("elu", "selu"):
        negative = b.op("Sub", [b.op("Exp", [b.op("Min", [x, c(0.0)])]), c(1.0)])  # expm1
        if name == "selu":
            negative = b.op("Mul", [negative, c(_SELU_ALPHA)])
        y = b.op("Where", [b.op("Greater", [x, c(0.0)]), x, negative])
        return b.op("Mul", [y, c(_SELU_SCALE)]) if name == "selu" else y
    if name == "softsign":
        return b.op("Div", [x, b.op("Add", [b.op("Abs", [x]), c(1.0)])])
    if name == "softplus":  # log(exp(x) + 1) = max(x, 0) + log(1 + exp(-|x|)), no overflow
        tail = b.op("Exp", [b.op("Neg", [b.op("Abs", [x])])])
        return b.op("Add", [b.op("Relu", [x]), b.op("Log", [b.op("Add", [tail, c(1.0)])])])
    if name == "softmax":
        return b.op("Softmax", [x], axis=-1)
    raise ValueError(f"no ONNX form for the activation {name!r}")


ONNX_ACTIVATIONS = frozenset([
    "linear", "tanh", "sigmoid", "relu", "exponential", "relu6", "hard_sigmoid",
    "hard_sigmoid_keras2", "elu", "selu", "softsign", "softplus", "softmax",
])


def _activation_name(ctx: Context, where: str, option: str, name: str) -> str:
    """``name`` if :func:`activation` has an ONNX form for it; refused otherwise."""
    if name not in ONNX_ACTIVATIONS:
        ctx.refuse(where, f"{option}={name!r} has no ONNX form; expected one of "
                          f"{', '.join(sorted(ONNX_ACTIVATIONS))}.")
    return name


def _leaky_relu(b: Builder, x: str, slope: float, dtype: np.dtype) -> str:
    # As functional.activations.leaky_relu: where(x >= 0, x, x * slope).
    zero = b.scalar(0.0, dtype)
    negative = b.op("Mul", [x, b.scalar(slope, dtype)])
    return b.op("Where", [b.op("GreaterOrEqual", [x, zero]), x, negative])


# ---------------------------------------------------------------------------------- layouts


def _to_channels_first(b: Builder, x: str, rank: int) -> str:
    """(N, *spatial, C) -> (N, C, *spatial) for a tensor of ``rank`` axes."""
    return b.transpose(x, (0, rank - 1, *range(1, rank - 1)))


def _to_channels_last(b: Builder, x: str, rank: int) -> str:
    """(N, C, *spatial) -> (N, *spatial, C)."""
    return b.transpose(x, (0, *range(2, rank), 1))


def _spatial(shape, channels_first: bool) -> tuple[tuple, Any]:
    """(spatial sizes, channels) of an (N, ...) shape."""
    return (shape[2:], shape[1]) if channels_first else (shape[1:-1], shape[-1])


def _join(batch, spatial, channels, channels_first: bool) -> tuple:
    return (batch, channels, *spatial) if channels_first else (batch, *spatial, channels)


# ------------------------------------------------------------------------------- converters


def convert_conv(ctx: Context, layer: Conv2D | Conv3D, config: dict, x: Tensor,
                 where: str) -> Tensor:
    b, dtype = ctx.b, np.dtype(config["dtype"])
    act = _activation_name(ctx, where, "activation", config["activation"])
    window, strides = tuple(config["kernel_size"]), tuple(config["strides"])
    dilation = tuple(config["dilation_rate"])
    x = b.cast(x, dtype)
    user_cf = config["data_format"] == "channels_first"
    sizes, _ = _spatial(x.shape, user_cf)
    pads = explicit_pads(config["padding"], sizes, window, strides, dilation)
    f32 = dtype == np.float32
    if pads == "SAME_UPPER" and not f32:
        ctx.refuse(where, "padding='same' with strides > 1 along a dynamic (time) axis runs "
                          "only in float32; use dtype='float32' or dynamic_time=False.")
    name = x.name
    if f32 and not user_cf:
        name = _to_channels_first(b, name, x.rank)
    elif not f32 and user_cf:
        name = _to_channels_last(b, name, x.rank)
    kernel, *bias = layer.get_weights()
    y = b.conv(name, kernel, bias[0] if bias else None, strides, pads, dilation, dtype, sizes)
    if f32 and not user_cf:
        y = _to_channels_last(b, y, x.rank)
    elif not f32 and user_cf:
        y = _to_channels_first(b, y, x.rank)
    y = activation(b, act, y, dtype)
    out = [conv_out_size(n, pads, k, s, d, axis)
           for axis, (n, k, s, d) in enumerate(zip(sizes, window, strides, dilation))]
    return Tensor(y, _join(x.shape[0], out, config["filters"], user_cf), dtype)


def convert_pooling(ctx: Context, layer: MaxPooling2D | MaxPooling3D, config: dict, x: Tensor,
                    where: str) -> Tensor:
    b = ctx.b
    window, strides = tuple(config["pool_size"]), tuple(config["stride"])
    user_cf = config["data_format"] == "channels_first"
    sizes, channels = _spatial(x.shape, user_cf)
    pads = explicit_pads(config["padding"], sizes, window, strides, (1,) * len(window))
    name = x.name if user_cf else _to_channels_first(b, x.name, x.rank)
    padding = ({"auto_pad": "SAME_UPPER"} if pads == "SAME_UPPER"
               else {"pads": [p[0] for p in pads] + [p[1] for p in pads]})
    # ONNX Runtime's MaxPool never lets a padded cell win, as ours.
    y = b.op("MaxPool", [name], kernel_shape=list(window), strides=list(strides), **padding)
    y = y if user_cf else _to_channels_last(b, y, x.rank)
    out = [conv_out_size(n, pads, k, s, 1, axis)
           for axis, (n, k, s) in enumerate(zip(sizes, window, strides))]
    return Tensor(y, _join(x.shape[0], out, channels, user_cf), x.dtype)


def convert_dense(ctx: Context, layer: Dense, config: dict, x: Tensor, where: str) -> Tensor:
    b, dtype = ctx.b, np.dtype(config["dtype"])
    act = _activation_name(ctx, where, "activation", config["activation"])
    x = b.cast(x, dtype)
    kernel, *bias = layer.get_weights()
    y = b.op("MatMul", [x.name, b.const(kernel, hint="kernel")])
    if bias:
        y = b.op("Add", [y, b.const(bias[0], hint="bias")])
    y = activation(b, act, y, dtype)
    return Tensor(y, (*x.shape[:-1], config["units"]), dtype)


def convert_flatten(ctx: Context, layer: Flatten, config: dict, x: Tensor, where: str) -> Tensor:
    b, name = ctx.b, x.name
    if config["data_format"] == "channels_first" and x.rank > 2:
        name = _to_channels_last(b, name, x.rank)
    rest = x.shape[1:]
    features = math.prod(rest) if all(is_static(n) for n in rest) else None
    return Tensor(b.reshape(name, [0, -1]), (x.shape[0], features), x.dtype)


def convert_dropout(ctx: Context, layer: Dropout, config: dict, x: Tensor, where: str) -> Tensor:
    return x  # no dropout at inference


def convert_batch_norm(ctx: Context, layer: BatchNormalization, config: dict, x: Tensor,
                       where: str) -> Tensor:
    b, dtype = ctx.b, np.dtype(config["dtype"])
    x = b.cast(x, dtype)
    axis = config["axis"] % x.rank
    weights = layer.get_weights()  # [gamma,] [beta,] moving_mean, moving_variance
    gamma = weights.pop(0) if config["scale"] else None
    beta = weights.pop(0) if config["center"] else None
    mean, variance = weights
    # The constants of functional.dense_ops.batch_norm_inference, computed the same way.
    factor = 1.0 / np.sqrt(variance + config["epsilon"])
    if gamma is not None:
        factor = factor * gamma
    along = (-1,) + (1,) * (x.rank - 1 - axis)
    y = b.op("Sub", [x.name, b.const(mean.reshape(along), hint="mean")])
    y = b.op("Mul", [y, b.const(factor.astype(dtype).reshape(along), hint="factor")])
    if beta is not None:
        y = b.op("Add", [y, b.const(beta.reshape(along), hint="beta")])
    return Tensor(y, x.shape, dtype)


def convert_activation(ctx: Context, layer: Activation, config: dict, x: Tensor,
                       where: str) -> Tensor:
    fixed = {Sigmoid: "sigmoid", Tanh: "tanh"}  # their configs are empty
    name = fixed.get(type(layer)) or config["activation"]
    name = _activation_name(ctx, where, "activation", name)
    return Tensor(activation(ctx.b, name, x.name, x.dtype), x.shape, x.dtype)


def convert_relu(ctx: Context, layer: ReLU, config: dict, x: Tensor, where: str) -> Tensor:
    b, dtype = ctx.b, x.dtype
    max_value, slope = config["max_value"], config["negative_slope"]
    if max_value is None and slope == 0 and config["threshold"] == 0:
        return Tensor(b.op("Relu", [x.name]), x.shape, dtype)
    # As ReLU._apply: where(x > threshold, x, 0), capped, plus slope * min(x - threshold, 0).
    threshold = b.scalar(config["threshold"], dtype)
    zero = b.scalar(0.0, dtype)
    y = b.op("Where", [b.op("Greater", [x.name, threshold]), x.name, zero])
    if max_value is not None:
        y = b.op("Min", [y, b.scalar(max_value, dtype)])
    if slope:
        below = b.op("Min", [b.op("Sub", [x.name, threshold]), zero])
        y = b.op("Add", [y, b.op("Mul", [below, b.scalar(slope, dtype)])])
    return Tensor(y, x.shape, dtype)


def convert_leaky_relu(ctx: Context, layer: LeakyReLU, config: dict, x: Tensor,
                       where: str) -> Tensor:
    y = _leaky_relu(ctx.b, x.name, config["negative_slope"], x.dtype)
    return Tensor(y, x.shape, x.dtype)


def convert_softmax(ctx: Context, layer: Softmax, config: dict, x: Tensor, where: str) -> Tensor:
    axis = config["axis"]
    if not isinstance(axis, int):
        ctx.refuse(where, f"axis={tuple(axis)} spans several axes; ONNX Softmax takes one "
                          "(expected an int axis).")
    if not -x.rank <= axis < x.rank:
        ctx.refuse(where, f"axis={axis} is outside the input's {x.rank} axes.")
    return Tensor(ctx.b.op("Softmax", [x.name], axis=axis), x.shape, x.dtype)


def convert_block(ctx: Context, layer: SpaceToDepth | DepthToSpace, config: dict, x: Tensor,
                  where: str) -> Tensor:
    """A per-frame permutation, as one 7-D reshape, a transpose and a reshape (TensorFlow's
    channel order, which is ONNX's DepthToSpace DCR mode); works for (bh, bw) blocks."""
    b = ctx.b
    block = config["block_size"]
    bh, bw = (block, block) if isinstance(block, int) else block
    cf = config["data_format"] == "channels_first"
    if x.rank != 5:
        ctx.refuse(where, f"expected a (batch, time, ...) input of 5 axes; got shape {x.shape}.")
    C, H, W = (x.shape[2:] if cf else (x.shape[4], x.shape[2], x.shape[3]))
    if isinstance(layer, SpaceToDepth):
        Ho, Wo, D = H // bh, W // bw, C * bh * bw
        if cf:   # (B, T, C, Ho, dy, Wo, dx) -> (B, T, dy, dx, C, Ho, Wo)
            blocks, perm, out = [C, Ho, bh, Wo, bw], (0, 1, 4, 6, 2, 3, 5), (D, Ho, Wo)
        else:    # (B, T, Ho, dy, Wo, dx, C) -> (B, T, Ho, Wo, dy, dx, C)
            blocks, perm, out = [Ho, bh, Wo, bw, C], (0, 1, 2, 4, 3, 5, 6), (Ho, Wo, D)
    else:
        Ho, Wo, D = H * bh, W * bw, C // (bh * bw)
        if cf:   # (B, T, dy, dx, D, H, W) -> (B, T, D, H, dy, W, dx)
            blocks, perm, out = [bh, bw, D, H, W], (0, 1, 4, 5, 2, 6, 3), (D, Ho, Wo)
        else:    # (B, T, H, W, dy, dx, D) -> (B, T, H, dy, W, dx, D)
            blocks, perm, out = [H, W, bh, bw, D], (0, 1, 2, 4, 3, 5, 6), (Ho, Wo, D)
    y = b.reshape(x.name, [0, 0, *blocks])  # 0 keeps batch and time as they are
    y = b.reshape(b.transpose(y, perm), [0, 0, *out])
    return Tensor(y, (*x.shape[:2], *out), x.dtype)


def convert_time_distributed(ctx: Context, layer: TimeDistributed, config: dict, x: Tensor,
                             where: str) -> Tensor:
    b = ctx.b
    rest = x.shape[2:]
    if x.rank < 3 or not all(is_static(n) for n in rest):
        ctx.refuse(where, f"expected (batch, time, ...) with static sizes after time; got "
                          f"{x.shape}.")
    steps = Tensor(b.reshape(x.name, [-1, *rest]), (None, *rest), x.dtype)  # (B*T, ...)
    (wrapped,) = layer.sublayers()
    inner = convert_layer(ctx, wrapped, steps, f"{where} > {type(wrapped).__name__}")
    if not all(is_static(n) for n in inner.shape[1:]):
        ctx.refuse(where, f"the wrapped layer's output {inner.shape} is not static per step.")
    y = b.reshape(inner.name, [b.shape_of(x.name, 0, 2), *inner.shape[1:]])
    return Tensor(y, (*x.shape[:2], *inner.shape[1:]), inner.dtype)


# ------------------------------------------------------------------------------- ConvLSTM2D


def convert_convlstm(ctx: Context, layer: ConvLSTM2D, config: dict, x: Tensor,
                     where: str) -> Tensor:
    """The stack as one ``Scan`` over time per cell.

    Per cell: the input convolution of all frames at once (time-major, frames merged into the
    batch), then a Scan whose body adds the recurrent convolution of ``h`` (stride 1, "same",
    no bias), splits the gates in Keras' order i, f, c, o and updates the states. float32
    runs channels first (``Conv``); float64 channels last (im2col).
    """
    b, dtype = ctx.b, np.dtype(config["dtype"])
    act = _activation_name(ctx, where, "activation", config["activation"])
    ract = _activation_name(ctx, where, "recurrent_activation", config["recurrent_activation"])
    window, strides = tuple(config["kernel_size"]), tuple(config["stride"])
    dilation, slope = tuple(config["dilation"]), config["leaky_relu_slope"]
    backwards, num_layers = config["go_backwards"], config["num_layers"]
    # get_weights: kernel, recurrent_kernel[, bias][, peephole] for each stacked cell, in order.
    weights = layer.get_weights()
    peepholes = config.get("peephole", False)
    per_cell = 2 + config["use_bias"] + peepholes
    cells = [weights[k : k + per_cell] for k in range(0, len(weights), per_cell)]
    x = b.cast(x, dtype)
    if x.rank != 5:
        ctx.refuse(where, f"expected a (batch, time, ...) input of 5 axes; got shape {x.shape}.")
    user_cf = config["data_format"] == "channels_first"
    f32 = dtype == np.float32
    C, H, W = (x.shape[2:] if user_cf else (x.shape[4], x.shape[2], x.shape[3]))
    F = config["out_channels"]
    index = ctx.recurrent_layers
    ctx.recurrent_layers += 1

    def frame(c, h, w):  # the internal layout of one frame
        return (c, h, w) if f32 else (h, w, c)

    # User (B, T, ...) -> time-major internal (T, B, *frame).
    if user_cf:
        perm = (1, 0, 2, 3, 4) if f32 else (1, 0, 3, 4, 2)
    else:
        perm = (1, 0, 4, 2, 3) if f32 else (1, 0, 2, 3, 4)
    sequence = b.transpose(x.name, perm)
    time_batch = b.shape_of(sequence, 0, 2)  # [T, B]
    batch = b.shape_of(x.name, 0, 1)
    gate_axis = 1 if f32 else 3  # of a (B, *frame) state
    last = num_layers - 1
    mask = None
    if ctx.mask is not None:
        mask = b.transpose(ctx.mask, (1, 0))  # (T, B), in processing order
        if backwards:
            mask = b.op("Slice", [mask, b.ints([-1]), b.ints([-INT64_MAX]), b.ints([0]),
                                  b.ints([-1])])

    for k, (kernel, recurrent_kernel, *rest) in enumerate(cells):
        bias = rest[:1] if config["use_bias"] else []
        peephole = rest[-1] if peepholes else None
        pads = explicit_pads(config["padding"], (H, W), window, strides, dilation)
        Ho, Wo = (conv_out_size(n, pads, kk, s, d, axis) for axis, (n, kk, s, d) in
                  enumerate(zip((H, W), window, strides, dilation)))
        merged = b.reshape(sequence, [-1, *frame(C, H, W)])
        z = b.conv(merged, kernel, bias[0] if bias else None, strides, pads, dilation, dtype,
                   (H, W))
        z = b.reshape(z, [time_batch, *frame(4 * F, Ho, Wo)])  # (T, B, *frame(4F))
        state_shape = frame(F, Ho, Wo)
        h0, c0 = (initial_state(ctx, f"{kind}0_{index}_{k}", batch, state_shape, dtype,
                                 user_cf, f32) for kind in ("h", "c"))
        body = _cell_body(b.opset, f"scan{index}_{k}/", recurrent_kernel, peephole, act, ract,
                          dtype, state_shape, gate_axis, masked=mask is not None,
                          sequence_out=k < last or config["return_sequences"])
        reverse = 1 if backwards and k == 0 else 0
        if mask is None:
            inputs, directions = [h0, c0, z], [reverse]
        else:  # a third state: the last output, which a masked step repeats (zeros at first)
            zeros = b.op("ConstantOfShape", [b.op("Shape", [h0])],
                         value=numpy_helper.from_array(np.zeros(1, dtype)))
            inputs, directions = [h0, c0, zeros, z, mask], [reverse, 0]
        outputs = b.op("Scan", inputs, outputs=len(body.output), body=body,
                       num_scan_inputs=len(directions), scan_input_directions=directions)
        h_final, c_final = outputs[0], outputs[1]
        last_output = h_final if mask is None else outputs[2]
        if ctx.states:
            for kind, value in (("h", h_final), ("c", c_final)):
                state_output(ctx, f"{kind}_{index}_{k}", value, state_shape, dtype, user_cf,
                              f32)
        if len(outputs) == (4 if mask is not None else 3):
            sequence = outputs[-1]
            if slope is not None:
                sequence = _leaky_relu(b, sequence, slope, dtype)
        C, H, W = F, Ho, Wo

    if config["return_sequences"]:  # (T, B, *frame) -> user (B, T, ...)
        if user_cf:
            back = (1, 0, 2, 3, 4) if f32 else (1, 0, 4, 2, 3)
        else:
            back = (1, 0, 3, 4, 2) if f32 else (1, 0, 2, 3, 4)
        y = b.transpose(sequence, back)
        shape = (x.shape[0], x.shape[1], *((F, H, W) if user_cf else (H, W, F)))
    else:  # the last step's output (unmasked: the last cell's final h)
        y = last_output
        if slope is not None:
            y = _leaky_relu(b, y, slope, dtype)
        y = state_to_user(b, y, user_cf, f32)
        shape = (x.shape[0], *((F, H, W) if user_cf else (H, W, F)))
    return Tensor(y, shape, dtype)


def _cell_body(opset: int, prefix: str, kernel: np.ndarray, peephole: np.ndarray | None,
               act: str, ract: str, dtype: np.dtype, state_shape: tuple, gate_axis: int,
               sequence_out: bool, masked: bool):
    """The Scan body of one cell: (h, c, z_t) -> (h', c'[, h']); masked:
    (h, c, y, z_t, m_t) -> (h', c', y'[, y']) where a False ``m_t`` keeps h and c and repeats
    the last output y. ``peephole`` (3, F), rows i, f, o: i and f also see c, o sees c'."""
    b = Builder(opset, prefix)
    h, c, y, z_t, m_t = (f"{prefix}{name}" for name in ("h", "c", "y", "z", "m"))
    gate_shape = list(state_shape)
    gate_shape[gate_axis - 1] = kernel.shape[-1]  # 4F
    sizes = state_shape[1:] if gate_axis == 1 else state_shape[:2]
    ones = (1, 1)
    pads = explicit_pads("same", sizes, kernel.shape[:2], ones, ones)
    recurrent = b.conv(h, kernel, None, ones, pads, ones, dtype, sizes)
    z = b.op("Add", [z_t, recurrent])
    i, f, g, o = b.split(z, gate_axis, 4)  # Keras' gate order i, f, c, o
    weights = None
    if peephole is not None:  # per channel, broadcast over the frame's other axes
        axes = (-1, 1, 1) if gate_axis == 1 else (-1,)
        weights = [b.const(row.astype(dtype).reshape(axes), hint="peephole") for row in peephole]
        i, f = (b.op("Add", [gate, b.op("Mul", [p, c])]) for gate, p in ((i, weights[0]),
                                                                         (f, weights[1])))
    i, f = (activation(b, ract, gate, dtype) for gate in (i, f))
    g = activation(b, act, g, dtype)
    named = 1 if masked else [f"{prefix}c_out"]
    c_new = b.op("Add", [b.op("Mul", [f, c]), b.op("Mul", [i, g])], outputs=named)
    if weights is not None:
        o = b.op("Add", [o, b.op("Mul", [weights[2], c_new])])
    o = activation(b, ract, o, dtype)
    named = 1 if masked else [f"{prefix}h_out"]
    h_new = b.op("Mul", [o, activation(b, act, c_new, dtype)], outputs=named)
    state = (None, *state_shape)
    inputs = [value_info(h, state, dtype), value_info(c, state, dtype)]
    if masked:
        keep = b.op("Reshape", [m_t, b.ints([-1, 1, 1, 1])])  # (B,) -> (B, 1, 1, 1)
        results = [b.op("Where", [keep, new, old], outputs=[f"{prefix}{name}_out"])
                   for new, old, name in ((h_new, h, "h"), (c_new, c, "c"), (h_new, y, "y"))]
        inputs.append(value_info(y, state, dtype))
    else:
        results = [h_new, c_new]
    outputs = [value_info(name, state, dtype) for name in results]
    if sequence_out:
        sequence = b.op("Identity", [results[2] if masked else h_new],
                        outputs=[f"{prefix}sequence"])
        outputs.append(value_info(sequence, state, dtype))
    inputs.append(value_info(z_t, (None, *gate_shape), dtype))
    if masked:
        inputs.append(helper.make_tensor_value_info(m_t, TensorProto.BOOL, [None]))
    return helper.make_graph(b.nodes, prefix.rstrip("/"), inputs, outputs, b.initializers)


def convert_conv_lstm_1d(ctx: Context, layer: ConvLSTM1D, config: dict, x: Tensor,
                         where: str) -> Tensor:
    """A ConvLSTM1D is a ConvLSTM2D over frames of height 1 (kernels with a unit first axis):
    the input gets that axis, the twin's graph runs, the output loses it."""
    if ctx.states:
        ctx.refuse(where, "states=True exports the states of ConvLSTM2D layers only.")
    padding = config["padding"]
    twin = ConvLSTM2D(**{**config, "kernel_size": (1, *config["kernel_size"]),
                         "stride": (1, *config["stride"]), "dilation": (1, *config["dilation"]),
                         "padding": padding if isinstance(padding, str) else (0, *padding)})
    twin.set_weights([w[None] if w.ndim == 3 else w for w in layer.get_weights()])
    height = x.rank - 1 if config["data_format"] == "channels_first" else x.rank - 2
    frames = ctx.b.op("Unsqueeze", [x.name, ctx.b.ints([height])])
    y = convert_convlstm(ctx, twin, twin.get_config(),
                         Tensor(frames, (*x.shape[:height], 1, *x.shape[height:]), x.dtype), where)
    height = y.rank - 2 if config["data_format"] == "channels_first" else y.rank - 3
    return Tensor(ctx.b.op("Squeeze", [y.name, ctx.b.ints([height])]),
                  (*y.shape[:height], *y.shape[height + 1 :]), y.dtype)


def convert_bidirectional(ctx: Context, layer: Bidirectional, config: dict, x: Tensor,
                          where: str) -> Tensor:
    """Both directions' ConvLSTM2D graphs on ``x``; the backward outputs flipped back into
    time order (with ``return_sequences``), then merged as Keras merges them."""
    directions = layer.sublayers()
    exporting = (ConvLSTM1D, ConvLSTM2D)
    if not all(type(inner) in exporting for inner in directions) or config["merge_mode"] is None:
        ctx.refuse(where, "only a Bidirectional of ConvLSTM1D/2D layers with a merge_mode exports "
                          f"(got {[type(inner).__name__ for inner in directions]}, merge_mode="
                          f"{config['merge_mode']!r}).")
    y, y_reversed = (convert_layer(ctx, inner, x, f"{where} > {name}")
                     for inner, name in zip(directions, ("forward_layer", "backward_layer")))
    b, reversed_name = ctx.b, y_reversed.name
    if layer.return_sequences:
        reversed_name = b.op("Slice", [reversed_name, b.ints([-1]), b.ints([-INT64_MAX]),
                                       b.ints([1]), b.ints([-1])])
    mode, shape = config["merge_mode"], y.shape
    if mode == "concat":
        merged = b.op("Concat", [y.name, reversed_name], axis=-1)
        shape = (*y.shape[:-1], y.shape[-1] + y_reversed.shape[-1])
    else:
        merged = b.op({"sum": "Add", "ave": "Add", "mul": "Mul"}[mode], [y.name, reversed_name])
        if mode == "ave":
            merged = b.op("Div", [merged, b.scalar(2.0, y.dtype)])
    return Tensor(merged, shape, y.dtype)


# -------------------------------------------------------------------------------- dispatch

CONVERTERS: list[tuple[type, Callable]] = [
    (ConvLSTM2D, convert_convlstm),
    (ConvLSTM1D, convert_conv_lstm_1d),
    (Conv2D, convert_conv),
    (Conv3D, convert_conv),
    (MaxPooling2D, convert_pooling),
    (MaxPooling3D, convert_pooling),
    (Dense, convert_dense),
    (Flatten, convert_flatten),
    (Dropout, convert_dropout),
    (BatchNormalization, convert_batch_norm),
    (Activation, convert_activation),  # Sigmoid and Tanh too
    (ReLU, convert_relu),
    (LeakyReLU, convert_leaky_relu),
    (Softmax, convert_softmax),
    (SpaceToDepth, convert_block),
    (DepthToSpace, convert_block),
    (TimeDistributed, convert_time_distributed),
    (Bidirectional, convert_bidirectional),
]

SUPPORTED = sorted({cls.__name__ for cls, _ in CONVERTERS} | {"Sigmoid", "Tanh"})


def convert_layer(ctx: Context, layer: Layer, x: Tensor, where: str) -> Tensor:
    for cls, converter in CONVERTERS:
        if type(layer) is cls or (isinstance(layer, cls) and cls is Activation):
            try:  # a TimeDistributed's only option is its layer, converted on its own
                config = {} if cls is TimeDistributed else layer.get_config()
            except TypeError as error:  # a callable option: no config, and no ONNX form
                raise TypeError(f"convlstm.onnx.export: {where}: a callable has no ONNX form: "
                                f"{error}") from None
            return converter(ctx, layer, config, x, where)
    raise ValueError(
        f"convlstm.onnx.export: {where}: cannot export a {type(layer).__name__}; the layers "
        f"that export are {', '.join(SUPPORTED)}."
    )


__all__ = ["SUPPORTED", "Context", "convert_layer"]

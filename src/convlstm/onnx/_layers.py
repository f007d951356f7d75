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

import numpy as np

from convlstm.layers.activation import Activation, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from convlstm.layers.base import Layer
from convlstm.layers.bidirectional import Bidirectional
from convlstm.layers.conv import Conv2D, Conv3D
from convlstm.layers.convgru import ConvGRU1D, ConvGRU2D, ConvGRU3D
from convlstm.layers.convlstm import ConvLSTM2D
from convlstm.layers.convlstm_ranks import ConvLSTM1D, ConvLSTM3D
from convlstm.layers.core import Dense, Dropout, Flatten
from convlstm.layers.normalization import BatchNormalization
from convlstm.layers.pooling import MaxPooling1D, MaxPooling2D, MaxPooling3D
from convlstm.layers.space_to_depth import DepthToSpace, SpaceToDepth
from convlstm.layers.wrappers import TimeDistributed
from convlstm.onnx._activations import activation, activation_name, leaky_relu
from convlstm.onnx._graph import (
    INT64_MAX,
    Builder,
    Tensor,
    conv_out_size,
    explicit_pads,
    is_static,
    spatial_and_channels,
)
from convlstm.onnx._recurrent import convert_recurrent


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


# ---------------------------------------------------------------------------------- layouts


def _to_channels_first(b: Builder, x: str, rank: int) -> str:
    """(N, *spatial, C) -> (N, C, *spatial) for a tensor of ``rank`` axes."""
    return b.transpose(x, (0, rank - 1, *range(1, rank - 1)))


def _to_channels_last(b: Builder, x: str, rank: int) -> str:
    """(N, C, *spatial) -> (N, *spatial, C)."""
    return b.transpose(x, (0, *range(2, rank), 1))


def _join(batch, spatial, channels, channels_first: bool) -> tuple:
    return (batch, channels, *spatial) if channels_first else (batch, *spatial, channels)


# ------------------------------------------------------------------------------- converters


def convert_conv(ctx: Context, layer: Conv2D | Conv3D, config: dict, x: Tensor,
                 where: str) -> Tensor:
    b, dtype = ctx.b, np.dtype(config["dtype"])
    act = activation_name(ctx, where, "activation", config["activation"])
    window, strides = tuple(config["kernel_size"]), tuple(config["strides"])
    dilation = tuple(config["dilation_rate"])
    x = b.cast(x, dtype)
    user_cf = config["data_format"] == "channels_first"
    sizes, _ = spatial_and_channels(x.shape, user_cf)
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


def convert_pooling(ctx: Context, layer: MaxPooling1D | MaxPooling2D | MaxPooling3D,
                    config: dict, x: Tensor, where: str) -> Tensor:
    b = ctx.b
    window, strides = tuple(config["pool_size"]), tuple(config["stride"])
    user_cf = config["data_format"] == "channels_first"
    sizes, channels = spatial_and_channels(x.shape, user_cf)
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
    act = activation_name(ctx, where, "activation", config["activation"])
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
    name = activation_name(ctx, where, "activation", name)
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
    y = leaky_relu(ctx.b, x.name, config["negative_slope"], x.dtype)
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


def convert_bidirectional(ctx: Context, layer: Bidirectional, config: dict, x: Tensor,
                          where: str) -> Tensor:
    """Both directions' recurrent graphs on ``x``; the backward outputs flipped back into
    time order (with ``return_sequences``), then merged as Keras merges them."""
    directions = layer.sublayers()
    exporting = tuple(cls for cls, converter in CONVERTERS if converter is convert_recurrent)
    if not all(type(inner) in exporting for inner in directions) or config["merge_mode"] is None:
        ctx.refuse(where, "only a Bidirectional of ConvLSTM or ConvGRU layers with a merge_mode "
                          "exports "
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
    *((cls, convert_recurrent) for cls in (ConvLSTM1D, ConvLSTM2D, ConvLSTM3D, ConvGRU1D,
                                           ConvGRU2D, ConvGRU3D)),
    (Conv2D, convert_conv),
    (Conv3D, convert_conv),
    (MaxPooling1D, convert_pooling),
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

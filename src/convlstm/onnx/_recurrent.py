"""ConvLSTM and ConvGRU over 1, 2 or 3 spatial axes: one ONNX ``Scan`` over time per stacked
cell, whose body is the cell's update."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from convlstm.layers.convgru import ConvGRU
from convlstm.onnx._activations import activation, activation_name, leaky_relu
from convlstm.onnx._graph import (
    INT64_MAX,
    Builder,
    Tensor,
    conv_out_size,
    explicit_pads,
    spatial_and_channels,
    value_info,
)
from convlstm.onnx._states import initial_state, state_output, state_to_user

if TYPE_CHECKING:
    from convlstm.layers.convlstm import ConvLSTM


@dataclass(frozen=True)
class _Cell:
    """One stacked cell's Scan body: its recurrent kernel, its update and the frame layout."""

    kernel: np.ndarray  # recurrent kernel (*window, F, gates * F)
    step: Callable  # (builder, cell, states, z_t) -> new states, h first
    kinds: tuple[str, ...]  # the states' names: ("h", "c") or ("h",)
    dtype: np.dtype
    state_shape: tuple  # one sample's state, internal layout
    gate_axis: int  # the channel axis of a (B, *frame) state

    @property
    def rank(self) -> int:
        return len(self.state_shape) - 1

    def recurrent(self, b: Builder, h: str, kernel: np.ndarray,
                  bias: np.ndarray | None = None) -> str:
        """A recurrent convolution of a state: stride 1, "same", no dilation."""
        sizes = self.state_shape[1:] if self.gate_axis == 1 else self.state_shape[:-1]
        ones = (1,) * self.rank
        pads = explicit_pads("same", sizes, kernel.shape[: self.rank], ones, ones)
        return b.conv(h, kernel, bias, ones, pads, ones, self.dtype, sizes)

    def body(self, opset: int, prefix: str, sequence_out: bool, masked: bool):
        """The Scan body: (*states, z_t) -> (*states'[, h']); masked: (*states, y, z_t, m_t)
        -> (*states', y'[, y']) where a False ``m_t`` keeps the states and repeats the last
        output y."""
        b = Builder(opset, prefix)
        states = [f"{prefix}{kind}" for kind in self.kinds]
        y, z_t, m_t = (f"{prefix}{name}" for name in ("y", "z", "m"))
        results = self.step(b, self, states, z_t)
        state = (None, *self.state_shape)
        inputs = [value_info(name, state, self.dtype) for name in states]
        if masked:
            keep = b.reshape(m_t, [-1, *(1,) * (self.rank + 1)])  # (B,) -> (B, 1, ...)
            results = [b.op("Where", [keep, new, old])
                       for new, old in zip([*results, results[0]], [*states, y])]
            inputs.append(value_info(y, state, self.dtype))
        outputs = [value_info(name, state, self.dtype) for name in results]
        if sequence_out:
            sequence = b.op("Identity", [results[-1] if masked else results[0]],
                            outputs=[f"{prefix}sequence"])
            outputs.append(value_info(sequence, state, self.dtype))
        gate_shape = list(self.state_shape)
        gate_shape[self.gate_axis - 1] = self.kernel.shape[-1]
        inputs.append(value_info(z_t, (None, *gate_shape), self.dtype))
        if masked:
            inputs.append(helper.make_tensor_value_info(m_t, TensorProto.BOOL, [None]))
        return helper.make_graph(b.nodes, prefix.rstrip("/"), inputs, outputs, b.initializers)


def _lstm_step(ract: str, act: str, peephole: np.ndarray | None) -> Callable:
    """The LSTM update after the gates' sum ``z`` (Keras order i, f, c, o): states (h, c) ->
    (h', c'). ``peephole`` (3, F), rows i, f, o: i and f also see c, o sees c'."""

    def step(b: Builder, cell: _Cell, states: list[str], z_t: str) -> list[str]:
        h, c = states
        z = b.op("Add", [z_t, cell.recurrent(b, h, cell.kernel)])
        i, f, g, o = b.split(z, cell.gate_axis, 4)
        weights = None
        if peephole is not None:  # per channel, broadcast over the frame's other axes
            axes = (-1, *(1,) * cell.rank) if cell.gate_axis == 1 else (-1,)
            weights = [b.const(row.astype(cell.dtype).reshape(axes), hint="peephole")
                       for row in peephole]
            i, f = (b.op("Add", [gate, b.op("Mul", [p, c])]) for gate, p in ((i, weights[0]),
                                                                             (f, weights[1])))
        i, f = (activation(b, ract, gate, cell.dtype) for gate in (i, f))
        g = activation(b, act, g, cell.dtype)
        c_new = b.op("Add", [b.op("Mul", [f, c]), b.op("Mul", [i, g])])
        if weights is not None:
            o = b.op("Add", [o, b.op("Mul", [weights[2], c_new])])
        o = activation(b, ract, o, cell.dtype)
        return [b.op("Mul", [o, activation(b, act, c_new, cell.dtype)]), c_new]

    return step


def _gru_step(ract: str, act: str, reset_after: bool, recurrent_bias: np.ndarray | None
              ) -> Callable:
    """The GRU update (Keras order z, r, h), as ``functional/convgru.py`` computes it: state
    (h,) -> (h',), ``h' = z . (h - h~) + h~``."""

    def step(b: Builder, cell: _Cell, states: list[str], z_t: str) -> list[str]:
        (h,) = states
        F = cell.kernel.shape[-1] // 3
        x_z, x_r, x_h = b.split(z_t, cell.gate_axis, 3)
        if reset_after:  # U * h + b' for all three gates; r scales the candidate's part
            u_z, u_r, u_h = b.split(cell.recurrent(b, h, cell.kernel, recurrent_bias),
                                    cell.gate_axis, 3)
        else:  # U_z, U_r on h; U_h on r . h once r is known
            u_z, u_r = b.split(cell.recurrent(b, h, cell.kernel[..., : 2 * F]),
                               cell.gate_axis, 2)
        z, r = (activation(b, ract, b.op("Add", [x, u]), cell.dtype)
                for x, u in ((x_z, u_z), (x_r, u_r)))
        if reset_after:
            candidate = b.op("Mul", [r, u_h])
        else:
            candidate = cell.recurrent(b, b.op("Mul", [r, h]), cell.kernel[..., 2 * F :])
        candidate = activation(b, act, b.op("Add", [candidate, x_h]), cell.dtype)
        return [b.op("Add", [b.op("Mul", [z, b.op("Sub", [h, candidate])]), candidate])]

    return step


def convert_recurrent(ctx: Any, layer: ConvLSTM | ConvGRU, config: dict, x: Tensor,
                      where: str) -> Tensor:
    """A ConvLSTM or ConvGRU stack over 1, 2 or 3 spatial axes, as one ``Scan`` over time
    per cell.

    Per cell: the input convolution of all frames at once (time-major, frames merged into the
    batch, with the input bias), then a Scan whose body adds the recurrent convolution of
    ``h`` (stride 1, "same") and updates the states as the cell's equations do. float32 runs
    channels first (``Conv``); float64 channels last (im2col).
    """
    b, dtype = ctx.b, np.dtype(config["dtype"])
    act = activation_name(ctx, where, "activation", config["activation"])
    ract = activation_name(ctx, where, "recurrent_activation", config["recurrent_activation"])
    window, strides = tuple(config["kernel_size"]), tuple(config["stride"])
    dilation, slope = tuple(config["dilation"]), config["leaky_relu_slope"]
    backwards, num_layers = config["go_backwards"], config["num_layers"]
    rank = len(window)
    gru = isinstance(layer, ConvGRU)
    # get_weights: kernel, recurrent_kernel[, bias][, peephole] for each stacked cell, in order.
    weights = layer.get_weights()
    peepholes = config.get("peephole", False)
    per_cell = 2 + config["use_bias"] + peepholes
    cells = [weights[k : k + per_cell] for k in range(0, len(weights), per_cell)]
    x = b.cast(x, dtype)
    if x.rank != rank + 3:
        ctx.refuse(where, f"expected a (batch, time, ...) input of {rank + 3} axes; got shape "
                          f"{x.shape}.")
    user_cf = config["data_format"] == "channels_first"
    f32 = dtype == np.float32
    sizes, C = spatial_and_channels(x.shape[1:], user_cf)
    F = config["out_channels"]
    index = ctx.recurrent_layers
    ctx.recurrent_layers += 1

    def frame(channels, spatial):  # the internal layout of one frame
        return (channels, *spatial) if f32 else (*spatial, channels)

    # User (B, T, ...) -> time-major internal (T, B, *frame), and back.
    channel_axis = 2 if user_cf else rank + 2
    spatial_axes = [axis for axis in range(2, rank + 3) if axis != channel_axis]
    perm = (1, 0, *frame(channel_axis, spatial_axes))
    sequence = b.transpose(x.name, perm)
    time_batch = b.shape_of(sequence, 0, 2)  # [T, B]
    batch = b.shape_of(x.name, 0, 1)
    gate_axis = 1 if f32 else rank + 1  # of a (B, *frame) state
    last = num_layers - 1
    mask = None
    if ctx.mask is not None:
        mask = b.transpose(ctx.mask, (1, 0))  # (T, B), in processing order
        if backwards:
            mask = b.op("Slice", [mask, b.ints([-1]), b.ints([-INT64_MAX]), b.ints([0]),
                                  b.ints([-1])])

    for k, (kernel, recurrent_kernel, *rest) in enumerate(cells):
        bias = rest[0] if config["use_bias"] else None
        input_bias, recurrent_bias = bias, None
        if gru and config["reset_after"] and bias is not None:  # (2, 3F): b and b'
            input_bias, recurrent_bias = bias
        if gru:
            kinds, step = ("h",), _gru_step(ract, act, config["reset_after"], recurrent_bias)
        else:
            kinds, step = ("h", "c"), _lstm_step(ract, act, rest[-1] if peepholes else None)
        pads = explicit_pads(config["padding"], sizes, window, strides, dilation)
        out = tuple(conv_out_size(n, pads, kk, s, d, axis) for axis, (n, kk, s, d) in
                    enumerate(zip(sizes, window, strides, dilation)))
        merged = b.reshape(sequence, [-1, *frame(C, sizes)])
        z = b.conv(merged, kernel, input_bias, strides, pads, dilation, dtype, sizes)
        gates = kernel.shape[-1]
        z = b.reshape(z, [time_batch, *frame(gates, out)])  # (T, B, *frame(gates))
        cell = _Cell(recurrent_kernel, step, kinds, dtype, frame(F, out), gate_axis)
        initial = [initial_state(ctx, f"{kind}0_{index}_{k}", batch, cell.state_shape, dtype,
                                 user_cf, f32) for kind in kinds]
        body = cell.body(b.opset, f"scan{index}_{k}/", masked=mask is not None,
                         sequence_out=k < last or config["return_sequences"])
        reverse = 1 if backwards and k == 0 else 0
        if mask is None:
            inputs, directions = [*initial, z], [reverse]
        else:  # one more state: the last output, which a masked step repeats (zeros at first)
            zeros = b.op("ConstantOfShape", [b.op("Shape", [initial[0]])],
                         value=numpy_helper.from_array(np.zeros(1, dtype)))
            inputs, directions = [*initial, zeros, z, mask], [reverse, 0]
        outputs = b.op("Scan", inputs, outputs=[b.fresh("scan") for _ in body.output],
                       body=body, num_scan_inputs=len(directions),
                       scan_input_directions=directions)
        outputs = [outputs] if isinstance(outputs, str) else outputs
        finals = outputs[: len(kinds)]
        last_output = finals[0] if mask is None else outputs[len(kinds)]
        if ctx.states:
            for kind, value in zip(kinds, finals):
                state_output(ctx, f"{kind}_{index}_{k}", value, cell.state_shape, dtype,
                             user_cf, f32)
        if len(outputs) == len(kinds) + (mask is not None) + 1:
            sequence = outputs[-1]
            if slope is not None:
                sequence = leaky_relu(b, sequence, slope, dtype)
        C, sizes = F, out

    user_frame = (F, *sizes) if user_cf else (*sizes, F)
    if config["return_sequences"]:  # (T, B, *frame) -> user (B, T, ...)
        y = b.transpose(sequence, tuple(np.argsort(perm)))
        shape = (x.shape[0], x.shape[1], *user_frame)
    else:  # the last step's output (unmasked: the last cell's final h)
        y = last_output
        if slope is not None:
            y = leaky_relu(b, y, slope, dtype)
        y = state_to_user(b, y, rank + 2, user_cf, f32)
        shape = (x.shape[0], *user_frame)
    return Tensor(y, shape, dtype)

"""The ConvLSTM recurrence over a whole sequence, for one layer: forward and BPTT backward.

Forward: each step is ONE matrix product, ``[W | U | b] @ [windows(x_t); windows(h); 1]``:
the input and recurrent convolutions of all four gates and the bias together. (Measured against
convolving every frame before the loop, this is as fast or faster at every benchmark shape,
and it never holds a (4F, T*pixels) buffer in the forward pass.) Backward: one product per
step for the recurrent part, then, after the loop, the input convolution's gradients frame by
frame. The gate gradients overwrite the cached gates they replace, so the backward pass adds
no (4F, T*pixels) buffer either. It therefore consumes its cache.

Inside, arrays are channels-first planes (C, ..., H, W) (any number of spatial axes; ConvLSTM2D
has two): each kernel tap then copies whole image rows, and each gate is a contiguous block of
rows of the product. The gates are kept in the order i, f, o, c (Keras stores i, f, c, o) so
the three sigmoid gates form one block. With the default sigmoid gates, the sigmoid rows of the
weights are scaled once so that the sigmoid takes three passes (:func:`_gate_scale`): negated
where this machine's ``exp`` beats its ``tanh`` (``activations.sigmoid_form``, measured once),
so the product holds -x and sigmoid(x) = 1 / (1 + exp(-x)); else halved, so it holds x/2 and
sigmoid(x) = (1 + tanh(x/2)) / 2.

With Keras' dropout, each gate convolves its own masked copy of the input (or state), so the
product splits into four, one per gate.

The equations of a step stand once, in this internal order, above :class:`_StepForward` (the
cell update) and above :class:`_StepBackward` (its BPTT); ``recurrence.Skips`` is all the mask
handling. The elementwise work of a step (activations, cell update, writing the output
channels-last) and the window gather and scatter are split by samples over threads
(``functional.threads``); the layer runs a large batch as groups of samples, one call of these
kernels per group (``recurrence.forward_in_groups``), and then each group's thread does its
steps alone.

Training cache size, per layer, in floats: ``B*H'*W'*F*(6T + 2)`` (activated gates ``4T``, cell
states ``T+1``, hidden states ``T+1``), plus a reference to the input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import numpy as np

from convlstm.functional import buffers
from convlstm.functional.activations import ACTIVATIONS, Activation, sigmoid_form
from convlstm.functional.planes import Windows
from convlstm.functional.recurrence import (
    ConvolutionBackward,
    Skips,
    channels_last,
    gate_groups,
    input_gradients,
    planar_state,
    planes,
    recurrent_geometry,
    store_channels_last,
)
from convlstm.functional.threads import split_matmul, split_run
from convlstm.functional.windows import Pads, output_size


def _gate_masks(masks: np.ndarray | None) -> np.ndarray | None:
    """(4, B, ..., C) Keras-order dropout masks -> (4, C, B, ...) planes in internal order."""
    return None if masks is None else planes(masks[[0, 1, 3, 2]]).swapaxes(0, 1)



def internal_order(width: int) -> np.ndarray:
    """Keras gate columns i, f, c, o -> the kernel's internal rows i, f, o, c."""
    return np.r_[0 : 2 * width, 3 * width : 4 * width, 2 * width : 3 * width]


def _negated_sigmoid(z: np.ndarray) -> None:
    """sigmoid(x) in place, from z = -x: 1 / (1 + exp(z)); exp's overflow to inf gives 0."""
    with np.errstate(over="ignore"):
        np.exp(z, out=z)
    z += 1.0
    np.reciprocal(z, out=z)


def _halved_sigmoid(z: np.ndarray) -> None:
    """sigmoid(x) in place, from z = x/2: (1 + tanh(z)) / 2."""
    np.tanh(z, out=z)
    z *= 0.5
    z += 0.5


_SCALED_SIGMOIDS = {-1.0: _negated_sigmoid, 0.5: _halved_sigmoid}


def _gate_scale(recurrent_activation: Activation) -> float:
    """The factor on the gates' rows of the weights (and the peepholes): -1 or 1/2 for the
    sigmoid (its form this machine computes faster, see _SCALED_SIGMOIDS), 1 for any other
    gate activation. Both factors are exact in floating point, so the gates are the same."""
    if recurrent_activation is not ACTIVATIONS["sigmoid"]:
        return 1.0
    return -1.0 if sigmoid_form() == "exp" else 0.5


@dataclass
class ConvLSTMCache:
    """What :func:`convlstm_backward` needs from a training forward (see the module docstring).

    Arrays are channels-first planes; P = B*H'*W' pixels of one step; gates in internal order.
    """

    x: np.ndarray  # (C, T, B, H, W) view of the input
    gates: np.ndarray  # (T, 4F, P): i, f, o, c after their activations
    h_states: np.ndarray  # (T+1, F, P); h_states[0] is h0
    c_states: np.ndarray  # (T+1, F, P); c_states[0] is c0
    mask: np.ndarray | None  # (B, T)
    input_masks: np.ndarray | None  # (4, C, B, H, W) dropout masks, internal gate order
    recurrent_masks: np.ndarray | None  # (4, F, B, H', W'), internal gate order
    stride: tuple[int, int]
    pads: Pads
    dilation: tuple[int, int]


# One step, in the kernel's internal gate order i, f, o, c (Keras' i, f, c, o columns are
# reordered once, see internal_order); every array is (rows, P), P = B*H'*W' pixels:
#
#     z        = [W | U | b] @ [windows(x_t); windows(h_{t-1}); 1]        (4F, P)
#     i, f, o  = recurrent_activation(z[:3F])   (sigmoid: from scaled rows, see _gate_scale)
#     g        = activation(z[3F:])
#     c_t      = f * c_{t-1} + i * g
#     h_t      = o * activation(c_t)
#
# z is overwritten by the activated gates, which the backward pass reads from the cache. With
# peepholes (p: (3, F), one weight per channel, rows i, f, o) the gates also see the cell:
#
#     i, f     = recurrent_activation(z[:2F] + [p_i; p_f] * c_{t-1})
#     g, c_t   as above
#     o        = recurrent_activation(z[2F:3F] + p_o * c_t)
#     h_t      = o * activation(c_t)


class _StepForward:
    """The elementwise part of a step (the equations above, after the product), in place, split
    by samples over threads; ``output`` (B, H', W', F), if given, gets h_t channels-last."""

    def __init__(self, F: int, P: int, image_pixels: int, dtype: np.dtype,
                 activation: Activation, recurrent_activation: Activation,
                 gate_scale: float, peephole: np.ndarray | None = None) -> None:
        self.scratch = np.empty((F, P), dtype)
        self.image_pixels = image_pixels
        self.activation, self.recurrent_activation = activation, recurrent_activation
        self.gate_scale = gate_scale
        # (3, F, 1) columns, scaled with the gates' rows (see _gate_scale), or None
        self.peephole = None if peephole is None else (
            gate_scale * peephole.astype(dtype)[:, :, None])

    def _gates(self, z: np.ndarray) -> None:
        """recurrent_activation in place on gate rows of z (scaled by ``gate_scale``)."""
        if self.gate_scale == 1.0:
            self.recurrent_activation(z, out=z)
        else:
            _SCALED_SIGMOIDS[self.gate_scale](z)

    def __call__(self, z: np.ndarray, c: np.ndarray, next_c: np.ndarray, next_h: np.ndarray,
                 output: np.ndarray | None) -> None:
        F = c.shape[0]
        batch = c.shape[1] // self.image_pixels
        split_run(partial(self._samples, z, c, next_c, next_h, output), batch,
                  6 * F * self.image_pixels)

    def _samples(self, z: np.ndarray, c: np.ndarray, next_c: np.ndarray, next_h: np.ndarray,
                 output: np.ndarray | None, samples: slice) -> None:
        all_next_h = next_h
        pixels = slice(samples.start * self.image_pixels, samples.stop * self.image_pixels)
        z, c, next_c = z[:, pixels], c[:, pixels], next_c[:, pixels]
        next_h, scratch = next_h[:, pixels], self.scratch[:, pixels]
        F = c.shape[0]
        i, f, o, g = z[:F], z[F : 2 * F], z[2 * F : 3 * F], z[3 * F :]
        if self.peephole is None:
            self._gates(z[: 3 * F])
        else:  # i and f see c_{t-1}
            p_i, p_f, _ = self.peephole
            for gate, weight in ((i, p_i), (f, p_f)):
                np.multiply(weight, c, out=scratch)
                gate += scratch
            self._gates(z[: 2 * F])
        self.activation(g, out=g)
        np.multiply(f, c, out=next_c)
        np.multiply(i, g, out=scratch)
        next_c += scratch  # c_t = f * c_{t-1} + i * g
        if self.peephole is not None:  # o sees c_t
            np.multiply(self.peephole[2], next_c, out=scratch)
            o += scratch
            self._gates(o)
        self.activation(next_c, out=next_h)
        next_h *= o  # h_t = o * activation(c_t)
        if output is not None:
            store_channels_last(all_next_h, output, samples)


@dataclass
class ForwardPlan:
    """What a forward call builds before its time loop: the fused weight matrix, the columns
    and their gathers, the step's scratch and, for inference, a ring of two states and one
    step's gates. A streaming layer (stateful, one frame a call) keeps it across calls
    (:func:`forward_plan`, :meth:`fits`) instead of rebuilding it each frame.
    """

    key: tuple  # the frame's shape (T left out), dtype, geometry, activations, sigmoid form
    sources: tuple[np.ndarray | None, ...]  # copies of the weights it was built from
    weights: np.ndarray  # (4F, input_rows + recurrent_rows + 1): [W | U | b], internal order
    cols: np.ndarray  # (input_rows + recurrent_rows + 1, P); the last row is ones
    input_windows: Windows  # fills cols[:input_rows]
    recurrent_windows: Windows  # fills cols[input_rows:-1]
    cell_update: _StepForward
    # inference: h, c (2, F, P) and gates (1, 4F, P), made by the first inference call
    ring: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def fits(self, key: tuple, sources: tuple[np.ndarray | None, ...]) -> bool:
        """Whether this plan was built for ``key`` and these weights' values (a weight changed
        in place, by set_weights or an optimizer, makes it stale)."""
        return key == self.key and all(
            (a is None and b is None) or (a is not None and b is not None
                                          and a.shape == b.shape and np.array_equal(a, b))
            for a, b in zip(sources, self.sources))


def _plan_key(x_shape: tuple[int, ...], dtype: np.dtype, kernel_shape: tuple[int, ...],
              recurrent_shape: tuple[int, ...], stride: tuple[int, ...], pads: Pads,
              dilation: tuple[int, ...], activation: Activation,
              recurrent_activation: Activation) -> tuple:
    B, _, *spatial, C = x_shape
    return ((B, *spatial, C), np.dtype(dtype), kernel_shape, recurrent_shape, tuple(stride),
            tuple(pads), tuple(dilation), activation, recurrent_activation,
            _gate_scale(recurrent_activation))


def forward_plan(
    x_shape: tuple[int, ...],
    dtype: np.dtype,
    kernel: np.ndarray,
    recurrent_kernel: np.ndarray,
    bias: np.ndarray | None,
    *,
    stride: tuple[int, ...],
    pads: Pads,
    dilation: tuple[int, ...],
    activation: Activation,
    recurrent_activation: Activation,
    peephole: np.ndarray | None = None,
    reuse: ForwardPlan | None = None,
) -> ForwardPlan:
    """The :class:`ForwardPlan` of a :func:`convlstm_forward` call on x of ``x_shape`` (its
    arguments have the same meaning): ``reuse`` when it fits these arguments, else a new one."""
    key = _plan_key(x_shape, dtype, kernel.shape, recurrent_kernel.shape, stride, pads,
                    dilation, activation, recurrent_activation)
    sources = (kernel, recurrent_kernel, bias, peephole)
    if reuse is not None and reuse.fits(key, sources):
        return reuse
    B, _, *spatial, C = x_shape
    *window, _, F4 = kernel.shape
    F = F4 // 4
    recurrent_window = recurrent_kernel.shape[:-2]
    out_spatial = output_size(tuple(spatial), tuple(window), stride, pads, dilation)  # (H', W')
    image_pixels = math.prod(out_spatial)
    P = B * image_pixels
    input_rows = math.prod(window) * C
    recurrent_rows = math.prod(recurrent_window) * F
    cols = buffers.take((input_rows + recurrent_rows + 1, P), dtype)
    cols[-1] = 1.0  # multiplies the bias column
    input_windows = Windows((C, B, *spatial), tuple(window), stride, pads, dilation, dtype,
                            cols[:input_rows])
    recurrent_windows = Windows((F, B, *out_spatial),
                                *recurrent_geometry(out_spatial, recurrent_window), dtype,
                                cols[input_rows:-1])
    order = internal_order(F)
    weights = np.concatenate([
        kernel.reshape(input_rows, F4).T[order],
        recurrent_kernel.reshape(recurrent_rows, F4).T[order],
        (np.zeros(F4, dtype) if bias is None else bias[order])[:, None],
    ], axis=1)
    gate_scale = key[-1]
    weights[: 3 * F] *= gate_scale
    cell_update = _StepForward(F, P, image_pixels, dtype, activation, recurrent_activation,
                               gate_scale, peephole)
    return ForwardPlan(key, tuple(None if a is None else a.copy() for a in sources), weights,
                       cols, input_windows, recurrent_windows, cell_update)


def convlstm_forward(
    x: np.ndarray,
    kernel: np.ndarray,
    recurrent_kernel: np.ndarray,
    bias: np.ndarray | None,
    h0: np.ndarray,
    c0: np.ndarray,
    *,
    stride: tuple[int, int],
    pads: Pads,
    dilation: tuple[int, int],
    activation: Activation,
    recurrent_activation: Activation,
    mask: np.ndarray | None = None,
    input_masks: np.ndarray | None = None,
    recurrent_masks: np.ndarray | None = None,
    training: bool = False,
    peephole: np.ndarray | None = None,
    plan: ForwardPlan | None = None,
    outputs: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, ConvLSTMCache | None]:
    """Run one ConvLSTM layer over a sequence (equations above :class:`_StepForward`).

    Shapes are written for two spatial axes (H, W), as ConvLSTM2D uses it; the kernel takes any
    number (x (B, T, *spatial, C), kernel (*window, C, 4F), one stride, padding and dilation
    per axis).

    Args:
        x: (B, T, H, W, C) frames, in the order they are processed.
        kernel: (kh, kw, C, 4F), gates fused in the order i, f, c, o.
        recurrent_kernel: (kh, kw, F, 4F), same gate order.
        bias: (4F,) or None.
        h0, c0: (B, H', W', F) initial states.
        stride, pads, dilation: of the input convolution; the recurrent convolution always uses
            stride 1, "same" padding and no dilation.
        activation, recurrent_activation: applied to the candidate/cell and to the gates.
        mask: (B, T) bool or None. Where False, that sample's state carries over and its output
            repeats its previous output (zeros before any step was taken), as in Keras.
        input_masks: (4, B, H, W, C) per-gate dropout masks for the frames, or None.
        recurrent_masks: (4, B, H', W', F) per-gate dropout masks for the state, or None.
        training: keep the cache that :func:`convlstm_backward` needs.
        peephole: (3, F) peephole weights (rows i, f, o), or None for none.
        plan: from :func:`forward_plan` for these arguments, or None to build one.
        outputs: (B, T, H', W', F) array of x's dtype to write the outputs into, or None for
            a new one.

    Returns:
        outputs (B, T, H', W', F), final h (B, H', W', F), final c (B, H', W', F), and the cache
        (None unless training).
    """
    B, T = x.shape[:2]
    own_plan = plan is None
    if own_plan:
        plan = forward_plan(x.shape, x.dtype, kernel, recurrent_kernel, bias, stride=stride,
                            pads=pads, dilation=dilation, activation=activation,
                            recurrent_activation=recurrent_activation, peephole=peephole)
    F4, P = plan.weights.shape[0], plan.cols.shape[1]
    F = F4 // 4
    out_spatial = plan.recurrent_windows.out_sizes  # (H', W')
    frames = planes(x).swapaxes(1, 2)  # (C, T, B, *spatial)
    input_masks, recurrent_masks = _gate_masks(input_masks), _gate_masks(recurrent_masks)

    if training:  # the whole history, for the backward pass, which gives it back
        h_states, c_states = (buffers.take((T + 1, F, P), x.dtype) for _ in range(2))
        gates = buffers.take((T, F4, P), x.dtype)
    else:  # a ring of two states and one step's gates
        if plan.ring is None:
            plan.ring = (np.empty((2, F, P), x.dtype), np.empty((2, F, P), x.dtype),
                         np.empty((1, F4, P), x.dtype))
        h_states, c_states, gates = plan.ring
    slots = len(h_states)
    h_states[0], c_states[0] = planes(h0).reshape(F, P), planes(c0).reshape(F, P)
    # Written step by step while the step's state is still in cache: one transposition of the
    # whole sequence at the end is several times slower.
    if outputs is None:
        outputs = np.empty((B, T, *out_spatial, F), x.dtype)
    skips = Skips(mask, plan.cell_update.image_pixels)

    for t in range(T):  # the equations above _StepForward
        h, c = h_states[t % slots], c_states[t % slots]
        next_h, next_c = h_states[(t + 1) % slots], c_states[(t + 1) % slots]
        z = gates[t % len(gates)]
        for rows, input_mask, recurrent_mask in gate_groups(F, input_masks, recurrent_masks):
            plan.input_windows.columns(frames[:, t], input_mask)
            plan.recurrent_windows.columns(h.reshape(F, B, *out_spatial), recurrent_mask)
            split_matmul(plan.weights[rows], plan.cols, z[rows])
        keep = skips.keep(t)
        plan.cell_update(z, c, next_c, next_h, outputs[:, t] if keep is None else None)
        skips.after_step(keep, h, c, next_h, next_c, outputs[:, t])

    cache = None
    if training:
        cache = ConvLSTMCache(frames, gates, h_states, c_states, mask, input_masks,
                              recurrent_masks, stride, pads, dilation)
    state_shape = (B, *out_spatial, F)
    # Unmasked, the last output is the final h, already channels-last.
    h_final = (outputs[:, -1].copy() if mask is None
               else channels_last(h_states[T % slots], np.empty(state_shape, x.dtype)))
    c_final = channels_last(c_states[T % slots], np.empty(state_shape, x.dtype))
    if own_plan:
        buffers.give(plan.cols)
    return outputs, h_final, c_final, cache


# BPTT of one step, in the same order and names as the forward equations above _StepForward.
# dh is all of h_t's gradient (its output's and dh_next), dc_next is c_t's gradient from step
# t+1, and a' is a derivative written in terms of the activation's output
# (Activation.derivative_into), so only the activated gates are kept:
#
#     dc       = dc_next + dh * o * activation'(activation(c_t))   (c_t feeds h_t too)
#     dc_{t-1} = dc * f
#     dz_i     = dc * g * recurrent_activation'(i)
#     dz_f     = dc * c_{t-1} * recurrent_activation'(f)
#     dz_o     = dh * activation(c_t) * recurrent_activation'(o)
#     dz_c     = dc * i * activation'(g)
#
# then dh_{t-1} = windows^T(U^T dz) and dU += dz windows(h_{t-1})^T (ConvolutionBackward); after
# the loop the input convolution's d_x and dW the same way, and db = the sum of dz. Peepholes
# add c's paths through the gates: dz_o first, then
#
#     dc       = dc_next + dh * o * activation'(activation(c_t)) + dz_o * p_o
#     dc_{t-1} = dc * f + dz_i * p_i + dz_f * p_f
#     dp_i, dp_f, dp_o  += sums over pixels of dz_i * c_{t-1}, dz_f * c_{t-1}, dz_o * c_t


class _StepBackward:
    """The elementwise part of a step's BPTT (the equations above), in place, split by samples
    over threads: z (4F, P), the activated gates, is overwritten by dz; ``d_c`` and
    ``d_c_previous`` (F, P) get dc and dc_{t-1}."""

    def __init__(self, F: int, P: int, image_pixels: int, dtype: np.dtype,
                 activation: Activation, recurrent_activation: Activation,
                 peephole: np.ndarray | None = None) -> None:
        # scratch: activation(c_t), the candidate's gradient, a gate's slope
        self.act_c, self.d_candidate, self.gate_slope = (np.empty((F, P), dtype) for _ in range(3))
        self.image_pixels = image_pixels
        self.activation, self.recurrent_activation = activation, recurrent_activation
        self.peephole = None if peephole is None else peephole.astype(dtype)[:, :, None]

    def __call__(self, z: np.ndarray, c: np.ndarray, c_previous: np.ndarray, d_h: np.ndarray,
                 d_c_carried: np.ndarray, d_c: np.ndarray, d_c_previous: np.ndarray) -> None:
        F = c.shape[0]
        batch = c.shape[1] // self.image_pixels
        split_run(partial(self._samples, z, c, c_previous, d_h, d_c_carried, d_c, d_c_previous),
                  batch, 8 * F * self.image_pixels)

    def _samples(self, z: np.ndarray, c: np.ndarray, c_previous: np.ndarray, d_h: np.ndarray,
                 d_c_carried: np.ndarray, d_c: np.ndarray, d_c_previous: np.ndarray,
                 samples: slice) -> None:
        activation, recurrent_activation = self.activation, self.recurrent_activation
        pixels = slice(samples.start * self.image_pixels, samples.stop * self.image_pixels)
        z, c, c_previous, d_h = z[:, pixels], c[:, pixels], c_previous[:, pixels], d_h[:, pixels]
        d_c_carried, d_c = d_c_carried[:, pixels], d_c[:, pixels]
        d_c_previous = d_c_previous[:, pixels]
        act_c, d_candidate = self.act_c[:, pixels], self.d_candidate[:, pixels]
        gate_slope = self.gate_slope[:, pixels]
        F = c.shape[0]
        i, f, o, g = z[:F], z[F : 2 * F], z[2 * F : 3 * F], z[3 * F :]
        activation(c, out=act_c)
        activation.derivative_into(act_c, out=d_c)
        d_c *= o
        d_c *= d_h
        d_c += d_c_carried  # dc
        peephole = self.peephole
        if peephole is not None:  # dz_o first: c_t reaches h_t through o too
            recurrent_activation.derivative_into(o, out=gate_slope)
            np.multiply(d_h, act_c, out=o)
            o *= gate_slope  # dz_o
            np.multiply(peephole[2], o, out=gate_slope)
            d_c += gate_slope
        np.multiply(d_c, f, out=d_c_previous)  # dc_{t-1}
        # In place, each gate's row block is overwritten only after its last use.
        activation.derivative_into(g, out=d_candidate)
        d_candidate *= i
        d_candidate *= d_c  # dz_c
        gates = [(i, d_c, g), (f, d_c, c_previous)]
        if peephole is None:
            gates.append((o, d_h, act_c))
        for gate, factor, other in gates:
            recurrent_activation.derivative_into(gate, out=gate_slope)
            np.multiply(factor, other, out=gate)
            gate *= gate_slope  # dz_i, dz_f, dz_o
        g[...] = d_candidate
        if peephole is not None:  # c_{t-1} reaches i and f
            for gate, weight in ((i, peephole[0]), (f, peephole[1])):
                np.multiply(gate, weight, out=gate_slope)
                d_c_previous += gate_slope


def convlstm_backward(
    d_outputs: np.ndarray,
    d_h_final: np.ndarray | None,
    d_c_final: np.ndarray | None,
    cache: ConvLSTMCache,
    kernel: np.ndarray,
    recurrent_kernel: np.ndarray,
    *,
    activation: Activation,
    recurrent_activation: Activation,
    use_bias: bool,
    peephole: np.ndarray | None = None,
    need_d_x: bool = True,
    d_x: np.ndarray | None = None,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Backpropagation through time for :func:`convlstm_forward`; consumes ``cache``.

    Args:
        d_outputs: (B, T, H', W', F) gradient of the loss for every step's output.
        d_h_final, d_c_final: (B, H', W', F) gradients for the final states, or None.
        cache: from the training forward.
        kernel, recurrent_kernel: the weights the forward used.
        activation, recurrent_activation: as in the forward; each needs its ``derivative``.
        use_bias: whether to return a bias gradient.
        peephole: the (3, F) peephole weights the forward used, or None.
        need_d_x: False when nothing reads the input's gradient (the frames are data).
        d_x: (B, T, H, W, C) array to write the input's gradient into, or None for a new one.

    Returns:
        d_x (B, T, H, W, C) (None unless ``need_d_x``), d_h0 and d_c0 (B, H', W', F), and the
        weight gradients ``{"kernel", "recurrent_kernel", "bias", "peephole"}`` in the
        weights' shapes (bias and peephole when used).
    """
    T, F4, P = cache.gates.shape
    F = F4 // 4
    _, _, B, *spatial = cache.x.shape  # (C, T, B, *spatial); spatial (H, W) for ConvLSTM2D
    window = kernel.shape[:-2]
    out_spatial = output_size(tuple(spatial), window, cache.stride, cache.pads, cache.dilation)
    image_pixels = math.prod(out_spatial)
    dtype = kernel.dtype
    order = internal_order(F)
    # Both products of a step read the weights transposed, (rkh*rkw*F, 4F): so stored, they
    # and the gradients run as contiguous matrix products.
    recurrent = ConvolutionBackward(
        (F, B, *out_spatial), *recurrent_geometry(out_spatial, recurrent_kernel.shape[:-2]),
        np.ascontiguousarray(recurrent_kernel.reshape(-1, F4)[:, order]))
    # Step t's gates are not needed once its gradient is known, so the gate gradients overwrite
    # them: the cache's (T, 4F, P) buffer becomes d_gates and no second one is allocated.
    d_gates = cache.gates
    # Every (F, P) intermediate of a step has its own buffer, made once; the states' gradients
    # alternate between two pairs (this step's and the next step's).
    d_h, d_c = np.empty((F, P), dtype), np.empty((F, P), dtype)
    d_h_next = planar_state(d_h_final, F, P, dtype)
    d_c_next = planar_state(d_c_final, F, P, dtype)
    d_h_previous, d_c_previous = np.empty((F, P), dtype), np.empty((F, P), dtype)
    d_outputs = planes(d_outputs).swapaxes(1, 2)  # (F, T, B, H', W'), a view
    step_backward = _StepBackward(F, P, image_pixels, dtype, activation, recurrent_activation,
                                  peephole)
    d_peephole = None if peephole is None else np.zeros((3, F), dtype)
    skips = Skips(cache.mask, image_pixels)

    for t in reversed(range(T)):  # the equations above _StepBackward
        z = cache.gates[t]
        c_previous, c = cache.c_states[t], cache.c_states[t + 1]
        d_h.reshape(F, B, *out_spatial)[...] = d_outputs[:, t]
        keep = skips.keep(t)
        d_c_carried = skips.into_step(keep, d_h, d_h_next, d_c_next)
        step_backward(z, c, c_previous, d_h, d_c_carried, d_c, d_c_previous)
        if d_peephole is not None:  # z holds dz: rows i, f see c_{t-1}, rows o see c_t
            d_peephole[:2] += np.einsum("gfp,fp->gf", z[: 2 * F].reshape(2, F, P), c_previous)
            d_peephole[2] += np.einsum("fp,fp->f", z[2 * F : 3 * F], c)
        d_h_previous[...] = 0.0  # z now holds dz, the gradients of the step product
        recurrent(cache.h_states[t].reshape(F, B, *out_spatial), z, cache.recurrent_masks,
                  d_h_previous.reshape(F, B, *out_spatial))
        skips.around_step(keep, d_h_previous, d_c_previous, d_h_next, d_c_next)
        d_h_next, d_h_previous = d_h_previous, d_h_next
        d_c_next, d_c_previous = d_c_previous, d_c_next

    d_x, d_kernel = input_gradients(
        cache.x, d_gates, np.ascontiguousarray(kernel.reshape(-1, F4)[:, order]), window,
        cache.stride, cache.pads, cache.dilation, cache.input_masks, need_d_x, d_x)

    def keras_layout(gradient: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        keras_columns = np.empty(gradient.shape, dtype)
        keras_columns[:, order] = gradient  # internal gate order back to Keras'
        return keras_columns.reshape(shape)

    grads = {
        "kernel": keras_layout(d_kernel, kernel.shape),
        "recurrent_kernel": keras_layout(recurrent.d_weights, recurrent_kernel.shape),
    }
    if use_bias:
        grads["bias"] = np.empty(F4, dtype)
        grads["bias"][order] = d_gates.sum(axis=(0, 2))
    if d_peephole is not None:
        grads["peephole"] = d_peephole
    recurrent.release()
    buffers.give(cache.gates, cache.h_states, cache.c_states)  # the cache is consumed

    state_shape = (B, *out_spatial, F)
    return (d_x, channels_last(d_h_next, np.empty(state_shape, dtype)),
            channels_last(d_c_next, np.empty(state_shape, dtype)), grads)

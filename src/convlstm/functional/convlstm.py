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
the three sigmoid gates form one block; with the default sigmoid gates, where this machine's
``exp`` beats its ``tanh`` (``activations.sigmoid_form``, measured once), the sigmoid rows of the
weights are negated so that the product holds -x and sigmoid(x) = 1 / (1 + exp(-x)) takes three
passes (exp, add, reciprocal); elsewhere the sigmoid goes through tanh.

With Keras' dropout, each gate convolves its own masked copy of the input (or state), so the
product splits into four, one per gate.

The equations of a step stand once, in this internal order, above :class:`_StepForward` (the
cell update) and above :class:`_StepBackward` (its BPTT); :class:`_Skips` is all the mask
handling. The elementwise work of a step (activations, cell update, writing the output
channels-last) and the window gather and scatter are split by samples over threads
(``functional.threads``).

Training cache size, per layer, in floats: ``B*H'*W'*F*(6T + 2)`` (activated gates ``4T``, cell
states ``T+1``, hidden states ``T+1``), plus a reference to the input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import numpy as np

from convlstm.functional.activations import ACTIVATIONS, Activation, sigmoid_form
from convlstm.functional.planes import Windows
from convlstm.functional.threads import split_matmul, split_matmul_transposed, split_run
from convlstm.functional.windows import Pads, output_size, same_pads


def recurrent_geometry(
    out_spatial: tuple[int, ...], window: tuple[int, ...]
) -> tuple[tuple[int, ...], tuple[int, ...], Pads, tuple[int, ...]]:
    """``(window, stride, pads, dilation)`` of the recurrent convolution over states of
    ``out_spatial``: stride 1, "same" padding, no dilation."""
    ones = (1,) * len(out_spatial)
    pads = tuple(same_pads(n, k, 1) for n, k in zip(out_spatial, window))
    return tuple(window), ones, pads, ones


def gate_groups(width: int, *gate_masks: np.ndarray | None):
    """(rows, masks...) pairs: all four gates at once, or one gate at a time under dropout."""
    if all(masks is None for masks in gate_masks):
        return [(slice(None), *gate_masks)]
    return [
        (slice(k * width, (k + 1) * width), *(None if m is None else m[k] for m in gate_masks))
        for k in range(4)
    ]


def internal_order(width: int) -> np.ndarray:
    """Keras gate columns i, f, c, o -> the kernel's internal rows i, f, o, c."""
    return np.r_[0 : 2 * width, 3 * width : 4 * width, 2 * width : 3 * width]


def _negated_sigmoid(z: np.ndarray) -> None:
    """sigmoid(x) in place, from z = -x: 1 / (1 + exp(z)); exp's overflow to inf gives 0."""
    with np.errstate(over="ignore"):
        np.exp(z, out=z)
    z += 1.0
    np.reciprocal(z, out=z)


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


def _planes(array: np.ndarray) -> np.ndarray:
    """(B, ..., C) channels-last to (C, B, ...) (a view)."""
    return np.moveaxis(array, -1, 0)


def _planar_state(gradient: np.ndarray | None, F: int, P: int, dtype: np.dtype) -> np.ndarray:
    """A (B, H', W', F) state gradient (None: zeros) as a new (F, P) array."""
    if gradient is None:
        return np.zeros((F, P), dtype)
    return _planes(gradient).reshape(F, P).astype(dtype, copy=True)


def _gate_masks(masks: np.ndarray | None) -> np.ndarray | None:
    """(4, B, ..., C) Keras-order dropout masks -> (4, C, B, ...) planes in internal order."""
    return None if masks is None else _planes(masks[[0, 1, 3, 2]]).swapaxes(0, 1)


def _store_channels_last(planes: np.ndarray, out: np.ndarray, samples: slice) -> None:
    """``out[samples] = planes[:, samples]`` channels-last: (F, P) planes, out (B, H', W', F)."""
    out[samples] = np.moveaxis(planes.reshape(-1, *out.shape[:-1])[:, samples], 0, -1)


def _channels_last(planes: np.ndarray, out: np.ndarray) -> np.ndarray:
    """(F, B*H'*W') planes written channels-last into ``out`` (B, H', W', F), by samples."""
    split_run(partial(_store_channels_last, planes, out), out.shape[0], out[0].size)
    return out


# One step, in the kernel's internal gate order i, f, o, c (Keras' i, f, c, o columns are
# reordered once, see internal_order); every array is (rows, P), P = B*H'*W' pixels:
#
#     z        = [W | U | b] @ [windows(x_t); windows(h_{t-1}); 1]        (4F, P)
#     i, f, o  = recurrent_activation(z[:3F])   (sigmoid: from negated rows, see _negated_sigmoid)
#     g        = activation(z[3F:])
#     c_t      = f * c_{t-1} + i * g
#     h_t      = o * activation(c_t)
#
# z is overwritten by the activated gates, which the backward pass reads from the cache.


class _StepForward:
    """The elementwise part of a step (the equations above, after the product), in place, split
    by samples over threads; ``output`` (B, H', W', F), if given, gets h_t channels-last."""

    def __init__(self, F: int, P: int, image_pixels: int, dtype: np.dtype,
                 activation: Activation, recurrent_activation: Activation,
                 negated_gates: bool) -> None:
        self.scratch = np.empty((F, P), dtype)
        self.image_pixels = image_pixels
        self.activation, self.recurrent_activation = activation, recurrent_activation
        self.negated_gates = negated_gates

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
        if self.negated_gates:
            _negated_sigmoid(z[: 3 * F])
        else:
            self.recurrent_activation(z[: 3 * F], out=z[: 3 * F])
        self.activation(g, out=g)
        np.multiply(f, c, out=next_c)
        np.multiply(i, g, out=scratch)
        next_c += scratch  # c_t = f * c_{t-1} + i * g
        self.activation(next_c, out=next_h)
        next_h *= o  # h_t = o * activation(c_t)
        if output is not None:
            _store_channels_last(all_next_h, output, samples)


class _Skips:
    """Keras' mask: where a sample's mask is False it skips step t, its states carry over and
    its output repeats its previous one (zeros before any step). The forward pass and BPTT
    call this around each step, so the loops read as the equations; without a mask every call
    does nothing (or passes its argument through)."""

    def __init__(self, mask: np.ndarray | None, image_pixels: int) -> None:
        self.mask, self.image_pixels = mask, image_pixels
        self.previous_output: np.ndarray | float = 0.0  # forward: the output a skip repeats
        self.d_repeated: np.ndarray | None = None  # backward: gradient of that repeated output

    def keep(self, t: int) -> np.ndarray | None:
        """(1, B*pixels) bool of the samples that take step t, or None when all of them do."""
        if self.mask is None or self.mask[:, t].all():
            return None
        return np.repeat(self.mask[:, t], self.image_pixels)[None, :]

    def after_step(self, keep: np.ndarray | None, h: np.ndarray, c: np.ndarray,
                   next_h: np.ndarray, next_c: np.ndarray, output: np.ndarray) -> None:
        """Forward: put back the skipping samples' states and write the step's output (when
        ``keep`` is None the cell update has written it already)."""
        if keep is None:
            self.previous_output = next_h  # no copy: the ring of slots keeps it until t+1
            return
        next_c[...] = np.where(keep, next_c, c)
        self.previous_output = np.where(keep, next_h, self.previous_output)
        next_h[...] = np.where(keep, next_h, h)
        _channels_last(self.previous_output, output)

    def into_step(self, keep: np.ndarray | None, d_h: np.ndarray, d_h_next: np.ndarray,
                  d_c_next: np.ndarray) -> np.ndarray:
        """Backward, before the step: ``d_h`` (this step's output gradient) becomes all of
        h_t's gradient, zero for the skipping samples; returns c_t's carried gradient (zero
        for them too). The gradient of a repeated output goes on to the output it repeated."""
        if self.d_repeated is not None:
            d_h += self.d_repeated
        d_c_carried = d_c_next
        if keep is None:
            self.d_repeated = None
        else:
            self.d_repeated = np.where(keep, 0.0, d_h)
            d_c_carried = np.where(keep, d_c_next, 0.0)
        d_h += d_h_next
        if keep is not None:
            np.copyto(d_h, 0.0, where=~keep)
        return d_c_carried

    def around_step(self, keep: np.ndarray | None, d_h_previous: np.ndarray,
                    d_c_previous: np.ndarray, d_h_next: np.ndarray, d_c_next: np.ndarray) -> None:
        """Backward, after the step: the skipping samples' state gradients pass through."""
        if keep is not None:
            d_h_previous += np.where(keep, 0.0, d_h_next)
            d_c_previous += np.where(keep, 0.0, d_c_next)


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

    Returns:
        outputs (B, T, H', W', F), final h (B, H', W', F), final c (B, H', W', F), and the cache
        (None unless training).
    """
    B, T, *spatial, C = x.shape  # spatial: (H, W) for ConvLSTM2D
    *window, _, F4 = kernel.shape
    F = F4 // 4
    recurrent_window = recurrent_kernel.shape[:-2]
    frames = _planes(x).swapaxes(1, 2)  # (C, T, B, *spatial)
    input_masks, recurrent_masks = _gate_masks(input_masks), _gate_masks(recurrent_masks)

    # One product per step: [W | U | b] @ [windows(x_t); windows(h); 1].
    out_spatial = output_size(tuple(spatial), tuple(window), stride, pads, dilation)  # (H', W')
    image_pixels = math.prod(out_spatial)
    P = B * image_pixels
    input_rows = math.prod(window) * C
    recurrent_rows = math.prod(recurrent_window) * F
    cols = np.empty((input_rows + recurrent_rows + 1, P), x.dtype)
    cols[-1] = 1.0  # multiplies the bias column
    input_windows = Windows((C, B, *spatial), tuple(window), stride, pads, dilation, x.dtype,
                            cols[:input_rows])
    recurrent_windows = Windows((F, B, *out_spatial),
                                *recurrent_geometry(out_spatial, recurrent_window), x.dtype,
                                cols[input_rows:-1])
    order = internal_order(F)
    weights = np.concatenate([
        kernel.reshape(input_rows, F4).T[order],
        recurrent_kernel.reshape(recurrent_rows, F4).T[order],
        (np.zeros(F4, x.dtype) if bias is None else bias[order])[:, None],
    ], axis=1)
    negated_gates = recurrent_activation is ACTIVATIONS["sigmoid"] and sigmoid_form() == "exp"
    if negated_gates:
        weights[: 3 * F] *= -1.0  # see _negated_sigmoid

    slots = T + 1 if training else 2  # the whole history when training, else a ring of two
    h_states, c_states = np.empty((slots, F, P), x.dtype), np.empty((slots, F, P), x.dtype)
    h_states[0], c_states[0] = _planes(h0).reshape(F, P), _planes(c0).reshape(F, P)
    gates = np.empty((T if training else 1, F4, P), x.dtype)
    # Written step by step while the step's state is still in cache: one transposition of the
    # whole sequence at the end is several times slower.
    outputs = np.empty((B, T, *out_spatial, F), x.dtype)
    cell_update = _StepForward(F, P, image_pixels, x.dtype, activation, recurrent_activation,
                               negated_gates)
    skips = _Skips(mask, image_pixels)

    for t in range(T):  # the equations above _StepForward
        h, c = h_states[t % slots], c_states[t % slots]
        next_h, next_c = h_states[(t + 1) % slots], c_states[(t + 1) % slots]
        z = gates[t % len(gates)]
        for rows, input_mask, recurrent_mask in gate_groups(F, input_masks, recurrent_masks):
            input_windows.columns(frames[:, t], input_mask)
            recurrent_windows.columns(h.reshape(F, B, *out_spatial), recurrent_mask)
            split_matmul(weights[rows], cols, z[rows])
        keep = skips.keep(t)
        cell_update(z, c, next_c, next_h, outputs[:, t] if keep is None else None)
        skips.after_step(keep, h, c, next_h, next_c, outputs[:, t])

    cache = None
    if training:
        cache = ConvLSTMCache(frames, gates, h_states, c_states, mask, input_masks,
                              recurrent_masks, stride, pads, dilation)
    state_shape = (B, *out_spatial, F)
    # Unmasked, the last output is the final h, already channels-last.
    h_final = (outputs[:, -1].copy() if mask is None
               else _channels_last(h_states[T % slots], np.empty(state_shape, x.dtype)))
    c_final = _channels_last(c_states[T % slots], np.empty(state_shape, x.dtype))
    return outputs, h_final, c_final, cache


SAMPLES_PIXELS = 1 << 14
"""About how many pixels the backward pass gathers at once (see :class:`ConvolutionBackward`)."""


def _samples_per_chunk(batch: int, pixels: int) -> int:
    """The largest divisor of ``batch`` whose samples hold at most ``SAMPLES_PIXELS`` pixels."""
    fitting = [n for n in range(1, batch + 1) if batch % n == 0 and n * pixels <= SAMPLES_PIXELS]
    return max(fitting, default=1)


class ConvolutionBackward:
    """Gradients through one of the step product's convolutions (input or recurrent).

    Works a few samples at a time, so its (kh*kw*C, pixels) columns and their gradient hold a
    chunk's pixels, not the batch's: for large batches this is most of the backward pass's
    memory beyond the cache. ``d_weights`` (kh*kw*C, 4F) accumulates over calls.
    """

    def __init__(
        self,
        in_shape: tuple[int, ...],
        window: tuple[int, ...],
        stride: tuple[int, ...],
        pads: Pads,
        dilation: tuple[int, ...],
        weight_columns: np.ndarray,
    ) -> None:
        channels, batch, *spatial = in_shape
        dtype = weight_columns.dtype
        self.pixels = math.prod(output_size(tuple(spatial), window, stride, pads, dilation))
        self.chunk = _samples_per_chunk(batch, self.pixels)
        self.windows = Windows((channels, self.chunk, *spatial), window, stride, pads, dilation,
                               dtype)
        self.weights = weight_columns  # (kh*kw*C, 4F), internal gate order
        self.d_weights = np.zeros(weight_columns.shape, dtype)
        self.d_columns = np.empty((self.windows.rows, self.chunk * self.pixels), dtype)

    def __call__(
        self,
        source: np.ndarray,
        d_z: np.ndarray,
        gate_masks: np.ndarray | None,
        d_source: np.ndarray,
    ) -> None:
        """Add the gradients of the convolution of ``source`` (C, B, H, W), given those of the
        product d_z (4F, P), to ``d_weights`` and to ``d_source`` (C, B, H, W).

        ``gate_masks`` (4, C, B, H, W) are the dropout masks the forward applied, or None.
        """
        for rows, mask in gate_groups(d_z.shape[0] // 4, gate_masks):
            for first in range(0, source.shape[1], self.chunk):
                samples = slice(first, first + self.chunk)
                chunk_mask = None if mask is None else mask[:, samples]
                d_z_chunk = d_z[rows, first * self.pixels : (first + self.chunk) * self.pixels]
                columns = self.windows.columns(source[:, samples], chunk_mask)
                self.d_weights[:, rows] += split_matmul_transposed(columns, d_z_chunk)
                split_matmul(self.weights[:, rows], d_z_chunk, self.d_columns)
                d_chunk = self.windows.scatter(self.d_columns)
                if chunk_mask is not None:
                    d_chunk *= chunk_mask
                d_source[:, samples] += d_chunk


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
# the loop the input convolution's d_x and dW the same way, and db = the sum of dz.


class _StepBackward:
    """The elementwise part of a step's BPTT (the equations above), in place, split by samples
    over threads: z (4F, P), the activated gates, is overwritten by dz; ``d_c`` and
    ``d_c_previous`` (F, P) get dc and dc_{t-1}."""

    def __init__(self, F: int, P: int, image_pixels: int, dtype: np.dtype,
                 activation: Activation, recurrent_activation: Activation) -> None:
        # scratch: activation(c_t), the candidate's gradient, a gate's slope
        self.act_c, self.d_candidate, self.gate_slope = (np.empty((F, P), dtype) for _ in range(3))
        self.image_pixels = image_pixels
        self.activation, self.recurrent_activation = activation, recurrent_activation

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
        np.multiply(d_c, f, out=d_c_previous)  # dc_{t-1}
        # In place, each gate's row block is overwritten only after its last use.
        activation.derivative_into(g, out=d_candidate)
        d_candidate *= i
        d_candidate *= d_c  # dz_c
        for gate, factor, other in ((i, d_c, g), (f, d_c, c_previous), (o, d_h, act_c)):
            recurrent_activation.derivative_into(gate, out=gate_slope)
            np.multiply(factor, other, out=gate)
            gate *= gate_slope  # dz_i, dz_f, dz_o
        g[...] = d_candidate


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
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Backpropagation through time for :func:`convlstm_forward`; consumes ``cache``.

    Args:
        d_outputs: (B, T, H', W', F) gradient of the loss for every step's output.
        d_h_final, d_c_final: (B, H', W', F) gradients for the final states, or None.
        cache: from the training forward.
        kernel, recurrent_kernel: the weights the forward used.
        activation, recurrent_activation: as in the forward; each needs its ``derivative``.
        use_bias: whether to return a bias gradient.

    Returns:
        d_x (B, T, H, W, C), d_h0 and d_c0 (B, H', W', F), and the weight gradients
        ``{"kernel", "recurrent_kernel", "bias"}`` in the weights' shapes.
    """
    T, F4, P = cache.gates.shape
    F = F4 // 4
    C, _, B, *spatial = cache.x.shape  # spatial: (H, W) for ConvLSTM2D
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
    d_h_next = _planar_state(d_h_final, F, P, dtype)
    d_c_next = _planar_state(d_c_final, F, P, dtype)
    d_h_previous, d_c_previous = np.empty((F, P), dtype), np.empty((F, P), dtype)
    d_outputs = _planes(d_outputs).swapaxes(1, 2)  # (F, T, B, H', W'), a view
    step_backward = _StepBackward(F, P, image_pixels, dtype, activation, recurrent_activation)
    skips = _Skips(cache.mask, image_pixels)

    for t in reversed(range(T)):  # the equations above _StepBackward
        z = cache.gates[t]
        c_previous, c = cache.c_states[t], cache.c_states[t + 1]
        d_h.reshape(F, B, *out_spatial)[...] = d_outputs[:, t]
        keep = skips.keep(t)
        d_c_carried = skips.into_step(keep, d_h, d_h_next, d_c_next)
        step_backward(z, c, c_previous, d_h, d_c_carried, d_c, d_c_previous)
        d_h_previous[...] = 0.0  # z now holds dz, the gradients of the step product
        recurrent(cache.h_states[t].reshape(F, B, *out_spatial), z, cache.recurrent_masks,
                  d_h_previous.reshape(F, B, *out_spatial))
        skips.around_step(keep, d_h_previous, d_c_previous, d_h_next, d_c_next)
        d_h_next, d_h_previous = d_h_previous, d_h_next
        d_c_next, d_c_previous = d_c_previous, d_c_next

    inputs = ConvolutionBackward(
        (C, B, *spatial), window, cache.stride, cache.pads, cache.dilation,
        np.ascontiguousarray(kernel.reshape(-1, F4)[:, order]))
    d_frame = np.empty((C, B, *spatial), dtype)
    d_x = np.empty((B, T, *spatial, C), dtype)
    for t in range(T):  # the input convolution does not depend on the state: any order works
        d_frame[...] = 0.0
        inputs(cache.x[:, t], d_gates[t], cache.input_masks, d_frame)
        d_x[:, t] = np.moveaxis(d_frame, 0, -1)

    def keras_layout(gradient: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        keras_columns = np.empty(gradient.shape, dtype)
        keras_columns[:, order] = gradient  # internal gate order back to Keras'
        return keras_columns.reshape(shape)

    grads = {
        "kernel": keras_layout(inputs.d_weights, kernel.shape),
        "recurrent_kernel": keras_layout(recurrent.d_weights, recurrent_kernel.shape),
    }
    if use_bias:
        grads["bias"] = np.empty(F4, dtype)
        grads["bias"][order] = d_gates.sum(axis=(0, 2))

    state_shape = (B, *out_spatial, F)
    return (d_x, _channels_last(d_h_next, np.empty(state_shape, dtype)),
            _channels_last(d_c_next, np.empty(state_shape, dtype)), grads)


def dropout_masks(
    rng: np.random.Generator, rate: float, shape: tuple[int, ...], dtype: np.dtype
) -> np.ndarray:
    """Four independent inverted-dropout masks (4, *shape) in Keras' gate order i, f, c, o: 0
    with probability ``rate``, else ``1 / (1 - rate)``, so a masked input keeps its mean."""
    keep = rng.random((4, *shape)) >= rate
    return keep.astype(dtype) / dtype.type(1.0 - rate)

"""The ConvLSTM recurrence over a whole sequence, for one layer: forward and BPTT backward.

The input convolution of every frame runs as one matrix product before the time loop (it does
not depend on the state); inside the loop each step does one fused product for the four gates of
the recurrent convolution, then the gate arithmetic in buffers allocated once per call. The
backward pass mirrors it: one product per step for the recurrent part, and the gradients of the
input convolution for all frames in one product after the loop.

With Keras' dropout, each gate convolves its own masked copy of the input (or state), so the
fused product splits into four, one per gate.

Training cache size, per layer, in floats: ``B*H'*W'*F*(6T + 2)`` (activated gates ``4T``, cell
states ``T+1``, hidden states ``T+1``), plus a reference to the input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convlstm.functional.activations import Activation
from convlstm.functional.windows import Pads, col2im, crop, im2col, output_size, same_pads


class GateConvolution:
    """A convolution into the fused gates, with its padding and im2col buffers made once.

    Inputs are (..., H, W, C) with any leading axes (time and batch for the input convolution,
    batch for the recurrent one); outputs are rows (prod(...) * H' * W', 4F).
    """

    def __init__(
        self,
        kernel: np.ndarray,
        in_shape: tuple[int, ...],
        stride: tuple[int, int],
        pads: Pads,
        dilation: tuple[int, int],
    ) -> None:
        kh, kw, C, F4 = kernel.shape
        self.gate_width = F4 // 4
        self.flat_kernel = kernel.reshape(kh * kw * C, F4)
        self.window, self.stride, self.pads, self.dilation = (kh, kw), stride, pads, dilation
        *lead, H, W, _ = in_shape
        self.out_hw = output_size((H, W), (kh, kw), stride, pads, dilation)
        (top, bottom), (left, right) = pads
        self.padded_shape = (*lead, top + H + bottom, left + W + right, C)
        padded = top + bottom + left + right > 0
        self.padded = np.zeros(self.padded_shape, kernel.dtype) if padded else None
        self.cols = np.empty((*lead, *self.out_hw, kh, kw, C), kernel.dtype)

    def columns(self, x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """im2col of ``x`` (times ``mask``), as rows (M, kh*kw*C) of a reused buffer."""
        if self.padded is None:
            source = x if mask is None else x * mask
        else:
            source = self.padded
            interior = crop(self.padded, self.pads)
            if mask is None:
                interior[...] = x
            else:
                np.multiply(x, mask, out=interior)
        im2col(source, self.window, self.stride, self.dilation, self.out_hw, out=self.cols)
        return self.cols.reshape(-1, self.flat_kernel.shape[0])

    def _groups(self, gate_masks: np.ndarray | None):
        """(columns slice, mask) pairs: one fused group, or one per gate under dropout."""
        if gate_masks is None:
            return [(slice(None), None)]
        F = self.gate_width
        return [(slice(k * F, (k + 1) * F), gate_masks[k]) for k in range(4)]

    def forward(self, x: np.ndarray, gate_masks: np.ndarray | None, out: np.ndarray) -> None:
        """Write the convolution of ``x`` into ``out`` (M, 4F)."""
        for gates, mask in self._groups(gate_masks):
            np.matmul(self.columns(x, mask), self.flat_kernel[:, gates], out=out[:, gates])

    def backward(
        self,
        d_out: np.ndarray,
        x: np.ndarray,
        gate_masks: np.ndarray | None,
        d_kernel: np.ndarray,
    ) -> np.ndarray:
        """Add the kernel gradient into ``d_kernel`` (kh*kw*C, 4F); return d_x (x's shape)."""
        d_x = np.zeros(x.shape, x.dtype)
        for gates, mask in self._groups(gate_masks):
            d_kernel[:, gates] += self.columns(x, mask).T @ d_out[:, gates]
            d_cols = d_out[:, gates] @ self.flat_kernel[:, gates].T
            d_padded = col2im(d_cols.reshape(self.cols.shape), self.padded_shape, self.stride,
                              self.dilation)
            d_source = crop(d_padded, self.pads)
            d_x += d_source if mask is None else d_source * mask
        return d_x


@dataclass
class ConvLSTMCache:
    """What :func:`convlstm_backward` needs from a training forward (see the module docstring)."""

    x: np.ndarray  # (T, B, H, W, C), time-major view of the input
    gates: np.ndarray  # (T, B*H'*W', 4F), after their activations
    h_states: np.ndarray  # (T+1, B, H', W', F); h_states[0] is h0
    c_states: np.ndarray  # (T+1, B*H'*W', F); c_states[0] is c0
    mask: np.ndarray | None  # (B, T)
    input_masks: np.ndarray | None  # (4, B, H, W, C) dropout masks
    recurrent_masks: np.ndarray | None  # (4, B, H', W', F)
    stride: tuple[int, int]
    pads: Pads
    dilation: tuple[int, int]


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
    """Run one ConvLSTM layer over a sequence (equations in ``convlstm.ConvLSTM2D``).

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
    B, T = x.shape[:2]
    F4 = kernel.shape[-1]
    F = F4 // 4
    frames = x.swapaxes(0, 1)  # (T, B, H, W, C): each step's input gates become one block
    input_conv = GateConvolution(kernel, frames.shape, stride, pads, dilation)
    Ho, Wo = input_conv.out_hw
    rows = B * Ho * Wo
    input_gates = np.empty((T * rows, F4), x.dtype)
    input_conv.forward(frames, input_masks, out=input_gates)
    if bias is not None:
        input_gates += bias
    input_gates = input_gates.reshape(T, rows, F4)
    del input_conv  # frees its im2col buffer before the loop

    kh, kw = recurrent_kernel.shape[:2]
    recurrent_pads = (same_pads(Ho, kh, 1), same_pads(Wo, kw, 1))
    recurrent_conv = GateConvolution(recurrent_kernel, (B, Ho, Wo, F), (1, 1), recurrent_pads,
                                     (1, 1))
    # States ring: the whole history when training, else one slot updated in place.
    slots = T + 1 if training else 1
    h_states = np.empty((slots, B, Ho, Wo, F), x.dtype)
    c_states = np.empty((slots, rows, F), x.dtype)
    h_states[0], c_states[0] = h0, c0.reshape(rows, F)
    gates = np.empty((T if training else 1, rows, F4), x.dtype)
    new_c, new_h = np.empty((rows, F), x.dtype), np.empty((rows, F), x.dtype)
    outputs = np.empty((B, T, Ho * Wo, F), x.dtype)

    for t in range(T):
        h, c = h_states[t % slots], c_states[t % slots]
        z = gates[t % len(gates)]
        recurrent_conv.forward(h, recurrent_masks, out=z)
        z += input_gates[t]
        i, f, g, o = (z[:, k * F : (k + 1) * F] for k in range(4))
        for gate in (i, f, o):
            recurrent_activation(gate, out=gate)
        activation(g, out=g)
        np.multiply(i, g, out=new_c)
        new_c += f * c  # c = f*c + i*g
        activation(new_c, out=new_h)
        new_h *= o  # h = o*act(c)

        next_h, next_c = h_states[(t + 1) % slots], c_states[(t + 1) % slots]
        step_outputs = outputs[:, t]
        keep = None if mask is None or mask[:, t].all() else mask[:, t]
        if keep is None:
            next_c[...] = new_c
            next_h[...] = new_h.reshape(B, Ho, Wo, F)
            step_outputs[...] = new_h.reshape(B, Ho * Wo, F)
            continue
        keep_rows = np.repeat(keep, Ho * Wo)[:, None]
        next_c[...] = np.where(keep_rows, new_c, c)
        next_h[...] = np.where(keep[:, None, None, None], new_h.reshape(B, Ho, Wo, F), h)
        previous = outputs[:, t - 1] if t > 0 else 0.0
        step_outputs[...] = np.where(keep[:, None, None], new_h.reshape(B, Ho * Wo, F), previous)

    h_final = h_states[T % slots].copy()
    c_final = c_states[T % slots].reshape(B, Ho, Wo, F).copy()
    cache = None
    if training:
        cache = ConvLSTMCache(frames, gates, h_states, c_states, mask, input_masks,
                              recurrent_masks, stride, pads, dilation)
    return outputs.reshape(B, T, Ho, Wo, F), h_final, c_final, cache


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
    """Backpropagation through time for :func:`convlstm_forward`.

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
    T, rows, F4 = cache.gates.shape
    F = F4 // 4
    B, Ho, Wo = cache.h_states.shape[1:4]
    pixels = Ho * Wo
    act_derivative, gate_derivative = activation.derivative, recurrent_activation.derivative
    recurrent_conv = GateConvolution(
        recurrent_kernel, (B, Ho, Wo, F), (1, 1),
        (same_pads(Ho, recurrent_kernel.shape[0], 1), same_pads(Wo, recurrent_kernel.shape[1], 1)),
        (1, 1),
    )
    d_recurrent = np.zeros(recurrent_conv.flat_kernel.shape, kernel.dtype)
    d_gates = np.empty_like(cache.gates)
    d_h_next = np.zeros((rows, F), kernel.dtype) if d_h_final is None else (
        d_h_final.reshape(rows, F).astype(kernel.dtype, copy=True))
    d_c_next = np.zeros((rows, F), kernel.dtype) if d_c_final is None else (
        d_c_final.reshape(rows, F).astype(kernel.dtype, copy=True))
    d_carried_output = np.zeros((rows, F), kernel.dtype)  # to the output a masked step repeated
    d_outputs = d_outputs.reshape(B, T, pixels, F)

    for t in reversed(range(T)):
        i, f, g, o = (cache.gates[t][:, k * F : (k + 1) * F] for k in range(4))
        c_previous, c = cache.c_states[t], cache.c_states[t + 1]
        d_output = d_outputs[:, t].reshape(rows, F) + d_carried_output
        keep = None if cache.mask is None or cache.mask[:, t].all() else cache.mask[:, t]
        if keep is None:
            d_h, d_c = d_output + d_h_next, d_c_next
            d_carried_output[...] = 0.0
        else:
            keep_rows = np.repeat(keep, pixels)[:, None]
            d_h = np.where(keep_rows, d_output + d_h_next, 0.0)
            d_c = np.where(keep_rows, d_c_next, 0.0)
            d_carried_output = np.where(keep_rows, 0.0, d_output)
        act_c = activation(c)
        # c feeds h through act(c), so its gradient gets o * act'(c) on top of the carried one.
        d_c = d_c + d_h * o * act_derivative(act_c)
        d_z = d_gates[t]
        np.multiply(d_c * g, gate_derivative(i), out=d_z[:, :F])
        np.multiply(d_c * c_previous, gate_derivative(f), out=d_z[:, F : 2 * F])
        np.multiply(d_c * i, act_derivative(g), out=d_z[:, 2 * F : 3 * F])
        np.multiply(d_h * act_c, gate_derivative(o), out=d_z[:, 3 * F :])
        d_h_previous = recurrent_conv.backward(d_z, cache.h_states[t], cache.recurrent_masks,
                                               d_recurrent).reshape(rows, F)
        d_c_previous = d_c * f
        if keep is not None:
            d_h_previous += np.where(keep_rows, 0.0, d_h_next)
            d_c_previous += np.where(keep_rows, 0.0, d_c_next)
        d_h_next, d_c_next = d_h_previous, d_c_previous

    input_conv = GateConvolution(kernel, cache.x.shape, cache.stride, cache.pads, cache.dilation)
    d_kernel = np.zeros(input_conv.flat_kernel.shape, kernel.dtype)
    d_frames = input_conv.backward(d_gates.reshape(-1, F4), cache.x, cache.input_masks, d_kernel)
    grads = {
        "kernel": d_kernel.reshape(kernel.shape),
        "recurrent_kernel": d_recurrent.reshape(recurrent_kernel.shape),
    }
    if use_bias:
        grads["bias"] = d_gates.sum(axis=(0, 1))
    state_shape = (B, Ho, Wo, F)
    return (d_frames.swapaxes(0, 1), d_h_next.reshape(state_shape),
            d_c_next.reshape(state_shape), grads)


def dropout_masks(
    rng: np.random.Generator, rate: float, shape: tuple[int, ...], dtype: np.dtype
) -> np.ndarray:
    """Four independent inverted-dropout masks (4, *shape): 0 with probability ``rate``, else
    ``1 / (1 - rate)``, so the expected value of a masked input is unchanged."""
    keep = rng.random((4, *shape)) >= rate
    return keep.astype(dtype) / dtype.type(1.0 - rate)

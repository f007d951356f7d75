"""The ConvLSTM recurrence over a whole sequence, for one layer: forward and BPTT backward.

The input convolution of every frame runs as one matrix product before the time loop (it does
not depend on the state); inside the loop each step does one fused product for the four gates of
the recurrent convolution, then the gate arithmetic in buffers allocated once per call. The
backward pass mirrors it: one product per step for the recurrent part, and the gradients of the
input convolution for all frames in one product after the loop.

With Keras' dropout, each gate convolves its own masked copy of the input (or state), so the
fused product splits into four, one per gate.

Inside, arrays are channels-first planes (C, ..., H, W): each kernel tap then copies whole image
rows, and every gate is a contiguous block of rows of the fused product.

Training cache size, per layer, in floats: ``B*H'*W'*F*(6T + 2)`` (activated gates ``4T``, cell
states ``T+1``, hidden states ``T+1``), plus a reference to the input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convlstm.functional.activations import Activation
from convlstm.functional.planes import col2im_planes, im2col_planes, interior
from convlstm.functional.windows import Pads, output_size, same_pads


class GateConvolution:
    """A convolution into the fused gates, with its padding and im2col buffers made once.

    Works on channels-first planes (C, ..., H, W) with any leading axes (time and batch for the
    input convolution, batch for the recurrent one); outputs are (4F, pixels), one block of F
    rows per gate.
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
        self.flat_kernel = kernel.reshape(kh * kw * C, F4).T  # (4F, kh*kw*C)
        self.window, self.stride, self.pads, self.dilation = (kh, kw), stride, pads, dilation
        *lead, H, W = in_shape
        self.out_hw = output_size((H, W), (kh, kw), stride, pads, dilation)
        (top, bottom), (left, right) = pads
        self.padded_shape = (*lead, top + H + bottom, left + W + right)
        padded = top + bottom + left + right > 0
        self.padded = np.zeros(self.padded_shape, kernel.dtype) if padded else None
        self.cols = np.empty((kh, kw, *lead, *self.out_hw), kernel.dtype)

    def columns(self, x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """im2col of ``x`` (times ``mask``), as (kh*kw*C, pixels) of a reused buffer."""
        if self.padded is None:
            source = x if mask is None else x * mask
        else:
            source = self.padded
            inside = interior(self.padded, self.pads)
            if mask is None:
                inside[...] = x
            else:
                np.multiply(x, mask, out=inside)
        im2col_planes(source, self.window, self.stride, self.dilation, self.out_hw, out=self.cols)
        return self.cols.reshape(self.flat_kernel.shape[1], -1)

    def _groups(self, gate_masks: np.ndarray | None):
        """(gate rows, mask) pairs: one fused group, or one per gate under dropout."""
        if gate_masks is None:
            return [(slice(None), None)]
        F = self.gate_width
        return [(slice(k * F, (k + 1) * F), gate_masks[k]) for k in range(4)]

    def forward(self, x: np.ndarray, gate_masks: np.ndarray | None, out: np.ndarray) -> None:
        """Write the convolution of ``x`` into ``out`` (4F, pixels)."""
        for gates, mask in self._groups(gate_masks):
            np.matmul(self.flat_kernel[gates], self.columns(x, mask), out=out[gates])

    def backward(
        self,
        d_out: np.ndarray,
        x: np.ndarray,
        gate_masks: np.ndarray | None,
        d_kernel: np.ndarray,
    ) -> np.ndarray:
        """Add the kernel gradient into ``d_kernel`` (4F, kh*kw*C); return d_x (x's shape)."""
        d_x = np.zeros(x.shape, x.dtype)
        for gates, mask in self._groups(gate_masks):
            columns = self.columns(x, mask)
            d_kernel[gates] += d_out[gates] @ columns.T
            d_cols = self.flat_kernel[gates].T @ d_out[gates]
            d_padded = col2im_planes(d_cols.reshape(self.cols.shape), self.padded_shape,
                                     self.stride, self.dilation)
            d_source = interior(d_padded, self.pads)
            d_x += d_source if mask is None else d_source * mask
        return d_x


@dataclass
class ConvLSTMCache:
    """What :func:`convlstm_backward` needs from a training forward (see the module docstring).

    Arrays are channels-first planes; P = B*H'*W' pixels of one step.
    """

    x: np.ndarray  # (C, T, B, H, W) view of the input
    gates: np.ndarray  # (T, 4F, P), after their activations
    h_states: np.ndarray  # (T+1, F, B, H', W'); h_states[0] is h0
    c_states: np.ndarray  # (T+1, F, P); c_states[0] is c0
    mask: np.ndarray | None  # (B, T)
    input_masks: np.ndarray | None  # (4, C, 1, B, H, W) dropout masks
    recurrent_masks: np.ndarray | None  # (4, F, B, H', W')
    stride: tuple[int, int]
    pads: Pads
    dilation: tuple[int, int]


def _planes(array: np.ndarray) -> np.ndarray:
    """(B, ..., C) channels-last to (C, B, ...) (a view)."""
    return np.moveaxis(array, -1, 0)


def _kept_pixels(mask: np.ndarray | None, t: int, pixels: int) -> np.ndarray | None:
    """(1, B*pixels) bool of the samples that take step t, or None when all of them do."""
    if mask is None or mask[:, t].all():
        return None
    return np.repeat(mask[:, t], pixels)[None, :]


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
    frames = _planes(x).swapaxes(1, 2)  # (C, T, B, H, W)
    if input_masks is not None:
        input_masks = np.moveaxis(input_masks, -1, 1)[:, :, None]  # (4, C, 1, B, H, W)
    if recurrent_masks is not None:
        recurrent_masks = np.moveaxis(recurrent_masks, -1, 1)  # (4, F, B, H', W')
    input_conv = GateConvolution(kernel, frames.shape, stride, pads, dilation)
    Ho, Wo = input_conv.out_hw
    P = B * Ho * Wo
    input_gates = np.empty((F4, T * P), x.dtype)
    input_conv.forward(frames, input_masks, out=input_gates)
    if bias is not None:
        input_gates += bias[:, None]
    input_gates = input_gates.reshape(F4, T, P)
    del input_conv  # frees its im2col buffer before the loop

    kh, kw = recurrent_kernel.shape[:2]
    recurrent_pads = (same_pads(Ho, kh, 1), same_pads(Wo, kw, 1))
    recurrent_conv = GateConvolution(recurrent_kernel, (F, B, Ho, Wo), (1, 1), recurrent_pads,
                                     (1, 1))
    # States ring: the whole history when training, else one slot updated in place.
    slots = T + 1 if training else 1
    h_states = np.empty((slots, F, B, Ho, Wo), x.dtype)
    c_states = np.empty((slots, F, P), x.dtype)
    h_states[0], c_states[0] = _planes(h0), _planes(c0).reshape(F, P)
    gates = np.empty((T if training else 1, F4, P), x.dtype)
    new_c, new_h = np.empty((F, P), x.dtype), np.empty((F, P), x.dtype)
    outputs = np.empty((T, F, P), x.dtype)

    for t in range(T):
        h, c = h_states[t % slots], c_states[t % slots]
        z = gates[t % len(gates)]
        recurrent_conv.forward(h, recurrent_masks, out=z)
        z += input_gates[:, t]
        i, f, g, o = z[:F], z[F : 2 * F], z[2 * F : 3 * F], z[3 * F :]
        for gate in (i, f, o):
            recurrent_activation(gate, out=gate)
        activation(g, out=g)
        np.multiply(i, g, out=new_c)
        new_c += f * c  # c = f*c + i*g
        activation(new_c, out=new_h)
        new_h *= o  # h = o*act(c)

        next_h, next_c = h_states[(t + 1) % slots].reshape(F, P), c_states[(t + 1) % slots]
        keep = _kept_pixels(mask, t, Ho * Wo)
        if keep is None:
            next_c[...] = new_c
            next_h[...] = new_h
            outputs[t] = new_h
            continue
        next_c[...] = np.where(keep, new_c, c)
        next_h[...] = np.where(keep, new_h, h.reshape(F, P))
        outputs[t] = np.where(keep, new_h, outputs[t - 1] if t > 0 else 0.0)

    h_final = np.moveaxis(h_states[T % slots], 0, -1).copy()
    c_final = np.moveaxis(c_states[T % slots].reshape(F, B, Ho, Wo), 0, -1).copy()
    cache = None
    if training:
        cache = ConvLSTMCache(frames, gates, h_states, c_states, mask, input_masks,
                              recurrent_masks, stride, pads, dilation)
    sequence = outputs.reshape(T, F, B, Ho, Wo).transpose(2, 0, 3, 4, 1)
    return np.ascontiguousarray(sequence), h_final, c_final, cache


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
    T, F4, P = cache.gates.shape
    F = F4 // 4
    B, Ho, Wo = cache.h_states.shape[2:]
    dtype = kernel.dtype
    act_derivative, gate_derivative = activation.derivative, recurrent_activation.derivative
    kh, kw = recurrent_kernel.shape[:2]
    recurrent_conv = GateConvolution(recurrent_kernel, (F, B, Ho, Wo), (1, 1),
                                     (same_pads(Ho, kh, 1), same_pads(Wo, kw, 1)), (1, 1))
    d_recurrent = np.zeros(recurrent_conv.flat_kernel.shape, dtype)
    d_gates = np.empty((F4, T, P), dtype)  # laid out for the input convolution's one product

    def planar_state(gradient):
        if gradient is None:
            return np.zeros((F, P), dtype)
        return _planes(gradient).reshape(F, P).astype(dtype, copy=True)

    d_h_next, d_c_next = planar_state(d_h_final), planar_state(d_c_final)
    d_outputs = _planes(d_outputs).swapaxes(1, 2).reshape(F, T, P)  # (F, T, P)
    d_carried_output = np.zeros((F, P), dtype)  # to the output a masked step repeated

    for t in reversed(range(T)):
        z = cache.gates[t]
        i, f, g, o = z[:F], z[F : 2 * F], z[2 * F : 3 * F], z[3 * F :]
        c_previous, c = cache.c_states[t], cache.c_states[t + 1]
        d_output = d_outputs[:, t] + d_carried_output
        keep = _kept_pixels(cache.mask, t, Ho * Wo)
        if keep is None:
            d_h, d_c = d_output + d_h_next, d_c_next
            d_carried_output[...] = 0.0
        else:
            d_h = np.where(keep, d_output + d_h_next, 0.0)
            d_c = np.where(keep, d_c_next, 0.0)
            d_carried_output = np.where(keep, 0.0, d_output)
        act_c = activation(c)
        # c feeds h through act(c), so its gradient gets o * act'(c) on top of the carried one.
        d_c = d_c + d_h * o * act_derivative(act_c)
        d_z = d_gates[:, t]
        np.multiply(d_c * g, gate_derivative(i), out=d_z[:F])
        np.multiply(d_c * c_previous, gate_derivative(f), out=d_z[F : 2 * F])
        np.multiply(d_c * i, act_derivative(g), out=d_z[2 * F : 3 * F])
        np.multiply(d_h * act_c, gate_derivative(o), out=d_z[3 * F :])
        d_h_previous = recurrent_conv.backward(d_z, cache.h_states[t], cache.recurrent_masks,
                                               d_recurrent).reshape(F, P)
        d_c_previous = d_c * f
        if keep is not None:
            d_h_previous += np.where(keep, 0.0, d_h_next)
            d_c_previous += np.where(keep, 0.0, d_c_next)
        d_h_next, d_c_next = d_h_previous, d_c_previous

    input_conv = GateConvolution(kernel, cache.x.shape, cache.stride, cache.pads, cache.dilation)
    d_kernel = np.zeros(input_conv.flat_kernel.shape, dtype)
    d_frames = input_conv.backward(d_gates.reshape(F4, T * P), cache.x, cache.input_masks,
                                   d_kernel)
    grads = {
        "kernel": d_kernel.T.reshape(kernel.shape),
        "recurrent_kernel": d_recurrent.T.reshape(recurrent_kernel.shape),
    }
    if use_bias:
        grads["bias"] = d_gates.sum(axis=(1, 2))

    def channels_last_state(gradient):
        return np.moveaxis(gradient.reshape(F, B, Ho, Wo), 0, -1).copy()

    d_x = np.ascontiguousarray(np.moveaxis(d_frames, 0, -1).swapaxes(0, 1))  # (B, T, H, W, C)
    return d_x, channels_last_state(d_h_next), channels_last_state(d_c_next), grads


def dropout_masks(
    rng: np.random.Generator, rate: float, shape: tuple[int, ...], dtype: np.dtype
) -> np.ndarray:
    """Four independent inverted-dropout masks (4, *shape): 0 with probability ``rate``, else
    ``1 / (1 - rate)``, so the expected value of a masked input is unchanged."""
    keep = rng.random((4, *shape)) >= rate
    return keep.astype(dtype) / dtype.type(1.0 - rate)

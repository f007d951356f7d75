"""The ConvLSTM recurrence over a whole sequence, for one layer.

The input convolution of every frame runs as one matrix product before the time loop (it does
not depend on the state); inside the loop each step does one fused product for the four gates of
the recurrent convolution, then the gate arithmetic in preallocated buffers.
"""

from __future__ import annotations

import numpy as np

from convlstm.functional.activations import Activation
from convlstm.functional.conv import conv2d
from convlstm.functional.windows import Pads, im2col, same_pads


def convlstm_sequence(
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
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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

    Returns:
        outputs (B, T, H', W', F), final h (B, H', W', F), final c (B, H', W', F).
    """
    B, T = x.shape[:2]
    kh, kw, _, F4 = kernel.shape
    F = F4 // 4
    input_gates = conv2d(x.reshape(B * T, *x.shape[2:]), kernel, bias, stride, pads, dilation)
    Ho, Wo = input_gates.shape[1:3]
    input_gates = input_gates.reshape(B, T, Ho * Wo, F4)

    (top, bottom), (left, right) = same_pads(Ho, kh, 1), same_pads(Wo, kw, 1)
    h_padded = np.zeros((B, top + Ho + bottom, left + Wo + right, F), dtype=x.dtype)
    h = h_padded[:, top : top + Ho, left : left + Wo]  # the current state lives in the padding
    h[...] = h0
    c = c0.reshape(B, Ho * Wo, F).copy()
    cols = np.empty((B, Ho, Wo, kh, kw, F), dtype=x.dtype)
    flat_recurrent_kernel = recurrent_kernel.reshape(kh * kw * F, F4)
    gates = np.empty((B, Ho * Wo, F4), dtype=x.dtype)
    i, f, g, o = (gates[..., k * F : (k + 1) * F] for k in range(4))
    new_h = np.empty((B, Ho * Wo, F), dtype=x.dtype)
    outputs = np.empty((B, T, Ho * Wo, F), dtype=x.dtype)

    for t in range(T):
        im2col(h_padded, (kh, kw), (1, 1), (1, 1), (Ho, Wo), out=cols)
        np.matmul(cols.reshape(B, Ho * Wo, kh * kw * F), flat_recurrent_kernel, out=gates)
        gates += input_gates[:, t]
        recurrent_activation(i, out=i)
        recurrent_activation(f, out=f)
        activation(g, out=g)
        recurrent_activation(o, out=o)
        keep = None if mask is None or mask[:, t].all() else mask[:, t]
        previous_c = c.copy() if keep is not None else None
        c *= f
        g *= i
        c += g  # c = f*c + i*g
        activation(c, out=new_h)
        new_h *= o  # h = o*act(c)
        if keep is None:
            h[...] = new_h.reshape(B, Ho, Wo, F)
            outputs[:, t] = new_h
            continue
        c[~keep] = previous_c[~keep]
        h[keep] = new_h[keep].reshape(-1, Ho, Wo, F)
        outputs[keep, t] = new_h[keep]
        outputs[~keep, t] = outputs[~keep, t - 1] if t > 0 else 0.0

    return outputs.reshape(B, T, Ho, Wo, F), h.copy(), c.reshape(B, Ho, Wo, F)

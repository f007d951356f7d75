"""Slow, loop-based reference implementations used as a test oracle.

Everything here is written independently of the library under ``src/``: plain Python
loops over batch, output positions and kernel taps, with ``float64`` accumulation.
Clarity is the goal, not speed. All tensors are channels-last. Results are returned
as ``float64`` arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

Pair = tuple[int, int]
Pads2 = tuple[tuple[int, int], tuple[int, int]]
Pads3 = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]
Activation = Callable[[np.ndarray], np.ndarray]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic sigmoid ``1 / (1 + exp(-x))``, elementwise, without overflow warnings.

    Args:
        x: Array of any shape.

    Returns:
        Float64 array of the same shape as ``x``.
    """
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))  # in (0, 1], never overflows
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def hard_sigmoid(x: np.ndarray) -> np.ndarray:
    """Keras 3 hard sigmoid: ``relu6(x + 3) / 6``, elementwise.

    Args:
        x: Array of any shape.

    Returns:
        Float64 array of the same shape as ``x``.
    """
    x = np.asarray(x, dtype=np.float64)
    relu6 = np.minimum(np.maximum(x + 3.0, 0.0), 6.0)
    return relu6 / 6.0


def same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow "same" padding split for one spatial axis.

    Args:
        size: Input length along the axis.
        kernel: Kernel length along the axis.
        stride: Stride along the axis.
        dilation: Dilation along the axis.

    Returns:
        ``(before, after)`` zero padding; the extra cell (if odd) goes after.
    """
    out = -(-size // stride)  # ceil(size / stride)
    effective_kernel = dilation * (kernel - 1) + 1
    total = max((out - 1) * stride + effective_kernel - size, 0)
    before = total // 2
    after = total - before
    return before, after


def conv2d_reference(
    x: np.ndarray,
    kernel: np.ndarray,
    bias: np.ndarray | None,
    stride: Pair = (1, 1),
    pads: Pads2 = ((0, 0), (0, 0)),
    dilation: Pair = (1, 1),
) -> np.ndarray:
    """2-D cross-correlation (not flipped), as in Keras / TensorFlow / PyTorch.

    Args:
        x: Input of shape ``(batch, H, W, C_in)``.
        kernel: Weights of shape ``(kh, kw, C_in, C_out)``.
        bias: Bias of shape ``(C_out,)`` or ``None``.
        stride: ``(stride_h, stride_w)``.
        pads: Explicit zero padding ``((top, bottom), (left, right))``.
        dilation: ``(dilation_h, dilation_w)``.

    Returns:
        Float64 array of shape ``(batch, H', W', C_out)`` with
        ``H' = (H + top + bottom - dilation_h * (kh - 1) - 1) // stride_h + 1``
        (and likewise for ``W'``).
    """
    x = np.asarray(x, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    batch, H, W, C_in = x.shape
    kh, kw, k_cin, C_out = kernel.shape
    if k_cin != C_in:
        raise ValueError(f"kernel expects {k_cin} input channels, x has {C_in}")
    sh, sw = stride
    dh, dw = dilation
    (top, bottom), (left, right) = pads

    padded = np.zeros((batch, H + top + bottom, W + left + right, C_in), dtype=np.float64)
    padded[:, top : top + H, left : left + W, :] = x

    H_out = (H + top + bottom - dh * (kh - 1) - 1) // sh + 1
    W_out = (W + left + right - dw * (kw - 1) - 1) // sw + 1
    if H_out <= 0 or W_out <= 0:
        raise ValueError(f"non-positive output size ({H_out}, {W_out})")

    out = np.zeros((batch, H_out, W_out, C_out), dtype=np.float64)
    for b in range(batch):
        for oy in range(H_out):
            for ox in range(W_out):
                acc = np.zeros(C_out, dtype=np.float64)
                for ky in range(kh):
                    for kx in range(kw):
                        iy = oy * sh + ky * dh
                        ix = ox * sw + kx * dw
                        # (C_in,) . (C_in, C_out) -> (C_out,)
                        acc += np.dot(padded[b, iy, ix, :], kernel[ky, kx, :, :])
                if bias is not None:
                    acc += np.asarray(bias, dtype=np.float64)
                out[b, oy, ox, :] = acc
    return out


def conv2d_backward_reference(
    x: np.ndarray,
    kernel: np.ndarray,
    d_out: np.ndarray,
    stride: Pair = (1, 1),
    pads: Pads2 = ((0, 0), (0, 0)),
    dilation: Pair = (1, 1),
) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of :func:`conv2d_reference` for the input and the kernel (the bias gradient is
    ``d_out`` summed over batch, height and width).

    Args:
        x: ``(batch, H, W, C_in)``; kernel: ``(kh, kw, C_in, C_out)``.
        d_out: ``(batch, H', W', C_out)``, the gradient of the convolution's output.

    Returns:
        ``(d_x, d_kernel)``: float64, shaped like ``x`` and ``kernel``.
    """
    x = np.asarray(x, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    batch, H, W, C_in = x.shape
    kh, kw = kernel.shape[:2]
    (top, bottom), (left, right) = pads
    padded = np.zeros((batch, H + top + bottom, W + left + right, C_in), dtype=np.float64)
    padded[:, top : top + H, left : left + W, :] = x
    d_padded = np.zeros_like(padded)
    d_kernel = np.zeros_like(kernel)
    for b, oy, ox in np.ndindex(*d_out.shape[:3]):
        for ky in range(kh):
            for kx in range(kw):
                iy = oy * stride[0] + ky * dilation[0]
                ix = ox * stride[1] + kx * dilation[1]
                # out[b, oy, ox] += padded[b, iy, ix] @ kernel[ky, kx]
                d_padded[b, iy, ix, :] += kernel[ky, kx] @ d_out[b, oy, ox]
                d_kernel[ky, kx] += np.outer(padded[b, iy, ix], d_out[b, oy, ox])
    return d_padded[:, top : top + H, left : left + W, :], d_kernel


DERIVATIVES: dict[Callable, Callable] = {
    np.tanh: lambda z: 1.0 - np.tanh(z) ** 2,
    sigmoid: lambda z: sigmoid(z) * (1.0 - sigmoid(z)),
    hard_sigmoid: lambda z: np.where((z > -3.0) & (z < 3.0), 1.0 / 6.0, 0.0),
}
"""The derivative of each reference activation, as a function of its input."""


@dataclass
class ConvLSTMTape:
    """What :func:`convlstm_reference` kept of every step, for :func:`convlstm_reference_backward`.

    Lists are indexed by processing step; ``h[-1]`` and ``c[-1]`` are the initial states (as in
    min-char-rnn), so step 0 needs no special case.
    """

    x: np.ndarray  # (batch, time, H, W, C_in), float64
    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    order: list[int]  # time index of each processing step
    z: list[np.ndarray] = field(default_factory=list)  # pre-activations (B, H', W', 4F), i f c o
    h: dict[int, np.ndarray] = field(default_factory=dict)  # h after each step; h[-1] = h0
    c: dict[int, np.ndarray] = field(default_factory=dict)  # c after each step; c[-1] = c0
    keep: list[np.ndarray] = field(default_factory=list)  # (batch,) bool: who took the step
    geometry: dict = field(default_factory=dict)  # stride, pads, dilation, rec_pads
    activations: tuple = (np.tanh, sigmoid)  # activation, recurrent_activation


def convlstm_reference(
    x: np.ndarray,
    kernel: np.ndarray,
    recurrent_kernel: np.ndarray,
    bias: np.ndarray | None,
    *,
    stride: Pair = (1, 1),
    pads: Pads2 = ((0, 0), (0, 0)),
    dilation: Pair = (1, 1),
    activation: Activation = np.tanh,
    recurrent_activation: Activation = sigmoid,
    h0: np.ndarray | None = None,
    c0: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    go_backwards: bool = False,
    tape: ConvLSTMTape | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One ConvLSTM2D layer with Keras 3 semantics, gates fused in order i, f, c, o.

    Args:
        x: Input of shape ``(batch, time, H, W, C_in)``.
        kernel: Input weights of shape ``(kh, kw, C_in, 4F)``.
        recurrent_kernel: Recurrent weights of shape ``(kh, kw, F, 4F)``.
        bias: Bias of shape ``(4F,)`` or ``None``.
        stride: Input-convolution stride ``(stride_h, stride_w)``.
        pads: Input-convolution zero padding ``((top, bottom), (left, right))``.
        dilation: Input-convolution dilation ``(dilation_h, dilation_w)``.
        activation: Cell/output activation.
        recurrent_activation: Gate activation.
        h0: Initial hidden state ``(batch, H', W', F)``; zeros if ``None``.
        c0: Initial cell state ``(batch, H', W', F)``; zeros if ``None``.
        mask: Boolean ``(batch, time)``; a False step keeps that sample's state and
            repeats its previous output (zeros before any processed step).
        go_backwards: Process frames (and mask) in reversed time order.
        tape: If given (``ConvLSTMTape(x, kernel, recurrent_kernel, [])``), filled with every
            step's values for :func:`convlstm_reference_backward`.

    Returns:
        ``(outputs, h_final, c_final)``: outputs ``(batch, time, H', W', F)`` in
        processing order, and final states ``(batch, H', W', F)``; all float64.
    """
    x = np.asarray(x, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    recurrent_kernel = np.asarray(recurrent_kernel, dtype=np.float64)
    batch, time = x.shape[0], x.shape[1]
    rkh, rkw, F, four_f = recurrent_kernel.shape
    if four_f != 4 * F or kernel.shape[3] != 4 * F:
        raise ValueError("kernel / recurrent_kernel last axis must be 4 * filters")

    # Output spatial size of the input convolution.
    H, W = x.shape[2], x.shape[3]
    kh, kw = kernel.shape[0], kernel.shape[1]
    (top, bottom), (left, right) = pads
    H_out = (H + top + bottom - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    W_out = (W + left + right - dilation[1] * (kw - 1) - 1) // stride[1] + 1

    # Recurrent convolution: stride 1, dilation 1, "same" padding (keeps H', W').
    rec_pads = (same_pads(H_out, rkh, 1, 1), same_pads(W_out, rkw, 1, 1))

    order = list(range(time))
    if go_backwards:
        order = order[::-1]

    h = np.zeros((batch, H_out, W_out, F)) if h0 is None else np.array(h0, dtype=np.float64)
    c = np.zeros((batch, H_out, W_out, F)) if c0 is None else np.array(c0, dtype=np.float64)
    prev_out = np.zeros((batch, H_out, W_out, F), dtype=np.float64)
    outputs = np.zeros((batch, time, H_out, W_out, F), dtype=np.float64)
    if tape is not None:
        tape.order = order
        tape.h[-1], tape.c[-1] = h.copy(), c.copy()
        tape.geometry = {"stride": stride, "pads": pads, "dilation": dilation,
                         "rec_pads": rec_pads}
        tape.activations = (activation, recurrent_activation)

    for step, t in enumerate(order):
        x_t = conv2d_reference(x[:, t], kernel, bias, stride, pads, dilation)
        r_t = conv2d_reference(h, recurrent_kernel, None, (1, 1), rec_pads, (1, 1))
        z = x_t + r_t
        zi = z[..., 0 * F : 1 * F]
        zf = z[..., 1 * F : 2 * F]
        zc = z[..., 2 * F : 3 * F]
        zo = z[..., 3 * F : 4 * F]
        i = recurrent_activation(zi)
        f = recurrent_activation(zf)
        c_new = f * c + i * activation(zc)
        o = recurrent_activation(zo)
        h_new = o * activation(c_new)

        keep = np.ones(batch, bool) if mask is None else np.asarray(mask[:, t], bool)
        for b in range(batch):
            if keep[b]:
                h[b] = h_new[b]
                c[b] = c_new[b]
                prev_out[b] = h_new[b]
            # else: state and previous output carry over unchanged
            outputs[b, step] = prev_out[b]
        if tape is not None:
            tape.z.append(z)
            tape.h[step], tape.c[step] = h.copy(), c.copy()
            tape.keep.append(keep)

    return outputs, h, c


def convlstm_reference_backward(
    tape: ConvLSTMTape,
    d_outputs: np.ndarray,
    d_h_final: np.ndarray | None = None,
    d_c_final: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Backpropagation through time for :func:`convlstm_reference`, one plain reversed loop that
    carries ``dh_next`` and ``dc_next`` (as min-char-rnn does), in Keras' gate order i, f, c, o.

    For one step (``'`` a derivative as a function of the activation's input)::

        i = ra(z_i)   f = ra(z_f)   g = a(z_c)   o = ra(z_o)
        c = f c_prev + i g            h = o a(c)
        dc     = dc_next + dh o a'(c)
        dz_i   = dc g ra'(z_i)        dz_f = dc c_prev ra'(z_f)
        dz_c   = dc i a'(z_c)         dz_o = dh a(c) ra'(z_o)
        dc_prev = dc f                dh_prev = U^T * dz (the recurrent convolution's adjoint)

    A masked sample skips the step: its state gradients pass through unchanged, and the
    gradient of an output that repeated an earlier one goes to that earlier output.

    Args:
        tape: filled by the forward.
        d_outputs: ``(batch, time, H', W', F)``, in processing order as the outputs are.
        d_h_final, d_c_final: gradients for the final states, or None for zeros.

    Returns:
        ``x``, ``kernel``, ``recurrent_kernel``, ``bias``, ``h0``, ``c0``: the gradient of each,
        float64, shaped like it.
    """
    activation, recurrent_activation = tape.activations
    d_act, d_ract = DERIVATIVES[activation], DERIVATIVES[recurrent_activation]
    geometry = tape.geometry
    F = tape.recurrent_kernel.shape[2]
    d_x = np.zeros_like(tape.x)
    d_kernel = np.zeros_like(tape.kernel)
    d_recurrent_kernel = np.zeros_like(tape.recurrent_kernel)
    d_bias = np.zeros(4 * F)
    dh_next = np.zeros_like(tape.h[-1]) if d_h_final is None else np.array(d_h_final, np.float64)
    dc_next = np.zeros_like(tape.c[-1]) if d_c_final is None else np.array(d_c_final, np.float64)
    d_repeated = np.zeros_like(dh_next)  # for the output a later masked step repeated

    for step in reversed(range(len(tape.order))):
        t, keep = tape.order[step], tape.keep[step]
        z, h_prev, c_prev = tape.z[step], tape.h[step - 1], tape.c[step - 1]
        d_output = d_outputs[:, step] + d_repeated
        # The step's own values: what the samples that took it computed.
        zi, zf, zc, zo = (z[..., k * F : (k + 1) * F] for k in range(4))
        i, f, o = (recurrent_activation(zk) for zk in (zi, zf, zo))
        g = activation(zc)
        c_new = f * c_prev + i * g
        dh = np.zeros_like(dh_next)
        dc = np.zeros_like(dc_next)
        dh_prev = np.zeros_like(dh_next)
        dc_prev = np.zeros_like(dc_next)
        for b in range(len(keep)):
            if keep[b]:
                dh[b] = d_output[b] + dh_next[b]
                dc[b] = dc_next[b]
                d_repeated[b] = 0.0
            else:
                dh_prev[b] = dh_next[b]
                dc_prev[b] = dc_next[b]
                d_repeated[b] = d_output[b]
        dc = dc + dh * o * d_act(c_new)
        dz = np.concatenate(
            [dc * g * d_ract(zi), dc * c_prev * d_ract(zf), dc * i * d_act(zc),
             dh * activation(c_new) * d_ract(zo)],
            axis=-1,
        )
        dc_prev += dc * f
        d_frame, d_w = conv2d_backward_reference(
            tape.x[:, t], tape.kernel, dz, geometry["stride"], geometry["pads"],
            geometry["dilation"])
        d_h_rec, d_u = conv2d_backward_reference(
            h_prev, tape.recurrent_kernel, dz, (1, 1), geometry["rec_pads"], (1, 1))
        d_x[:, t] += d_frame
        d_kernel += d_w
        d_recurrent_kernel += d_u
        d_bias += dz.sum(axis=(0, 1, 2))
        dh_prev += d_h_rec
        dh_next, dc_next = dh_prev, dc_prev

    return {"x": d_x, "kernel": d_kernel, "recurrent_kernel": d_recurrent_kernel,
            "bias": d_bias, "h0": dh_next, "c0": dc_next}


def maxpool3d_reference(
    x: np.ndarray,
    pool_size: tuple[int, int, int],
    stride: tuple[int, int, int],
    pads: Pads3,
) -> np.ndarray:
    """3-D max pooling; padded cells are ``-inf`` and so never win.

    Args:
        x: Input of shape ``(batch, D, H, W, C)``.
        pool_size: ``(pd, ph, pw)``.
        stride: ``(sd, sh, sw)``.
        pads: ``((front, back), (top, bottom), (left, right))``.

    Returns:
        Float64 array of shape ``(batch, D', H', W', C)`` where along each axis
        ``out = (size + before + after - pool) // stride + 1``.
    """
    x = np.asarray(x, dtype=np.float64)
    batch, D, H, W, C = x.shape
    pd, ph, pw = pool_size
    sd, sh, sw = stride
    (fr, bk), (tp, bt), (lf, rt) = pads

    padded = np.full((batch, D + fr + bk, H + tp + bt, W + lf + rt, C), -np.inf)
    padded[:, fr : fr + D, tp : tp + H, lf : lf + W, :] = x

    D_out = (D + fr + bk - pd) // sd + 1
    H_out = (H + tp + bt - ph) // sh + 1
    W_out = (W + lf + rt - pw) // sw + 1

    out = np.zeros((batch, D_out, H_out, W_out, C), dtype=np.float64)
    for b in range(batch):
        for od in range(D_out):
            for oy in range(H_out):
                for ox in range(W_out):
                    for ch in range(C):
                        best = -np.inf
                        for kd in range(pd):
                            for ky in range(ph):
                                for kx in range(pw):
                                    v = padded[b, od * sd + kd, oy * sh + ky, ox * sw + kx, ch]
                                    if v > best:
                                        best = v
                        out[b, od, oy, ox, ch] = best
    return out


def maxpool3d_backward_reference(
    x: np.ndarray,
    pool_size: tuple[int, int, int],
    stride: tuple[int, int, int],
    pads: Pads3,
    d_out: np.ndarray,
) -> np.ndarray:
    """Gradient of 3-D max pooling: each window's ``d_out`` goes to its first maximum in scan
    order (depth, then height, then width); overlapping windows add up. Padded cells never win.

    Args:
        x: ``(batch, D, H, W, C)``; d_out: the pooled shape.

    Returns:
        Float64 array shaped like ``x``.
    """
    x = np.asarray(x, dtype=np.float64)
    (fr, _), (tp, _), (lf, _) = pads
    D, H, W = x.shape[1:4]
    d_x = np.zeros_like(x)
    for b, od, oy, ox, ch in np.ndindex(*d_out.shape):
        best, where = -np.inf, None
        for kd in range(pool_size[0]):
            for ky in range(pool_size[1]):
                for kx in range(pool_size[2]):
                    d = od * stride[0] + kd - fr
                    y = oy * stride[1] + ky - tp
                    w = ox * stride[2] + kx - lf
                    if 0 <= d < D and 0 <= y < H and 0 <= w < W and x[b, d, y, w, ch] > best:
                        best, where = x[b, d, y, w, ch], (b, d, y, w, ch)
        d_x[where] += d_out[b, od, oy, ox, ch]
    return d_x

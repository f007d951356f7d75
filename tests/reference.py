"""Slow, loop-based reference implementations used as a test oracle.

Everything here is written independently of the library under ``src/``: plain Python
loops over batch, output positions and kernel taps, with ``float64`` accumulation.
Clarity is the goal, not speed. All tensors are channels-last. Results are returned
as ``float64`` arrays.
"""

from __future__ import annotations

from collections.abc import Callable

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

        for b in range(batch):
            keep = True if mask is None else bool(mask[b, t])
            if keep:
                h[b] = h_new[b]
                c[b] = c_new[b]
                prev_out[b] = h_new[b]
            # else: state and previous output carry over unchanged
            outputs[b, step] = prev_out[b]

    return outputs, h, c


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

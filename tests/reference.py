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


def conv_reference(
    x: np.ndarray,
    kernel: np.ndarray,
    bias: np.ndarray | None,
    stride: tuple[int, ...] | None = None,
    pads: tuple[tuple[int, int], ...] | None = None,
    dilation: tuple[int, ...] | None = None,
) -> np.ndarray:
    """Cross-correlation (not flipped) over any number of spatial axes, as in Keras /
    TensorFlow / PyTorch.

    Args:
        x: Input of shape ``(batch, *spatial, C_in)`` (spatial: (H, W) for 2-D).
        kernel: Weights of shape ``(*k, C_in, C_out)``.
        bias: Bias of shape ``(C_out,)`` or ``None``.
        stride: one stride per spatial axis (default 1).
        pads: Explicit zero padding ``(before, after)`` per spatial axis (default none).
        dilation: one dilation per spatial axis (default 1).

    Returns:
        Float64 array ``(batch, *spatial', C_out)`` with, per axis,
        ``n' = (n + before + after - dilation * (k - 1) - 1) // stride + 1``.
    """
    x = np.asarray(x, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    rank = kernel.ndim - 2
    stride, pads, dilation = _geometry(rank, stride, pads, dilation)
    if kernel.shape[-2] != x.shape[-1]:
        raise ValueError(f"kernel expects {kernel.shape[-2]} input channels, x has {x.shape[-1]}")
    padded = _padded(x, pads)
    out_spatial = _out_spatial(x.shape[1:-1], kernel.shape[:-2], stride, pads, dilation)
    out = np.zeros((x.shape[0], *out_spatial, kernel.shape[-1]), dtype=np.float64)
    for b in range(x.shape[0]):
        for position in np.ndindex(*out_spatial):
            acc = np.zeros(kernel.shape[-1], dtype=np.float64)
            for tap in np.ndindex(*kernel.shape[:-2]):
                source = tuple(p * s + k * d for p, s, k, d in zip(position, stride, tap, dilation))
                # (C_in,) . (C_in, C_out) -> (C_out,)
                acc += np.dot(padded[(b, *source)], kernel[tap])
            if bias is not None:
                acc += np.asarray(bias, dtype=np.float64)
            out[(b, *position)] = acc
    return out


conv2d_reference = conv_reference  # the 2-D case, by the name the conv tests use


def _geometry(rank, stride, pads, dilation):
    ones = (1,) * rank
    return (tuple(stride or ones), tuple(pads or ((0, 0),) * rank), tuple(dilation or ones))


def _padded(x: np.ndarray, pads) -> np.ndarray:
    return np.pad(x, ((0, 0), *pads, (0, 0)))


def _out_spatial(spatial, window, stride, pads, dilation) -> tuple[int, ...]:
    out = tuple((n + before + after - d * (k - 1) - 1) // s + 1
                for n, k, s, (before, after), d in zip(spatial, window, stride, pads, dilation))
    if min(out) <= 0:
        raise ValueError(f"non-positive output size {out}")
    return out


def conv_backward_reference(
    x: np.ndarray,
    kernel: np.ndarray,
    d_out: np.ndarray,
    stride: tuple[int, ...] | None = None,
    pads: tuple[tuple[int, int], ...] | None = None,
    dilation: tuple[int, ...] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of :func:`conv_reference` for the input and the kernel (the bias gradient is
    ``d_out`` summed over batch and spatial axes).

    Args:
        x: ``(batch, *spatial, C_in)``; kernel: ``(*k, C_in, C_out)``.
        d_out: ``(batch, *spatial', C_out)``, the gradient of the convolution's output.

    Returns:
        ``(d_x, d_kernel)``: float64, shaped like ``x`` and ``kernel``.
    """
    x = np.asarray(x, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    stride, pads, dilation = _geometry(kernel.ndim - 2, stride, pads, dilation)
    padded = _padded(x, pads)
    d_padded = np.zeros_like(padded)
    d_kernel = np.zeros_like(kernel)
    for b, *position in np.ndindex(*d_out.shape[:-1]):
        for tap in np.ndindex(*kernel.shape[:-2]):
            source = (b, *(p * s + k * d for p, s, k, d in zip(position, stride, tap, dilation)))
            # out[b, position] += padded[source] @ kernel[tap]
            d_padded[source] += kernel[tap] @ d_out[(b, *position)]
            d_kernel[tap] += np.outer(padded[source], d_out[(b, *position)])
    inside = (slice(None), *(slice(before, before + n) for (before, _), n in
                             zip(pads, x.shape[1:-1])), slice(None))
    return d_padded[inside], d_kernel


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

    x: np.ndarray  # (batch, time, *spatial, C_in), float64
    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    order: list[int]  # time index of each processing step
    z: list[np.ndarray] = field(default_factory=list)  # pre-activations (B, *S', 4F), i f c o
    h: dict[int, np.ndarray] = field(default_factory=dict)  # h after each step; h[-1] = h0
    c: dict[int, np.ndarray] = field(default_factory=dict)  # c after each step; c[-1] = c0
    keep: list[np.ndarray] = field(default_factory=list)  # (batch,) bool: who took the step
    geometry: dict = field(default_factory=dict)  # stride, pads, dilation, rec_pads
    activations: tuple = (np.tanh, sigmoid)  # activation, recurrent_activation
    peephole: np.ndarray | None = None  # (3, F), rows i, f, o


def convlstm_reference(
    x: np.ndarray,
    kernel: np.ndarray,
    recurrent_kernel: np.ndarray,
    bias: np.ndarray | None,
    *,
    stride: tuple[int, ...] | None = None,
    pads: tuple[tuple[int, int], ...] | None = None,
    dilation: tuple[int, ...] | None = None,
    activation: Activation = np.tanh,
    recurrent_activation: Activation = sigmoid,
    h0: np.ndarray | None = None,
    c0: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    go_backwards: bool = False,
    peephole: np.ndarray | None = None,
    tape: ConvLSTMTape | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One ConvLSTM layer (any number of spatial axes) with Keras 3 semantics, gates fused in
    order i, f, c, o; with ``peephole``, the paper's peepholes (Shi et al. 2015, eq. 3).

    Args:
        x: Input of shape ``(batch, time, *spatial, C_in)``.
        kernel: Input weights of shape ``(*k, C_in, 4F)``.
        recurrent_kernel: Recurrent weights of shape ``(*k, F, 4F)``.
        bias: Bias of shape ``(4F,)`` or ``None``.
        stride, pads, dilation: of the input convolution, one per spatial axis (default 1,
            no padding, 1).
        activation: Cell/output activation.
        recurrent_activation: Gate activation.
        h0: Initial hidden state ``(batch, *spatial', F)``; zeros if ``None``.
        c0: Initial cell state ``(batch, *spatial', F)``; zeros if ``None``.
        mask: Boolean ``(batch, time)``; a False step keeps that sample's state and
            repeats its previous output (zeros before any processed step).
        go_backwards: Process frames (and mask) in reversed time order.
        peephole: ``(3, F)`` weights (rows i, f, o): i and f also see ``p * c_prev``, o sees
            ``p * c_new``; or ``None``.
        tape: If given (``ConvLSTMTape(x, kernel, recurrent_kernel, [])``), filled with every
            step's values for :func:`convlstm_reference_backward`.

    Returns:
        ``(outputs, h_final, c_final)``: outputs ``(batch, time, *spatial', F)`` in
        processing order, and final states ``(batch, *spatial', F)``; all float64.
    """
    x = np.asarray(x, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    recurrent_kernel = np.asarray(recurrent_kernel, dtype=np.float64)
    batch, time = x.shape[0], x.shape[1]
    F, four_f = recurrent_kernel.shape[-2:]
    if four_f != 4 * F or kernel.shape[-1] != 4 * F:
        raise ValueError("kernel / recurrent_kernel last axis must be 4 * filters")
    stride, pads, dilation = _geometry(kernel.ndim - 2, stride, pads, dilation)
    out_spatial = _out_spatial(x.shape[2:-1], kernel.shape[:-2], stride, pads, dilation)
    # Recurrent convolution: stride 1, dilation 1, "same" padding (keeps the state's size).
    rec_pads = tuple(same_pads(n, k, 1, 1)
                     for n, k in zip(out_spatial, recurrent_kernel.shape[:-2]))
    p_i, p_f, p_o = np.zeros((3, F)) if peephole is None else np.asarray(peephole, np.float64)

    order = list(range(time))
    if go_backwards:
        order = order[::-1]

    state_shape = (batch, *out_spatial, F)
    h = np.zeros(state_shape) if h0 is None else np.array(h0, dtype=np.float64)
    c = np.zeros(state_shape) if c0 is None else np.array(c0, dtype=np.float64)
    prev_out = np.zeros(state_shape, dtype=np.float64)
    outputs = np.zeros((batch, time, *out_spatial, F), dtype=np.float64)
    if tape is not None:
        tape.order = order
        tape.h[-1], tape.c[-1] = h.copy(), c.copy()
        tape.geometry = {"stride": stride, "pads": pads, "dilation": dilation,
                         "rec_pads": rec_pads}
        tape.activations = (activation, recurrent_activation)
        tape.peephole = None if peephole is None else np.stack([p_i, p_f, p_o])

    for step, t in enumerate(order):
        x_t = conv_reference(x[:, t], kernel, bias, stride, pads, dilation)
        r_t = conv_reference(h, recurrent_kernel, None, None, rec_pads, None)
        z = x_t + r_t
        zi = z[..., 0 * F : 1 * F] + p_i * c
        zf = z[..., 1 * F : 2 * F] + p_f * c
        zc = z[..., 2 * F : 3 * F]
        i = recurrent_activation(zi)
        f = recurrent_activation(zf)
        c_new = f * c + i * activation(zc)
        zo = z[..., 3 * F : 4 * F] + p_o * c_new
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
            tape.z.append(np.concatenate([zi, zf, zc, zo], axis=-1))
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

    For one step (``'`` a derivative as a function of the activation's input; ``z`` includes
    the peephole terms, zero without peepholes)::

        i = ra(z_i)   f = ra(z_f)   g = a(z_c)   o = ra(z_o)
        c = f c_prev + i g            h = o a(c)
        dz_o   = dh a(c) ra'(z_o)
        dc     = dc_next + dh o a'(c) + dz_o p_o
        dz_i   = dc g ra'(z_i)        dz_f = dc c_prev ra'(z_f)
        dz_c   = dc i a'(z_c)
        dc_prev = dc f + dz_i p_i + dz_f p_f
        dh_prev = U^T * dz (the recurrent convolution's adjoint)

    A masked sample skips the step: its state gradients pass through unchanged, and the
    gradient of an output that repeated an earlier one goes to that earlier output.

    Args:
        tape: filled by the forward.
        d_outputs: ``(batch, time, *spatial', F)``, in processing order as the outputs are.
        d_h_final, d_c_final: gradients for the final states, or None for zeros.

    Returns:
        ``x``, ``kernel``, ``recurrent_kernel``, ``bias``, ``h0``, ``c0`` (and ``peephole``
        when the forward had one): the gradient of each, float64, shaped like it.
    """
    activation, recurrent_activation = tape.activations
    d_act, d_ract = DERIVATIVES[activation], DERIVATIVES[recurrent_activation]
    geometry = tape.geometry
    F = tape.recurrent_kernel.shape[-2]
    p_i, p_f, p_o = np.zeros((3, F)) if tape.peephole is None else tape.peephole
    spatial_axes = tuple(range(tape.x.ndim - 2))
    d_x = np.zeros_like(tape.x)
    d_kernel = np.zeros_like(tape.kernel)
    d_recurrent_kernel = np.zeros_like(tape.recurrent_kernel)
    d_bias = np.zeros(4 * F)
    d_peephole = np.zeros((3, F))
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
        dz_o = dh * activation(c_new) * d_ract(zo)
        dc = dc + dh * o * d_act(c_new) + dz_o * p_o
        dz_i, dz_f = dc * g * d_ract(zi), dc * c_prev * d_ract(zf)
        dz = np.concatenate([dz_i, dz_f, dc * i * d_act(zc), dz_o], axis=-1)
        dc_prev += dc * f + dz_i * p_i + dz_f * p_f
        d_peephole += np.stack([(dz_i * c_prev).sum(axis=spatial_axes),
                                (dz_f * c_prev).sum(axis=spatial_axes),
                                (dz_o * c_new).sum(axis=spatial_axes)])
        d_frame, d_w = conv_backward_reference(
            tape.x[:, t], tape.kernel, dz, geometry["stride"], geometry["pads"],
            geometry["dilation"])
        d_h_rec, d_u = conv_backward_reference(
            h_prev, tape.recurrent_kernel, dz, None, geometry["rec_pads"], None)
        d_x[:, t] += d_frame
        d_kernel += d_w
        d_recurrent_kernel += d_u
        d_bias += dz.sum(axis=spatial_axes)
        dh_prev += d_h_rec
        dh_next, dc_next = dh_prev, dc_prev

    grads = {"x": d_x, "kernel": d_kernel, "recurrent_kernel": d_recurrent_kernel,
             "bias": d_bias, "h0": dh_next, "c0": dc_next}
    if tape.peephole is not None:
        grads["peephole"] = d_peephole
    return grads


@dataclass
class ConvGRUTape:
    """What :func:`convgru_reference` kept of every step, for :func:`convgru_reference_backward`
    (indexed by processing step; ``h[-1]`` is the initial state)."""

    x: np.ndarray
    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    options: dict = field(default_factory=dict)  # geometry, activations, reset_after, biases
    order: list[int] = field(default_factory=list)
    pre: list[dict] = field(default_factory=list)  # per step: x_part, h_part, z/r/h~ inputs
    h: dict[int, np.ndarray] = field(default_factory=dict)
    keep: list[np.ndarray] = field(default_factory=list)


def convgru_reference(
    x: np.ndarray,
    kernel: np.ndarray,
    recurrent_kernel: np.ndarray,
    bias: np.ndarray | None,
    *,
    reset_after: bool = True,
    stride: tuple[int, ...] | None = None,
    pads: tuple[tuple[int, int], ...] | None = None,
    dilation: tuple[int, ...] | None = None,
    activation: Activation = np.tanh,
    recurrent_activation: Activation = sigmoid,
    h0: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    go_backwards: bool = False,
    tape: ConvGRUTape | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One ConvGRU layer: Keras 3's GRU with convolutions, gates fused in order z, r, h::

        z = ra(W_z x + b_z + U_z h + b'_z)        r = ra(W_r x + b_r + U_r h + b'_r)
        reset_after:      h~ = a(W_h x + b_h + r (U_h h + b'_h))
        not reset_after:  h~ = a(W_h x + U_h (r h) + b_h)
        h = z h_prev + (1 - z) h~

    Args:
        x: ``(batch, time, *spatial, C_in)``; kernel ``(*k, C_in, 3F)``; recurrent_kernel
            ``(*k, F, 3F)``; bias ``(2, 3F)`` (reset_after) or ``(3F,)`` or None.
        Others as :func:`convlstm_reference`.

    Returns:
        ``(outputs, h_final)``, float64, outputs in processing order.
    """
    x = np.asarray(x, dtype=np.float64)
    F = recurrent_kernel.shape[-2]
    stride, pads, dilation = _geometry(kernel.ndim - 2, stride, pads, dilation)
    out_spatial = _out_spatial(x.shape[2:-1], kernel.shape[:-2], stride, pads, dilation)
    rec_pads = tuple(same_pads(n, k, 1, 1)
                     for n, k in zip(out_spatial, recurrent_kernel.shape[:-2]))
    b = np.zeros(3 * F) if bias is None else np.asarray(bias, np.float64)
    b_input, b_recurrent = (b[0], b[1]) if b.ndim == 2 else (b, np.zeros(3 * F))
    batch, time = x.shape[:2]
    order = list(range(time))[::-1] if go_backwards else list(range(time))
    h = np.zeros((batch, *out_spatial, F)) if h0 is None else np.array(h0, np.float64)
    prev_out = np.zeros_like(h)
    outputs = np.zeros((batch, time, *out_spatial, F))
    U = np.asarray(recurrent_kernel, np.float64)
    if tape is not None:
        tape.order, tape.h[-1] = order, h.copy()
        tape.options = {"stride": stride, "pads": pads, "dilation": dilation,
                        "rec_pads": rec_pads, "activations": (activation, recurrent_activation),
                        "reset_after": reset_after, "bias_ndim": None if bias is None else b.ndim}
    for step, t in enumerate(order):
        x_part = conv_reference(x[:, t], kernel, b_input, stride, pads, dilation)
        h_part = conv_reference(h, U, b_recurrent, None, rec_pads, None)
        z_in = x_part[..., :F] + h_part[..., :F]
        r_in = x_part[..., F : 2 * F] + h_part[..., F : 2 * F]
        z, r = recurrent_activation(z_in), recurrent_activation(r_in)
        if reset_after:
            candidate_in = x_part[..., 2 * F :] + r * h_part[..., 2 * F :]
        else:
            candidate_in = x_part[..., 2 * F :] + conv_reference(
                r * h, U[..., 2 * F :], None, None, rec_pads, None)
        h_new = z * h + (1 - z) * activation(candidate_in)
        keep = np.ones(batch, bool) if mask is None else np.asarray(mask[:, t], bool)
        if tape is not None:
            tape.pre.append({"x_part": x_part, "h_part": h_part, "z": z_in, "r": r_in,
                             "candidate": candidate_in, "h_prev": h.copy()})
        for sample in range(batch):
            if keep[sample]:
                h[sample] = h_new[sample]
                prev_out[sample] = h_new[sample]
            outputs[sample, step] = prev_out[sample]
        if tape is not None:
            tape.h[step] = h.copy()
            tape.keep.append(keep)
    return outputs, h


def convgru_reference_backward(
    tape: ConvGRUTape, d_outputs: np.ndarray, d_h_final: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """BPTT for :func:`convgru_reference`, one plain reversed loop carrying ``dh_next``::

        dz_in = dh (h_prev - h~) ra'(z_in)        dc_in = dh (1 - z) a'(c_in)
        reset_after:      dr_in = dc_in (U_h h + b'_h) ra'(r_in); the recurrent convolution's
                          output gradient is [dz_in, dr_in, r dc_in]
        not reset_after:  d(r h) = U_h^T * dc_in; dr_in = d(r h) h_prev ra'(r_in);
                          dh_prev += d(r h) r
        dh_prev += dh z + U^T * [dz_in, dr_in, ...]

    Returns:
        ``x``, ``kernel``, ``recurrent_kernel``, ``bias`` (when the forward had one) and
        ``h0``: the gradient of each, float64, shaped like it.
    """
    options = tape.options
    activation, recurrent_activation = options["activations"]
    d_act, d_ract = DERIVATIVES[activation], DERIVATIVES[recurrent_activation]
    reset_after = options["reset_after"]
    F = tape.recurrent_kernel.shape[-2]
    U = np.asarray(tape.recurrent_kernel, np.float64)
    spatial_axes = tuple(range(tape.x.ndim - 2))
    d_x, d_kernel, d_u = np.zeros_like(tape.x), np.zeros_like(tape.kernel), np.zeros_like(U)
    d_b_input, d_b_recurrent = np.zeros(3 * F), np.zeros(3 * F)
    dh_next = np.zeros_like(tape.h[-1]) if d_h_final is None else np.array(d_h_final)
    d_repeated = np.zeros_like(dh_next)
    for step in reversed(range(len(tape.order))):
        t, keep, pre = tape.order[step], tape.keep[step], tape.pre[step]
        d_output = d_outputs[:, step] + d_repeated
        dh = np.zeros_like(dh_next)
        dh_prev = np.zeros_like(dh_next)
        for sample in range(len(keep)):
            if keep[sample]:
                dh[sample] = d_output[sample] + dh_next[sample]
                d_repeated[sample] = 0.0
            else:
                dh_prev[sample] = dh_next[sample]
                d_repeated[sample] = d_output[sample]
        h_prev = pre["h_prev"]
        z, r = recurrent_activation(pre["z"]), recurrent_activation(pre["r"])
        candidate = activation(pre["candidate"])
        dz_in = dh * (h_prev - candidate) * d_ract(pre["z"])
        dc_in = dh * (1 - z) * d_act(pre["candidate"])
        dh_prev += dh * z
        if reset_after:
            dr_in = dc_in * pre["h_part"][..., 2 * F :] * d_ract(pre["r"])
            d_h_part = np.concatenate([dz_in, dr_in, r * dc_in], axis=-1)
        else:
            d_rh, d_uh = conv_backward_reference(r * h_prev, U[..., 2 * F :], dc_in, None,
                                                 options["rec_pads"], None)
            d_u[..., 2 * F :] += d_uh
            dr_in = d_rh * h_prev * d_ract(pre["r"])
            dh_prev += d_rh * r
            d_h_part = np.concatenate([dz_in, dr_in, np.zeros_like(dc_in)], axis=-1)
        d_x_part = np.concatenate([dz_in, dr_in, dc_in], axis=-1)
        d_frame, d_w = conv_backward_reference(tape.x[:, t], tape.kernel, d_x_part,
                                               options["stride"], options["pads"],
                                               options["dilation"])
        d_hh, d_uu = conv_backward_reference(h_prev, U, d_h_part, None, options["rec_pads"],
                                             None)
        d_x[:, t] += d_frame
        d_kernel += d_w
        d_u += d_uu
        d_b_input += d_x_part.sum(axis=spatial_axes)
        d_b_recurrent += d_h_part.sum(axis=spatial_axes)
        dh_next = dh_prev + d_hh
    grads = {"x": d_x, "kernel": d_kernel, "recurrent_kernel": d_u, "h0": dh_next}
    if options["bias_ndim"] == 2:
        grads["bias"] = np.stack([d_b_input, d_b_recurrent])
    elif options["bias_ndim"] == 1:
        grads["bias"] = d_b_input
    return grads


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

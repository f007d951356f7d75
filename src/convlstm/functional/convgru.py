"""The ConvGRU recurrence over a whole sequence, for one layer: forward and BPTT backward.

Keras' GRU with convolutions, gates fused in Keras' order z, r, h. Arrays inside are
channels-first planes (rows, P), P = B * pixels of one step, as in ``functional/convlstm.py``,
whose window gathering (``planes.Windows``), mask handling (``recurrence.Skips``) and
convolution gradients (``recurrence.ConvolutionBackward``) this kernel shares. Each step is two
products, the input convolution ``x_part = W windows(x_t) + b`` and the recurrent one; with
``reset_after=False`` the candidate's recurrent convolution reads ``r . h`` and is a third.

One step (ra = recurrent_activation, a = activation)::

    z  = ra(x_part_z + U_z * h + b'_z)            r = ra(x_part_r + U_r * h + b'_r)
    reset_after=True:   h~ = a(x_part_h + r . (U_h * h + b'_h))
    reset_after=False:  h~ = a(x_part_h + U_h * (r . h))
    h_t = z . h + (1 - z) . h~

and its BPTT, with dh all of h_t's gradient and a' written in terms of the activation's output::

    dz~  = dh . (h - h~) . ra'(z)          dh~ = dh . (1 - z) . a'(h~)
    reset_after=True:   dr~ = dh~ . (U_h * h + b'_h) . ra'(r);  the recurrent product's rows get
                        [dz~, dr~, r . dh~]
    reset_after=False:  d(r.h) = U_h^T dh~;  dr~ = d(r.h) . h . ra'(r);  dh += d(r.h) . r
    dh_{t-1} = dh . z + U^T [dz~, dr~, ...]

The training cache, per layer, in floats: ``B*H'*W'*F*(4T + 1)`` (gates z, r, h~ and, with
``reset_after``, the recurrent candidate ``U_h * h + b'_h``; hidden states ``T+1``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from convlstm.functional.activations import Activation
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
)
from convlstm.functional.windows import Pads, output_size


@dataclass
class ConvGRUCache:
    """What :func:`convgru_backward` needs from a training forward (channels-first planes)."""

    x: np.ndarray  # (C, T, B, *spatial) view of the input
    gates: np.ndarray  # (T, 3F, P): z, r, h~ after their activations
    candidates: np.ndarray | None  # (T, F, P): U_h * h + b'_h (reset_after only)
    h_states: np.ndarray  # (T+1, F, P); h_states[0] is h0
    mask: np.ndarray | None  # (B, T)
    input_masks: np.ndarray | None  # (3, C, B, *spatial) dropout masks, gates z, r, h
    recurrent_masks: np.ndarray | None  # (3, F, B, *spatial')
    stride: tuple[int, ...]
    pads: Pads
    dilation: tuple[int, ...]
    reset_after: bool


def _gate_masks(masks: np.ndarray | None) -> np.ndarray | None:
    """(3, B, ..., C) dropout masks -> (3, C, B, ...) planes."""
    return None if masks is None else np.moveaxis(masks, -1, 1)


def _split_bias(bias: np.ndarray | None, F: int, reset_after: bool, dtype) -> tuple:
    """(input bias b, recurrent bias b'), each (3F, 1); zeros where there is none."""
    zeros = np.zeros((3 * F, 1), dtype)
    if bias is None:
        return zeros, zeros
    if reset_after:
        return bias[0][:, None], bias[1][:, None]
    return bias[:, None], zeros


def convgru_forward(
    x: np.ndarray,
    kernel: np.ndarray,
    recurrent_kernel: np.ndarray,
    bias: np.ndarray | None,
    h0: np.ndarray,
    *,
    stride: tuple[int, ...],
    pads: Pads,
    dilation: tuple[int, ...],
    activation: Activation,
    recurrent_activation: Activation,
    reset_after: bool,
    mask: np.ndarray | None = None,
    input_masks: np.ndarray | None = None,
    recurrent_masks: np.ndarray | None = None,
    training: bool = False,
) -> tuple[np.ndarray, np.ndarray, ConvGRUCache | None]:
    """Run one ConvGRU layer over a sequence (the equations in the module docstring).

    Args:
        x: (B, T, *spatial, C) frames, in the order they are processed.
        kernel: (*k, C, 3F), gates z, r, h; recurrent_kernel: (*k, F, 3F).
        bias: (2, 3F) ``[b; b']`` with ``reset_after``, else (3F,); or None.
        h0: (B, *spatial', F) initial state.
        stride, pads, dilation: of the input convolution (the recurrent one: stride 1, "same").
        activation, recurrent_activation: of the candidate and of the gates.
        reset_after: Keras' GRU option (see the module docstring).
        mask: (B, T) bool or None (Keras' mask: a False step is skipped).
        input_masks, recurrent_masks: (3, B, *spatial, C) / (3, B, *spatial', F) per-gate
            dropout masks, or None.
        training: keep the cache :func:`convgru_backward` needs.

    Returns:
        outputs (B, T, *spatial', F), final h (B, *spatial', F), and the cache (or None).
    """
    B, T, *spatial, C = x.shape
    *window, _, F3 = kernel.shape
    F = F3 // 3
    dtype = x.dtype
    frames = planes(x).swapaxes(1, 2)  # (C, T, B, *spatial)
    input_masks, recurrent_masks = _gate_masks(input_masks), _gate_masks(recurrent_masks)
    out_spatial = output_size(tuple(spatial), tuple(window), stride, pads, dilation)
    pixels = math.prod(out_spatial)
    P = B * pixels
    inputs = Windows((C, B, *spatial), tuple(window), stride, pads, dilation, dtype)
    recurrent = Windows((F, B, *out_spatial),
                        *recurrent_geometry(out_spatial, recurrent_kernel.shape[:-2]), dtype)
    W = kernel.reshape(-1, F3).T  # (3F, k*C)
    U = recurrent_kernel.reshape(-1, F3).T  # (3F, k*F)
    b, b_recurrent = _split_bias(bias, F, reset_after, dtype)

    h_states = np.empty((T + 1 if training else 2, F, P), dtype)
    h_states[0] = planes(h0).reshape(F, P)
    gates = np.empty((T if training else 1, F3, P), dtype)
    candidates = np.empty((len(gates), F, P), dtype) if reset_after else None
    # zeros: without reset_after the candidate rows of h_part are never written, only added to
    x_part, h_part = np.empty((F3, P), dtype), np.zeros((F3, P), dtype)
    outputs = np.empty((B, T, *out_spatial, F), dtype)
    skips = Skips(mask, pixels)
    recurrent_rows = slice(None) if reset_after else slice(0, 2 * F)  # U * h before r is known

    for t in range(T):
        slot = t % len(h_states)
        h, next_h = h_states[slot], h_states[(t + 1) % len(h_states)]
        g = gates[t % len(gates)]
        for rows, gate_mask in gate_groups(F, input_masks):
            np.matmul(W[rows], inputs.columns(frames[:, t], gate_mask), out=x_part[rows])
        x_part += b
        h_planes = h.reshape(F, B, *out_spatial)
        for rows, gate_mask in _rows_within(gate_groups(F, recurrent_masks), recurrent_rows):
            np.matmul(U[rows], recurrent.columns(h_planes, gate_mask), out=h_part[rows])
        h_part += b_recurrent
        z, r, candidate = g[:F], g[F : 2 * F], g[2 * F :]
        recurrent_activation(x_part[: 2 * F] + h_part[: 2 * F], out=g[: 2 * F])
        if reset_after:
            candidates[t % len(gates)] = h_part[2 * F :]
            np.multiply(r, h_part[2 * F :], out=candidate)
        else:
            reset_h = (r * h).reshape(F, B, *out_spatial)
            mask_h = None if recurrent_masks is None else recurrent_masks[2]
            np.matmul(U[2 * F :], recurrent.columns(reset_h, mask_h), out=candidate)
        candidate += x_part[2 * F :]
        activation(candidate, out=candidate)
        np.multiply(z, h - candidate, out=next_h)
        next_h += candidate  # h_t = z . h + (1 - z) . h~
        keep = skips.keep(t)
        if keep is None:
            channels_last(next_h, outputs[:, t])
        skips.after_step(keep, h, None, next_h, None, outputs[:, t])

    cache = None
    if training:
        cache = ConvGRUCache(frames, gates, candidates, h_states, mask, input_masks,
                             recurrent_masks, stride, pads, dilation, reset_after)
    h_final = channels_last(h_states[T % len(h_states)], np.empty((B, *out_spatial, F), dtype))
    return outputs, h_final, cache


def _rows_within(groups: list, rows: slice) -> list:
    """The (rows, mask) groups of gate_groups that lie in ``rows`` (all of them, or z and r)."""
    if rows == slice(None):
        return groups
    if groups[0][0] == slice(None):
        return [(rows, groups[0][1])]
    return groups[:2]


def convgru_backward(
    d_outputs: np.ndarray,
    d_h_final: np.ndarray | None,
    cache: ConvGRUCache,
    kernel: np.ndarray,
    recurrent_kernel: np.ndarray,
    *,
    activation: Activation,
    recurrent_activation: Activation,
    use_bias: bool,
    need_d_x: bool = True,
) -> tuple[np.ndarray | None, np.ndarray, dict[str, np.ndarray]]:
    """Backpropagation through time for :func:`convgru_forward`; consumes ``cache``.

    Args:
        d_outputs: (B, T, *spatial', F) gradient for every step's output.
        d_h_final: (B, *spatial', F) gradient for the final state, or None.
        cache: from the training forward.
        kernel, recurrent_kernel: the weights the forward used.
        activation, recurrent_activation: as in the forward, with their ``derivative``.
        use_bias: whether to return a bias gradient.
        need_d_x: False when nothing reads the input's gradient (the frames are data).

    Returns:
        d_x (B, T, *spatial, C) (None unless ``need_d_x``), d_h0 (B, *spatial', F) and the
        weight gradients ``{"kernel", "recurrent_kernel", "bias"}`` in the weights' shapes.
    """
    T, F3, P = cache.gates.shape
    F = F3 // 3
    _, _, B, *spatial = cache.x.shape  # (C, T, B, *spatial)
    window = kernel.shape[:-2]
    out_spatial = output_size(tuple(spatial), window, cache.stride, cache.pads, cache.dilation)
    pixels = math.prod(out_spatial)
    dtype = kernel.dtype
    U = recurrent_kernel.reshape(-1, F3)  # (k*F, 3F)
    geometry = recurrent_geometry(out_spatial, recurrent_kernel.shape[:-2])
    masks = cache.recurrent_masks
    if cache.reset_after:
        recurrent = ConvolutionBackward((F, B, *out_spatial), *geometry, np.ascontiguousarray(U))
    else:  # z and r read h; the candidate reads r . h
        recurrent = ConvolutionBackward((F, B, *out_spatial), *geometry,
                                        np.ascontiguousarray(U[:, : 2 * F]))
        reset = ConvolutionBackward((F, B, *out_spatial), *geometry,
                                    np.ascontiguousarray(U[:, 2 * F :]))
    d_x_part = cache.gates  # step t's gates become the input product's gradient
    d_h_part = np.empty((F3, P), dtype)
    d_recurrent_bias = np.zeros(F3, dtype)
    d_h = np.empty((F, P), dtype)
    d_h_next = planar_state(d_h_final, F, P, dtype)
    d_h_previous = np.empty((F, P), dtype)
    d_outputs = planes(d_outputs).swapaxes(1, 2)  # (F, T, B, *spatial')
    skips = Skips(cache.mask, pixels)
    zeros = np.zeros((F, P), dtype)

    for t in reversed(range(T)):
        g, h = cache.gates[t], cache.h_states[t]
        z, r, candidate = g[:F], g[F : 2 * F], g[2 * F :]
        d_h.reshape(F, B, *out_spatial)[...] = d_outputs[:, t]
        keep = skips.keep(t)
        skips.into_step(keep, d_h, d_h_next, zeros)
        d_z = d_h * (h - candidate) * recurrent_activation.derivative(z)
        d_candidate = d_h * (1 - z) * activation.derivative(candidate)
        np.multiply(d_h, z, out=d_h_previous)
        if cache.reset_after:
            d_r = d_candidate * cache.candidates[t] * recurrent_activation.derivative(r)
            d_h_part[2 * F :] = d_candidate * r
        else:
            d_reset_h = np.zeros((F, B, *out_spatial), dtype)
            reset_h = (r * h).reshape(F, B, *out_spatial)
            reset(reset_h, d_candidate, None if masks is None else masks[2:3], d_reset_h)
            d_reset_h = d_reset_h.reshape(F, P)
            d_r = d_reset_h * h * recurrent_activation.derivative(r)
            d_h_previous += d_reset_h * r
        d_h_part[:F], d_h_part[F : 2 * F] = d_z, d_r
        g[:F], g[F : 2 * F], g[2 * F :] = d_z, d_r, d_candidate  # the input product's rows
        rows = slice(None) if cache.reset_after else slice(0, 2 * F)
        if cache.reset_after:
            d_recurrent_bias += d_h_part.sum(axis=1)
        recurrent(h.reshape(F, B, *out_spatial), d_h_part[rows],
                  None if masks is None else masks[: 3 if cache.reset_after else 2],
                  d_h_previous.reshape(F, B, *out_spatial))
        skips.around_step(keep, d_h_previous, None, d_h_next, None)
        d_h_next, d_h_previous = d_h_previous, d_h_next

    d_x, d_kernel = input_gradients(
        cache.x, d_x_part, np.ascontiguousarray(kernel.reshape(-1, F3)), window, cache.stride,
        cache.pads, cache.dilation, cache.input_masks, need_d_x)

    d_U = recurrent.d_weights if cache.reset_after else np.concatenate(
        [recurrent.d_weights, reset.d_weights], axis=1)
    recurrent.release()
    if not cache.reset_after:
        reset.release()
    grads = {"kernel": d_kernel.reshape(kernel.shape),
             "recurrent_kernel": d_U.reshape(recurrent_kernel.shape)}
    if use_bias:
        d_bias = d_x_part.sum(axis=(0, 2))
        grads["bias"] = np.stack([d_bias, d_recurrent_bias]) if cache.reset_after else d_bias
    d_h0 = channels_last(d_h_next, np.empty((B, *out_spatial, F), dtype))
    return d_x, d_h0, grads

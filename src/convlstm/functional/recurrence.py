"""What every convolutional recurrence shares (ConvLSTM, and any other gated cell run the same
way): the recurrent convolution's geometry, the per-gate grouping under dropout, Keras' mask
(:class:`Skips`), the gradients through one of a step's convolutions, a few samples at a time
(:class:`ConvolutionBackward`), and a whole recurrence run as groups of samples on the threads
(:func:`forward_in_groups`, :func:`backward_in_groups`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from convlstm.functional import buffers
from convlstm.functional.planes import Windows
from convlstm.functional.threads import (
    run_groups,
    sample_groups,
    split_matmul,
    split_matmul_transposed,
    split_run,
)
from convlstm.functional.windows import Pads, output_size, same_pads


def planes(array: np.ndarray) -> np.ndarray:
    """(B, ..., C) channels-last to (C, B, ...) (a view)."""
    # transpose, not np.moveaxis: a streamed frame calls this several times, and moveaxis'
    # argument checks cost more than the rest of these calls
    return array.transpose(array.ndim - 1, *range(array.ndim - 1))


def channels_last_view(planar: np.ndarray) -> np.ndarray:
    """(C, B, ...) planes to (B, ..., C) (a view): the inverse of :func:`planes`."""
    return planar.transpose(*range(1, planar.ndim), 0)


def planar_state(gradient: np.ndarray | None, F: int, P: int, dtype: np.dtype) -> np.ndarray:
    """A (B, H', W', F) state gradient (None: zeros) as a new (F, P) array."""
    if gradient is None:
        return np.zeros((F, P), dtype)
    return planes(gradient).reshape(F, P).astype(dtype, copy=True)


def store_channels_last(source: np.ndarray, out: np.ndarray, samples: slice) -> None:
    """``out[samples] = source[:, samples]`` channels-last: (F, P) planes, out (B, H', W', F)."""
    out[samples] = channels_last_view(source.reshape(-1, *out.shape[:-1])[:, samples])


def channels_last(source: np.ndarray, out: np.ndarray) -> np.ndarray:
    """(F, B*H'*W') planes written channels-last into ``out`` (B, H', W', F), by samples."""
    split_run(partial(store_channels_last, source, out), out.shape[0], out[0].size)
    return out


def recurrent_geometry(
    out_spatial: tuple[int, ...], window: tuple[int, ...]
) -> tuple[tuple[int, ...], tuple[int, ...], Pads, tuple[int, ...]]:
    """``(window, stride, pads, dilation)`` of the recurrent convolution over states of
    ``out_spatial``: stride 1, "same" padding, no dilation."""
    ones = (1,) * len(out_spatial)
    pads = tuple(same_pads(n, k, 1) for n, k in zip(out_spatial, window))
    return tuple(window), ones, pads, ones


def gate_groups(width: int, *gate_masks: np.ndarray | None):
    """(rows, masks...) pairs: all gates at once, or one gate at a time under dropout (one
    mask per gate: ``len(masks)`` gates of ``width`` rows)."""
    if all(masks is None for masks in gate_masks):
        return [(slice(None), *gate_masks)]
    return [
        (slice(k * width, (k + 1) * width), *(None if m is None else m[k] for m in gate_masks))
        for k in range(len(next(m for m in gate_masks if m is not None)))
    ]


class Skips:
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

    def after_step(self, keep: np.ndarray | None, h: np.ndarray, c: np.ndarray | None,
                   next_h: np.ndarray, next_c: np.ndarray | None, output: np.ndarray) -> None:
        """Forward: put back the skipping samples' states and write the step's output (when
        ``keep`` is None the cell update has written it already). ``c`` is None for a cell
        with one state (ConvGRU)."""
        if keep is None:
            self.previous_output = next_h  # no copy: the ring of slots keeps it until t+1
            return
        if c is not None:
            next_c[...] = np.where(keep, next_c, c)
        self.previous_output = np.where(keep, next_h, self.previous_output)
        next_h[...] = np.where(keep, next_h, h)
        channels_last(self.previous_output, output)

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
                    d_c_previous: np.ndarray | None, d_h_next: np.ndarray,
                    d_c_next: np.ndarray | None) -> None:
        """Backward, after the step: the skipping samples' state gradients pass through (no
        ``c`` for a cell with one state)."""
        if keep is not None:
            d_h_previous += np.where(keep, 0.0, d_h_next)
            if d_c_previous is not None:
                d_c_previous += np.where(keep, 0.0, d_c_next)


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
        rows = math.prod(window) * channels
        self.columns = buffers.take((rows, self.chunk * self.pixels), dtype)
        self.windows = Windows((channels, self.chunk, *spatial), window, stride, pads, dilation,
                               dtype, self.columns)
        self.weights = weight_columns  # (kh*kw*C, 4F), internal gate order
        self.d_weights = np.zeros(weight_columns.shape, dtype)
        self.d_columns = buffers.take((rows, self.chunk * self.pixels), dtype)

    def __call__(
        self,
        source: np.ndarray,
        d_z: np.ndarray,
        gate_masks: np.ndarray | None,
        d_source: np.ndarray | None,
    ) -> None:
        """Add the gradients of the convolution of ``source`` (C, B, H, W), given those of the
        product d_z (4F, P), to ``d_weights`` and to ``d_source`` (C, B, H, W) (skipped when
        None).

        ``gate_masks`` (gates, C, B, H, W) are the per-gate dropout masks the forward applied
        (``d_z``'s rows split evenly between them), or None.
        """
        gates = 1 if gate_masks is None else len(gate_masks)
        for rows, mask in gate_groups(d_z.shape[0] // gates, gate_masks):
            for first in range(0, source.shape[1], self.chunk):
                samples = slice(first, first + self.chunk)
                chunk_mask = None if mask is None else mask[:, samples]
                d_z_chunk = d_z[rows, first * self.pixels : (first + self.chunk) * self.pixels]
                columns = self.windows.columns(source[:, samples], chunk_mask)
                self.d_weights[:, rows] += split_matmul_transposed(columns, d_z_chunk)
                if d_source is None:
                    continue
                split_matmul(self.weights[:, rows], d_z_chunk, self.d_columns)
                d_chunk = self.windows.scatter(self.d_columns)
                if chunk_mask is not None:
                    d_chunk *= chunk_mask
                d_source[:, samples] += d_chunk

    def release(self) -> None:
        """Give the scratch buffers back (:mod:`buffers`); call once no more calls follow."""
        buffers.give(self.columns, self.d_columns)


def input_gradients(
    frames: np.ndarray,
    d_gates: np.ndarray,
    weight_columns: np.ndarray,
    window: tuple[int, ...],
    stride: tuple[int, ...],
    pads: Pads,
    dilation: tuple[int, ...],
    gate_masks: np.ndarray | None,
    need_d_x: bool = True,
    d_x: np.ndarray | None = None,
) -> tuple[np.ndarray | None, np.ndarray]:
    """After BPTT, the input convolution's gradients, frame by frame (it does not depend on
    the state: any order works).

    Args:
        frames: (C, T, B, *spatial) planes of the input.
        d_gates: (T, rows, P) gradients of every step's input product.
        weight_columns: (prod(window)*C, rows), the kernel as the product reads it.
        window, stride, pads, dilation: the input convolution's geometry.
        gate_masks: the per-gate dropout masks the forward applied to the frames, or None.
        need_d_x: False when nothing reads the input's gradient (the frames are data).
        d_x: (B, T, *spatial, C) array to write the input's gradient into, or None for a new
            one (with ``need_d_x``).

    Returns:
        d_x (B, T, *spatial, C) (None unless ``need_d_x``) and d_weights shaped like
        ``weight_columns``.
    """
    C, T, B, *spatial = frames.shape
    inputs = ConvolutionBackward((C, B, *spatial), window, stride, pads, dilation,
                                 weight_columns)
    d_frame = np.empty((C, B, *spatial), d_gates.dtype) if need_d_x else None
    if not need_d_x:
        d_x = None
    elif d_x is None:
        d_x = np.empty((B, T, *spatial, C), d_gates.dtype)
    for t in range(T):
        if d_frame is not None:
            d_frame[...] = 0.0
        inputs(frames[:, t], d_gates[t], gate_masks, d_frame)
        if d_x is not None:
            d_x[:, t] = channels_last_view(d_frame)
    inputs.release()
    return d_x, inputs.d_weights


def dropout_masks(
    rng: np.random.Generator, rate: float, shape: tuple[int, ...], dtype: np.dtype,
    gates: int = 4,
) -> np.ndarray:
    """Independent inverted-dropout masks (gates, *shape), one per gate in Keras' order (i, f,
    c, o for ConvLSTM; z, r, h for ConvGRU): 0 with probability ``rate``, else
    ``1 / (1 - rate)``, so a masked input keeps its mean."""
    keep = rng.random((gates, *shape)) >= rate
    return keep.astype(dtype) / dtype.type(1.0 - rate)


@dataclass
class GroupCaches:
    """The training caches of a recurrence run by :func:`forward_in_groups`, one per group."""

    groups: list[slice]  # of the batch's samples
    caches: list[Any]  # the kernel's cache of each group, for the samples of that group
    input_shape: tuple[int, ...]  # (B, T, ..., C)
    dtype: np.dtype


def _samples(array: np.ndarray | None, group: slice, axis: int = 0) -> np.ndarray | None:
    return None if array is None else array[(slice(None),) * axis + (group,)]


def forward_in_groups(
    forward: Callable[..., tuple], x: np.ndarray, states: tuple[np.ndarray, ...], *,
    mask: np.ndarray | None = None, input_masks: np.ndarray | None = None,
    recurrent_masks: np.ndarray | None = None, training: bool = False, **options: Any,
) -> tuple:
    """``forward(x, *states, mask=, input_masks=, recurrent_masks=, training=, outputs=,
    **options)``, a recurrence's kernel writing ``outputs`` (shaped ``(B, T)`` + a state's
    sample shape) and returning ``(outputs, *final_states, cache)``, run over groups of
    whole samples (:func:`~convlstm.functional.threads.sample_groups`) at once on the threads,
    each group's whole time loop on one thread (or its share of them), when called inside
    :func:`~convlstm.functional.threads.recurrence` with BLAS pinned to one thread; else one
    group after another.

    Samples never meet in a recurrence, so this equals one call over the batch to float
    rounding (BLAS may round a product of fewer rows differently; the weight gradients of
    :func:`backward_in_groups` are added group by group, in group order). The groups are set
    by the shape alone, so any number of threads computes the same bits.

    Args:
        forward: the kernel.
        x: (B, T, ..., C) frames; states: each (B, ...).
        mask: (B, T) or None; input_masks, recurrent_masks: (gates, B, ...) or None.
        training, options: passed on.

    Returns:
        As ``forward``: outputs and final states joined along the batch, and a
        :class:`GroupCaches` (None unless ``training``).
    """
    groups = sample_groups(x.shape[0], math.prod(states[0].shape[1:-1]))  # output pixels
    if len(groups) == 1:
        return forward(x, *states, mask=mask, input_masks=input_masks,
                       recurrent_masks=recurrent_masks, training=training, **options)
    # each group writes its outputs in place: no second pass joins them
    outputs = np.empty((x.shape[0], x.shape[1], *states[0].shape[1:]), x.dtype)

    def run(index: int) -> tuple:
        group = groups[index]
        return forward(x[group], *(state[group] for state in states),
                       mask=_samples(mask, group), input_masks=_samples(input_masks, group, 1),
                       recurrent_masks=_samples(recurrent_masks, group, 1),
                       training=training, outputs=outputs[group], **options)

    results = run_groups(run, len(groups))  # on the threads only inside threads.recurrence()
    final_states = [np.concatenate(parts) for parts in zip(*(result[1:-1] for result in results))]
    cache = (GroupCaches(groups, [result[-1] for result in results], x.shape, x.dtype)
             if training else None)
    return (outputs, *final_states, cache)


def backward_in_groups(
    backward: Callable[..., tuple], d_outputs: np.ndarray,
    d_states: tuple[np.ndarray | None, ...], cache: Any, *weights: np.ndarray, **options: Any,
) -> tuple:
    """``backward(d_outputs, *d_states, cache, *weights, d_x=, **options)``, the kernel's BPTT
    writing the input's gradient into ``d_x`` (when ``options`` has no false ``need_d_x``)
    and returning ``(d_x or None, *d_initial_states, weight_gradients)``, for a cache from
    :func:`forward_in_groups`: group by group on the threads as the forward ran, the weight
    gradients added in group order.

    Args:
        backward: the kernel's BPTT.
        d_outputs: (B, T, ..., F); d_states: each (B, ...) or None; cache: the forward's.
        weights, options: passed on.

    Returns:
        As ``backward``: d_x (B, T, ..., C) (or None), the initial states' gradients (each
        (B, ...)) joined along the batch, and the weight gradients summed over the groups.
    """
    if not isinstance(cache, GroupCaches):
        return backward(d_outputs, *d_states, cache, *weights, **options)
    d_x = (np.empty(cache.input_shape, cache.dtype) if options.get("need_d_x", True)
           else None)

    def run(index: int) -> tuple:
        group = cache.groups[index]
        return backward(d_outputs[group], *(_samples(d, group) for d in d_states),
                        cache.caches[index], *weights, d_x=_samples(d_x, group), **options)

    results = run_groups(run, len(cache.groups))
    d_initial = [np.concatenate(parts) for parts in zip(*(r[1:-1] for r in results))]
    grads = dict(results[0][-1])
    for result in results[1:]:
        for name, grad in result[-1].items():
            grads[name] += grad
    return (d_x, *d_initial, grads)

"""ConvLSTM2DCell (one step) and ConvLSTM2D (a stack of cells run over a sequence)."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from convlstm import _validation as check
from convlstm.functional import threads
from convlstm.functional.activations import leaky_relu, leaky_relu_backward
from convlstm.functional.convlstm import (
    ConvLSTMCache,
    convlstm_backward,
    convlstm_forward,
    dropout_masks,
)
from convlstm.layers.base import Layer
from convlstm.layers.convlstm_options import ConvLSTMCellOptions, ConvLSTMOptions, expose_options
from convlstm.layers.layout import Layout
from convlstm.registry import register


@register
@expose_options(ConvLSTMCellOptions)
class ConvLSTM2DCell(Layer):
    """One ConvLSTM step, for users who write their own time loop.

    ``h, (h, c) = cell(frame, (h, c))``. The arguments and the math are those of
    :class:`ConvLSTM2D` (which documents the equations); ``frame`` is (batch, height, width,
    in_channels), or (batch, in_channels, height, width) with ``data_format="channels_first"``,
    and the states have the output frame's shape. A thin wrapper: it holds the options and the
    weights and runs the layer's kernel for one step.
    """

    __signature__ = inspect.signature(ConvLSTMCellOptions).replace(
        return_annotation=inspect.Signature.empty
    )
    options: ConvLSTMCellOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._setup(ConvLSTMCellOptions(*args, **kwargs), None)

    @classmethod
    def from_options(
        cls, options: ConvLSTMCellOptions, rng: np.random.Generator | None = None
    ) -> ConvLSTM2DCell:
        """A cell with these options, its weights drawn from ``rng`` (default: from the seed)."""
        cell = cls.__new__(cls)
        cell._setup(options, rng)
        return cell

    def _setup(self, options: ConvLSTMCellOptions, rng: np.random.Generator | None) -> None:
        self.options = options
        self.initialize_weights(rng or np.random.default_rng(options.seed))

    @property
    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """Keras layout: kernel (kh, kw, C, 4F), recurrent_kernel (kh, kw, F, 4F), bias (4F,)."""
        return self.options.weight_shapes()

    def initialize_weights(self, rng: np.random.Generator) -> None:
        """Draw fresh weights from the initializers using ``rng``."""
        self.params = self.options.initial_weights(rng)
        self.grads = {name: np.zeros_like(value) for name, value in self.params.items()}

    def output_hw(self, height: int, width: int) -> tuple[int, int]:
        """Height and width of the states for input frames of ``height`` x ``width``."""
        return self.options.output_spatial((height, width))

    def forward(
        self, x: np.ndarray, states: Sequence[np.ndarray] | None = None
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """One step.

        Args:
            x: (B, H, W, C) frame (channels_first: (B, C, H, W)).
            states: ``(h, c)``, each (B, H', W', F) (channels_first: (B, F, H', W')), or None
                for zeros.

        Returns:
            ``h, (h, c)``: the new hidden state (also the output) and both new states.
        """
        owner = f"{type(self).__name__}.forward"
        options = self.options
        layout = options.layout
        x = check.numeric_array(owner, "x", x, options.dtype)
        check.check_shape(owner, "x", x, layout.names(options.in_channels, "batch"))
        frames = layout.to_channels_last(x)[:, None]  # (B, 1, *spatial, C)
        B, _, *spatial, _ = frames.shape
        out_spatial = options.checked_output_spatial(owner, tuple(spatial))
        h0, c0 = _state_pair(owner, "states", states, (B, *out_spatial, options.out_channels),
                             layout, options.dtype)
        _, h, c, _ = run_cell(options, self.params, frames, h0, c0)
        h, c = layout.from_channels_last(h), layout.from_channels_last(c)
        return h, (h, c)

    def get_config(self) -> dict[str, Any]:
        return self.options.config()


def run_cell(
    options: ConvLSTMCellOptions,
    params: dict[str, np.ndarray],
    x: np.ndarray,
    h0: np.ndarray,
    c0: np.ndarray,
    mask: np.ndarray | None = None,
    **kwargs: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, ConvLSTMCache | None]:
    """The kernel over (B, T, *spatial, C) channels-last frames with one cell's options and
    weights; see ``convlstm_forward`` (``kwargs``: its dropout masks and ``training``). BLAS
    runs as :func:`convlstm.functional.threads.recurrence` says."""
    with threads.recurrence():
        return convlstm_forward(
            x,
            params["kernel"],
            params["recurrent_kernel"],
            params.get("bias"),
            h0,
            c0,
            stride=options.stride,
            pads=options.pads(x.shape[2:-1]),
            dilation=options.dilation,
            activation=options.activation,
            recurrent_activation=options.recurrent_activation,
            mask=mask,
            **kwargs,
        )


def backward_cell(
    owner: str,
    cell: ConvLSTM2DCell,
    d_outputs: np.ndarray,
    d_h: np.ndarray | None,
    d_c: np.ndarray | None,
    cache: ConvLSTMCache,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BPTT for :func:`run_cell`: fills ``cell.grads``; returns d_x, d_h0 and d_c0."""
    options = cell.options
    for name in ("activation", "recurrent_activation"):
        function = getattr(options, name)
        if function.derivative is None:
            raise TypeError(
                f"{owner}: {name} {function.name!r} is a plain callable with no derivative; use "
                "a named activation or convlstm.functional.activations.Activation(name, fn, "
                "derivative) to train."
            )
    with threads.recurrence():
        d_x, d_h0, d_c0, cell.grads = convlstm_backward(
            d_outputs,
            d_h,
            d_c,
            cache,
            cell.params["kernel"],
            cell.params["recurrent_kernel"],
            activation=options.activation,
            recurrent_activation=options.recurrent_activation,
            use_bias=options.use_bias,
        )
    return d_x, d_h0, d_c0


@register
@expose_options(ConvLSTMOptions)
class ConvLSTM2D(Layer):
    r"""Convolutional LSTM over a sequence of frames, computing exactly what Keras 3 computes.

    At each time step t, with ``*`` a 2-D convolution, ``W`` the kernel (input convolution:
    the layer's stride, padding and dilation, plus the bias ``b``) and ``U`` the recurrent kernel
    (stride 1, "same" padding, no dilation, no bias), gates fused in the order i, f, c, o::

        i_t = recurrent_activation(W_i * x_t + U_i * h_{t-1} + b_i)
        f_t = recurrent_activation(W_f * x_t + U_f * h_{t-1} + b_f)
        c_t = f_t . c_{t-1} + i_t . activation(W_c * x_t + U_c * h_{t-1} + b_c)
        o_t = recurrent_activation(W_o * x_t + U_o * h_{t-1} + b_o)
        h_t = o_t . activation(c_t)

    ``num_layers`` cells are stacked: the first maps in_channels -> out_channels, the others
    out_channels -> out_channels, all with the same kernel, padding and stride. When
    ``leaky_relu_slope`` is a float, LeakyReLU with that negative slope is applied to every
    layer's output sequence (as a Keras ``LeakyReLU`` layer after each ConvLSTM2D would); the
    states each cell feeds back to itself stay the raw ``h``.

    The arguments are the fields of :class:`~convlstm.layers.convlstm_options.ConvLSTMOptions`,
    validated once into ``layer.options`` (each also readable as ``layer.<name>``); the config
    is ``layer.options.config()``.

    Args:
        in_channels: channels of the input frames.
        out_channels: channels of the hidden state (Keras' ``filters``).
        kernel_size: int or (kh, kw).
        padding: an int or (ph, pw) for symmetric zero padding (PyTorch style), or "same" /
            "valid" (Keras; "same" with stride > 1 puts the odd extra row or column after).
        stride: int or pair.
        leaky_relu_slope: None, or the negative slope of a LeakyReLU after every layer.
        num_layers: number of stacked ConvLSTM layers.
        dilation: int or pair; stride > 1 together with dilation > 1 is refused (as in Keras).
        activation, recurrent_activation: Keras names ("tanh", "sigmoid", "hard_sigmoid",
            "relu", "linear", "elu", "softsign", ...) or a callable.
        use_bias, kernel_initializer, recurrent_initializer, bias_initializer,
            unit_forget_bias: as in Keras.
        return_sequences: return every step's output (default True, as the seed promises) or
            only the last step's.
        return_state: also return the last layer's final ``h`` and ``c``.
        go_backwards: process time reversed; outputs come in processing order, as in Keras.
            For a stack this reverses the input once (Keras: go_backwards on the first layer).
        stateful: each call starts from the previous call's final states.
        dropout, recurrent_dropout: Keras' rates in [0, 1): with ``training=True``, each gate's
            convolution sees its own inverted-dropout mask of the frames (and of the state),
            drawn once per call and reused at every step.
        data_format: "channels_last" (B, T, H, W, C) or "channels_first" (B, T, C, H, W).
        dtype: "float32" (default) or "float64".
        seed: seeds the weight initializers.
    """

    __signature__ = inspect.signature(ConvLSTMOptions).replace(
        return_annotation=inspect.Signature.empty
    )
    options: ConvLSTMOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        options = self.options = ConvLSTMOptions(*args, **kwargs)
        self.params: dict[str, np.ndarray] = {}  # the weights are the cells' (see sublayers)
        self.grads: dict[str, np.ndarray] = {}
        F = options.out_channels
        rng = np.random.default_rng(options.seed)  # every cell's weights, drawn in order
        self.cells = [
            ConvLSTM2DCell.from_options(options.cell_options(C, seed), rng)
            for C, seed in [(options.in_channels, options.seed)]
            + [(F, None)] * (options.num_layers - 1)
        ]
        self._states: list[tuple[np.ndarray, np.ndarray]] | None = None
        self._final_states: list[tuple[np.ndarray, np.ndarray]] | None = None
        self._state_grads: list[tuple[np.ndarray, np.ndarray]] | None = None
        self._cache: _StackCache | None = None
        self._rng = np.random.default_rng(None if options.seed is None else [options.seed, 1])

    def sublayers(self) -> list[ConvLSTM2DCell]:
        return list(self.cells)

    # ------------------------------------------------------------------ states

    @property
    def states(self) -> list[tuple[np.ndarray, np.ndarray]] | None:
        """The carried ``(h, c)`` of every layer (stateful mode), or None before the first call."""
        return _copy_states(self._states, self.options.layout)

    @property
    def final_states(self) -> list[tuple[np.ndarray, np.ndarray]] | None:
        """Every layer's final ``(h, c)`` from the last call, or None before the first call."""
        return _copy_states(self._final_states, self.options.layout)

    def reset_states(self, states: Sequence[Sequence[np.ndarray]] | None = None) -> None:
        """Forget the carried states (the next call starts from zeros), or set them.

        Args:
            states: None, or one ``(h, c)`` pair per layer, each (B, H', W', F) (channels_first:
                (B, F, H', W')). They are checked against the next input when it arrives.
        """
        if states is None:
            self._states = None
            return
        owner = f"{type(self).__name__}.reset_states"
        layout = self.options.layout
        pairs = _per_layer_pairs(owner, "states", states, self.num_layers)
        self._states = [
            tuple(
                layout.to_channels_last(check.numeric_array(owner, "states", s, self.dtype)).copy()
                for s in pair
            )
            for pair in pairs
        ]
        channels_last = Layout("channels_last", self.options.rank)
        for h, c in self._states:
            check.check_shape(owner, "states", h, channels_last.names(self.out_channels, "batch"))
            check.check_shape(owner, "states", c, h.shape)

    # ------------------------------------------------------------------ shapes

    def compute_output_shape(self, input_shape: Sequence[int]) -> tuple:
        """Output shape for ``input_shape`` (with ``return_state``: output, h and c shapes)."""
        layout = self.options.layout
        (B, T), spatial, _ = layout.split(input_shape)
        for cell in self.cells:
            spatial = cell.options.output_spatial(spatial)
        state = layout.shape((B,), spatial, self.out_channels)
        output = (B, T, *state[1:]) if self.return_sequences else state
        return (output, state, state) if self.return_state else output

    # ----------------------------------------------------------------- compute

    def forward(
        self,
        x: np.ndarray,
        initial_state: Sequence[Any] | None = None,
        mask: np.ndarray | None = None,
        training: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Run the stack over a sequence.

        Args:
            x: (B, T, H, W, in_channels); channels_first: (B, T, in_channels, H, W). Integer
                input is cast to the layer's dtype; the caller's array is never modified.
            initial_state: ``[h0, c0]`` (one layer) or one ``[h, c]`` pair per layer, each
                (B, H', W', F) (channels_first: (B, F, H', W')); default zeros, or the carried
                states when stateful.
            mask: (B, T) bool; where False the step is skipped: the state carries over and the
                output repeats the previous step's output.
            training: keep what :meth:`backward` needs (one cache, replaced by every call) and
                apply ``dropout``/``recurrent_dropout`` (fresh masks each call).

        Returns:
            (B, T, H', W', F) (or (B, H', W', F) with ``return_sequences=False``); with
            ``return_state``, ``(output, h, c)`` with h and c of shape (B, H', W', F).
        """
        owner = f"{type(self).__name__}.forward"
        training = check.boolean(owner, "training", training)
        layout = self.options.layout
        x = check.numeric_array(owner, "x", x, self.dtype)
        check.check_shape(owner, "x", x, layout.names(self.in_channels, "batch", "time"))
        frames = layout.to_channels_last(x)  # (B, T, *spatial, C)
        B, T, *spatial, _ = frames.shape
        if T == 0:
            raise ValueError(f"{owner}: expected x with at least one time step; got {x.shape}.")
        mask = _checked_mask(owner, mask, B, T)
        states = self._starting_states(owner, initial_state, B, tuple(spatial), layout)
        if self.go_backwards:
            frames = frames[:, ::-1]
            mask = None if mask is None else mask[:, ::-1]

        self._cache = None
        dropping = training and (self.dropout > 0 or self.recurrent_dropout > 0)
        sequence = frames
        final_states, caches = [], []
        for cell, (h0, c0) in zip(self.cells, states):
            masks = self._dropout_masks(sequence.shape, h0.shape) if dropping else {}
            sequence, h, c, cache = run_cell(cell.options, cell.params, sequence, h0, c0, mask,
                                             training=training, **masks)
            positive = None
            if self.leaky_relu_slope is not None:
                leaky_relu(sequence, self.leaky_relu_slope, out=sequence)
                positive = sequence > 0 if training else None
            final_states.append((h, c))
            caches.append(_LayerCache(cache, positive))
        self._final_states = final_states
        if training:
            self._cache = _StackCache(caches, sequence.shape)
        if self.stateful:
            self._states = final_states

        output = sequence if self.return_sequences else sequence[:, -1]
        output = np.ascontiguousarray(layout.from_channels_last(output))
        if not self.return_state:
            return output
        h, c = final_states[-1]
        return output, layout.from_channels_last(h).copy(), layout.from_channels_last(c).copy()

    def backward(
        self,
        d_output: np.ndarray,
        d_h: np.ndarray | None = None,
        d_c: np.ndarray | None = None,
    ) -> np.ndarray:
        """Backpropagation through time for the last ``forward(..., training=True)``.

        Fills every cell's ``grads`` (same names and shapes as its weights) and
        :attr:`state_grads` (d_h0, d_c0 per layer), then frees the cache.

        Args:
            d_output: gradient for the output, shaped like it.
            d_h, d_c: gradients for the final states returned with ``return_state``, or None.

        Returns:
            The gradient for the input ``x``, shaped like it.
        """
        owner = f"{type(self).__name__}.backward"
        stack = self._cache
        if stack is None:
            raise RuntimeError(
                f"{owner}: no training forward to differentiate; call "
                "forward(x, training=True) before backward (each backward consumes its cache)."
            )
        layout, dtype = self.options.layout, self.dtype
        B, T, *out_spatial, F = stack.output_shape
        state_shape = layout.shape((B,), out_spatial, F)
        output_names = (B, T, *state_shape[1:]) if self.return_sequences else state_shape
        d_output = check.numeric_array(owner, "d_output", d_output, dtype)
        check.check_shape(owner, "d_output", d_output, output_names)
        d_states = []
        for name, value in (("d_h", d_h), ("d_c", d_c)):
            if value is not None:
                value = check.numeric_array(owner, name, value, dtype)
                check.check_shape(owner, name, value, state_shape)
                value = layout.to_channels_last(value)
            d_states.append(value)

        d_output = layout.to_channels_last(d_output)
        if self.return_sequences:
            d_sequence = d_output
        else:
            d_sequence = np.zeros(stack.output_shape, dtype)
            d_sequence[:, -1] = d_output
        state_grads = []
        for index in reversed(range(self.num_layers)):
            cache = stack.layers[index]
            if cache.positive is not None:
                d_sequence = leaky_relu_backward(d_sequence, cache.positive,
                                                 self.leaky_relu_slope)
            last = index == self.num_layers - 1
            d_sequence, d_h0, d_c0 = backward_cell(
                owner, self.cells[index], d_sequence, d_states[0] if last else None,
                d_states[1] if last else None, cache.bptt
            )
            state_grads.append((d_h0, d_c0))
        self._cache = None
        self._state_grads = state_grads[::-1]
        if self.go_backwards:
            d_sequence = d_sequence[:, ::-1]
        return np.ascontiguousarray(layout.from_channels_last(d_sequence))

    @property
    def state_grads(self) -> list[tuple[np.ndarray, np.ndarray]] | None:
        """Gradients for every layer's initial ``(h, c)`` from the last :meth:`backward`."""
        return _copy_states(self._state_grads, self.options.layout)

    def _dropout_masks(self, input_shape, state_shape) -> dict[str, np.ndarray]:
        """Keras' per-call dropout: four masks per gate, for the frames and for the state."""
        masks = {}
        frame_shape = (input_shape[0], *input_shape[2:])  # (B, *spatial, C)
        if self.dropout > 0:
            masks["input_masks"] = dropout_masks(self._rng, self.dropout, frame_shape, self.dtype)
        if self.recurrent_dropout > 0:
            masks["recurrent_masks"] = dropout_masks(
                self._rng, self.recurrent_dropout, state_shape, self.dtype
            )
        return masks

    def _starting_states(self, owner, initial_state, B, spatial, layout):
        """One (h0, c0) channels-last pair per layer, checked against the input's shape."""
        shapes = []
        for cell in self.cells:
            spatial = cell.options.checked_output_spatial(owner, spatial)
            shapes.append((B, *spatial, self.out_channels))
        if initial_state is not None:
            pairs = _per_layer_pairs(owner, "initial_state", initial_state, self.num_layers)
            return [
                _state_pair(owner, "initial_state", pair, shape, layout, self.dtype)
                for pair, shape in zip(pairs, shapes)
            ]
        if self.stateful and self._states is not None:
            for (h, _), shape in zip(self._states, shapes):
                if h.shape != shape:
                    raise ValueError(
                        f"{owner}: the carried states have shape {h.shape} but this input needs "
                        f"{shape}; call reset_states() to start a new batch of sequences."
                    )
            return self._states
        return [(np.zeros(shape, self.dtype), np.zeros(shape, self.dtype)) for shape in shapes]

    def get_config(self) -> dict[str, Any]:
        return self.options.config()


@dataclass
class _LayerCache:
    """One layer of a training forward."""

    bptt: ConvLSTMCache  # what convlstm_backward needs
    positive: np.ndarray | None  # under LeakyReLU: where the output was > 0, else None


@dataclass
class _StackCache:
    """One training forward of the stack."""

    layers: list[_LayerCache]  # first layer first
    output_shape: tuple[int, ...]  # the last layer's channels-last sequence shape


def _copy_states(states, layout: Layout):
    if states is None:
        return None
    return [tuple(layout.from_channels_last(s).copy() for s in pair) for pair in states]


def _per_layer_pairs(owner: str, name: str, value: object, num_layers: int) -> list:
    """Accept ``[h, c]`` for one layer or ``[[h, c], ...]`` with one pair per layer."""
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise TypeError(
            f"{owner}: expected {name} to be a list [h, c]; got {type(value).__name__}."
        )
    if len(value) == 2 and all(isinstance(item, np.ndarray) for item in value):
        pairs = [value]
    else:
        pairs = list(value)
    if len(pairs) != num_layers or not all(
        isinstance(pair, Sequence) and len(pair) == 2 for pair in pairs
    ):
        expected = "[h, c]" if num_layers == 1 else f"{num_layers} [h, c] pairs, one per layer"
        raise ValueError(f"{owner}: expected {name} to be {expected}; got {len(value)} items.")
    return pairs


def _state_pair(owner, name, pair, shape, layout: Layout, dtype):
    """Validate ``(h, c)`` against the channels-last ``shape``; zeros when ``pair`` is None."""
    if pair is None:
        return np.zeros(shape, dtype), np.zeros(shape, dtype)
    if not isinstance(pair, Sequence) or len(pair) != 2:
        raise TypeError(f"{owner}: expected {name} to be a pair (h, c); got {pair!r:.60}.")
    user_shape = layout.shape(shape[:1], shape[1:-1], shape[-1])
    states = []
    for label, state in zip(("h", "c"), pair):
        state = check.numeric_array(owner, f"{name} {label}", state, dtype)
        check.check_shape(owner, f"{name} {label}", state, user_shape)
        states.append(layout.to_channels_last(state))
    return tuple(states)


def _checked_mask(owner: str, mask: object, B: int, T: int) -> np.ndarray | None:
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.dtype.kind not in "biu":
        raise TypeError(f"{owner}: expected mask to be a bool array; got dtype {mask.dtype}.")
    check.check_shape(owner, "mask", mask, (B, T))
    return mask.astype(bool)

"""The bases of the ConvRNN family: :class:`ConvRNNCell` (one step; the ConvLSTM and ConvGRU
cells run their own kernels) and :class:`ConvRNN` (a stack of cells over a sequence: states,
masks, dropout, ``stateful``, ``return_state`` and BPTT through the stack, for any number of
states per layer and any number of spatial axes)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from convlstm import _validation as check
from convlstm.functional.activations import leaky_relu, leaky_relu_backward
from convlstm.functional.recurrence import dropout_masks
from convlstm.layers.base import Layer
from convlstm.layers.convlstm_options import ConvRNNCellOptions, expose_options
from convlstm.layers.layout import Layout


class _BuiltOnFirstCall(Layer):
    """The weights of a layer given no ``in_channels``: made by :meth:`build` (on the first
    call, or by ``Sequential(..., input_shape=...)``) from the input's channels, drawn from the
    seed exactly as if ``in_channels`` had been given."""

    options: Any
    leading: ClassVar[int]  # the input's axes before the frame: (batch,) or (batch, time)

    @property
    def built(self) -> bool:
        """Whether the weights exist (``in_channels`` is known)."""
        return self.options.in_channels is not None

    def build(self, input_shape: Sequence[int | None]) -> None:
        """Make the weights for inputs of ``input_shape`` (only the channel count matters)."""
        owner = f"{type(self).__name__}.build"
        layout = self.options.layout
        shape = tuple(input_shape)
        _, _, channels = layout.split(shape) if len(shape) == layout.rank + 1 + self.leading \
            else ((), (), None)
        expected = self.options.in_channels
        if not check._is_int(channels) or channels < 1 or expected not in (None, channels):
            names = ("batch", "time")[: self.leading]
            wanted = layout.names(expected or "channels", *names)
            raise ValueError(
                f"{owner}: expected an input_shape of {check.shape_text(wanted)}; got {shape}."
            )
        if not self.built:
            self._make_weights(replace(self.options, in_channels=int(channels)))

    @abstractmethod
    def _make_weights(self, options: Any) -> None:
        """Take ``options`` (in_channels now known) and draw the weights from the seed."""

    def _require_built(self, owner: str) -> None:
        if not self.built:
            raise RuntimeError(
                f"{owner}: the layer has no weights yet (no in_channels given); it is built on "
                "its first call, or by Sequential(..., input_shape=...)."
            )

    def get_weights(self) -> list[np.ndarray]:
        self._require_built(f"{type(self).__name__}.get_weights")
        return super().get_weights()

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        self._require_built(f"{type(self).__name__}.set_weights")
        super().set_weights(weights)


@expose_options(ConvRNNCellOptions)
class ConvRNNCell(_BuiltOnFirstCall):
    """One step of a convolutional recurrent cell over ``options_class.rank`` spatial axes: the
    base of the ConvLSTM and ConvGRU cells, which name their states (``state_names``) and run
    their kernel over a sequence (:meth:`run`, :meth:`backprop`)."""

    options_class: ClassVar[type[ConvRNNCellOptions]] = ConvRNNCellOptions
    state_names: ClassVar[tuple[str, ...]] = ("h",)
    leading = 1
    options: ConvRNNCellOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._setup(self.options_class.from_arguments(args, kwargs), None)

    @classmethod
    def from_options(
        cls, options: ConvRNNCellOptions, rng: np.random.Generator | None = None
    ) -> ConvRNNCell:
        """A cell with these options, its weights drawn from ``rng`` (default: from the seed)."""
        cell = cls.__new__(cls)
        cell._setup(options, rng)
        return cell

    def _setup(self, options: ConvRNNCellOptions, rng: np.random.Generator | None) -> None:
        self.options = options
        self.params, self.grads = {}, {}
        if self.built:
            self.initialize_weights(rng or np.random.default_rng(options.seed))

    def _make_weights(self, options: ConvRNNCellOptions) -> None:
        self._setup(options, None)

    @property
    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """The weights' shapes in Keras layout (see the options' ``weight_shapes``)."""
        return self.options.weight_shapes()

    def initialize_weights(self, rng: np.random.Generator) -> None:
        """Draw fresh weights from the initializers using ``rng``."""
        self.params = self.options.initial_weights(rng)
        self.grads = {name: np.zeros_like(value) for name, value in self.params.items()}

    def forward(
        self, x: np.ndarray, states: Sequence[np.ndarray] | None = None
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """One step.

        Args:
            x: (B, *spatial, C) frame (channels_first: (B, C, *spatial)).
            states: the cell's states (``(h, c)`` for ConvLSTM, ``(h,)`` for ConvGRU), each
                (B, *spatial', F) (channels_first: (B, F, *spatial')), or None for zeros.

        Returns:
            ``h, states``: the new hidden state (also the output) and all new states.
        """
        owner = f"{type(self).__name__}.forward"
        x = check.numeric_array(owner, "x", x, self.options.dtype)
        if not self.built:
            self.build(x.shape)
        options = self.options
        layout = options.layout
        check.check_shape(owner, "x", x, layout.names(options.in_channels, "batch"))
        frames = layout.to_channels_last(x)[:, None]  # (B, 1, *spatial, C)
        B, _, *spatial, _ = frames.shape
        _require_samples(owner, x.shape)
        out_spatial = options.checked_output_spatial(owner, tuple(spatial))
        starting = _state_tuple(owner, "states", states, self.state_names,
                                (B, *out_spatial, options.out_channels), layout, options.dtype)
        _, final, _ = self.run(frames, starting)
        final = tuple(layout.from_channels_last(state) for state in final)
        return final[0], final

    @abstractmethod
    def run(self, x: np.ndarray, states: tuple[np.ndarray, ...], mask: np.ndarray | None = None,
            **kwargs: Any) -> tuple[np.ndarray, tuple[np.ndarray, ...], Any]:
        """The cell's kernel over (B, T, *spatial, C) channels-last frames from channels-last
        ``states``: (outputs, final states, cache); ``kwargs``: dropout masks, ``training``."""

    @abstractmethod
    def backprop(self, owner: str, d_outputs: np.ndarray,
                 d_states: Sequence[np.ndarray | None], cache: Any, need_d_x: bool = True
                 ) -> tuple[np.ndarray | None, tuple[np.ndarray, ...]]:
        """BPTT for :meth:`run`: fills ``grads``; returns d_x (None unless ``need_d_x``) and
        the initial states' gradients."""

    def check_derivatives(self, owner: str) -> None:
        """Refuse to train with a plain callable activation (no derivative)."""
        for name in ("activation", "recurrent_activation"):
            function = getattr(self.options, name)
            if function.derivative is None:
                raise TypeError(
                    f"{owner}: {name} {function.name!r} is a plain callable with no derivative; "
                    "use a named activation or convlstm.functional.activations.Activation(name, "
                    "fn, derivative) to train."
                )

    def get_config(self) -> dict[str, Any]:
        return self.options.config()



class ConvRNN(_BuiltOnFirstCall):
    """A stack of convolutional recurrent cells over a sequence, with ``options_class.rank``
    spatial axes: the base of the ConvLSTM and ConvGRU layers (``ConvLSTM2D`` documents the
    stack, the states, masks, dropout and ``stateful``). Each layer's states are a tuple named
    by its cell class's ``state_names``."""

    options_class: ClassVar[type[Any]]
    cell_class: ClassVar[type[ConvRNNCell]]
    options: Any
    leading = 2

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        options = self.options_class.from_arguments(args, kwargs)
        self.params: dict[str, np.ndarray] = {}  # the weights are the cells' (see sublayers)
        self.grads: dict[str, np.ndarray] = {}
        self.cells: list[ConvRNNCell] = []
        self._make_weights(options)
        self._states: list[tuple[np.ndarray, ...]] | None = None
        self._final_states: list[tuple[np.ndarray, ...]] | None = None
        self._state_grads: list[tuple[np.ndarray, ...]] | None = None
        self._cache: _StackCache | None = None
        self._rng = np.random.default_rng(None if options.seed is None else [options.seed, 1])

    def _make_weights(self, options: Any) -> None:
        self.options = options
        if not self.built:
            return
        F = options.out_channels
        rng = np.random.default_rng(options.seed)  # every cell's weights, drawn in order
        self.cells = [
            self.cell_class.from_options(options.cell_options(C, seed), rng)
            for C, seed in [(options.in_channels, options.seed)]
            + [(F, None)] * (options.num_layers - 1)
        ]

    def sublayers(self) -> list[ConvRNNCell]:
        return list(self.cells)

    # ------------------------------------------------------------------ states

    @property
    def state_names(self) -> tuple[str, ...]:
        """The names of each layer's states: ("h", "c") for ConvLSTM, ("h",) for ConvGRU."""
        return self.cell_class.state_names

    @property
    def states(self) -> list[tuple[np.ndarray, ...]] | None:
        """The carried states of every layer (stateful mode), or None before the first call."""
        return _copy_states(self._states, self.options.layout)

    @property
    def final_states(self) -> list[tuple[np.ndarray, ...]] | None:
        """Every layer's final states from the last call, or None before the first call."""
        return _copy_states(self._final_states, self.options.layout)

    def reset_states(self, states: Sequence[Sequence[np.ndarray]] | None = None) -> None:
        """Forget the carried states (the next call starts from zeros), or set them.

        Args:
            states: None, or the states of each layer (``(h, c)`` for ConvLSTM, ``(h,)`` for
                ConvGRU), each (B, H', W', F) (channels_first: (B, F, H', W')). They are
                checked against the next input when it arrives.
        """
        if states is None:
            self._states = None
            return
        owner = f"{type(self).__name__}.reset_states"
        layout = self.options.layout
        pairs = _per_layer_states(owner, "states", states, self.num_layers, self.state_names)
        self._states = [
            tuple(
                layout.to_channels_last(check.numeric_array(owner, "states", s, self.dtype)).copy()
                for s in pair
            )
            for pair in pairs
        ]
        channels_last = Layout("channels_last", self.options.rank)
        for h, *others in self._states:
            check.check_shape(owner, "states", h, channels_last.names(self.out_channels, "batch"))
            for other in others:
                check.check_shape(owner, "states", other, h.shape)

    # ------------------------------------------------------------------ shapes

    def compute_output_shape(self, input_shape: Sequence[int]) -> tuple:
        """Output shape for ``input_shape`` (with ``return_state``: the output's, then each
        state's)."""
        layout = self.options.layout
        if len(input_shape) != layout.rank + 3:
            channels = self.in_channels or "channels"
            expected = ", ".join(map(str, layout.names(channels, "batch", "time")))
            raise ValueError(
                f"{type(self).__name__}.compute_output_shape: expected an input_shape of "
                f"({expected}); got {tuple(input_shape)}."
            )
        (B, T), spatial, _ = layout.split(input_shape)
        for _ in range(self.num_layers):  # every cell has the same geometry
            spatial = self.options.output_spatial(spatial)
        state = layout.shape((B,), spatial, self.out_channels)
        output = (B, T, *state[1:]) if self.return_sequences else state
        return (output, *[state] * len(self.state_names)) if self.return_state else output

    # ----------------------------------------------------------------- compute

    def forward(
        self,
        x: np.ndarray,
        initial_state: Sequence[Any] | None = None,
        mask: np.ndarray | None = None,
        training: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, ...]:
        """Run the stack over a sequence.

        Args:
            x: (B, T, H, W, in_channels); channels_first: (B, T, in_channels, H, W). Integer
                input is cast to the layer's dtype; the caller's array is never modified.
            initial_state: the states of one layer (``[h0, c0]``; ConvGRU ``[h0]``) or one such
                list per layer, each (B, H', W', F) (channels_first: (B, F, H', W')); default
                zeros, or the carried states when stateful.
            mask: (B, T) bool; where False the step is skipped: the state carries over and the
                output repeats the previous step's output.
            training: keep what :meth:`backward` needs (one cache, replaced by every call) and
                apply ``dropout``/``recurrent_dropout`` (fresh masks each call).

        Returns:
            (B, T, H', W', F) (or (B, H', W', F) with ``return_sequences=False``); with
            ``return_state``, ``(output, *states)`` (``h, c``; ConvGRU ``h``), each
            (B, H', W', F).
        """
        owner = f"{type(self).__name__}.forward"
        training = check.boolean(owner, "training", training)
        layout = self.options.layout
        x = check.numeric_array(owner, "x", x, self.dtype)
        if not self.built:
            self.build(x.shape)
        check.check_shape(owner, "x", x, layout.names(self.in_channels, "batch", "time"))
        frames = layout.to_channels_last(x)  # (B, T, *spatial, C)
        B, T, *spatial, _ = frames.shape
        if T == 0:
            raise ValueError(f"{owner}: expected x with at least one time step; got {x.shape}.")
        _require_samples(owner, x.shape)
        mask = _checked_mask(owner, mask, B, T)
        states = self._starting_states(owner, initial_state, B, tuple(spatial), layout)
        if self.go_backwards:
            frames = frames[:, ::-1]
            mask = None if mask is None else mask[:, ::-1]

        self._cache = None
        dropping = training and (self.dropout > 0 or self.recurrent_dropout > 0)
        sequence = frames
        final_states, caches = [], []
        for cell, starting in zip(self.cells, states):
            masks = self._dropout_masks(sequence.shape, starting[0].shape) if dropping else {}
            sequence, final, cache = cell.run(sequence, starting, mask, training=training,
                                              **masks)
            positive = None
            if self.leaky_relu_slope is not None:
                leaky_relu(sequence, self.leaky_relu_slope, out=sequence)
                positive = sequence > 0 if training else None
            final_states.append(final)
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
        return (output, *(layout.from_channels_last(state).copy()
                          for state in final_states[-1]))

    def backward_to_weights(self, d_output: np.ndarray) -> None:
        """The backward without the input convolution's gradient (see :meth:`backward`)."""
        self.backward(d_output, input_gradient=False)

    def backward(self, d_output: np.ndarray, *d_final_states: np.ndarray | None,
                 input_gradient: bool = True) -> np.ndarray | None:
        """Backpropagation through time for the last ``forward(..., training=True)``.

        Fills every cell's ``grads`` (same names and shapes as its weights) and
        :attr:`state_grads` (each layer's initial states' gradients), then frees the cache.

        Args:
            d_output: gradient for the output, shaped like it.
            d_final_states: gradients for the final states returned with ``return_state``
                (``d_h, d_c``; ConvGRU ``d_h``), each may be None or left out.
            input_gradient: False to skip the input's gradient (when ``x`` is data).

        Returns:
            The gradient for the input ``x``, shaped like it (None without
            ``input_gradient``).
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
        names = [f"d_{name}" for name in self.state_names]
        if len(d_final_states) > len(names):
            raise ValueError(
                f"{owner}: expected at most {len(names)} state gradients ({', '.join(names)}); "
                f"got {len(d_final_states)}."
            )
        d_states = []
        for name, value in zip(names, [*d_final_states, *[None] * len(names)]):
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
        for cell in self.cells:
            cell.check_derivatives(owner)
        # Consumed from here on, even if BPTT fails part way: its kernels give the cache's
        # buffers back for reuse (functional.buffers), so it must never be read again.
        self._cache = None
        state_grads = []
        for index in reversed(range(self.num_layers)):
            cache = stack.layers[index]
            if cache.positive is not None:
                d_sequence = leaky_relu_backward(d_sequence, cache.positive,
                                                 self.leaky_relu_slope)
            last = index == self.num_layers - 1
            d_sequence, d_starting = self.cells[index].backprop(
                owner, d_sequence, d_states if last else [None] * len(names), cache.bptt,
                need_d_x=input_gradient or index > 0,
            )
            state_grads.append(d_starting)
        self._state_grads = state_grads[::-1]
        if d_sequence is None:
            return None
        if self.go_backwards:
            d_sequence = d_sequence[:, ::-1]
        return np.ascontiguousarray(layout.from_channels_last(d_sequence))

    @property
    def state_grads(self) -> list[tuple[np.ndarray, ...]] | None:
        """Gradients for every layer's initial states from the last :meth:`backward`."""
        return _copy_states(self._state_grads, self.options.layout)

    def _dropout_masks(self, input_shape, state_shape) -> dict[str, np.ndarray]:
        """Keras' per-call dropout: one mask per gate, for the frames and for the state."""
        masks = {}
        frame_shape = (input_shape[0], *input_shape[2:])  # (B, *spatial, C)
        gates = self.options.gates
        if self.dropout > 0:
            masks["input_masks"] = dropout_masks(self._rng, self.dropout, frame_shape, self.dtype,
                                                 gates)
        if self.recurrent_dropout > 0:
            masks["recurrent_masks"] = dropout_masks(
                self._rng, self.recurrent_dropout, state_shape, self.dtype, gates
            )
        return masks

    def _starting_states(self, owner, initial_state, B, spatial, layout):
        """Each layer's starting states, channels-last, checked against the input's shape."""
        shapes = []
        for cell in self.cells:
            spatial = cell.options.checked_output_spatial(owner, spatial)
            shapes.append((B, *spatial, self.out_channels))
        if initial_state is not None:
            per_layer = _per_layer_states(owner, "initial_state", initial_state, self.num_layers,
                                          self.state_names)
            return [
                _state_tuple(owner, "initial_state", states, self.state_names, shape, layout,
                             self.dtype)
                for states, shape in zip(per_layer, shapes)
            ]
        if self.stateful and self._states is not None:
            for (h, *_), shape in zip(self._states, shapes):
                if h.shape != shape:
                    raise ValueError(
                        f"{owner}: the carried states have shape {h.shape} but this input needs "
                        f"{shape}; call reset_states() to start a new batch of sequences."
                    )
            return self._states
        return [tuple(np.zeros(shape, self.dtype) for _ in self.state_names) for shape in shapes]

    def get_config(self) -> dict[str, Any]:
        return self.options.config()



@dataclass
class _LayerCache:
    """One layer of a training forward."""

    bptt: Any  # what the cell's backprop needs (its kernel's cache)
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


def _per_layer_states(owner: str, name: str, value: object, num_layers: int,
                      names: tuple[str, ...]) -> list:
    """Accept one layer's states (``[h, c]``; ConvGRU ``[h]``) or one such list per layer."""
    listed = "[" + ", ".join(names) + "]"
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise TypeError(
            f"{owner}: expected {name} to be a list {listed}; got {type(value).__name__}."
        )
    def one_layers_list(item: object) -> bool:  # [h, c] of arrays (or None)
        return isinstance(item, Sequence) and not isinstance(item, str) and len(item) == len(
            names) and all(state is None or isinstance(state, np.ndarray) for state in item)

    if num_layers == 1 and len(value) == len(names) and not all(map(one_layers_list, value)):
        per_layer = [value]  # one layer's states, each an array or nested lists
    else:
        per_layer = list(value)
    if len(per_layer) != num_layers or not all(
        isinstance(states, Sequence) and len(states) == len(names) for states in per_layer
    ):
        word = "pairs" if len(names) == 2 else "lists"
        expected = listed if num_layers == 1 else f"{num_layers} {listed} {word}, one per layer"
        raise ValueError(f"{owner}: expected {name} to be {expected}; got {len(value)} items "
                         f"({check.item_kinds(value)}).")
    return per_layer


def _state_tuple(owner, name, states, names: tuple[str, ...], shape, layout: Layout, dtype):
    """Validate one layer's states against the channels-last ``shape``; zeros when None."""
    if states is None:
        return tuple(np.zeros(shape, dtype) for _ in names)
    if not isinstance(states, Sequence) or len(states) != len(names):
        raise TypeError(
            f"{owner}: expected {name} to be ({', '.join(names)}); got {states!r:.60}."
        )
    user_shape = layout.shape(shape[:1], shape[1:-1], shape[-1])
    checked = []
    for label, state in zip(names, states):
        state = check.numeric_array(owner, f"{name} {label}", state, dtype)
        check.check_shape(owner, f"{name} {label}", state, user_shape)
        checked.append(layout.to_channels_last(state))
    return tuple(checked)


def _require_samples(owner: str, shape: tuple[int, ...]) -> None:
    """Refuse a batch of no samples (the recurrent kernels need at least one)."""
    if shape[0] == 0:
        raise ValueError(f"{owner}: expected x with at least one sample (batch >= 1); got "
                         f"{shape}.")


def _checked_mask(owner: str, mask: object, B: int, T: int) -> np.ndarray | None:
    if mask is None:
        return None
    mask = check.real_array(owner, "mask", mask)
    if mask.dtype.kind not in "biu":
        raise TypeError(f"{owner}: expected mask to be a bool array; got dtype {mask.dtype}.")
    check.check_shape(owner, "mask", mask, (B, T))
    return mask.astype(bool)

"""ConvLSTM2DCell (one step) and ConvLSTM2D (a stack of cells run over a sequence)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from convlstm import _validation as check
from convlstm import initializers
from convlstm.functional import activations
from convlstm.functional.activations import leaky_relu, leaky_relu_backward
from convlstm.functional.convlstm import (
    ConvLSTMCache,
    convlstm_backward,
    convlstm_forward,
    dropout_masks,
)
from convlstm.functional.windows import output_size, resolve_pads
from convlstm.layers.base import Layer
from convlstm.layers.core import DATA_FORMATS
from convlstm.registry import register

WEIGHT_NAMES = ("kernel", "recurrent_kernel", "bias")


@register
class ConvLSTM2DCell(Layer):
    """One ConvLSTM step, for users who write their own time loop.

    ``h, (h, c) = cell(frame, (h, c))``. The arguments and the math are those of
    :class:`ConvLSTM2D` (which documents the equations); ``frame`` is (batch, height, width,
    in_channels), or (batch, in_channels, height, width) with ``data_format="channels_first"``,
    and the states have the output frame's shape.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int] = 3,
        padding: int | str | Sequence[int] = "same",
        stride: int | Sequence[int] = 1,
        *,
        dilation: int | Sequence[int] = 1,
        activation: str | Any = "tanh",
        recurrent_activation: str | Any = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        recurrent_initializer: str = "orthogonal",
        bias_initializer: str = "zeros",
        unit_forget_bias: bool = True,
        data_format: str = "channels_last",
        dtype: str | np.dtype = "float32",
        seed: int | None = None,
    ) -> None:
        owner = type(self).__name__
        self.in_channels = check.positive_int(owner, "in_channels", in_channels)
        self.out_channels = check.positive_int(owner, "out_channels", out_channels)
        self.kernel_size = check.int_tuple(owner, "kernel_size", kernel_size, 2)
        self.padding = check.padding_arg(owner, padding, 2, allow_explicit=True)
        self.stride = check.int_tuple(owner, "stride", stride, 2)
        self.dilation = check.int_tuple(owner, "dilation", dilation, 2)
        if max(self.stride) > 1 and max(self.dilation) > 1:
            raise ValueError(
                f"{owner}: stride > 1 is not compatible with dilation > 1 (as in Keras); "
                f"got stride={self.stride} and dilation={self.dilation}."
            )
        self.activation = activations.get(owner, "activation", activation)
        self.recurrent_activation = activations.get(
            owner, "recurrent_activation", recurrent_activation
        )
        self.use_bias = check.boolean(owner, "use_bias", use_bias)
        self.kernel_initializer = initializers.check(
            owner, "kernel_initializer", kernel_initializer
        )
        self.recurrent_initializer = initializers.check(
            owner, "recurrent_initializer", recurrent_initializer
        )
        self.bias_initializer = initializers.check(owner, "bias_initializer", bias_initializer)
        self.unit_forget_bias = check.boolean(owner, "unit_forget_bias", unit_forget_bias)
        self.data_format = check.choice(owner, "data_format", data_format, DATA_FORMATS)
        self.dtype = check.float_dtype(owner, dtype)
        self.seed = check.seed_arg(owner, seed)
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.initialize_weights(np.random.default_rng(self.seed))

    # ----------------------------------------------------------------- weights

    @property
    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """Keras layout: kernel (kh, kw, C, 4F), recurrent_kernel (kh, kw, F, 4F), bias (4F,)."""
        kh, kw = self.kernel_size
        F = self.out_channels
        shapes = {
            "kernel": (kh, kw, self.in_channels, 4 * F),
            "recurrent_kernel": (kh, kw, F, 4 * F),
            "bias": (4 * F,),
        }
        return {name: shape for name, shape in shapes.items() if self.use_bias or name != "bias"}

    def initialize_weights(self, rng: np.random.Generator) -> None:
        """Draw fresh weights from the layer's initializers using ``rng``."""
        shapes = self.weight_shapes
        self.params = {
            "kernel": initializers.initialize(
                self.kernel_initializer, shapes["kernel"], rng, self.dtype
            ),
            "recurrent_kernel": initializers.initialize(
                self.recurrent_initializer, shapes["recurrent_kernel"], rng, self.dtype
            ),
        }
        if self.use_bias:
            F = self.out_channels
            bias = initializers.initialize(self.bias_initializer, (4 * F,), rng, self.dtype)
            if self.unit_forget_bias:
                # Jozefowicz et al.: a forget gate open at the start lets gradients flow.
                bias[F : 2 * F] = 1.0
            self.params["bias"] = bias
        self.grads = {name: np.zeros_like(value) for name, value in self.params.items()}

    # ------------------------------------------------------------------- shapes

    def output_hw(self, height: int, width: int) -> tuple[int, int]:
        """Height and width of the states for input frames of ``height`` x ``width``."""
        return output_size(
            (height, width), self.kernel_size, self.stride, self._pads(height, width), self.dilation
        )

    def _pads(self, height: int, width: int):
        return resolve_pads(
            self.padding, (height, width), self.kernel_size, self.stride, self.dilation
        )

    def _checked_output_hw(self, owner: str, height: int, width: int) -> tuple[int, int]:
        out_hw = self.output_hw(height, width)
        if min(out_hw) < 1:
            raise ValueError(
                f"{owner}: frames of {height}x{width} are too small for kernel_size="
                f"{self.kernel_size} with dilation={self.dilation} and padding={self.padding!r}."
            )
        return out_hw

    # ------------------------------------------------------------------ compute

    def run_sequence(
        self,
        x: np.ndarray,
        h0: np.ndarray,
        c0: np.ndarray,
        mask: np.ndarray | None,
        **options: Any,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, ConvLSTMCache | None]:
        """Run the cell over (B, T, H, W, C) channels-last frames; see ``convlstm_forward``
        (``options``: its dropout masks and ``training``)."""
        return convlstm_forward(
            x,
            self.params["kernel"],
            self.params["recurrent_kernel"],
            self.params.get("bias"),
            h0,
            c0,
            stride=self.stride,
            pads=self._pads(*x.shape[2:4]),
            dilation=self.dilation,
            activation=self.activation,
            recurrent_activation=self.recurrent_activation,
            mask=mask,
            **options,
        )

    def backward_sequence(
        self,
        d_outputs: np.ndarray,
        d_h: np.ndarray | None,
        d_c: np.ndarray | None,
        cache: ConvLSTMCache,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """BPTT for :meth:`run_sequence`: fills ``grads``; returns d_x, d_h0 and d_c0."""
        for name in ("activation", "recurrent_activation"):
            function = getattr(self, name)
            if function.derivative is None:
                raise TypeError(
                    f"{type(self).__name__}.backward: {name} {function.name!r} is a plain "
                    "callable with no derivative; use a named activation or "
                    "convlstm.functional.activations.Activation(name, fn, derivative) to train."
                )
        d_x, d_h0, d_c0, self.grads = convlstm_backward(
            d_outputs,
            d_h,
            d_c,
            cache,
            self.params["kernel"],
            self.params["recurrent_kernel"],
            activation=self.activation,
            recurrent_activation=self.recurrent_activation,
            use_bias=self.use_bias,
        )
        return d_x, d_h0, d_c0

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
        layout = _Layout(self.data_format)
        x = check.numeric_array(owner, "x", x, self.dtype)
        check.check_shape(owner, "x", x, layout.frame_names(self.in_channels))
        frames = layout.to_channels_last(x)[:, None]
        B, _, H, W, _ = frames.shape
        out_hw = self._checked_output_hw(owner, H, W)
        h0, c0 = _state_pair(
            owner, "states", states, (B, *out_hw, self.out_channels), layout, self.dtype
        )
        _, h, c, _ = self.run_sequence(frames, h0, c0, None)
        h, c = layout.from_channels_last(h), layout.from_channels_last(c)
        return h, (h, c)

    def get_config(self) -> dict[str, Any]:
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": list(self.kernel_size),
            "padding": self.padding if isinstance(self.padding, str) else list(self.padding),
            "stride": list(self.stride),
            **_cell_options(self),
        }


def _cell_options(cell: ConvLSTM2DCell) -> dict[str, Any]:
    """The keyword options a cell shares with ConvLSTM2D, JSON-serialisable."""
    owner = type(cell).__name__
    return {
        "dilation": list(cell.dilation),
        "activation": _activation_name(owner, "activation", cell.activation),
        "recurrent_activation": _activation_name(
            owner, "recurrent_activation", cell.recurrent_activation
        ),
        "use_bias": cell.use_bias,
        "kernel_initializer": cell.kernel_initializer,
        "recurrent_initializer": cell.recurrent_initializer,
        "bias_initializer": cell.bias_initializer,
        "unit_forget_bias": cell.unit_forget_bias,
        "data_format": cell.data_format,
        "dtype": cell.dtype.name,
        "seed": cell.seed,
    }


def _activation_name(owner: str, name: str, activation: activations.Activation) -> str:
    if activations.ACTIVATIONS.get(activation.name) is not activation:
        raise TypeError(
            f"{owner}.get_config: {name} is the callable {activation.name!r}, which cannot be "
            f"serialised; pass one of the names {sorted(activations.ACTIVATIONS)} instead."
        )
    return activation.name


@register
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

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int] = 3,
        padding: int | str | Sequence[int] = "same",
        stride: int | Sequence[int] = 1,
        leaky_relu_slope: float | None = None,
        num_layers: int = 1,
        *,
        dilation: int | Sequence[int] = 1,
        activation: str | Any = "tanh",
        recurrent_activation: str | Any = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        recurrent_initializer: str = "orthogonal",
        bias_initializer: str = "zeros",
        unit_forget_bias: bool = True,
        return_sequences: bool = True,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        data_format: str = "channels_last",
        dtype: str | np.dtype = "float32",
        seed: int | None = None,
    ) -> None:
        owner = type(self).__name__
        self.num_layers = check.positive_int(owner, "num_layers", num_layers)
        if leaky_relu_slope is not None and (
            isinstance(leaky_relu_slope, bool) or not isinstance(leaky_relu_slope, (int, float))
        ):
            raise TypeError(
                f"{owner}: expected leaky_relu_slope to be None or a float >= 0; "
                f"got {leaky_relu_slope!r}."
            )
        if leaky_relu_slope is not None and not leaky_relu_slope >= 0:
            raise ValueError(
                f"{owner}: expected leaky_relu_slope to be None or a float >= 0 (as Keras' "
                f"LeakyReLU); got {leaky_relu_slope!r}."
            )
        self.leaky_relu_slope = None if leaky_relu_slope is None else float(leaky_relu_slope)
        self.return_sequences = check.boolean(owner, "return_sequences", return_sequences)
        self.return_state = check.boolean(owner, "return_state", return_state)
        self.go_backwards = check.boolean(owner, "go_backwards", go_backwards)
        self.stateful = check.boolean(owner, "stateful", stateful)
        self.dropout = check.rate(owner, "dropout", dropout)
        self.recurrent_dropout = check.rate(owner, "recurrent_dropout", recurrent_dropout)
        options = dict(
            dilation=dilation,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            unit_forget_bias=unit_forget_bias,
            data_format=data_format,
            dtype=dtype,
        )
        try:
            first = ConvLSTM2DCell(
                in_channels, out_channels, kernel_size, padding, stride, **options, seed=seed
            )
        except (TypeError, ValueError) as error:
            raise type(error)(str(error).replace("ConvLSTM2DCell", owner, 1)) from None
        self.cells = [first] + [
            ConvLSTM2DCell(out_channels, out_channels, kernel_size, padding, stride, **options)
            for _ in range(self.num_layers - 1)
        ]
        rng = np.random.default_rng(first.seed)
        for cell in self.cells:
            cell.initialize_weights(rng)
        self._states: list[tuple[np.ndarray, np.ndarray]] | None = None
        self._final_states: list[tuple[np.ndarray, np.ndarray]] | None = None
        self._state_grads: list[tuple[np.ndarray, np.ndarray]] | None = None
        self._cache: _StackCache | None = None
        self._rng = np.random.default_rng(None if first.seed is None else [first.seed, 1])

    def __getattr__(self, name: str) -> Any:
        # The shared options (kernel_size, padding, dtype, ...) are the first cell's.
        if name != "cells" and "cells" in self.__dict__ and name in _SHARED_OPTIONS:
            return getattr(self.cells[0], name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def sublayers(self) -> list[ConvLSTM2DCell]:
        return list(self.cells)

    # ------------------------------------------------------------------ states

    @property
    def states(self) -> list[tuple[np.ndarray, np.ndarray]] | None:
        """The carried ``(h, c)`` of every layer (stateful mode), or None before the first call."""
        return _copy_states(self._states, _Layout(self.data_format))

    @property
    def final_states(self) -> list[tuple[np.ndarray, np.ndarray]] | None:
        """Every layer's final ``(h, c)`` from the last call, or None before the first call."""
        return _copy_states(self._final_states, _Layout(self.data_format))

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
        layout = _Layout(self.data_format)
        pairs = _per_layer_pairs(owner, "states", states, self.num_layers)
        self._states = [
            tuple(
                layout.to_channels_last(check.numeric_array(owner, "states", s, self.dtype)).copy()
                for s in pair
            )
            for pair in pairs
        ]
        for h, c in self._states:
            check.check_shape(owner, "states", h, ("batch", "height", "width", self.out_channels))
            check.check_shape(owner, "states", c, h.shape)

    # ------------------------------------------------------------------ shapes

    def compute_output_shape(self, input_shape: Sequence[int]) -> tuple:
        """Output shape for ``input_shape`` (with ``return_state``: output, h and c shapes)."""
        layout = _Layout(self.data_format)
        B, T, H, W = layout.split_shape(tuple(input_shape))
        for cell in self.cells:
            H, W = cell.output_hw(H, W)
        state = layout.frame_shape(B, H, W, self.out_channels)
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
        layout = _Layout(self.data_format)
        x = check.numeric_array(owner, "x", x, self.dtype)
        check.check_shape(owner, "x", x, layout.sequence_names(self.in_channels))
        frames = layout.to_channels_last(x)
        B, T, H, W, _ = frames.shape
        if T == 0:
            raise ValueError(f"{owner}: expected x with at least one time step; got {x.shape}.")
        mask = _checked_mask(owner, mask, B, T)
        states = self._starting_states(owner, initial_state, B, H, W, layout)
        if self.go_backwards:
            frames = frames[:, ::-1]
            mask = None if mask is None else mask[:, ::-1]

        self._cache = None
        dropping = training and (self.dropout > 0 or self.recurrent_dropout > 0)
        sequence = frames
        final_states, caches = [], []
        for cell, (h0, c0) in zip(self.cells, states):
            masks = self._dropout_masks(sequence.shape, h0.shape) if dropping else {}
            sequence, h, c, cache = cell.run_sequence(sequence, h0, c0, mask, training=training,
                                                      **masks)
            positive = None
            if self.leaky_relu_slope is not None:
                leaky_relu(sequence, self.leaky_relu_slope, out=sequence)
                positive = sequence > 0 if training else None
            final_states.append((h, c))
            caches.append((cache, positive))
        self._final_states = final_states
        if training:
            self._cache = _StackCache(caches, sequence.shape, layout)
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
        layout, dtype = stack.layout, self.dtype
        B, T, Ho, Wo, F = stack.output_shape
        state_shape = layout.frame_shape(B, Ho, Wo, F)
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
            cache, positive = stack.layers[index]
            if positive is not None:
                d_sequence = leaky_relu_backward(d_sequence, positive, self.leaky_relu_slope)
            last = index == self.num_layers - 1
            d_sequence, d_h0, d_c0 = self.cells[index].backward_sequence(
                d_sequence, d_states[0] if last else None, d_states[1] if last else None, cache
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
        return _copy_states(self._state_grads, _Layout(self.data_format))

    def _dropout_masks(self, input_shape, state_shape) -> dict[str, np.ndarray]:
        """Keras' per-call dropout: four masks per gate, for the frames and for the state."""
        masks = {}
        B, _, H, W, C = input_shape
        if self.dropout > 0:
            masks["input_masks"] = dropout_masks(self._rng, self.dropout, (B, H, W, C), self.dtype)
        if self.recurrent_dropout > 0:
            masks["recurrent_masks"] = dropout_masks(
                self._rng, self.recurrent_dropout, state_shape, self.dtype
            )
        return masks

    def _starting_states(self, owner, initial_state, B, H, W, layout):
        """One (h0, c0) channels-last pair per layer, checked against the input's shape."""
        shapes = []
        for cell in self.cells:
            H, W = cell._checked_output_hw(owner, H, W)
            shapes.append((B, H, W, self.out_channels))
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
        first = self.cells[0].get_config()
        return {
            "in_channels": first.pop("in_channels"),
            "out_channels": first.pop("out_channels"),
            "kernel_size": first.pop("kernel_size"),
            "padding": first.pop("padding"),
            "stride": first.pop("stride"),
            "leaky_relu_slope": self.leaky_relu_slope,
            "num_layers": self.num_layers,
            **first,
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
        }


_SHARED_OPTIONS = frozenset(
    [
        "in_channels",
        "out_channels",
        "kernel_size",
        "padding",
        "stride",
        "dilation",
        "activation",
        "recurrent_activation",
        "use_bias",
        "kernel_initializer",
        "recurrent_initializer",
        "bias_initializer",
        "unit_forget_bias",
        "data_format",
        "dtype",
        "seed",
    ]
)


@dataclass
class _StackCache:
    """One training forward: each layer's BPTT cache and, under LeakyReLU, where it passed."""

    layers: list[tuple[ConvLSTMCache, np.ndarray | None]]
    output_shape: tuple[int, ...]  # the last layer's channels-last sequence shape
    layout: _Layout


class _Layout:
    """Moves arrays between the user's data_format and the channels-last layout computed in."""

    def __init__(self, data_format: str) -> None:
        self.channels_first = data_format == "channels_first"

    def sequence_names(self, channels: int) -> tuple:
        if self.channels_first:
            return ("batch", "time", channels, "height", "width")
        return ("batch", "time", "height", "width", channels)

    def frame_names(self, channels: int) -> tuple:
        if self.channels_first:
            return ("batch", channels, "height", "width")
        return ("batch", "height", "width", channels)

    def split_shape(self, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        B, T, *rest = shape
        H, W = rest[1:] if self.channels_first else rest[:2]
        return B, T, H, W

    def frame_shape(self, B: int, H: int, W: int, C: int) -> tuple[int, ...]:
        return (B, C, H, W) if self.channels_first else (B, H, W, C)

    def to_channels_last(self, array: np.ndarray) -> np.ndarray:
        return np.moveaxis(array, -3, -1) if self.channels_first else array

    def from_channels_last(self, array: np.ndarray) -> np.ndarray:
        return np.moveaxis(array, -1, -3) if self.channels_first else array


def _copy_states(states, layout: _Layout):
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


def _state_pair(owner, name, pair, shape, layout: _Layout, dtype):
    """Validate ``(h, c)`` against the channels-last ``shape``; zeros when ``pair`` is None."""
    if pair is None:
        return np.zeros(shape, dtype), np.zeros(shape, dtype)
    if not isinstance(pair, Sequence) or len(pair) != 2:
        raise TypeError(f"{owner}: expected {name} to be a pair (h, c); got {pair!r:.60}.")
    user_shape = layout.frame_shape(shape[0], shape[1], shape[2], shape[3])
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

"""Bidirectional: a recurrent layer of the ConvLSTM family run forwards and backwards in time,
the two outputs merged, as Keras 3's ``Bidirectional``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from convlstm import _validation as check
from convlstm import limits
from convlstm.layers.base import Layer, training_arg
from convlstm.layers.convrnn import ConvRNN
from convlstm.registry import config_arguments, deserialize, register, serialize

MERGE_MODES = ("concat", "sum", "mul", "ave", None)
RECURRENT_LAYERS = (ConvRNN,)
_SHARED = ("stateful", "return_sequences", "return_state")  # must agree between directions


@dataclass
class _BidirectionalCache:
    """One training forward: what the merge's backward needs."""

    y: np.ndarray  # forward direction's output, user layout
    y_reversed: np.ndarray  # backward direction's output, back in time order
    keep: np.ndarray | None  # (B, T, 1, ...) float mask of the steps taken, or None
    states: int  # final states returned per direction (0 without return_state)


@register
class Bidirectional(Layer):
    """Run ``layer`` forwards and a copy backwards in time and merge the outputs, as Keras 3.

    The backward copy is ``layer``'s config with ``go_backwards`` flipped (fresh weights), or
    ``backward_layer``. With ``return_sequences=True`` its outputs are reversed back into time
    order before merging, and, as Keras forces ``zero_output_for_mask`` in this wrapper, a
    masked step outputs zeros in both directions (instead of repeating the previous output).

    Args:
        layer: a ConvLSTM1D/2D/3D or ConvGRU1D/2D/3D (stacks included).
        merge_mode: "concat" (along the last axis, as Keras: the channels for channels_last),
            "sum", "mul", "ave", or None (a list of the two outputs).
        backward_layer: the layer for the backward direction, or None for a copy of ``layer``.
            It must have the other ``go_backwards`` and the same ``stateful``,
            ``return_sequences`` and ``return_state``.

    ``forward(x, initial_state=None, mask=None, training=False)`` returns the merged output
    (with ``return_state``: ``[output, *forward_states, *backward_states]``; with
    ``merge_mode=None`` the output is the two outputs). ``initial_state`` is the forward
    layer's states followed by the backward layer's. ``get_weights()`` is the forward layer's
    weights, then the backward layer's.
    """

    def __init__(
        self, layer: Layer, merge_mode: str | None = "concat", backward_layer: Layer | None = None
    ) -> None:
        owner = type(self).__name__
        _check_recurrent(owner, "layer", layer)
        if merge_mode not in MERGE_MODES:
            raise ValueError(
                f"{owner}: expected merge_mode to be one of {list(MERGE_MODES)}; got "
                f"{merge_mode!r}."
            )
        self.merge_mode = merge_mode
        self._backward_given = backward_layer is not None
        self.forward_layer = _rebuilt(layer)  # a copy: no carried states, no cache
        if layer.built:  # else both directions build on the first call (or in build)
            self.forward_layer.set_weights(layer.get_weights())
        if backward_layer is None:
            backward_layer = _rebuilt(layer, go_backwards=not layer.go_backwards)
        _check_recurrent(owner, "backward_layer", backward_layer)
        self.backward_layer = backward_layer
        if backward_layer.go_backwards == layer.go_backwards:
            raise ValueError(
                f"{owner}: expected backward_layer.go_backwards to differ from "
                f"layer.go_backwards; got {backward_layer.go_backwards} for both."
            )
        for name in (*_SHARED, "in_channels", "data_format"):
            if getattr(backward_layer, name) != getattr(layer, name):
                raise ValueError(
                    f"{owner}: expected backward_layer.{name} to equal layer.{name} "
                    f"({getattr(layer, name)!r}); got {getattr(backward_layer, name)!r}."
                )
        widths = (layer.out_channels, backward_layer.out_channels)
        if merge_mode in ("sum", "mul", "ave") and widths[0] != widths[1]:
            raise ValueError(
                f"{owner}: merge_mode={merge_mode!r} needs outputs of one shape; got "
                f"out_channels {layer.out_channels} and {backward_layer.out_channels}."
            )
        self.params: dict[str, np.ndarray] = {}  # the weights are the two layers'
        self.grads: dict[str, np.ndarray] = {}
        self._cache: _BidirectionalCache | None = None

    stateful = property(lambda self: self.forward_layer.stateful)
    return_sequences = property(lambda self: self.forward_layer.return_sequences)
    return_state = property(lambda self: self.forward_layer.return_state)

    def sublayers(self) -> list[Layer]:
        return [self.forward_layer, self.backward_layer]

    def reset_states(self) -> None:
        """Forget both directions' carried states (stateful layers)."""
        self.forward_layer.reset_states()
        self.backward_layer.reset_states()

    @property
    def state_grads(self) -> list | None:
        """Both directions' initial-state gradients from the last :meth:`backward`, forward's
        first (each layer's ``state_grads``)."""
        grads = [self.forward_layer.state_grads, self.backward_layer.state_grads]
        return None if None in grads else grads[0] + grads[1]

    # ------------------------------------------------------------------ shapes

    def build(self, input_shape: Sequence[int | None]) -> None:
        """Build both directions (given no ``in_channels``) for inputs of ``input_shape``."""
        self.forward_layer.build(input_shape)
        self.backward_layer.build(input_shape)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple:
        """The merged output shape (with ``return_state`` followed by the states' shapes)."""
        forward, backward = (self._as_tuple(layer.compute_output_shape(input_shape))
                             for layer in self.sublayers())
        y, y_reversed = forward[0], backward[0]
        if self.merge_mode is None:
            outputs: tuple = (y, y_reversed)
        elif self.merge_mode == "concat":
            outputs = ((*y[:-1], y[-1] + y_reversed[-1]),)
        else:
            outputs = (y,)
        if not self.return_state:
            return outputs if self.merge_mode is None else outputs[0]
        return (*outputs, *forward[1:], *backward[1:])

    def _as_tuple(self, shape: tuple) -> tuple:
        return shape if self.return_state else (shape,)

    # ----------------------------------------------------------------- compute

    def forward(
        self,
        x: np.ndarray,
        initial_state: Sequence[Any] | None = None,
        mask: np.ndarray | None = None,
        training: bool = False,
    ) -> Any:
        """Both directions over ``x`` (the wrapped layer's input), merged.

        Args:
            x: the wrapped layer's input, (B, T, ...).
            initial_state: the forward layer's states then the backward layer's (each half as
                the wrapped layer takes it), or None.
            mask: (B, T) bool, given to both directions.
            training: keep the caches :meth:`backward` needs.

        Returns:
            The merged output, or with ``merge_mode=None`` the list ``[y, y_reversed]``; with
            ``return_state``, followed by the forward then the backward final states.
        """
        owner = f"{type(self).__name__}.forward"
        training = training_arg(owner, training)
        halves: list = [None, None]
        if initial_state is not None:
            inner = self.forward_layer
            per_direction = inner.num_layers if inner.num_layers > 1 else len(inner.state_names)
            if not isinstance(initial_state, Sequence) or isinstance(initial_state, str):
                raise TypeError(
                    f"{owner}: expected initial_state to be a list of the forward layer's states "
                    f"followed by the backward layer's; got {check.describe(initial_state)}."
                )
            if len(initial_state) != 2 * per_direction:
                raise ValueError(
                    f"{owner}: expected initial_state to be the forward layer's states followed "
                    f"by the backward layer's ({2 * per_direction} items); got "
                    f"{len(initial_state)} items ({check.item_kinds(initial_state)})."
                )
            half = len(initial_state) // 2
            halves = [list(initial_state[:half]), list(initial_state[half:])]
        results = [
            self._as_tuple(layer.forward(x, initial_state=states, mask=mask, training=training))
            for layer, states in zip(self.sublayers(), halves)
        ]
        (y, *forward_states), (y_reversed, *backward_states) = results
        keep = None
        if self.return_sequences:
            y_reversed = y_reversed[:, ::-1]
            if mask is not None:  # Keras' zero_output_for_mask in Bidirectional
                keep = np.asarray(mask, bool).reshape(*mask.shape, *[1] * (y.ndim - 2))
                keep = keep.astype(y.dtype)
                y, y_reversed = y * keep, y_reversed * keep
        y_reversed = np.ascontiguousarray(y_reversed)
        if training:
            self._cache = _BidirectionalCache(y, y_reversed, keep, len(forward_states))
        else:
            self._cache = None
        outputs = self._merge(y, y_reversed)
        if not self.return_state:
            return outputs if self.merge_mode is None else outputs[0]
        return [*outputs, *forward_states, *backward_states]

    def _merge(self, y: np.ndarray, y_reversed: np.ndarray) -> list[np.ndarray]:
        if self.merge_mode == "concat":
            return [np.concatenate([y, y_reversed], axis=-1)]
        if self.merge_mode == "sum":
            return [y + y_reversed]
        if self.merge_mode == "ave":
            return [(y + y_reversed) / y.dtype.type(2)]
        if self.merge_mode == "mul":
            return [y * y_reversed]
        return [y, y_reversed]

    def backward(self, *d_outputs: np.ndarray | None) -> np.ndarray:
        """Backpropagate through the merge and both directions; return the input's gradient.

        Args:
            d_outputs: one gradient per output of the last training forward, in its order (the
                merged output, or both outputs when ``merge_mode=None``; then the states'),
                None for a state's gradient meaning zeros.
        """
        owner = f"{type(self).__name__}.backward"
        cache = self._cache
        if cache is None:
            raise RuntimeError(
                f"{owner}: no training forward to differentiate; call "
                "forward(x, training=True) before backward (each backward consumes its cache)."
            )
        count = 2 if self.merge_mode is None else 1
        expected = count + 2 * cache.states
        if len(d_outputs) != expected:
            raise ValueError(
                f"{owner}: expected {expected} gradients (one per output of forward); got "
                f"{len(d_outputs)}."
            )
        d_y, d_y_reversed = self._merge_backward(owner, cache, d_outputs[:count])
        if cache.keep is not None:
            d_y, d_y_reversed = d_y * cache.keep, d_y_reversed * cache.keep
        if self.return_sequences:
            d_y_reversed = d_y_reversed[:, ::-1]
        states = d_outputs[count:]
        self._cache = None
        d_x = self.forward_layer.backward(d_y, *states[: cache.states])
        return d_x + self.backward_layer.backward(np.ascontiguousarray(d_y_reversed),
                                                  *states[cache.states :])

    def _merge_backward(self, owner: str, cache: _BidirectionalCache, d_outputs) -> tuple:
        y, y_reversed = cache.y, cache.y_reversed
        shapes = [output.shape for output in self._merge(y, y_reversed)]
        d_outputs = [check.numeric_array(owner, "d_output", d, y.dtype) for d in d_outputs]
        for d, shape in zip(d_outputs, shapes):
            check.check_shape(owner, "d_output", d, shape)
        if self.merge_mode == "concat":
            split = y.shape[-1]
            return d_outputs[0][..., :split], d_outputs[0][..., split:]
        if self.merge_mode == "sum":
            return d_outputs[0], d_outputs[0]
        if self.merge_mode == "ave":
            half = d_outputs[0] / y.dtype.type(2)
            return half, half
        if self.merge_mode == "mul":
            return d_outputs[0] * y_reversed, d_outputs[0] * y
        return d_outputs[0], d_outputs[1]

    # ------------------------------------------------------------------ config

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"layer": serialize(self.forward_layer),
                                  "merge_mode": self.merge_mode}
        if self._backward_given:
            config["backward_layer"] = serialize(self.backward_layer)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Bidirectional:
        config = config_arguments(cls, config)
        backward = config.get("backward_layer")
        with limits.building(cls, config):
            return cls(deserialize(config["layer"]), config.get("merge_mode", "concat"),
                       None if backward is None else deserialize(backward))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.forward_layer!r}, "
                f"merge_mode={self.merge_mode!r})")


def _rebuilt(layer: ConvRNN, **changes: Any) -> ConvRNN:
    """A new layer with ``layer``'s options (callable activations included) and ``changes``;
    fresh weights."""
    options = {item.name: getattr(layer.options, item.name) for item in fields(layer.options)}
    return type(layer)(**{**options, **changes})


def _check_recurrent(owner: str, name: str, layer: object) -> None:
    if not isinstance(layer, RECURRENT_LAYERS):
        kinds = "ConvLSTM1D/2D/3D, ConvGRU1D/2D/3D"
        raise TypeError(
            f"{owner}: expected {name} to be a recurrent layer of the family ({kinds}); got "
            f"{type(layer).__name__}."
        )

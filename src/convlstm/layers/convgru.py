"""The ConvGRU layers (beyond Keras: Keras' GRU with convolutions): ConvGRU1D/2D/3D and their
cells, on the ConvRNN bases (the stack, states, masks, dropout and ``stateful`` are
:class:`~convlstm.layers.convrnn.ConvRNN`'s; the kernel is ``functional/convgru.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from convlstm.functional.convgru import ConvGRUCache, convgru_backward, convgru_forward
from convlstm.layers.convlstm_options import (
    ConvGRU1DCellOptions,
    ConvGRU1DOptions,
    ConvGRU3DCellOptions,
    ConvGRU3DOptions,
    ConvGRUCellOptions,
    ConvGRUOptions,
    expose_options,
    signature_of,
)
from convlstm.layers.convrnn import ConvRNN, ConvRNNCell
from convlstm.registry import register


@expose_options(ConvGRUCellOptions)
class ConvGRUCell(ConvRNNCell):
    """One ConvGRU step (the base of ConvGRU1DCell/2DCell/3DCell): one state, ``h``.
    ``h, (h,) = cell(frame, (h,))``."""

    options_class: ClassVar[type[ConvGRUCellOptions]] = ConvGRUCellOptions
    state_names = ("h",)
    options: ConvGRUCellOptions

    def run(self, x: np.ndarray, states: tuple[np.ndarray, ...], mask: np.ndarray | None = None,
            **kwargs: Any) -> tuple[np.ndarray, tuple[np.ndarray, ...], ConvGRUCache | None]:
        """The kernel over (B, T, *spatial, C) channels-last frames; see ``convgru_forward``
        (``kwargs``: its dropout masks and ``training``)."""
        options = self.options
        outputs, h, cache = convgru_forward(
            x, self.params["kernel"], self.params["recurrent_kernel"], self.params.get("bias"),
            states[0], stride=options.stride, pads=options.pads(x.shape[2:-1]),
            dilation=options.dilation, activation=options.activation,
            recurrent_activation=options.recurrent_activation,
            reset_after=options.reset_after, mask=mask, **kwargs)
        return outputs, (h,), cache

    def backprop(self, owner: str, d_outputs: np.ndarray,
                 d_states: Sequence[np.ndarray | None], cache: ConvGRUCache,
                 need_d_x: bool = True) -> tuple[np.ndarray | None, tuple[np.ndarray, ...]]:
        """BPTT for :meth:`run`: fills ``grads``; returns d_x (None unless ``need_d_x``)
        and (d_h0,)."""
        options = self.options
        d_x, d_h0, self.grads = convgru_backward(
            d_outputs, d_states[0], cache, self.params["kernel"],
            self.params["recurrent_kernel"], activation=options.activation,
            recurrent_activation=options.recurrent_activation, use_bias=options.use_bias,
            need_d_x=need_d_x)
        return d_x, (d_h0,)


@register
class ConvGRU1DCell(ConvGRUCell):
    """One ConvGRU1D step: frame (B, W, C), state (B, W', F)."""

    __signature__ = signature_of(ConvGRU1DCellOptions)
    options_class = ConvGRU1DCellOptions


@register
class ConvGRU2DCell(ConvGRUCell):
    """One ConvGRU2D step: frame (B, H, W, C), state (B, H', W', F)."""

    __signature__ = signature_of(ConvGRUCellOptions)


@register
class ConvGRU3DCell(ConvGRUCell):
    """One ConvGRU3D step: frame (B, D, H, W, C), state (B, D', H', W', F)."""

    __signature__ = signature_of(ConvGRU3DCellOptions)
    options_class = ConvGRU3DCellOptions


@expose_options(ConvGRUOptions)
class ConvGRU(ConvRNN):
    """A stack of ConvGRU cells over a sequence (the base of ConvGRU1D/2D/3D)."""

    options_class: ClassVar[type[ConvGRUOptions]] = ConvGRUOptions
    cell_class: ClassVar[type[ConvRNNCell]] = ConvGRU2DCell
    options: ConvGRUOptions


@register
class ConvGRU2D(ConvGRU):
    r"""Convolutional GRU over a sequence of frames: Keras' GRU semantics with convolutions
    (beyond Keras, which has no ConvGRU).

    At each step, with ``*`` a 2-D convolution (the input one with the layer's stride, padding
    and dilation; the recurrent one stride 1, "same", no dilation), gates fused in Keras' GRU
    order z, r, h (ra = ``recurrent_activation``, a = ``activation``)::

        z  = ra(W_z * x_t + b_z + U_z * h_{t-1} + b'_z)
        r  = ra(W_r * x_t + b_r + U_r * h_{t-1} + b'_r)
        reset_after=True:   h~ = a(W_h * x_t + b_h + r . (U_h * h_{t-1} + b'_h))
        reset_after=False:  h~ = a(W_h * x_t + U_h * (r . h_{t-1}) + b_h)
        h_t = z . h_{t-1} + (1 - z) . h~

    Weights: ``kernel (kh, kw, C, 3F)``, ``recurrent_kernel (kh, kw, F, 3F)`` and ``bias``
    ``(2, 3F)`` = ``[b; b']`` with ``reset_after=True`` (Keras 3's GRU default), else ``(3F,)``.
    The arguments are ConvLSTM2D's where they apply (stacks, ``leaky_relu_slope``, masks,
    ``go_backwards``, ``stateful``, dropout with three per-gate masks), plus ``reset_after``
    and without ``unit_forget_bias`` and peepholes; ``return_state`` returns ``(output, h)``
    and ``initial_state`` is ``[h0]`` (or one ``[h]`` per layer).
    """

    __signature__ = signature_of(ConvGRUOptions)
    options_class = ConvGRUOptions
    cell_class = ConvGRU2DCell


@register
class ConvGRU1D(ConvGRU):
    """:class:`ConvGRU2D` over 1-D signals: (B, T, W, C) (channels_first (B, T, C, W))."""

    __signature__ = signature_of(ConvGRU1DOptions)
    options_class = ConvGRU1DOptions
    cell_class = ConvGRU1DCell


@register
class ConvGRU3D(ConvGRU):
    """:class:`ConvGRU2D` over volumes: (B, T, D, H, W, C) (channels_first (B, T, C, D, H, W))."""

    __signature__ = signature_of(ConvGRU3DOptions)
    options_class = ConvGRU3DOptions
    cell_class = ConvGRU3DCell

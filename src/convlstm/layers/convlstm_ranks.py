"""ConvLSTM1D and ConvLSTM3D (and their cells): ConvLSTM2D over one or three spatial axes.

The kernel, the stack, the states, masks, dropout and peepholes are :class:`ConvLSTM2D`'s (see
its docstring for the equations and the arguments); only the number of spatial axes differs, so
sizes, strides, dilations and explicit paddings take an int or a tuple of the layer's rank.
"""

from __future__ import annotations

from convlstm.layers.convlstm import ConvLSTM, ConvLSTMCell
from convlstm.layers.convlstm_options import (
    ConvLSTM1DCellOptions,
    ConvLSTM1DOptions,
    ConvLSTM3DCellOptions,
    ConvLSTM3DOptions,
    signature_of,
)
from convlstm.registry import register


@register
class ConvLSTM1DCell(ConvLSTMCell):
    """One ConvLSTM1D step: frame (B, W, C) (channels_first: (B, C, W)), states (B, W', F)."""

    __signature__ = signature_of(ConvLSTM1DCellOptions)
    options_class = ConvLSTM1DCellOptions


@register
class ConvLSTM3DCell(ConvLSTMCell):
    """One ConvLSTM3D step: frame (B, D, H, W, C) (channels_first: (B, C, D, H, W)), states
    (B, D', H', W', F)."""

    __signature__ = signature_of(ConvLSTM3DCellOptions)
    options_class = ConvLSTM3DCellOptions


@register
class ConvLSTM1D(ConvLSTM):
    """Convolutional LSTM over a sequence of 1-D signals, as Keras 3's ``ConvLSTM1D``.

    Input (B, T, W, in_channels) (channels_first: (B, T, in_channels, W)); states and outputs
    (B, W', F). Weights ``kernel (k, C, 4F)``, ``recurrent_kernel (k, F, 4F)``, ``bias (4F,)``
    (and ``peephole (3, F)``). Everything else is :class:`~convlstm.ConvLSTM2D`'s.
    """

    __signature__ = signature_of(ConvLSTM1DOptions)
    options_class = ConvLSTM1DOptions
    cell_class = ConvLSTM1DCell


@register
class ConvLSTM3D(ConvLSTM):
    """Convolutional LSTM over a sequence of volumes, as Keras 3's ``ConvLSTM3D``.

    Input (B, T, D, H, W, in_channels) (channels_first: (B, T, in_channels, D, H, W)); states
    and outputs (B, D', H', W', F). Weights ``kernel (kd, kh, kw, C, 4F)``,
    ``recurrent_kernel (kd, kh, kw, F, 4F)``, ``bias (4F,)`` (and ``peephole (3, F)``).
    Everything else is :class:`~convlstm.ConvLSTM2D`'s.
    """

    __signature__ = signature_of(ConvLSTM3DOptions)
    options_class = ConvLSTM3DOptions
    cell_class = ConvLSTM3DCell

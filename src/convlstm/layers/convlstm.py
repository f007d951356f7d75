"""The ConvLSTM layers: ConvLSTM2DCell (one step) and ConvLSTM2D (a stack of cells run over a
sequence), on bases that take any number of spatial axes (ConvLSTM1D/3D subclass them, see
``convlstm_ranks``); the stack itself is :class:`~convlstm.layers.convrnn.ConvRNN`'s."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from convlstm.functional import threads
from convlstm.functional.convlstm import (
    ConvLSTMCache,
    ForwardPlan,
    convlstm_backward,
    convlstm_forward,
    forward_plan,
)
from convlstm.functional.recurrence import GroupCaches, backward_in_groups, forward_in_groups
from convlstm.layers.convlstm_options import (
    ConvLSTMCellOptions,
    ConvLSTMOptions,
    expose_options,
    signature_of,
)
from convlstm.layers.convrnn import ConvRNN, ConvRNNCell
from convlstm.registry import register


@expose_options(ConvLSTMCellOptions)
class ConvLSTMCell(ConvRNNCell):
    """One ConvLSTM step over ``options_class.rank`` spatial axes (the base of
    :class:`ConvLSTM2DCell` and its 1-D and 3-D twins); states ``(h, c)``."""

    options_class: ClassVar[type[ConvLSTMCellOptions]] = ConvLSTMCellOptions
    state_names = ("h", "c")
    options: ConvLSTMCellOptions

    streaming: bool = False
    """Set by a stateful :class:`ConvLSTM` on its cells: inference calls keep the kernel's
    :class:`~convlstm.functional.convlstm.ForwardPlan` (fused weights, buffers) for the next
    call, rebuilt when the frame's shape or a weight's value changes."""
    _plan: ForwardPlan | None = None

    def run(self, x: np.ndarray, states: tuple[np.ndarray, ...], mask: np.ndarray | None = None,
            **kwargs: Any
            ) -> tuple[np.ndarray, tuple[np.ndarray, ...], ConvLSTMCache | GroupCaches | None]:
        """The kernel over (B, T, *spatial, C) channels-last frames; see ``convlstm_forward``
        (``kwargs``: its dropout masks and ``training``)."""
        options, params = self.options, self.params
        h0, c0 = states
        weights = (params["kernel"], params["recurrent_kernel"], params.get("bias"))
        geometry = dict(stride=options.stride, pads=options.pads(x.shape[2:-1]),
                        dilation=options.dilation, activation=options.activation,
                        recurrent_activation=options.recurrent_activation,
                        peephole=params.get("peephole"))
        with threads.recurrence():  # BLAS on one thread, products split over ours
            if self.streaming and not kwargs.get("training"):
                plan = self._plan = forward_plan(x.shape, x.dtype, *weights, **geometry,
                                                 reuse=self._plan)
                outputs, h, c, cache = convlstm_forward(x, *weights, h0, c0, mask=mask,
                                                        plan=plan, **geometry, **kwargs)
            else:
                def kernel(x: np.ndarray, h0: np.ndarray, c0: np.ndarray, **arguments: Any):
                    return convlstm_forward(x, *weights, h0, c0, **arguments)

                outputs, h, c, cache = forward_in_groups(kernel, x, (h0, c0), mask=mask,
                                                         **geometry, **kwargs)
        return outputs, (h, c), cache

    def backprop(self, owner: str, d_outputs: np.ndarray,
                 d_states: Sequence[np.ndarray | None], cache: ConvLSTMCache | GroupCaches,
                 need_d_x: bool = True) -> tuple[np.ndarray | None, tuple[np.ndarray, ...]]:
        """BPTT for :meth:`run`: fills ``grads``; returns d_x (None unless ``need_d_x``)
        and (d_h0, d_c0)."""
        options = self.options
        with threads.recurrence():
            d_x, d_h0, d_c0, self.grads = backward_in_groups(
                convlstm_backward,
                d_outputs,
                tuple(d_states),
                cache,
                self.params["kernel"],
                self.params["recurrent_kernel"],
                activation=options.activation,
                recurrent_activation=options.recurrent_activation,
                use_bias=options.use_bias,
                peephole=self.params.get("peephole"),
                need_d_x=need_d_x,
            )
        return d_x, (d_h0, d_c0)


@register
class ConvLSTM2DCell(ConvLSTMCell):
    """One ConvLSTM step, for users who write their own time loop.

    ``h, (h, c) = cell(frame, (h, c))``. The arguments and the math are those of
    :class:`ConvLSTM2D` (which documents the equations); ``frame`` is (batch, height, width,
    in_channels), or (batch, in_channels, height, width) with ``data_format="channels_first"``,
    and the states have the output frame's shape. A thin wrapper: it holds the options and the
    weights and runs the layer's kernel for one step.
    """

    __signature__ = signature_of(ConvLSTMCellOptions)

    def output_hw(self, height: int, width: int) -> tuple[int, int]:
        """Height and width of the states for input frames of ``height`` x ``width``."""
        return self.options.output_spatial((height, width))


@expose_options(ConvLSTMOptions)
class ConvLSTM(ConvRNN):
    """A stack of ConvLSTM cells over a sequence (the base of :class:`ConvLSTM2D` and its 1-D
    and 3-D twins, documented there)."""

    options_class: ClassVar[type[ConvLSTMOptions]] = ConvLSTMOptions
    cell_class: ClassVar[type[ConvRNNCell]] = ConvLSTMCell
    options: ConvLSTMOptions

    def _make_weights(self, options: Any) -> None:
        super()._make_weights(options)
        for cell in self.cells:  # a stateful layer streams: its cells keep their plans
            cell.streaming = options.stateful


@register
class ConvLSTM2D(ConvLSTM):
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

    Keras' keywords ``filters``, ``strides`` and ``dilation_rate`` stand for ``out_channels``,
    ``stride`` and ``dilation``, and Keras' positional form ``ConvLSTM2D(16, (3, 3))`` works
    (see :meth:`~convlstm.layers.convlstm_options.ConvRNNCellOptions.from_arguments`).

    Args:
        in_channels: channels of the input frames; None (or left out): the weights are built
            on the first call from the input's channels (or by ``Sequential(input_shape=...)``).
        out_channels: channels of the hidden state (Keras' ``filters``).
        kernel_size: int or (kh, kw).
        padding: an int or (ph, pw) for symmetric zero padding (PyTorch style), or "same" /
            "valid" (Keras; "same" with stride > 1 puts the odd extra row or column after).
        stride: int or pair (Keras' ``strides``).
        leaky_relu_slope: None, or the negative slope of a LeakyReLU after every layer.
        num_layers: number of stacked ConvLSTM layers.
        dilation: int or pair (Keras' ``dilation_rate``); stride > 1 together with
            dilation > 1 is refused (as in Keras).
        activation, recurrent_activation: Keras names ("tanh", "sigmoid", "hard_sigmoid",
            "relu", "linear", "elu", "softsign", ...) or a callable.
        use_bias, unit_forget_bias: as in Keras.
        kernel_initializer, recurrent_initializer, bias_initializer: as in Keras.
        peephole, peephole_initializer: the paper's peepholes (Shi et al. 2015, eq. 3; beyond
            Keras): i and f also see ``p . c_{t-1}``, o sees ``p . c_t``, one weight per
            channel in a ``peephole (3, F)`` weight (rows i, f, o) after the bias, drawn by
            ``peephole_initializer`` (default "zeros": the plain layer's numbers).
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

    __signature__ = signature_of(ConvLSTMOptions)
    options_class = ConvLSTMOptions
    cell_class = ConvLSTM2DCell

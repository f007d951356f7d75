"""The plumbing of the layers with a kernel (Dense and the convolutions): the ``activation=``
option with its derivative (:class:`LayerActivation`) and the kernel, bias, initializer, dtype and
seed options with weight creation (:class:`KernelLayer`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from convlstm import _validation as check
from convlstm import initializers
from convlstm.functional import activations
from convlstm.functional.dense_ops import (
    softmax,
    softmax_backward,
)
from convlstm.functional.windows import Pads
from convlstm.layers.base import CachedLayer


class LayerActivation:
    """A layer's ``activation=`` option, applied with its derivative.

    Accepts the names of ``functional.activations`` (whose derivatives are written in terms of
    the output, so only the output is kept), ``"softmax"`` (over the last axis), an
    ``activations.Activation`` with a derivative, or a plain callable (inference only: a
    training forward through it raises ``TypeError``). Only names can be serialised.
    """

    def __init__(self, owner: str, identifier: object) -> None:
        if isinstance(identifier, str) and identifier == "softmax":
            self.name, self.function = "softmax", None
        else:
            self.function = activations.get(owner, "activation", identifier)
            self.name = self.function.name
        self.named = self.function is None or activations.ACTIVATIONS.get(self.name) is (
            self.function
        )
        self.differentiable = self.function is None or self.function.derivative is not None

    def apply(
        self, owner: str, z: np.ndarray, training: bool, in_place: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``(y, saved)``: the activation of ``z`` and what :meth:`backward` needs (if training).

        ``in_place`` allows overwriting ``z`` (a fresh array the layer owns).
        """
        if training and not self.differentiable:
            raise TypeError(
                f"{owner}: the callable activation {self.name!r} has no derivative, so it cannot "
                "be trained through; use a Keras name, or an activations.Activation with a "
                "derivative."
            )
        if self.name == "linear" and self.named:
            return (z if in_place else z.copy()), None
        if self.function is None:
            y = softmax(z, -1)
        else:
            y = self.function(z, out=z if in_place else None)
        return y, (y if training else None)

    def backward(self, y: np.ndarray | None, d_y: np.ndarray) -> np.ndarray:
        """The gradient of the activation's input, from its output ``y`` and ``d_y``."""
        if y is None:  # linear
            return d_y
        if self.function is None:
            return softmax_backward(y, d_y, -1)
        d_x = self.function.derivative_into(y, np.empty(y.shape, np.result_type(y, d_y)))
        d_x *= d_y
        return d_x

    def config(self, owner: str) -> str:
        """The name to store in a config; a callable cannot be serialised."""
        if not self.named:
            raise TypeError(
                f"{owner}.get_config: activation is the callable {self.name!r}, which cannot be "
                "serialised; pass a Keras activation name instead."
            )
        return self.name


@dataclass
class KernelCache:
    """What Dense and the convolutions keep from a training forward."""

    x: np.ndarray  # the input (convolutions: channels-last and zero padded by pads)
    activation_output: np.ndarray | None  # what LayerActivation.backward needs (None: linear)
    pads: Pads | None = None  # convolutions: the (before, after) padding per spatial axis


class KernelLayer(CachedLayer):
    """A layer with a ``kernel``, an optional ``bias`` and an ``activation``: Dense and the
    convolutions. It owns their shared options, weight creation and config entries; each
    subclass validates its own arguments first, then calls this ``__init__``."""

    def __init__(
        self,
        activation: str | Any,
        use_bias: bool,
        kernel_initializer: str,
        bias_initializer: str,
        dtype: str | np.dtype,
        seed: int | None,
    ) -> None:
        owner = type(self).__name__
        self.activation = LayerActivation(owner, activation)
        self.use_bias = check.boolean(owner, "use_bias", use_bias)
        self.kernel_initializer = initializers.check(
            owner, "kernel_initializer", kernel_initializer
        )
        self.bias_initializer = initializers.check(owner, "bias_initializer", bias_initializer)
        self.dtype = check.float_dtype(owner, dtype)
        self.seed = check.seed_arg(owner, seed)
        self._empty_weights()

    @property
    def built(self) -> bool:
        return "kernel" in self.params

    def _create_weights(self, kernel_shape: tuple[int, ...]) -> None:
        """Initialise ``kernel`` (kernel_shape) and, with use_bias, ``bias`` (kernel_shape[-1],)
        from the seed, in Keras order."""
        rng = np.random.default_rng(self.seed)
        params = {
            "kernel": initializers.initialize(
                self.kernel_initializer, kernel_shape, rng, self.dtype
            )
        }
        if self.use_bias:
            params["bias"] = initializers.initialize(
                self.bias_initializer, kernel_shape[-1:], rng, self.dtype
            )
        self._set_new_weights(params)

    def _shared_config(self) -> dict[str, Any]:
        """The config entries of the options this class owns."""
        return {
            "activation": self.activation.config(type(self).__name__),
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
            "dtype": self.dtype.name,
            "seed": self.seed,
        }

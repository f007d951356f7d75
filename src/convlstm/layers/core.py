"""Dense, Flatten, Dropout and the activation layers, each with a forward and a backward pass.

Also the plumbing the other feed-forward layers (conv, normalization, wrappers) share:
:class:`CachedLayer` (the one-cache training contract of ``layers/base.py``),
:class:`LayerActivation` (an ``activation=`` option with its derivative) and
:class:`KernelLayer` (the kernel, bias, activation, initializer, dtype and seed options of Dense
and the convolutions).

Layers with weights (Dense, Conv2D, ...) compute in their ``dtype`` and cast the input to it.
Layers without weights keep a float32 or float64 input's dtype and cast anything else (ints,
bools, float16) to float32. No layer modifies the caller's array or returns a view of it.
"""

from __future__ import annotations

import math
import numbers
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from convlstm import _validation as check
from convlstm import initializers
from convlstm.functional import activations
from convlstm.functional.dense_ops import (
    dense_backward,
    dense_forward,
    softmax,
    softmax_backward,
)
from convlstm.layers.base import Layer
from convlstm.registry import register

DATA_FORMATS = ("channels_last", "channels_first")

# ---------------------------------------------------------------------------------- plumbing


class CachedLayer(Layer):
    """A layer that keeps the cache of its last training forward for one ``backward`` call.

    Every forward ends with :meth:`_keep` (a training one stores its cache, an inference one
    drops the previous cache, as the recurrent layers do) and ``backward`` starts with
    :meth:`_consume`.
    """

    params: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]
    _cache: tuple[Any, tuple[int, ...], np.dtype] | None = None

    def _keep(
        self, cache: Any, output: np.ndarray | None, gradient_dtype: np.dtype | None = None
    ) -> None:
        """Replace the cache: every forward calls this, an inference one with ``None``.

        ``d_output`` will be checked against the output's shape and cast to ``gradient_dtype``
        (default: the output's dtype).
        """
        if output is None:
            self._cache = None
            return
        self._cache = (cache, output.shape, gradient_dtype or output.dtype)

    def _consume(self, d_output: object) -> tuple[Any, np.ndarray]:
        """The cache of the last forward (if it was a training one) and the checked
        ``d_output``; the cache is cleared."""
        owner = f"{type(self).__name__}.backward"
        if self._cache is None:
            raise RuntimeError(
                f"{owner}: no training forward to differentiate; call "
                "forward(x, training=True) before backward (each backward consumes its cache)."
            )
        cache, shape, dtype = self._cache
        d_output = check.numeric_array(owner, "d_output", d_output, dtype)
        check.check_shape(owner, "d_output", d_output, shape)
        self._cache = None
        return cache, d_output

    def _empty_weights(self) -> None:
        self.params = {}
        self.grads = {}

    def _set_new_weights(self, params: dict[str, np.ndarray]) -> None:
        self.params = params
        self.grads = {key: np.zeros_like(value) for key, value in params.items()}


def float_input(owner: str, x: object) -> np.ndarray:
    """``x`` as float32 or float64 (kept), or cast to float32 (ints, bools, float16)."""
    array = np.asarray(x)
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"{owner}: expected x to be a real numeric array (bool, int or float); "
            f"got dtype {array.dtype}."
        )
    if array.dtype.name in check.FLOAT_DTYPES:
        return array
    return array.astype(np.float32)


def shape_arg(owner: str, name: str, value: object) -> tuple[int | None, ...]:
    """A shape given to ``build`` or ``compute_output_shape``: a sequence of ints >= 0 or None."""
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise TypeError(f"{owner}: expected {name} to be a tuple of ints; got {value!r}.")
    items = tuple(value)
    for item in items:
        if item is not None and (
            not isinstance(item, numbers.Integral) or isinstance(item, bool) or item < 0
        ):
            raise TypeError(
                f"{owner}: expected {name} to be a tuple of ints >= 0 (or None); got {value!r}."
            )
    return tuple(None if item is None else int(item) for item in items)


def training_arg(owner: str, training: object) -> bool:
    return check.boolean(owner, "training", training)


def float_arg(owner: str, name: str, value: object, minimum: float | None = None) -> float:
    """A real number (not a bool) as a float, optionally at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: expected {name} to be a float; got {value!r}.")
    if minimum is not None and not value >= minimum:
        raise ValueError(f"{owner}: expected {name} to be a float >= {minimum}; got {value!r}.")
    return float(value)


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


# ------------------------------------------------------------------------------------- Dense


@register
class Dense(KernelLayer):
    """Densely connected layer on the last axis, as Keras' ``Dense``: ``activation(x @ W + b)``.

    Built lazily from the first input (or by :meth:`build`): ``Dense(10)`` needs no input size.

    Args:
        units: output features.
        activation: a Keras name ("relu", "sigmoid", "tanh", "softmax", ..., None = "linear") or
            a callable (inference only).
        use_bias: add a bias.
        kernel_initializer, bias_initializer: Keras initializer names.
        dtype: "float32" (default) or "float64"; inputs are cast to it.
        seed: seeds the initializers (None: fresh entropy).

    Weights (Keras order and layout): ``kernel`` (in_features, units), ``bias`` (units,).
    """

    def __init__(
        self,
        units: int,
        activation: str | Any = None,
        use_bias: bool = True,
        *,
        kernel_initializer: str = "glorot_uniform",
        bias_initializer: str = "zeros",
        dtype: str | np.dtype = "float32",
        seed: int | None = None,
    ) -> None:
        self.units = check.positive_int(type(self).__name__, "units", units)
        super().__init__(activation, use_bias, kernel_initializer, bias_initializer, dtype, seed)

    @property
    def in_features(self) -> int | None:
        """Size of the input's last axis, once built."""
        return self.params["kernel"].shape[0] if self.built else None

    def _expected(self) -> tuple:
        return ("batch", "...", self.in_features or "features")

    def build(self, input_shape: Sequence[int | None]) -> None:
        """Create the weights for inputs of ``input_shape`` (batch, ..., in_features)."""
        owner = f"{type(self).__name__}.build"
        shape = shape_arg(owner, "input_shape", input_shape)
        if len(shape) < 2 or not shape[-1] or (self.built and shape[-1] != self.in_features):
            raise ValueError(
                f"{owner}: expected input_shape {check.shape_text(self._expected())}; "
                f"got {shape!r}."
            )
        if not self.built:
            self._create_weights((shape[-1], self.units))

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple:
        """``(*input_shape[:-1], units)``."""
        shape = shape_arg(f"{type(self).__name__}.compute_output_shape", "input_shape", input_shape)
        return (*shape[:-1], self.units)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """``activation(x @ kernel + bias)``.

        Args:
            x: (batch, ..., in_features); integers are cast to the layer's dtype.
            training: keep the cache for :meth:`backward`.

        Returns:
            (batch, ..., units).
        """
        owner = f"{type(self).__name__}.forward"
        training = training_arg(owner, training)
        x = check.numeric_array(owner, "x", x, self.dtype)
        if x.ndim < 2 or (self.built and x.shape[-1] != self.in_features):
            raise ValueError(
                f"{owner}: expected x of shape {check.shape_text(self._expected())}; "
                f"got {check.shape_text(x.shape)}."
            )
        self.build(x.shape)
        z = dense_forward(x, self.params["kernel"], self.params.get("bias"))
        y, saved = self.activation.apply(owner, z, training, in_place=True)
        self._keep((x, saved), y if training else None)
        return y

    def backward(self, d_output: np.ndarray) -> np.ndarray:
        """Fill ``grads`` from d_output (batch, ..., units); return d_x (batch, ..., in)."""
        (x, saved), d_output = self._consume(d_output)
        d_z = self.activation.backward(saved, d_output)
        d_x, self.grads["kernel"], d_bias = dense_backward(d_z, x, self.params["kernel"])
        if self.use_bias:
            self.grads["bias"] = d_bias
        return d_x

    def get_config(self) -> dict[str, Any]:
        return {"units": self.units, **self._shared_config()}


# ---------------------------------------------------------------------------------- Flatten


@register
class Flatten(CachedLayer):
    """Flatten every axis but the batch: (batch, ...) -> (batch, prod(...)), as Keras.

    Args:
        data_format: "channels_last" (default), or "channels_first", which first moves the
            channel axis 1 to the end so the features come out in channels-last order (Keras).
            None means "channels_last".
    """

    def __init__(self, data_format: str | None = "channels_last") -> None:
        owner = type(self).__name__
        data_format = "channels_last" if data_format is None else data_format
        self.data_format = check.choice(owner, "data_format", data_format, DATA_FORMATS)
        self._empty_weights()

    def build(self, input_shape: Sequence[int | None]) -> None:
        """Nothing to create; checks the shape."""
        self.compute_output_shape(input_shape)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple:
        owner = f"{type(self).__name__}.compute_output_shape"
        shape = shape_arg(owner, "input_shape", input_shape)
        if not shape:
            raise ValueError(f"{owner}: expected input_shape (batch, ...); got ().")
        rest = shape[1:]
        return (shape[0], None if None in rest else math.prod(rest))

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """(batch, ...) -> (batch, features); a (batch,) input becomes (batch, 1)."""
        owner = f"{type(self).__name__}.forward"
        training = training_arg(owner, training)
        x = float_input(owner, x)
        if x.ndim < 1:
            raise ValueError(f"{owner}: expected x of shape (batch, ...); got ().")
        moved = x
        if self.data_format == "channels_first" and x.ndim > 2:
            moved = np.moveaxis(x, 1, -1)
        y = moved.reshape(x.shape[0], math.prod(x.shape[1:]))
        if np.shares_memory(y, x):
            y = y.copy()
        self._keep(x.shape, y if training else None)
        return y

    def backward(self, d_output: np.ndarray) -> np.ndarray:
        x_shape, d_output = self._consume(d_output)
        if self.data_format == "channels_first" and len(x_shape) > 2:
            moved_shape = (x_shape[0], *x_shape[2:], x_shape[1])
            return np.moveaxis(d_output.reshape(moved_shape), -1, 1).copy()
        return d_output.reshape(x_shape).copy()

    def get_config(self) -> dict[str, Any]:
        return {"data_format": self.data_format}


# ---------------------------------------------------------------------------------- Dropout


@register
class Dropout(CachedLayer):
    """Inverted dropout, as Keras' ``Dropout``: only when ``training=True``.

    In training each value is kept with probability ``1 - rate`` and scaled by
    ``1 / (1 - rate)`` (dropped values become 0); at inference the input passes unchanged. The
    mask comes from ``self.rng``, a ``np.random.Generator`` seeded from ``seed`` at construction
    (never the global random state): a new layer with the same seed draws the same masks, and
    each training call draws the next one. ``backward`` reuses the last training call's mask.

    Args:
        rate: fraction of the values to drop, in [0, 1) (as ConvLSTM2D's dropout; Keras also
            accepts 1, which zeroes everything).
        seed: None (fresh entropy) or a non-negative int.
    """

    def __init__(self, rate: float, seed: int | None = None) -> None:
        owner = type(self).__name__
        self.rate = check.rate(owner, "rate", rate)
        self.seed = check.seed_arg(owner, seed)
        self.rng = np.random.default_rng(self.seed)
        self._empty_weights()

    def build(self, input_shape: Sequence[int | None]) -> None:
        """Nothing to create."""

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple:
        return shape_arg(f"{type(self).__name__}.compute_output_shape", "input_shape", input_shape)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Drop and rescale (training) or copy (inference) ``x`` of any shape."""
        owner = f"{type(self).__name__}.forward"
        training = training_arg(owner, training)
        x = float_input(owner, x)
        if not training or self.rate == 0.0:
            y, keep = x.copy(), None
        else:
            keep = self.rng.random(x.shape) >= self.rate
            y = np.where(keep, x / x.dtype.type(1.0 - self.rate), x.dtype.type(0.0))
        self._keep(keep, y if training else None)
        return y

    def backward(self, d_output: np.ndarray) -> np.ndarray:
        """The upstream gradient through the same mask and scale."""
        keep, d_output = self._consume(d_output)
        if keep is None:
            return d_output.copy()
        scale = d_output.dtype.type(1.0 - self.rate)
        return np.where(keep, d_output / scale, d_output.dtype.type(0.0))

    def get_config(self) -> dict[str, Any]:
        return {"rate": self.rate, "seed": self.seed}


# ------------------------------------------------------------------------ activation layers


class _Elementwise(CachedLayer):
    """A weightless layer computing ``y = f(x)`` with the output shape of the input."""

    def build(self, input_shape: Sequence[int | None]) -> None:
        """Nothing to create."""

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple:
        return shape_arg(f"{type(self).__name__}.compute_output_shape", "input_shape", input_shape)

    @abstractmethod
    def _apply(self, owner: str, x: np.ndarray, training: bool) -> tuple[np.ndarray, Any]:
        """``(y, saved)``: the output and what ``_gradient`` needs (only used when training)."""

    @abstractmethod
    def _gradient(self, saved: Any, d_output: np.ndarray) -> np.ndarray:
        """The input's gradient from ``saved`` and the output's gradient."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Apply the function to ``x`` of any shape (float32/float64 kept, others cast)."""
        owner = f"{type(self).__name__}.forward"
        training = training_arg(owner, training)
        x = float_input(owner, x)
        y, saved = self._apply(owner, x, training)
        self._keep(saved, y if training else None)
        return y

    def backward(self, d_output: np.ndarray) -> np.ndarray:
        """The gradient of the input for ``d_output`` (the forward output's shape)."""
        saved, d_output = self._consume(d_output)
        return self._gradient(saved, d_output)


@register
class Activation(_Elementwise):
    """Apply a named activation, as Keras' ``Activation`` layer.

    Args:
        activation: a Keras name ("relu", "sigmoid", "tanh", "softmax" over the last axis,
            "linear", "elu", ...) or a callable (inference only).
    """

    def __init__(self, activation: str | Any) -> None:
        self.activation = LayerActivation(type(self).__name__, activation)
        self._empty_weights()

    def _apply(self, owner, x, training):
        return self.activation.apply(owner, x, training, in_place=False)

    def _gradient(self, saved, d_output):
        d_x = self.activation.backward(saved, d_output)
        return d_x.copy() if d_x is d_output else d_x

    def get_config(self) -> dict[str, Any]:
        return {"activation": self.activation.config(type(self).__name__)}


@register
class Sigmoid(Activation):
    """``1 / (1 + exp(-x))``; Keras' ``Activation("sigmoid")``."""

    def __init__(self) -> None:
        super().__init__("sigmoid")

    def get_config(self) -> dict[str, Any]:
        return {}


@register
class Tanh(Activation):
    """``tanh(x)``; Keras' ``Activation("tanh")``."""

    def __init__(self) -> None:
        super().__init__("tanh")

    def get_config(self) -> dict[str, Any]:
        return {}


@register
class ReLU(_Elementwise):
    """Rectified linear unit with Keras' ``ReLU`` options::

        f(x) = min(x, max_value)                 if x > threshold
        f(x) = negative_slope * (x - threshold)  otherwise

    At the kinks the derivative is the one Keras' backends use: 0 at ``x == threshold``, 1 at
    ``x == max_value``.

    Args:
        max_value: None (no cap) or a float >= 0.
        negative_slope: float >= 0, the slope below the threshold.
        threshold: float >= 0.
    """

    def __init__(
        self,
        max_value: float | None = None,
        negative_slope: float = 0.0,
        threshold: float = 0.0,
    ) -> None:
        owner = type(self).__name__
        self.max_value = (
            None if max_value is None else float_arg(owner, "max_value", max_value, 0.0)
        )
        self.negative_slope = float_arg(owner, "negative_slope", negative_slope, 0.0)
        self.threshold = float_arg(owner, "threshold", threshold, 0.0)
        self._empty_weights()

    def _apply(self, owner, x, training):
        above = x > self.threshold
        y = np.where(above, x, x.dtype.type(0.0))
        slope = above.astype(x.dtype) if training else None
        if self.max_value is not None:
            capped = y > self.max_value
            y[capped] = self.max_value
            if training:
                slope[capped] = 0.0
        if self.negative_slope:
            y += self.negative_slope * np.minimum(x - self.threshold, 0)
            if training:
                slope[x < self.threshold] = self.negative_slope
        return y, slope

    def _gradient(self, slope, d_output):
        return d_output * slope

    def get_config(self) -> dict[str, Any]:
        return {
            "max_value": self.max_value,
            "negative_slope": self.negative_slope,
            "threshold": self.threshold,
        }


@register
class LeakyReLU(_Elementwise):
    """``x`` where ``x >= 0``, ``negative_slope * x`` elsewhere; Keras' ``LeakyReLU``.

    Args:
        negative_slope: float >= 0 (Keras' default 0.3).
    """

    def __init__(self, negative_slope: float = 0.3) -> None:
        self.negative_slope = float_arg(type(self).__name__, "negative_slope", negative_slope, 0.0)
        self._empty_weights()

    def _apply(self, owner, x, training):
        y = activations.leaky_relu(x, self.negative_slope)
        # At x == 0 the slope is negative_slope, as the TensorFlow and torch gradients have it.
        return y, (x > 0 if training else None)

    def _gradient(self, positive, d_output):
        return activations.leaky_relu_backward(d_output, positive, self.negative_slope)

    def get_config(self) -> dict[str, Any]:
        return {"negative_slope": self.negative_slope}


@register
class Softmax(_Elementwise):
    """``exp(x) / sum(exp(x))`` over ``axis``; Keras' ``Softmax`` layer (without a mask).

    Args:
        axis: an int or a tuple of ints (default -1, the last axis).
    """

    def __init__(self, axis: int | Sequence[int] = -1) -> None:
        owner = type(self).__name__
        if isinstance(axis, numbers.Integral) and not isinstance(axis, bool):
            self.axis: int | tuple[int, ...] = int(axis)
        elif (
            isinstance(axis, Sequence)
            and not isinstance(axis, str)
            and len(axis) > 0
            and all(isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in axis)
        ):
            self.axis = tuple(int(a) for a in axis)
        else:
            raise TypeError(
                f"{owner}: expected axis to be an int or a tuple of ints; got {axis!r}."
            )
        self._empty_weights()

    def _apply(self, owner, x, training):
        axes = self.axis if isinstance(self.axis, tuple) else (self.axis,)
        if any(not -x.ndim <= a < x.ndim for a in axes):
            raise ValueError(
                f"{owner}: expected x with an axis {self.axis}; got shape "
                f"{check.shape_text(x.shape)}."
            )
        y = softmax(x, self.axis)
        return y, (y if training else None)

    def _gradient(self, y, d_output):
        return softmax_backward(y, d_output, self.axis)

    def get_config(self) -> dict[str, Any]:
        return {"axis": list(self.axis) if isinstance(self.axis, tuple) else self.axis}

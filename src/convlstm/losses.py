"""Losses by their Keras 3 names, each giving the reduced loss and its gradient.

Reduction is Keras' default, ``"sum_over_batch_size"``: a loss per sample (the mean over the
last axis, or for categorical crossentropy the sum over the class axis), then the mean over
every sample. ``gradient`` is d loss / d y_pred of that scalar.

Inputs may have any shape (at least one dimension); ``y_true`` and ``y_pred`` must have the same
shape. The math runs in ``y_pred``'s dtype when it is float32 or float64, otherwise in float64.
"""

from __future__ import annotations

import numbers
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from convlstm import _validation as check
from convlstm.functional.dense_ops import softmax
from convlstm.registry import config_arguments

# Keras' backend.epsilon(): probabilities are clipped to [EPSILON, 1 - EPSILON].
EPSILON = 1e-7


def _pair(owner: str, y_true: object, y_pred: object) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays in the computation dtype, after checking kinds and shapes."""
    y_pred = check.real_array(owner, "y_pred", y_pred)
    dtype = y_pred.dtype if y_pred.dtype.name in check.FLOAT_DTYPES else np.dtype("float64")
    y_pred = check.numeric_array(owner, "y_pred", y_pred, dtype)
    y_true = check.numeric_array(owner, "y_true", y_true, dtype)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"{owner}: expected y_true and y_pred of the same shape; got y_true "
            f"{check.shape_text(y_true.shape)} and y_pred {check.shape_text(y_pred.shape)}."
        )
    if y_pred.ndim == 0 or y_pred.size == 0:
        raise ValueError(
            f"{owner}: expected y_true and y_pred with at least one dimension and one element; "
            f"got shape {check.shape_text(y_pred.shape)}."
        )
    return y_true, y_pred


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # exp(-log(1 + exp(-z))) neither overflows nor loses the tiny values for very negative z.
    return np.exp(-np.logaddexp(0.0, -z))


class Loss(ABC):
    """Base class: ``loss(y_true, y_pred)`` is the reduced scalar, ``loss.gradient`` its slope."""

    name: str

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        """The mean of the per-sample losses.

        Args:
            y_true: targets, any shape with at least one dimension.
            y_pred: predictions, the shape of ``y_true``.

        Returns:
            The loss as a Python float.
        """
        y_true, y_pred = _pair(type(self).__name__, y_true, y_pred)
        return float(np.mean(self._losses(y_true, y_pred)))

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        """d loss / d y_pred.

        Args:
            y_true: targets, any shape with at least one dimension.
            y_pred: predictions, the shape of ``y_true``.

        Returns:
            An array of ``y_pred``'s shape, in the computation dtype.
        """
        y_true, y_pred = _pair(f"{type(self).__name__}.gradient", y_true, y_pred)
        return self._slope(y_true, y_pred)

    def value_and_gradient(
        self, y_true: np.ndarray, y_pred: np.ndarray
    ) -> tuple[float, np.ndarray]:
        """``(loss(y_true, y_pred), gradient(y_true, y_pred))``, checking and casting the arrays
        once: what a training step needs."""
        y_true, y_pred = _pair(f"{type(self).__name__}.value_and_gradient", y_true, y_pred)
        return float(np.mean(self._losses(y_true, y_pred))), self._slope(y_true, y_pred)

    def get_config(self) -> dict[str, Any]:
        """The Keras name and the constructor arguments."""
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        """Build a loss from ``get_config()`` output."""
        return cls(**config_arguments(cls, config, ignored=("name",)))

    def __repr__(self) -> str:
        arguments = ", ".join(
            f"{key}={value!r}" for key, value in self.get_config().items() if key != "name"
        )
        return f"{type(self).__name__}({arguments})"

    @abstractmethod
    def _losses(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        """Losses whose mean is the reduced loss (per element, or per sample)."""

    @abstractmethod
    def _slope(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        """d (reduced loss) / d y_pred."""


class MeanSquaredError(Loss):
    """``mean((y_pred - y_true) ** 2)``."""

    name = "mean_squared_error"

    def _losses(self, y_true, y_pred):
        error = np.subtract(y_pred, y_true)
        return np.square(error, out=error)

    def _slope(self, y_true, y_pred):
        error = np.subtract(y_pred, y_true)
        return np.multiply(error, error.dtype.type(2 / y_pred.size), out=error)


class MeanAbsoluteError(Loss):
    """``mean(|y_pred - y_true|)``; the subgradient where they are equal is 0."""

    name = "mean_absolute_error"

    def _losses(self, y_true, y_pred):
        return np.abs(y_pred - y_true)

    def _slope(self, y_true, y_pred):
        return np.sign(y_pred - y_true) / y_pred.size


class BinaryCrossentropy(Loss):
    """``mean(-(y log p + (1 - y) log(1 - p)))`` for probabilities or logits ``y_pred``.

    Probabilities are clipped to ``[1e-7, 1 - 1e-7]`` as Keras does, so the gradient is 0 where
    the clip changes them. Logits use ``max(z, 0) - z y + log(1 + exp(-|z|))``, which is finite
    for any finite ``z``.

    Args:
        from_logits: whether ``y_pred`` holds logits rather than probabilities.
    """

    name = "binary_crossentropy"

    def __init__(self, from_logits: bool = False) -> None:
        self.from_logits = check.boolean("BinaryCrossentropy", "from_logits", from_logits)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "from_logits": self.from_logits}

    def _losses(self, y_true, y_pred):
        if self.from_logits:
            return np.maximum(y_pred, 0) - y_pred * y_true + np.log1p(np.exp(-np.abs(y_pred)))
        p = np.clip(y_pred, EPSILON, 1 - EPSILON)
        return -(y_true * np.log(p) + (1 - y_true) * np.log(1 - p))

    def _slope(self, y_true, y_pred):
        if self.from_logits:
            return (_sigmoid(y_pred) - y_true) / y_pred.size
        p = np.clip(y_pred, EPSILON, 1 - EPSILON)
        slope = (1 - y_true) / (1 - p) - y_true / p
        return np.where(p == y_pred, slope, 0) / y_pred.size


class CategoricalCrossentropy(Loss):
    """Per sample ``-sum_k y_k log p_k`` over the class axis, for probabilities or logits.

    As in Keras, probabilities are first divided by their sum over the class axis and then
    clipped to ``[1e-7, 1 - 1e-7]``; the gradient differentiates both steps. Logits go through
    a log-softmax.

    Args:
        from_logits: whether ``y_pred`` holds logits rather than probabilities.
        axis: the class axis.
    """

    name = "categorical_crossentropy"

    def __init__(self, from_logits: bool = False, axis: int = -1) -> None:
        owner = "CategoricalCrossentropy"
        self.from_logits = check.boolean(owner, "from_logits", from_logits)
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise TypeError(f"{owner}: expected axis to be an int; got {axis!r}.")
        self.axis = int(axis)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "from_logits": self.from_logits, "axis": self.axis}

    def _class_axis(self, y_pred: np.ndarray) -> int:
        if not -y_pred.ndim <= self.axis < y_pred.ndim:
            raise ValueError(
                f"CategoricalCrossentropy: expected axis in [-{y_pred.ndim}, {y_pred.ndim}) for "
                f"y_pred of shape {check.shape_text(y_pred.shape)}; got {self.axis}."
            )
        return self.axis

    def _losses(self, y_true, y_pred):
        axis = self._class_axis(y_pred)
        if self.from_logits:
            shifted = y_pred - np.max(y_pred, axis=axis, keepdims=True)
            log_p = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
        else:
            q = y_pred / np.sum(y_pred, axis=axis, keepdims=True)
            log_p = np.log(np.clip(q, EPSILON, 1 - EPSILON))
        return -np.sum(y_true * log_p, axis=axis)

    def _slope(self, y_true, y_pred):
        axis = self._class_axis(y_pred)
        samples = y_pred.size // y_pred.shape[axis]
        if self.from_logits:
            probabilities = softmax(y_pred, axis)
            return (probabilities * np.sum(y_true, axis=axis, keepdims=True) - y_true) / samples
        total = np.sum(y_pred, axis=axis, keepdims=True)
        q = y_pred / total
        r = np.clip(q, EPSILON, 1 - EPSILON)
        d_q = np.where(r == q, -y_true / r, 0)
        # q = p / sum(p), so dq_k / dp_j = (delta_kj - q_k) / sum(p).
        d_p = (d_q - np.sum(d_q * q, axis=axis, keepdims=True)) / total
        return d_p / samples


LOSSES: dict[str, type[Loss]] = {
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "mae": MeanAbsoluteError,
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
}


def get(identifier: str | Loss) -> Loss:
    """A default-configured loss for a Keras name or alias (any case), or the loss itself.

    Args:
        identifier: ``"mse"``, ``"mean_squared_error"``, ``"mae"``, ``"mean_absolute_error"``,
            ``"binary_crossentropy"``, ``"categorical_crossentropy"``, or a ``Loss``.

    Returns:
        A ``Loss`` instance.
    """
    if isinstance(identifier, Loss):
        return identifier
    if not isinstance(identifier, str):
        raise TypeError(f"losses.get: expected a loss name or a Loss; got {identifier!r}.")
    if identifier.lower() not in LOSSES:
        listed = ", ".join(repr(name) for name in LOSSES)
        raise ValueError(f"losses.get: unknown loss {identifier!r}; expected one of {listed}.")
    return LOSSES[identifier.lower()]()

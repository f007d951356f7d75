"""BatchNormalization, Keras-compatible, with the training-mode backward pass."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from convlstm import _validation as check
from convlstm import initializers
from convlstm.functional.dense_ops import (
    batch_norm_backward,
    batch_norm_inference,
    batch_norm_train,
)
from convlstm.layers.base import CachedLayer, float_arg, shape_arg, training_arg
from convlstm.registry import register

WEIGHT_NAMES = ("gamma", "beta", "moving_mean", "moving_variance")


@dataclass
class BatchNormCache:
    """What BatchNormalization keeps from a training forward."""

    x_hat: np.ndarray  # the normalised input, x's shape
    inv_std: np.ndarray  # (C,): 1 / sqrt(batch variance + epsilon)
    axis: int  # the feature axis


@register
class BatchNormalization(CachedLayer):
    """Normalize each feature of ``axis``, as Keras' ``BatchNormalization``::

        y = gamma * (x - mean) / sqrt(variance + epsilon) + beta

    With ``training=True`` the mean and the (biased) variance are the batch's, taken over every
    axis but ``axis``, and the moving statistics are updated as Keras does::

        moving_mean     = moving_mean * momentum + mean * (1 - momentum)
        moving_variance = moving_variance * momentum + variance * (1 - momentum)

    With ``training=False`` (inference) the moving statistics are used and nothing changes.

    Weights, in Keras order: ``gamma`` (when scale), ``beta`` (when center), ``moving_mean``,
    ``moving_variance``, each (C,). All four are in ``params`` (so ``get_weights`` and
    ``set_weights`` match Keras) and ``grads`` has the same keys, but only gamma and beta are
    trained: :attr:`trainable_params` is ``("gamma", "beta")`` (those present), and the
    moving-statistics entries of ``grads`` stay zero. An optimizer must update only the keys in
    ``trainable_params``; the moving statistics change only through training forwards.

    Args:
        axis: the feature axis (an int; -1 = last, 1 for channels_first images).
        momentum: the moving-average momentum.
        epsilon: added to the variance.
        center: learn an offset ``beta``.
        scale: learn a factor ``gamma``.
        beta_initializer: a Keras initializer name.
        gamma_initializer: a Keras initializer name.
        moving_mean_initializer: a Keras initializer name.
        moving_variance_initializer: a Keras initializer name.
        dtype: "float32" (default) or "float64"; inputs are cast to it.
        seed: seeds the initializers (only matters for random ones).
    """

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        *,
        beta_initializer: str = "zeros",
        gamma_initializer: str = "ones",
        moving_mean_initializer: str = "zeros",
        moving_variance_initializer: str = "ones",
        dtype: str | np.dtype = "float32",
        seed: int | None = None,
    ) -> None:
        owner = type(self).__name__
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise TypeError(f"{owner}: expected axis to be an int; got {axis!r}.")
        self.axis = int(axis)
        self.momentum = float_arg(owner, "momentum", momentum)
        if not 0.0 <= self.momentum <= 1.0:
            raise ValueError(f"{owner}: expected momentum to be in [0, 1]; got {momentum!r}.")
        self.epsilon = float_arg(owner, "epsilon", epsilon)
        if not self.epsilon > 0.0:
            raise ValueError(f"{owner}: expected epsilon to be a float > 0; got {epsilon!r}.")
        self.center = check.boolean(owner, "center", center)
        self.scale = check.boolean(owner, "scale", scale)
        self.beta_initializer = initializers.check(owner, "beta_initializer", beta_initializer)
        self.gamma_initializer = initializers.check(owner, "gamma_initializer", gamma_initializer)
        self.moving_mean_initializer = initializers.check(
            owner, "moving_mean_initializer", moving_mean_initializer
        )
        self.moving_variance_initializer = initializers.check(
            owner, "moving_variance_initializer", moving_variance_initializer
        )
        self.dtype = check.float_dtype(owner, dtype)
        self.seed = check.seed_arg(owner, seed)
        self._rank: int | None = None
        self._empty_weights()

    @property
    def trainable_params(self) -> tuple[str, ...]:
        """The keys an optimizer updates: ``gamma`` and ``beta`` (those present), never the
        moving statistics."""
        return tuple(key for key in ("gamma", "beta") if key in self.params)

    @property
    def built(self) -> bool:
        return "moving_mean" in self.params

    @property
    def features(self) -> int | None:
        """Size of the normalized axis, once built."""
        return self.params["moving_mean"].shape[0] if self.built else None

    # ------------------------------------------------------------------- shapes

    def _expected(self, rank: int) -> tuple:
        names: list[object] = ["batch", *(f"d{i}" for i in range(1, rank))]
        names[self.axis] = self.features or "features"
        return tuple(names)

    def _checked_axis(self, owner: str, name: str, shape: tuple) -> int:
        """The non-negative feature axis for ``shape``; raise if the shape does not fit."""
        rank = len(shape)
        fits = -rank <= self.axis < rank and shape[self.axis]
        if fits and self.built:
            fits = rank == self._rank and shape[self.axis] == self.features
        if not fits:
            needed = self.axis + 1 if self.axis >= 0 else -self.axis
            wanted = self._expected(self._rank or max(rank, needed, 2))
            raise ValueError(
                f"{owner}: expected {name} of shape {check.shape_text(wanted)} (axis={self.axis}); "
                f"got {check.shape_text(shape)}."
            )
        return self.axis % rank

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple:
        """The input shape."""
        owner = f"{type(self).__name__}.compute_output_shape"
        shape = shape_arg(owner, "input_shape", input_shape)
        self._checked_axis(owner, "input_shape", shape)
        return shape

    def build(self, input_shape: Sequence[int | None]) -> None:
        """Create the four (C,) weights for inputs of ``input_shape`` (C = input_shape[axis])."""
        owner = f"{type(self).__name__}.build"
        shape = shape_arg(owner, "input_shape", input_shape)
        self._checked_axis(owner, "input_shape", shape)
        if self.built:
            return
        features = (shape[self.axis],)
        rng = np.random.default_rng(self.seed)
        chosen = {
            "gamma": self.gamma_initializer if self.scale else None,
            "beta": self.beta_initializer if self.center else None,
            "moving_mean": self.moving_mean_initializer,
            "moving_variance": self.moving_variance_initializer,
        }
        self._rank = len(shape)
        self._set_new_weights(
            {
                key: initializers.initialize(name, features, rng, self.dtype)
                for key, name in chosen.items()
                if name is not None
            }
        )

    # ------------------------------------------------------------------ compute

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Normalize ``x``; with ``training=True`` also update the moving statistics.

        Args:
            x: any shape with the features on ``axis``; integers are cast to the layer's dtype.
            training: use (and fold into the moving averages) the batch statistics, and keep
                the cache for :meth:`backward`.

        Returns:
            An array of x's shape.
        """
        owner = f"{type(self).__name__}.forward"
        training = training_arg(owner, training)
        x = check.numeric_array(owner, "x", x, self.dtype)
        axis = self._checked_axis(owner, "x", x.shape)
        self.build(x.shape)
        gamma, beta = self.params.get("gamma"), self.params.get("beta")
        if not training:
            self._keep(None, None)
            return batch_norm_inference(
                x,
                self.params["moving_mean"],
                self.params["moving_variance"],
                gamma,
                beta,
                axis,
                self.epsilon,
            )
        if x.size == 0:  # no values to take statistics of: the moving averages would be NaN
            raise ValueError(
                f"{owner}: expected x with at least one value per feature to compute batch "
                f"statistics in training; got shape {check.shape_text(x.shape)}."
            )
        y, mean, variance, x_hat, inv_std = batch_norm_train(x, gamma, beta, axis, self.epsilon)
        momentum = self.momentum
        for key, batch_value in (("moving_mean", mean), ("moving_variance", variance)):
            moving = self.params[key]
            moving *= momentum
            moving += batch_value * (1.0 - momentum)
        self._keep(BatchNormCache(x_hat, inv_std, axis), y)
        return y

    def backward(self, d_output: np.ndarray) -> np.ndarray:
        """Training-mode gradients: fill ``grads`` (gamma, beta; zeros for the moving
        statistics) and return d_x, both of x's shape."""
        cache, d_output = self._consume(d_output)
        d_x, d_gamma, d_beta = batch_norm_backward(
            d_output, cache.x_hat, cache.inv_std, self.params.get("gamma"), cache.axis
        )
        if self.scale:
            self.grads["gamma"] = d_gamma
        if self.center:
            self.grads["beta"] = d_beta
        for key in ("moving_mean", "moving_variance"):
            self.grads[key] = np.zeros_like(self.params[key])
        return d_x

    def get_config(self) -> dict[str, Any]:
        return {
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": self.beta_initializer,
            "gamma_initializer": self.gamma_initializer,
            "moving_mean_initializer": self.moving_mean_initializer,
            "moving_variance_initializer": self.moving_variance_initializer,
            "dtype": self.dtype.name,
            "seed": self.seed,
        }

"""Weight initializers by their Keras 3 names; each draws from a ``np.random.Generator``.

Fans follow Keras: for a kernel of shape (kh, kw, in, out), ``fan_in = kh*kw*in`` and
``fan_out = kh*kw*out``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from convlstm import _validation as validation
from convlstm import limits

Initializer = Callable[[tuple[int, ...], np.random.Generator], np.ndarray]

# Standard deviation of a unit normal truncated to [-2, 2]; Keras divides by it.
_TRUNCATED_STDDEV = 0.87962566103423978


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


def _truncated_normal(shape, rng: np.random.Generator, stddev: float) -> np.ndarray:
    values = rng.standard_normal(shape)
    outside = np.abs(values) > 2.0
    while outside.any():
        values[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2.0
    return values * stddev


def _variance_scaling(scale: float, mode: str, distribution: str) -> Initializer:
    def initialize(shape, rng):
        fan_in, fan_out = _fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        variance = scale / max(1.0, fan)
        if distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return rng.uniform(-limit, limit, shape)
        return _truncated_normal(shape, rng, math.sqrt(variance) / _TRUNCATED_STDDEV)

    return initialize


def _orthogonal(shape, rng):
    rows, cols = math.prod(shape[:-1]), shape[-1]
    gaussian = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(gaussian)
    q *= np.sign(np.diag(r))  # makes the decomposition unique, so q is uniformly distributed
    if rows < cols:
        q = q.T
    return q.reshape(shape)


INITIALIZERS: dict[str, Initializer] = {
    "zeros": lambda shape, rng: np.zeros(shape),
    "ones": lambda shape, rng: np.ones(shape),
    "random_normal": lambda shape, rng: rng.normal(0.0, 0.05, shape),
    "random_uniform": lambda shape, rng: rng.uniform(-0.05, 0.05, shape),
    "truncated_normal": lambda shape, rng: _truncated_normal(shape, rng, 0.05),
    "glorot_uniform": _variance_scaling(1.0, "fan_avg", "uniform"),
    "glorot_normal": _variance_scaling(1.0, "fan_avg", "normal"),
    "he_uniform": _variance_scaling(2.0, "fan_in", "uniform"),
    "he_normal": _variance_scaling(2.0, "fan_in", "normal"),
    "lecun_uniform": _variance_scaling(1.0, "fan_in", "uniform"),
    "lecun_normal": _variance_scaling(1.0, "fan_in", "normal"),
    "orthogonal": _orthogonal,
}


def check(owner: str, name: str, identifier: object) -> str:
    """Return ``identifier`` if it names a known initializer, else raise ``ValueError``."""
    if not isinstance(identifier, str):
        raise TypeError(f"{owner}: expected {name} to be an initializer name; got {identifier!r}.")
    if identifier not in INITIALIZERS:
        listed = ", ".join(sorted(INITIALIZERS))
        raise ValueError(f"{owner}: unknown {name} {identifier!r}; expected one of {listed}.")
    return identifier


def initialize(
    name: str, shape: tuple[int, ...], rng: np.random.Generator, dtype: np.dtype
) -> np.ndarray:
    """Draw a new array of ``shape`` and ``dtype`` from the initializer called ``name``; while a
    file or a config builds (:func:`convlstm.limits.building`), ``shape`` is checked first
    against the weight limits.

    Raises:
        TypeError: ``rng`` is not a ``np.random.Generator`` or ``shape`` is not ints.
        ValueError: an unknown name, a negative size, or a weight too large for this machine
            (the layer's sizes, such as filters or kernel_size, are named in the message).
    """
    owner = "initializers.initialize"
    name = check(owner, "name", name)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{owner}: expected rng to be a np.random.Generator; got {rng!r}.")
    if not isinstance(shape, tuple) or not all(
            isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in shape):
        raise TypeError(f"{owner}: expected shape to be a tuple of ints; got {shape!r}.")
    if any(n < 0 for n in shape):
        raise ValueError(f"{owner}: expected shape to be a tuple of ints >= 0; got {shape!r}.")
    limits.charge_weight(shape)
    validation.fits_in_memory(
        owner, "the weight (its shape set by the layer's filters or out_channels, units, "
        "kernel_size and in_channels)",
        shape, np.float64)
    return np.asarray(INITIALIZERS[name](shape, rng), dtype=dtype)

"""One helper to compare a layer's analytic gradients with central finite differences (float64).

The scalar checked is ``sum(forward(x) * upstream)`` for a fixed random ``upstream``, so every
output element contributes with its own weight.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

EPSILON = 1e-6
TOLERANCE = 1e-6


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """``max|a - n| / max(max|a|, max|n|)``: scale-free, and defined when both are near zero."""
    scale = max(np.abs(analytic).max(), np.abs(numeric).max(), 1e-12)
    return float(np.abs(analytic - numeric).max() / scale)


def numerical_gradient(scalar: Callable[[], float], array: np.ndarray) -> np.ndarray:
    """d scalar / d array by central differences, perturbing ``array`` in place and restoring it."""
    gradient = np.zeros_like(array)
    flat, flat_gradient = array.reshape(-1), gradient.reshape(-1)
    for index in range(flat.size):
        original = flat[index]
        flat[index] = original + EPSILON
        plus = scalar()
        flat[index] = original - EPSILON
        minus = scalar()
        flat[index] = original
        flat_gradient[index] = (plus - minus) / (2 * EPSILON)
    return gradient


def _as_tuple(output):
    return tuple(output) if isinstance(output, (tuple, list)) else (output,)


def check_gradients(layer, x: np.ndarray, *, seed: int = 0, **forward_kwargs) -> dict[str, float]:
    """Compare ``layer.backward`` with finite differences for the input and every weight.

    Args:
        layer: a float64 layer (a tuple output, as with ``return_state``, gets one upstream
            gradient per element, all passed to ``backward``).
        x: the input, float64.
        seed: seeds the upstream gradients.
        forward_kwargs: other arguments for ``forward`` (mask, initial_state, ...).

    Returns:
        The relative error per checked array (``"x"`` and each weight's unique name), after
        asserting that each is below ``TOLERANCE``.
    """
    rng = np.random.default_rng(seed)
    outputs = _as_tuple(layer.forward(x, training=True, **forward_kwargs))
    upstream = tuple(rng.normal(size=output.shape) for output in outputs)
    d_x = _as_tuple(layer.backward(*upstream))[0]

    def scalar() -> float:
        results = _as_tuple(layer.forward(x, **forward_kwargs))
        return float(sum(np.sum(out * up) for out, up in zip(results, upstream)))

    errors = {"x": relative_error(d_x, numerical_gradient(scalar, x))}
    for name, owner, key in layer.named_params():
        numeric = numerical_gradient(scalar, owner.params[key])
        errors[name] = relative_error(owner.grads[key], numeric)
    failing = {name: error for name, error in errors.items() if not error < TOLERANCE}
    assert not failing, f"gradient check failed (relative errors): {failing}"
    return errors

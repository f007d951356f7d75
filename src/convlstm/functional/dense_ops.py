"""Pure forward and backward kernels of the feed-forward layers: dense, batch normalization
and softmax (the convolution's are in ``functional.conv``).

Arrays in, arrays out; no state and no validation. Every ``*_backward`` takes the upstream
gradient and what its forward returned for the purpose, and returns the gradients.
"""

from __future__ import annotations

import numpy as np

# ------------------------------------------------------------------------------------- dense


def dense_forward(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """``x @ kernel + bias`` on the last axis.

    Args:
        x: (..., in_features).
        kernel: (in_features, units).
        bias: (units,) or None.

    Returns:
        (..., units).
    """
    z = x @ kernel
    if bias is not None:
        z += bias
    return z


def dense_backward(
    d_z: np.ndarray, x: np.ndarray, kernel: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`dense_forward`.

    Args:
        d_z: (..., units), the gradient of the output.
        x: (..., in_features), the forward input.
        kernel: (in_features, units).

    Returns:
        ``(d_x, d_kernel, d_bias)`` of shapes (..., in_features), (in_features, units), (units,).
    """
    units = kernel.shape[1]
    d_flat = d_z.reshape(-1, units)  # (rows, units)
    d_kernel = x.reshape(-1, kernel.shape[0]).T @ d_flat
    return d_z @ kernel.T, d_kernel, d_flat.sum(axis=0)


# ----------------------------------------------------------------------- batch normalization


def _along(vector: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    """View a per-feature (C,) vector so that it broadcasts along ``axis`` of an ndim array."""
    shape = [1] * ndim
    shape[axis] = vector.shape[0]
    return vector.reshape(shape)


def batch_norm_inference(
    x: np.ndarray,
    mean: np.ndarray,
    variance: np.ndarray,
    gamma: np.ndarray | None,
    beta: np.ndarray | None,
    axis: int,
    epsilon: float,
) -> np.ndarray:
    """``(x - mean) * gamma / sqrt(variance + epsilon) + beta`` with (C,) statistics on ``axis``.

    Args:
        x: any shape; ``axis`` (non-negative) holds the C features.
        mean, variance: (C,).
        gamma, beta: (C,) or None (scale 1, offset 0).
        axis: the feature axis.
        epsilon: added to the variance.

    Returns:
        An array of x's shape.
    """
    factor = 1.0 / np.sqrt(variance + epsilon)
    if gamma is not None:
        factor = factor * gamma
    y = (x - _along(mean, x.ndim, axis)) * _along(factor.astype(x.dtype), x.ndim, axis)
    if beta is not None:
        y += _along(beta, x.ndim, axis)
    return y


def batch_norm_train(
    x: np.ndarray,
    gamma: np.ndarray | None,
    beta: np.ndarray | None,
    axis: int,
    epsilon: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Normalize with the batch's own statistics (the biased variance, as Keras).

    Args:
        x: any shape; ``axis`` (non-negative) holds the C features; every other axis is reduced.
        gamma, beta: (C,) or None.
        axis: the feature axis.
        epsilon: added to the variance.

    Returns:
        ``(y, mean, variance, x_hat, inv_std)``: y and the normalized ``x_hat`` of x's shape;
        the batch ``mean``, ``variance`` and ``inv_std = 1/sqrt(variance + epsilon)``, each (C,).
    """
    axes = tuple(i for i in range(x.ndim) if i != axis)
    mean = x.mean(axis=axes)
    centered = x - _along(mean, x.ndim, axis)
    variance = np.square(centered).mean(axis=axes)
    inv_std = 1.0 / np.sqrt(variance + epsilon)
    x_hat = centered
    x_hat *= _along(inv_std, x.ndim, axis)
    y = x_hat * _along(gamma, x.ndim, axis) if gamma is not None else x_hat.copy()
    if beta is not None:
        y += _along(beta, x.ndim, axis)
    return y, mean, variance, x_hat, inv_std


def batch_norm_backward(
    d_y: np.ndarray,
    x_hat: np.ndarray,
    inv_std: np.ndarray,
    gamma: np.ndarray | None,
    axis: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`batch_norm_train` (the batch statistics depend on x too).

    With M the number of values per feature::

        d_x = gamma * inv_std / M * (M * d_y - sum(d_y) - x_hat * sum(d_y * x_hat))

    Args:
        d_y: the output gradient, x's shape.
        x_hat, inv_std: from the forward pass.
        gamma: (C,) or None.
        axis: the feature axis.

    Returns:
        ``(d_x, d_gamma, d_beta)``: d_x of x's shape, d_gamma and d_beta (C,) (the gradients
        gamma and beta would get, also computed when the layer has none).
    """
    axes = tuple(i for i in range(d_y.ndim) if i != axis)
    count = d_y.size // d_y.shape[axis]
    d_beta = d_y.sum(axis=axes)
    d_gamma = (d_y * x_hat).sum(axis=axes)
    scale = inv_std if gamma is None else gamma * inv_std
    d_x = d_y * count
    d_x -= _along(d_beta, d_y.ndim, axis)
    d_x -= x_hat * _along(d_gamma, d_y.ndim, axis)
    d_x *= _along(scale / count, d_y.ndim, axis)
    return d_x, d_gamma, d_beta


# ---------------------------------------------------------------------------------- softmax


def softmax(x: np.ndarray, axis: int | tuple[int, ...] = -1) -> np.ndarray:
    """``exp(x) / sum(exp(x))`` over ``axis`` (an int or a tuple), shifted by the max for safety."""
    y = x - x.max(axis=axis, keepdims=True)
    np.exp(y, out=y)
    y /= y.sum(axis=axis, keepdims=True)
    return y


def softmax_backward(
    y: np.ndarray, d_y: np.ndarray, axis: int | tuple[int, ...] = -1
) -> np.ndarray:
    """Gradient of the input of :func:`softmax` from its output ``y``: ``y * (d_y - <d_y, y>)``."""
    return y * (d_y - (d_y * y).sum(axis=axis, keepdims=True))

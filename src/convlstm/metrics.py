"""Forecasting metrics per horizon: one value per predicted frame, averaged over the sequences.

Every metric takes ``y_true`` (the observed frames) and ``y_pred`` (the forecast) of the same
shape ``(N, T, H, W, C)`` and returns a float64 array of shape ``(T,)``. Inputs may be bool, int
or float and must be finite; they are read, never written, and the math runs in float64.

Published numbers differ mostly in these conventions, so here they are, written once. ``e`` is
the error ``y_pred - y_true`` of one frame, ``P = H * W * C`` its number of values, and
``mean_N`` the mean over the N sequences at a fixed horizon t.

| metric | value at horizon t | convention |
| --- | --- | --- |
| ``mse(reduce="frame")`` | ``mean_N sum_{H,W,C} e**2`` | OpenSTL's per-frame MSE (default) |
| ``mse(reduce="pixel")`` | ``mean_N (1/P) sum_{H,W,C} e**2`` | per-pixel mean |
| ``mae(reduce="frame")`` | ``mean_N sum_{H,W,C} abs(e)`` | OpenSTL's per-frame MAE (default) |
| ``mae(reduce="pixel")`` | ``mean_N (1/P) sum_{H,W,C} abs(e)`` | per-pixel mean |
| ``psnr`` | ``mean_N 10 log10(data_range**2 / mse_pixel)`` | perfect frame: ``+inf`` (1) |
| ``ssim`` | ``mean_N mean_C SSIM(frame, channel)`` | scikit-image's defaults (2) |
| ``csi`` | ``hits / (hits + misses + false_alarms)`` | pooled counts, ``0/0`` is NaN (3) |
| ``pod`` | ``hits / (hits + misses)`` | pooled counts, ``0/0`` is NaN (3) |
| ``far`` | ``false_alarms / (hits + false_alarms)`` | pooled counts, ``0/0`` is NaN (3) |

(1) ``mse_pixel`` is the frame's per-pixel MSE. A frame predicted exactly has PSNR ``+inf``, as in
scikit-image and OpenSTL, so a horizon holding one has mean ``+inf``; nothing is capped.

(2) ``skimage.metrics.structural_similarity(true_frame, pred_frame, data_range=data_range,
channel_axis=-1)``: 7x7 uniform window, K1 = 0.01, K2 = 0.03, sample covariance (49/48), the mean
over channels of each channel's mean SSIM. For one channel of one frame, with ``mu`` the mean
and ``sigma`` the variances and covariance of the 7x7 window around a pixel (scaled by 49/48),
``C1 = (0.01 data_range)**2`` and ``C2 = (0.03 data_range)**2``::

    SSIM = mean over windows of (2 mu_x mu_y + C1) (2 sigma_xy + C2)
                                / ((mu_x**2 + mu_y**2 + C1) (sigma_x**2 + sigma_y**2 + C2))

scikit-image filters the whole frame and then drops a border of 3 pixels before the mean, so only
the ``(H - 6) * (W - 6)`` windows lying wholly inside the frame count; those are all that is
computed here.

(3) The categorical scores follow pysteps: an event is a value strictly above ``threshold``
(``value > threshold``). A hit is an event in both ``y_pred`` and ``y_true``, a miss an event only
in ``y_true``, a false alarm an event only in ``y_pred``. The contingency table of a horizon is
summed over all N sequences and all pixels before the ratio is taken, so a sequence without
events does not make the score undefined; a ratio whose numerator and denominator are both 0
(no events at that horizon) is NaN.
"""

from __future__ import annotations

import numbers

import numpy as np

from convlstm import _validation as check

SHAPE_NAMES = ("N", "T", "H", "W", "C")
REDUCTIONS = ("frame", "pixel")

# scikit-image's structural_similarity defaults.
SSIM_WINDOW = 7
SSIM_K1 = 0.01
SSIM_K2 = 0.03

# About this many float64 values of each input go through the SSIM filter at a time: small enough
# to stay in cache and bound the temporaries, large enough to hide the per-chunk overhead.
_SSIM_CHUNK_VALUES = 1 << 16


def _frames(owner: str, y_true: object, y_pred: object) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs as arrays (not yet float64), after checking kind, shape and finiteness."""
    arrays = []
    for name, value in (("y_true", y_true), ("y_pred", y_pred)):
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise TypeError(
                f"{owner}: expected {name} to be a real numeric array (bool, int or float); "
                f"got dtype {array.dtype}."
            )
        arrays.append(array)
    true, pred = arrays
    expected = check.shape_text(SHAPE_NAMES)
    if true.shape != pred.shape:
        raise ValueError(
            f"{owner}: expected y_true and y_pred of the same shape {expected}; "
            f"got {check.shape_text(true.shape)} and {check.shape_text(pred.shape)}."
        )
    if true.ndim != 5:
        raise ValueError(
            f"{owner}: expected y_true and y_pred of shape {expected}; "
            f"got {check.shape_text(true.shape)}."
        )
    if true.size == 0:
        raise ValueError(
            f"{owner}: expected y_true and y_pred with every dimension of {expected} >= 1; "
            f"got {check.shape_text(true.shape)}."
        )
    for name, array in (("y_true", true), ("y_pred", pred)):
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            bad = int(array.size - np.count_nonzero(np.isfinite(array)))
            raise ValueError(
                f"{owner}: expected y_true and y_pred to be finite; got {bad} NaN or inf "
                f"value(s) in {name}."
            )
    return true, pred


def _positive(owner: str, name: str, value: object) -> float:
    """``value`` as a float, requiring a finite real number > 0."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: expected {name} to be a positive finite number; got {value!r}.")
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{owner}: expected {name} to be a positive finite number; got {value!r}.")
    return float(value)


def _error(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """``y_pred - y_true`` in float64, shape (N, T, H, W, C)."""
    return y_pred.astype(np.float64, copy=False) - y_true.astype(np.float64, copy=False)


def _per_horizon(per_frame: np.ndarray, reduce: str, size: int) -> np.ndarray:
    """From per-frame sums of shape (N, T) to the (T,) mean over N of the chosen reduction."""
    if reduce == "pixel":
        per_frame = per_frame / size
    return per_frame.mean(axis=0)


def mse(y_true: np.ndarray, y_pred: np.ndarray, reduce: str = "frame") -> np.ndarray:
    """Mean squared error per horizon.

    Args:
        y_true: observed frames, shape (N, T, H, W, C).
        y_pred: forecast frames, shape (N, T, H, W, C).
        reduce: ``"frame"`` sums each frame's squared errors over H, W, C (OpenSTL's convention);
            ``"pixel"`` takes their mean instead.

    Returns:
        Float64 array of shape (T,): the per-frame value averaged over the N sequences.
    """
    owner = "metrics.mse"
    reduce = check.choice(owner, "reduce", reduce, REDUCTIONS)
    y_true, y_pred = _frames(owner, y_true, y_pred)
    H, W, C = y_true.shape[2:]
    error = _error(y_true, y_pred)
    per_frame = np.einsum("nthwc,nthwc->nt", error, error)  # (N, T)
    return _per_horizon(per_frame, reduce, H * W * C)


def mae(y_true: np.ndarray, y_pred: np.ndarray, reduce: str = "frame") -> np.ndarray:
    """Mean absolute error per horizon.

    Args:
        y_true: observed frames, shape (N, T, H, W, C).
        y_pred: forecast frames, shape (N, T, H, W, C).
        reduce: ``"frame"`` sums each frame's absolute errors over H, W, C (OpenSTL's convention);
            ``"pixel"`` takes their mean instead.

    Returns:
        Float64 array of shape (T,): the per-frame value averaged over the N sequences.
    """
    owner = "metrics.mae"
    reduce = check.choice(owner, "reduce", reduce, REDUCTIONS)
    y_true, y_pred = _frames(owner, y_true, y_pred)
    H, W, C = y_true.shape[2:]
    per_frame = np.abs(_error(y_true, y_pred)).sum(axis=(2, 3, 4))  # (N, T)
    return _per_horizon(per_frame, reduce, H * W * C)


def psnr(y_true: np.ndarray, y_pred: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """Peak signal-to-noise ratio in dB per horizon, from each frame's per-pixel MSE.

    A frame predicted exactly has PSNR ``+inf`` (as in scikit-image's ``peak_signal_noise_ratio``
    and OpenSTL), so a horizon with any perfect frame has mean ``+inf``; no warning is raised.

    Args:
        y_true: observed frames, shape (N, T, H, W, C).
        y_pred: forecast frames, shape (N, T, H, W, C).
        data_range: the span of possible values (1.0 for pixels in [0, 1], 255 for uint8).

    Returns:
        Float64 array of shape (T,): ``10 log10(data_range**2 / MSE)`` per frame, averaged over N.
    """
    owner = "metrics.psnr"
    data_range = _positive(owner, "data_range", data_range)
    y_true, y_pred = _frames(owner, y_true, y_pred)
    H, W, C = y_true.shape[2:]
    error = _error(y_true, y_pred)
    per_pixel = np.einsum("nthwc,nthwc->nt", error, error) / (H * W * C)  # (N, T)
    with np.errstate(divide="ignore"):
        per_frame = 10.0 * np.log10(data_range**2 / per_pixel)
    return per_frame.mean(axis=0)


def _window_sums(x: np.ndarray, size: int) -> np.ndarray:
    """Sums over every ``size x size`` window lying wholly inside each frame.

    Args:
        x: frames, shape (frames, H, W, C).
        size: window side.

    Returns:
        Array of shape (frames, H - size + 1, W - size + 1, C); entry [f, i, j, :] is the sum of
        x[f, i:i + size, j:j + size, :]. Shifted slices are added, so the rounding error stays
        the size of one window's values (a running cumulative sum would carry the whole frame's).
    """
    _, H, W, _ = x.shape
    h, w = H - size + 1, W - size + 1
    rows = x[:, :h] + x[:, 1 : h + 1]  # (frames, h, W, C); size >= 2
    for k in range(2, size):
        rows += x[:, k : h + k]
    sums = rows[:, :, :w] + rows[:, :, 1 : w + 1]  # (frames, h, w, C)
    for k in range(2, size):
        sums += rows[:, :, k : w + k]
    return sums


def _ssim_chunk(x: np.ndarray, y: np.ndarray, data_range: float) -> np.ndarray:
    """Mean SSIM of each frame, shape (frames,), for float64 frames of shape (frames, H, W, C).

    With window sums ``sx, sy, sxy`` and ``s2 = sum(x**2 + y**2)`` over ``m = 49`` pixels,
    scikit-image's means and sample (co)variances are ``mu_x = sx / m`` and
    ``sigma_xy = (m sxy - sx sy) / (m (m - 1))``, so scaling the first factor of the SSIM
    fraction by ``m**2`` above and below, and the second by ``m (m - 1)``, gives::

        SSIM = (2 sx sy + m**2 C1) (2 (m sxy - sx sy) + m (m - 1) C2)
               / ((sx**2 + sy**2 + m**2 C1) (m s2 - sx**2 - sy**2 + m (m - 1) C2))

    which is computed below in place, one factor at a time.
    """
    m = SSIM_WINDOW * SSIM_WINDOW  # pixels per window
    k1 = m * m * (SSIM_K1 * data_range) ** 2
    k2 = m * (m - 1) * (SSIM_K2 * data_range) ** 2
    squares = x * x
    squares += y * y
    # Window sums, each of shape (frames, H - 6, W - 6, C).
    sx = _window_sums(x, SSIM_WINDOW)
    sy = _window_sums(y, SSIM_WINDOW)
    sxy = _window_sums(x * y, SSIM_WINDOW)
    s2 = _window_sums(squares, SSIM_WINDOW)
    cross = sx * sy
    np.square(sx, out=sx)
    np.square(sy, out=sy)
    power = sx
    power += sy  # sx**2 + sy**2
    # Second factors: 2 (m sxy - sx sy) + k2 above, m s2 - sx**2 - sy**2 + k2 below.
    sxy *= m
    sxy -= cross
    sxy *= 2.0
    sxy += k2
    s2 *= m
    s2 -= power
    s2 += k2
    # First factors: 2 sx sy + k1 above, sx**2 + sy**2 + k1 below.
    cross *= 2.0
    cross += k1
    power += k1
    cross *= sxy
    power *= s2
    cross /= power
    # Every channel has the same number of windows, so the mean over (H', W', C) is the mean
    # over channels of each channel's mean, as structural_similarity(channel_axis=-1) gives.
    return cross.mean(axis=(1, 2, 3))


def ssim(y_true: np.ndarray, y_pred: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """Structural similarity per horizon, equal to scikit-image's per frame.

    Per frame this is ``skimage.metrics.structural_similarity(true_frame, pred_frame,
    data_range=data_range, channel_axis=-1)`` with its defaults (see the module docstring),
    computed in float64.

    Args:
        y_true: observed frames, shape (N, T, H, W, C) with H >= 7 and W >= 7.
        y_pred: forecast frames, shape (N, T, H, W, C).
        data_range: the span of possible values (1.0 for pixels in [0, 1], 255 for uint8).

    Returns:
        Float64 array of shape (T,): each frame's mean SSIM, averaged over the N sequences.
    """
    owner = "metrics.ssim"
    data_range = _positive(owner, "data_range", data_range)
    y_true, y_pred = _frames(owner, y_true, y_pred)
    N, T, H, W, C = y_true.shape
    if H < SSIM_WINDOW or W < SSIM_WINDOW:
        raise ValueError(
            f"{owner}: expected frames of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels "
            f"(H >= {SSIM_WINDOW} and W >= {SSIM_WINDOW}) in y_true and y_pred of shape "
            f"{check.shape_text(SHAPE_NAMES)}; got {check.shape_text(y_true.shape)}."
        )
    frames_true = y_true.reshape(N * T, H, W, C)
    frames_pred = y_pred.reshape(N * T, H, W, C)
    per_frame = np.empty(N * T, dtype=np.float64)
    step = max(1, _SSIM_CHUNK_VALUES // (H * W * C))
    for start in range(0, N * T, step):
        stop = min(N * T, start + step)
        x = frames_true[start:stop].astype(np.float64)
        y = frames_pred[start:stop].astype(np.float64)
        per_frame[start:stop] = _ssim_chunk(x, y, data_range)
    return per_frame.reshape(N, T).mean(axis=0)


def _threshold(owner: str, value: object) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: expected threshold to be a real number; got {value!r}.")
    if np.isnan(value):
        raise ValueError(f"{owner}: expected threshold to be a real number; got {value!r}.")
    return float(value)


def _contingency(
    owner: str, y_true: object, y_pred: object, threshold: object
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hits, misses and false alarms per horizon, each int64 of shape (T,)."""
    threshold = _threshold(owner, threshold)
    y_true, y_pred = _frames(owner, y_true, y_pred)
    observed = y_true > threshold  # (N, T, H, W, C); strictly above, as pysteps
    forecast = y_pred > threshold
    axes = (0, 2, 3, 4)
    hits = np.count_nonzero(observed & forecast, axis=axes)
    misses = np.count_nonzero(observed & ~forecast, axis=axes)
    false_alarms = np.count_nonzero(~observed & forecast, axis=axes)
    return hits, misses, false_alarms


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` in float64, NaN where the denominator is 0."""
    result = np.full(numerator.shape, np.nan)
    np.divide(numerator, denominator, out=result, where=denominator > 0)
    return result


def csi(y_true: np.ndarray, y_pred: np.ndarray, threshold: float) -> np.ndarray:
    """Critical success index (threat score) per horizon: H / (H + M + F).

    Args:
        y_true: observed fields, shape (N, T, H, W, C).
        y_pred: forecast fields, shape (N, T, H, W, C).
        threshold: an event is a value strictly greater than this.

    Returns:
        Float64 array of shape (T,), from counts summed over N, H, W, C; NaN where no event
        was observed or forecast at that horizon.
    """
    hits, misses, false_alarms = _contingency("metrics.csi", y_true, y_pred, threshold)
    return _ratio(hits, hits + misses + false_alarms)


def pod(y_true: np.ndarray, y_pred: np.ndarray, threshold: float) -> np.ndarray:
    """Probability of detection (hit rate) per horizon: H / (H + M).

    Args:
        y_true: observed fields, shape (N, T, H, W, C).
        y_pred: forecast fields, shape (N, T, H, W, C).
        threshold: an event is a value strictly greater than this.

    Returns:
        Float64 array of shape (T,), from counts summed over N, H, W, C; NaN where no event
        was observed at that horizon.
    """
    hits, misses, _ = _contingency("metrics.pod", y_true, y_pred, threshold)
    return _ratio(hits, hits + misses)


def far(y_true: np.ndarray, y_pred: np.ndarray, threshold: float) -> np.ndarray:
    """False alarm ratio per horizon: F / (H + F).

    Args:
        y_true: observed fields, shape (N, T, H, W, C).
        y_pred: forecast fields, shape (N, T, H, W, C).
        threshold: an event is a value strictly greater than this.

    Returns:
        Float64 array of shape (T,), from counts summed over N, H, W, C; NaN where no event
        was forecast at that horizon.
    """
    hits, _, false_alarms = _contingency("metrics.far", y_true, y_pred, threshold)
    return _ratio(false_alarms, hits + false_alarms)

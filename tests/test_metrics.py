"""Forecasting metrics: hand-computed values, scikit-image's SSIM and PSNR, contracts, errors."""

import re
import warnings

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from convlstm import metrics

ALL_METRICS = [
    ("mse", metrics.mse, {}),
    ("mae", metrics.mae, {}),
    ("psnr", metrics.psnr, {}),
    ("ssim", metrics.ssim, {}),
    ("csi", metrics.csi, {"threshold": 0.5}),
    ("pod", metrics.pod, {"threshold": 0.5}),
    ("far", metrics.far, {"threshold": 0.5}),
]
IDS = [name for name, _, _ in ALL_METRICS]

# One 2x2 frame (N = T = C = 1); errors y_pred - y_true are 1, 0, -2, 1.
TRUE_2X2 = np.array([[0.0, 1.0], [2.0, 3.0]]).reshape(1, 1, 2, 2, 1)
PRED_2X2 = np.array([[1.0, 1.0], [0.0, 4.0]]).reshape(1, 1, 2, 2, 1)


def skimage_ssim(y_true, y_pred, data_range):
    """scikit-image's SSIM of every frame, shape (N, T), on float64 copies of the frames."""
    N, T = y_true.shape[:2]
    return np.array(
        [
            [
                structural_similarity(
                    np.asarray(y_true[n, t], dtype=np.float64),
                    np.asarray(y_pred[n, t], dtype=np.float64),
                    data_range=data_range,
                    channel_axis=-1,
                )
                for t in range(T)
            ]
            for n in range(N)
        ]
    )


def structured_frames(N, T, H, W, C, rng):
    """Smooth ramps, a bright disk on a flat background and a checkerboard, in [0, 1]."""
    rows, cols = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    frames = np.zeros((N, T, H, W, C))
    for n in range(N):
        for t in range(T):
            for c in range(C):
                kind = (n + t + c) % 3
                if kind == 0:
                    frames[n, t, :, :, c] = (rows + 2 * cols + t) / (H + 2 * W + T)
                elif kind == 1:
                    disk = (rows - H / 2 - t) ** 2 + (cols - W / 3 - n) ** 2 < (H / 4) ** 2
                    frames[n, t, :, :, c] = 0.9 * disk
                else:
                    frames[n, t, :, :, c] = ((rows // 2 + cols // 3) % 2) * rng.uniform(0.3, 1.0)
    return frames


# --- mse and mae ------------------------------------------------------------------------------


def test_mse_and_mae_hand_computed_2x2():
    np.testing.assert_allclose(metrics.mse(TRUE_2X2, PRED_2X2), [6.0])  # 1 + 0 + 4 + 1
    np.testing.assert_allclose(metrics.mse(TRUE_2X2, PRED_2X2, reduce="pixel"), [1.5])
    np.testing.assert_allclose(metrics.mae(TRUE_2X2, PRED_2X2), [4.0])  # 1 + 0 + 2 + 1
    np.testing.assert_allclose(metrics.mae(TRUE_2X2, PRED_2X2, reduce="pixel"), [1.0])


def test_mse_and_mae_average_each_horizon_over_the_sequences():
    # Each frame of y_pred is a constant a[n, t] over 3x2x2 values; y_true is zero.
    a = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -1.5]])  # (N, T) = (2, 3)
    y_true = np.zeros((2, 3, 3, 2, 2))
    y_pred = y_true + a[:, :, None, None, None]
    result = metrics.mse(y_true, y_pred)
    assert result.shape == (3,)
    assert result.dtype == np.float64
    np.testing.assert_allclose(result, 12 * (a**2).mean(axis=0))  # [60, 24, 15]
    np.testing.assert_allclose(metrics.mse(y_true, y_pred, reduce="pixel"), [5.0, 2.0, 1.25])
    np.testing.assert_allclose(metrics.mae(y_true, y_pred), [24.0, 12.0, 12.0])
    np.testing.assert_allclose(metrics.mae(y_true, y_pred, reduce="pixel"), [2.0, 1.0, 1.0])


def test_mse_and_mae_compute_in_float64_from_float32_and_int_inputs():
    y_true = np.full((1, 1, 2, 2, 1), 1e8, dtype=np.float32)
    y_pred = y_true + np.float32(8.0)  # 1e8 + 8 is exactly representable in float32
    np.testing.assert_allclose(metrics.mse(y_true, y_pred), [256.0])
    ints_true = TRUE_2X2.astype(np.int64)
    ints_pred = PRED_2X2.astype(np.uint8)
    np.testing.assert_allclose(metrics.mse(ints_true, ints_pred), [6.0])
    np.testing.assert_allclose(metrics.mae(ints_true, ints_pred), [4.0])


# --- psnr -------------------------------------------------------------------------------------


def test_psnr_known_values_and_mean_over_sequences():
    y_true = np.zeros((2, 2, 4, 4, 1))
    y_pred = np.zeros_like(y_true)
    y_pred[0, 0] = 0.1  # per-pixel MSE 0.01 -> 20 dB
    y_pred[1, 0] = 0.01  # per-pixel MSE 1e-4 -> 40 dB
    y_pred[:, 1] = 0.5  # per-pixel MSE 0.25 -> 6.0206 dB
    expected = [30.0, 10 * np.log10(4.0)]
    np.testing.assert_allclose(metrics.psnr(y_true, y_pred), expected, rtol=1e-12)


def test_psnr_data_range_matches_skimage():
    rng = np.random.default_rng(3)
    y_true = rng.uniform(0, 255, size=(1, 3, 8, 6, 3))
    y_pred = np.clip(y_true + rng.normal(0, 12, size=y_true.shape), 0, 255)
    expected = [
        peak_signal_noise_ratio(y_true[0, t], y_pred[0, t], data_range=255) for t in range(3)
    ]
    np.testing.assert_allclose(metrics.psnr(y_true, y_pred, data_range=255), expected)
    # 255 / 2.55 = 100 -> 40 dB
    np.testing.assert_allclose(
        metrics.psnr(np.zeros((1, 1, 2, 2, 1)), np.full((1, 1, 2, 2, 1), 2.55), data_range=255),
        [40.0],
    )


def test_psnr_of_a_perfect_frame_is_inf_without_warning():
    y_true = np.zeros((2, 2, 3, 3, 1))
    y_pred = y_true.copy()
    y_pred[0, 1] = 0.1  # horizon 1: one perfect frame (inf) and one at 20 dB -> mean inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = metrics.psnr(y_true, y_pred)
    assert np.isposinf(result).all()


# --- ssim -------------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("kind", ["random", "structured"])
def test_ssim_equals_skimage_frame_by_frame(kind, channels):
    rng = np.random.default_rng(7 + channels)
    shape = (2, 3, 12, 15, channels)
    y_true = rng.random(shape) if kind == "random" else structured_frames(*shape, rng)
    y_pred = np.clip(y_true + rng.normal(0, 0.1, size=shape), 0, 1)
    expected = skimage_ssim(y_true, y_pred, data_range=1.0)  # (N, T)
    np.testing.assert_allclose(metrics.ssim(y_true, y_pred), expected.mean(axis=0), atol=1e-6)
    for n in range(2):  # each sequence alone: the values of its frames
        np.testing.assert_allclose(
            metrics.ssim(y_true[n : n + 1], y_pred[n : n + 1]), expected[n], atol=1e-6
        )


@pytest.mark.parametrize("channels", [1, 3])
def test_ssim_equals_skimage_with_data_range_255(channels):
    rng = np.random.default_rng(11)
    shape = (2, 2, 9, 13, channels)
    y_true = 255 * structured_frames(*shape, rng)
    y_pred = np.clip(y_true + rng.normal(0, 20, size=shape), 0, 255)
    expected = skimage_ssim(y_true, y_pred, data_range=255).mean(axis=0)
    np.testing.assert_allclose(metrics.ssim(y_true, y_pred, data_range=255), expected, atol=1e-6)
    # The same pixels read with data_range 1 are a different (wrong) SSIM, as in scikit-image.
    other = skimage_ssim(y_true, y_pred, data_range=1.0).mean(axis=0)
    np.testing.assert_allclose(metrics.ssim(y_true, y_pred), other, atol=1e-6)
    assert not np.allclose(expected, other, atol=1e-3)


def test_ssim_on_7x7_frames_float32_and_strided_inputs():
    rng = np.random.default_rng(5)
    base = rng.random((3, 4, 14, 7, 2)).astype(np.float32)
    y_true = base[:, :, ::2]  # (3, 4, 7, 7, 2), not contiguous: exactly one window per frame
    y_pred = np.clip(y_true + rng.normal(0, 0.2, size=y_true.shape), 0, 1).astype(np.float32)
    expected = skimage_ssim(y_true, y_pred, data_range=1.0).mean(axis=0)
    np.testing.assert_allclose(metrics.ssim(y_true, y_pred), expected, atol=1e-6)


def test_ssim_chunks_give_the_same_numbers(monkeypatch):
    rng = np.random.default_rng(2)
    shape = (2, 4, 10, 8, 2)  # 8 frames of 160 values
    y_true = rng.random(shape)
    y_pred = np.clip(y_true + rng.normal(0, 0.1, size=shape), 0, 1)
    expected = skimage_ssim(y_true, y_pred, data_range=1.0).mean(axis=0)
    for frames_per_chunk in (1, 3, 8, 100):
        monkeypatch.setattr(metrics, "_SSIM_CHUNK_VALUES", frames_per_chunk * 160)
        np.testing.assert_allclose(metrics.ssim(y_true, y_pred), expected, atol=1e-6)


def test_ssim_averages_each_horizon_over_the_sequences():
    rng = np.random.default_rng(4)
    y_true = rng.random((3, 2, 8, 8, 1))
    y_pred = y_true.copy()
    y_pred[1, 0] = rng.random((8, 8, 1))  # only sequence 1 at horizon 0 differs
    first = structural_similarity(y_true[1, 0], y_pred[1, 0], data_range=1.0, channel_axis=-1)
    np.testing.assert_allclose(metrics.ssim(y_true, y_pred), [(2 + first) / 3, 1.0], atol=1e-6)


# --- identical inputs -------------------------------------------------------------------------


def test_identical_inputs_give_perfect_scores():
    rng = np.random.default_rng(0)
    y = rng.random((2, 3, 8, 9, 2))
    np.testing.assert_allclose(metrics.ssim(y, y), np.ones(3), atol=1e-12)
    np.testing.assert_array_equal(metrics.mse(y, y), np.zeros(3))
    np.testing.assert_array_equal(metrics.mae(y, y, reduce="pixel"), np.zeros(3))
    assert np.isposinf(metrics.psnr(y, y)).all()
    np.testing.assert_array_equal(metrics.csi(y, y, threshold=0.5), np.ones(3))
    np.testing.assert_array_equal(metrics.pod(y, y, threshold=0.5), np.ones(3))
    np.testing.assert_array_equal(metrics.far(y, y, threshold=0.5), np.zeros(3))


# --- csi, pod, far ----------------------------------------------------------------------------


def contingency_case():
    """N = 2, T = 3, 1x4x1 fields, threshold 1.0; the counts per horizon are in the comments."""
    y_true = np.zeros((2, 3, 1, 4, 1))
    y_pred = np.zeros((2, 3, 1, 4, 1))
    # t = 0. Sequence 0: events observed [T, F (1.0 is not > 1.0), F, T], forecast
    # [T, T, F (1.0 again), F] -> 1 hit, 1 miss, 1 false alarm. Sequence 1: observed
    # [T, T, F, F], forecast [T, T, F, T] -> 2 hits, 1 false alarm. Pooled: H=3, M=1, F=2.
    y_true[0, 0, 0, :, 0] = [2.0, 1.0, 0.0, 3.0]
    y_pred[0, 0, 0, :, 0] = [1.5, 2.0, 1.0, 0.0]
    y_true[1, 0, 0, :, 0] = [5.0, 5.0, 0.0, 0.0]
    y_pred[1, 0, 0, :, 0] = [5.0, 5.0, 0.0, 5.0]
    # t = 1: every value exactly at the threshold -> no events anywhere: H = M = F = 0.
    y_true[:, 1] = 1.0
    y_pred[:, 1] = 1.0
    # t = 2: forecast events only -> H = 0, M = 0, F = 3.
    y_pred[0, 2, 0, :3, 0] = 4.0
    return y_true, y_pred


def test_csi_pod_far_from_a_hand_built_contingency_table():
    y_true, y_pred = contingency_case()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        csi = metrics.csi(y_true, y_pred, threshold=1.0)
        pod = metrics.pod(y_true, y_pred, threshold=1.0)
        far = metrics.far(y_true, y_pred, threshold=1.0)
    np.testing.assert_array_equal(csi, [3 / 6, np.nan, 0.0])  # H / (H + M + F)
    np.testing.assert_array_equal(pod, [3 / 4, np.nan, np.nan])  # H / (H + M)
    np.testing.assert_array_equal(far, [2 / 5, np.nan, 1.0])  # F / (H + F)
    assert csi.dtype == pod.dtype == far.dtype == np.float64
    # Pooled counts, not the mean of per-sequence ratios: FAR per sequence is 1/2 and 1/3.
    assert far[0] != pytest.approx((1 / 2 + 1 / 3) / 2)


def test_csi_threshold_is_strict_and_accepts_ints():
    y_true = np.array([0, 1, 2, 3]).reshape(1, 1, 1, 4, 1)
    y_pred = np.array([1, 1, 3, 0]).reshape(1, 1, 1, 4, 1)
    # > 1: observed [F, F, T, T], forecast [F, F, T, F] -> H = 1, M = 1, F = 0
    np.testing.assert_array_equal(metrics.csi(y_true, y_pred, threshold=1), [0.5])
    # > 0: observed [F, T, T, T], forecast [T, T, T, F] -> H = 2, M = 1, F = 1
    np.testing.assert_array_equal(metrics.csi(y_true, y_pred, threshold=0), [0.5])
    np.testing.assert_array_equal(metrics.pod(y_true, y_pred, threshold=0), [2 / 3])
    np.testing.assert_array_equal(metrics.far(y_true, y_pred, threshold=0), [1 / 3])


# --- contracts --------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "fn", "kwargs"), ALL_METRICS, ids=IDS)
def test_read_only_inputs_are_left_unchanged(name, fn, kwargs):
    rng = np.random.default_rng(1)
    y_true = rng.random((2, 3, 8, 8, 2)).astype(np.float32)
    y_pred = rng.random((2, 3, 8, 8, 2))
    copies = (y_true.copy(), y_pred.copy())
    y_true.flags.writeable = False
    y_pred.flags.writeable = False
    result = fn(y_true, y_pred, **kwargs)
    assert result.shape == (3,)
    assert result.dtype == np.float64
    np.testing.assert_array_equal(y_true, copies[0])
    np.testing.assert_array_equal(y_pred, copies[1])
    assert y_true.dtype == np.float32


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "fn", "kwargs"), ALL_METRICS, ids=IDS)
def test_shape_errors_name_the_metric(name, fn, kwargs):
    message = (
        f"metrics.{name}: expected y_true and y_pred of the same shape (N, T, H, W, C); "
        "got (2, 3, 8, 8, 1) and (2, 3, 8, 8)."
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        fn(np.zeros((2, 3, 8, 8, 1)), np.zeros((2, 3, 8, 8)), **kwargs)
    message = f"metrics.{name}: expected y_true and y_pred of shape (N, T, H, W, C); got (3, 8, 8)."
    with pytest.raises(ValueError, match=re.escape(message)):
        fn(np.zeros((3, 8, 8)), np.zeros((3, 8, 8)), **kwargs)
    message = (
        f"metrics.{name}: expected y_true and y_pred with every dimension of (N, T, H, W, C) "
        ">= 1; got (0, 3, 8, 8, 1)."
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        fn(np.zeros((0, 3, 8, 8, 1)), np.zeros((0, 3, 8, 8, 1)), **kwargs)


@pytest.mark.parametrize(("name", "fn", "kwargs"), ALL_METRICS, ids=IDS)
def test_kind_and_finiteness_errors_name_the_argument(name, fn, kwargs):
    good = np.zeros((1, 2, 8, 8, 1))
    with pytest.raises(
        TypeError,
        match=re.escape(
            f"metrics.{name}: expected y_pred to be a real numeric array (bool, int or float); "
            "got dtype complex128."
        ),
    ):
        fn(good, good + 1j, **kwargs)
    with pytest.raises(TypeError, match=rf"metrics\.{name}: expected y_true to be a real numeric"):
        fn(np.full(good.shape, "a"), good, **kwargs)
    bad = good.copy()
    bad[0, 1, 2, 3, 0] = np.nan
    bad[0, 0, 0, 0, 0] = -np.inf
    message = (
        f"metrics.{name}: expected y_true and y_pred to be finite; "
        "got 2 NaN or inf value(s) in y_true."
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        fn(bad, good, **kwargs)


def test_reduce_errors():
    for fn in (metrics.mse, metrics.mae):
        name = fn.__name__
        message = f"metrics.{name}: expected reduce to be one of 'frame', 'pixel'; got 'sum'."
        with pytest.raises(ValueError, match=re.escape(message)):
            fn(TRUE_2X2, PRED_2X2, reduce="sum")


@pytest.mark.parametrize("fn", [metrics.psnr, metrics.ssim], ids=["psnr", "ssim"])
def test_data_range_errors(fn):
    y = np.zeros((1, 1, 7, 7, 1))
    name = fn.__name__
    for value in (0, -1.0, np.inf, np.nan):
        message = f"metrics.{name}: expected data_range to be a positive finite number; got"
        with pytest.raises(ValueError, match=re.escape(message)):
            fn(y, y, data_range=value)
    for value in ("255", True, None):
        message = (
            f"metrics.{name}: expected data_range to be a positive finite number; got {value!r}."
        )
        with pytest.raises(TypeError, match=re.escape(message)):
            fn(y, y, data_range=value)


@pytest.mark.parametrize("shape", [(1, 2, 6, 8, 1), (1, 2, 8, 6, 3)])
def test_ssim_frames_smaller_than_the_window(shape):
    y = np.zeros(shape)
    message = (
        "metrics.ssim: expected frames of at least 7x7 pixels (H >= 7 and W >= 7) in y_true and "
        f"y_pred of shape (N, T, H, W, C); got {shape}."
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        metrics.ssim(y, y)


@pytest.mark.parametrize("fn", [metrics.csi, metrics.pod, metrics.far], ids=["csi", "pod", "far"])
def test_threshold_errors(fn):
    y = np.zeros((1, 1, 2, 2, 1))
    name = fn.__name__
    for value in ("0.5", None, True):
        message = f"metrics.{name}: expected threshold to be a real number; got {value!r}."
        with pytest.raises(TypeError, match=re.escape(message)):
            fn(y, y, threshold=value)
    with pytest.raises(ValueError, match=rf"metrics\.{name}: expected threshold .* got nan\."):
        fn(y, y, threshold=np.nan)

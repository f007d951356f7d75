"""Max pooling backward: finite differences on tie-free inputs, the tie rule, and the blocked
kernels against the loop reference."""

import numpy as np
import pytest
from gradcheck import check_gradients

from convlstm import MaxPooling2D, MaxPooling3D
from convlstm.functional import threads
from convlstm.functional.pooling import max_pool, max_pool_backward
from convlstm.functional.windows import resolve_pads

from reference import maxpool3d_backward_reference, maxpool3d_reference


def _tie_free(shape, seed=0):
    # A shuffled range: every value distinct and far apart compared with the finite-difference step.
    rng = np.random.default_rng(seed)
    return rng.permutation(np.prod(shape)).reshape(shape).astype(np.float64) * 0.01


@pytest.mark.parametrize(
    ("pool", "stride", "padding"),
    [(2, None, "valid"), (3, 1, "valid"), (3, 2, "same"), ((2, 3, 1), (1, 2, 1), "same"),
     ((1, 2, 2), 2, "valid")],
)
def test_max_pooling3d_gradients(pool, stride, padding):
    check_gradients(MaxPooling3D(pool, stride, padding), _tie_free((2, 5, 6, 5, 3)))


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_max_pooling2d_gradients(data_format):
    check_gradients(MaxPooling2D(3, 2, "same", data_format), _tie_free((2, 7, 6, 3)))


def test_ties_go_to_the_first_maximum_in_scan_order():
    x = np.zeros((1, 2, 2, 2, 1))
    layer = MaxPooling3D(2)
    layer.forward(x, training=True)
    d_x = layer.backward(np.ones((1, 1, 1, 1, 1)))
    expected = np.zeros_like(x)
    expected[0, 0, 0, 0, 0] = 1.0
    np.testing.assert_array_equal(d_x, expected)


def test_overlapping_windows_add_up():
    x = np.array([0.0, 5.0, 1.0, 2.0]).reshape(1, 1, 4, 1)  # 5 wins all three 2-wide windows
    layer = MaxPooling2D((1, 2), 1)
    layer.forward(x, training=True)
    d_x = layer.backward(np.array([1.0, 2.0, 3.0]).reshape(1, 1, 3, 1))
    np.testing.assert_array_equal(d_x.ravel(), [0.0, 3.0, 0.0, 3.0])


def test_backward_needs_a_training_forward():
    layer = MaxPooling3D(2)
    with pytest.raises(RuntimeError, match=r"call forward\(x, training=True\) before backward"):
        layer.backward(np.zeros((1, 1, 1, 1, 1)))


def test_backward_keeps_float32():
    layer = MaxPooling3D(2)
    x = np.random.default_rng(0).random((1, 2, 4, 4, 3)).astype(np.float32)
    layer.forward(x, training=True)
    assert layer.backward(np.ones((1, 1, 2, 2, 3), np.float32)).dtype == np.float32


@pytest.mark.parametrize(
    ("pool", "stride", "padding"),
    [((2, 2, 2), (2, 2, 2), "valid"), ((3, 2, 1), (1, 1, 1), "valid"),
     ((2, 3, 3), (2, 1, 3), "same"), ((1, 2, 2), (3, 3, 3), "same"),
     ((3, 3, 3), (2, 2, 2), "same"),
     # windows that tile the (padded) input: the backward's routed path
     ((2, 2, 2), (2, 2, 2), "same"), ((1, 3, 5), (1, 3, 5), "valid")],
)
@pytest.mark.parametrize("block_bytes", [1, 300, 4000, 1 << 21])
@pytest.mark.parametrize("thread_count", [1, 3])
def test_blocked_kernels_match_the_reference(pool, stride, padding, block_bytes, thread_count,
                                             monkeypatch):
    # Blocks spread over threads however small (overlapping windows' backward stays on one).
    monkeypatch.setattr(threads, "MIN_ELEMENTS_PER_THREAD", 1)
    monkeypatch.setenv("CONVLSTM_NUM_THREADS", str(thread_count))
    # Small integers: many ties, which must go to the first maximum in every block split.
    rng = np.random.default_rng(7)
    x = rng.integers(-2, 3, (3, 7, 6, 5, 2)).astype(np.float32)
    pads = resolve_pads(padding, x.shape[1:-1], pool, stride, (1, 1, 1))
    expected = maxpool3d_reference(x, pool, stride, pads)
    inference, _ = max_pool(x, pool, stride, pads, block_bytes=block_bytes)
    pooled, cache = max_pool(x, pool, stride, pads, training=True, block_bytes=block_bytes)
    np.testing.assert_array_equal(inference, expected)
    np.testing.assert_array_equal(pooled, expected)
    d_out = rng.normal(size=pooled.shape).astype(np.float32)
    np.testing.assert_allclose(
        max_pool_backward(d_out, cache),
        maxpool3d_backward_reference(x, pool, stride, pads, d_out),
        rtol=1e-6, atol=1e-6,
    )


@pytest.mark.parametrize(("shape", "pool"), [((2, 8, 4, 6, 3), (2, 2, 2)),
                                             ((1, 3, 8, 2, 4), (3, 4, 1)),
                                             ((2, 4, 6, 2), (2, 3))])
def test_tiling_windows_route_every_gradient_to_the_first_maximum(shape, pool):
    # stride == pool, no remainder: every cell is written once; ties go to the first maximum in
    # scan order (np.argmax over each window flattened in C order), zeros elsewhere.
    rng = np.random.default_rng(3)
    x = rng.integers(-1, 2, shape).astype(np.float32)  # many ties
    rank = len(pool)
    pooled, cache = max_pool(x, pool, pool, ((0, 0),) * rank, training=True)
    d_out = rng.normal(size=pooled.shape).astype(np.float32)
    n, *out_size, C = pooled.shape
    tiles = x.reshape(n, *(size for pair in zip(out_size, pool) for size in pair), C)
    window_axes = tuple(range(2, 2 * rank + 1, 2))
    windows = np.moveaxis(tiles, window_axes, range(-rank, 0))  # (n, *out, C, *pool)
    first_max = np.argmax(windows.reshape(*pooled.shape, -1), axis=-1)
    routed = (np.arange(np.prod(pool)) == first_max[..., None]) * d_out[..., None]
    expected = np.moveaxis(routed.reshape(windows.shape), range(-rank, 0), window_axes)
    np.testing.assert_array_equal(max_pool_backward(d_out, cache), expected.reshape(shape))

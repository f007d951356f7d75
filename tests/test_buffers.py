"""Scratch buffers kept between calls (functional.buffers): what is given is taken again, never
twice at once, and a kernel that takes a used buffer full of NaN computes what it computes on
fresh memory."""

import sys
import threading

import numpy as np
import pytest
from forking import in_forked_child

from convlstm import ConvGRU2D, ConvLSTM2D
from convlstm.functional import buffers, threads


@pytest.fixture(autouse=True)
def empty_pool():
    buffers.clear()
    yield
    buffers.clear()


def test_a_given_buffer_is_taken_again_by_shape_and_dtype():
    first = buffers.take((3, 4), np.float32)
    buffers.give(first)
    assert buffers.take((4, 3), np.float32) is not first
    assert buffers.take((3, 4), np.float64) is not first
    assert buffers.take((3, 4), np.float32) is first
    assert buffers.take((3, 4), np.float32) is not first  # taken: not handed out twice


def test_a_buffer_given_twice_is_kept_once():
    array = buffers.take((5,), np.float32)
    buffers.give(array, array, None)
    assert buffers.take((5,), np.float32) is array
    assert buffers.take((5,), np.float32) is not array


def test_no_more_than_the_limit_is_kept(monkeypatch):
    monkeypatch.setattr(buffers, "MAX_KEPT_BYTES", 100)
    small, large = np.empty(20, np.float32), np.empty(30, np.float32)  # 80 and 120 bytes
    buffers.give(large, small)
    assert buffers.take((30,), np.float32) is not large
    assert buffers.take((20,), np.float32) is small


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_a_forked_child_starts_with_its_own_pool_even_if_the_lock_was_held():
    buffers.give(np.empty((2,), np.float32))
    holding, release = threading.Event(), threading.Event()

    def hold():
        with buffers._lock:
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(30)
    try:
        shape = in_forked_child(lambda: buffers.take((2,), np.float32).shape, "taking a buffer")
        assert shape == (2,)
    finally:
        release.set()
        holder.join()


def _train_step(layer_class, options, seed=0):
    rng = np.random.default_rng(seed)
    layer = layer_class(2, 3, seed=seed, return_sequences=True, **options)
    layer.set_weights([rng.uniform(-0.6, 0.6, w.shape).astype(w.dtype)
                       for w in layer.get_weights()])
    x = rng.normal(size=(5, 4, 6, 5, 2)).astype(np.float32)
    mask = rng.random((5, 4)) > 0.3
    outputs = [layer.forward(x, mask=mask, training=True)]
    outputs.append(layer.backward(rng.normal(size=outputs[0].shape).astype(np.float32)))
    outputs += [owner.grads[key] for _, owner, key in layer.named_params()]
    outputs.append(layer.forward(x))  # inference too
    return outputs


@pytest.mark.parametrize("grouped", [False, True], ids=["one_batch", "sample_groups"])
@pytest.mark.parametrize(
    ("layer_class", "options"),
    [(ConvLSTM2D, {}), (ConvLSTM2D, {"dropout": 0.3, "recurrent_dropout": 0.2}),
     (ConvLSTM2D, {"padding": "valid", "strides": 2}), (ConvGRU2D, {"reset_after": False})],
    ids=["convlstm", "convlstm_dropout", "convlstm_valid_strided", "convgru"],
)
def test_kernels_on_used_buffers_full_of_nan_compute_the_same(monkeypatch, layer_class,
                                                              options, grouped):
    monkeypatch.setattr(threads, "MIN_GROUP_PIXELS", 60 if grouped else 10**9)
    expected = _train_step(layer_class, options)
    kept = [array for arrays in buffers._free.values() for array in arrays]
    assert kept, "the step gave nothing back"
    for array in kept:
        array.fill(np.nan)
    actual = _train_step(layer_class, options)
    for got, want in zip(actual, expected):
        np.testing.assert_array_equal(got, want)
    reused = [array for arrays in buffers._free.values() for array in arrays]
    assert any(any(array is old for old in kept) for array in reused)  # they were taken again

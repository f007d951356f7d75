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


def test_no_more_than_the_limit_is_kept_and_the_longest_kept_go_first(monkeypatch):
    monkeypatch.setattr(buffers, "MAX_KEPT_BYTES", 200)
    buffers.give(np.empty(60, np.float32))  # 240 bytes: never kept
    assert buffers.take((60,), np.float32) is not None and not buffers._free
    old, middle, new = (np.empty(20, dtype) for dtype in (np.float32, np.int32, np.uint32))
    buffers.give(old, middle)
    buffers.give(old)  # given again: kept once, and now the most recent
    buffers.give(new)  # 240 bytes in all: the longest kept (middle) goes
    assert buffers.take((20,), np.int32) is not middle
    assert buffers.take((20,), np.float32) is old and buffers.take((20,), np.uint32) is new


def test_a_backward_that_fails_part_way_leaves_no_cache_to_read_again():
    """BPTT gives the cache's buffers back as it goes: a layer whose backward failed after
    that must refuse a second backward instead of reading reused memory."""
    rng = np.random.default_rng(0)
    layer = ConvLSTM2D(2, 3, num_layers=2, return_sequences=True)
    output = layer.forward(rng.normal(size=(2, 3, 4, 4, 2)).astype(np.float32), training=True)

    class BackpropInterruptedError(Exception):
        pass

    def fail(*args, **kwargs):
        raise BackpropInterruptedError

    layer.cells[0].backprop = fail  # the top layer's BPTT has run and given its buffers back
    with pytest.raises(BackpropInterruptedError):
        layer.backward(np.ones_like(output))
    assert buffers._free  # it had
    with pytest.raises(RuntimeError, match="no training forward to differentiate"):
        layer.backward(np.ones_like(output))


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
    results = layer.forward(x, mask=mask, training=True)
    results = list(results) if isinstance(results, (list, tuple)) else [results]
    gradients = [rng.normal(size=result.shape).astype(np.float32) for result in results]
    results.append(layer.backward(*gradients))
    results += [owner.grads[key] for _, owner, key in layer.named_params()]
    inference = layer.forward(x)  # inference too
    return results + (list(inference) if isinstance(inference, tuple) else [inference])


STACKED = {"num_layers": 2, "peephole": True, "go_backwards": True, "return_state": True,
           "padding": "same", "strides": 2}


@pytest.mark.parametrize(
    ("layer_class", "options", "grouped"),
    [(ConvLSTM2D, {}, False), (ConvLSTM2D, {}, True),
     (ConvLSTM2D, {"dropout": 0.3, "recurrent_dropout": 0.2}, True),
     (ConvLSTM2D, {"padding": "valid", "strides": 2}, False),
     (ConvLSTM2D, STACKED, False), (ConvLSTM2D, STACKED, True),
     (ConvGRU2D, {"reset_after": False}, False)],
    ids=["convlstm", "convlstm_groups", "convlstm_dropout_groups", "convlstm_valid_strided",
         "stacked_peephole_backwards_states_strided", "stacked_groups", "convgru"],
)
def test_kernels_on_used_buffers_full_of_nan_compute_the_same(monkeypatch, pinned_blas,
                                                              layer_class, options, grouped):
    monkeypatch.setattr(threads, "MIN_GROUP_PIXELS", 8 if grouped else 10**9)
    expected = _train_step(layer_class, options)
    kept = [array for arrays in buffers._free.values() for array in arrays]
    assert kept, "the step gave nothing back"
    for array in kept:
        array.fill(np.nan)
    actual = _train_step(layer_class, options)
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected):
        np.testing.assert_array_equal(got, want)
    reused = [array for arrays in buffers._free.values() for array in arrays]
    assert any(any(array is old for old in kept) for array in reused)  # they were taken again

"""Elementwise work split over threads: the split helper, and the ConvLSTM kernels giving the
same numbers on 3 threads as on 1 (the unit tests' arrays are otherwise too small to split)."""

import sys
import threading
import time

import numpy as np
import pytest
from forking import in_forked_child
from gradcheck import check_gradients

from convlstm import ConvLSTM2D
from convlstm.functional import threads


@pytest.fixture
def hand_offs(monkeypatch):
    """(threads, whose pool) of every hand-off of work to the threads, in order: whose is
    "groups", the slot of the group thread splitting its own work, or None outside groups."""
    seen = []
    hand_off = threads._on_threads

    def spy(function, slices, whose):
        seen.append((len(slices), whose))
        hand_off(function, slices, whose)

    monkeypatch.setattr(threads, "_on_threads", spy)
    return seen


@pytest.fixture
def split_everything(monkeypatch):
    """Split any work, however small, over the threads CONVLSTM_NUM_THREADS asks for."""
    monkeypatch.setattr(threads, "MIN_ELEMENTS_PER_THREAD", 1)
    return lambda count: monkeypatch.setenv("CONVLSTM_NUM_THREADS", str(count))


def test_thread_count_follows_the_environment(monkeypatch):
    monkeypatch.setenv("CONVLSTM_NUM_THREADS", "3")
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    assert threads.thread_count() == 3
    monkeypatch.delenv("CONVLSTM_NUM_THREADS")
    assert threads.thread_count() == 5
    monkeypatch.setenv("OMP_NUM_THREADS", "not a number")
    assert threads.thread_count() >= 1


def test_split_run_covers_every_item_once(split_everything):
    split_everything(3)
    seen = np.zeros(7, int)

    def mark(items):
        seen[items] += 1

    threads.split_run(mark, 7, 1)
    np.testing.assert_array_equal(seen, np.ones(7, int))


def test_split_run_keeps_the_first_slice_on_the_calling_thread(split_everything):
    split_everything(3)
    ran_on = {}

    def record(items):
        ran_on[items.start] = threading.get_ident()

    threads.split_run(record, 6, 1)
    here = threading.get_ident()
    assert ran_on[0] == here and ran_on[2] != here and ran_on[4] != here


def test_split_run_stays_here_for_small_work(monkeypatch):
    monkeypatch.setenv("CONVLSTM_NUM_THREADS", "4")
    calls = []
    threads.split_run(calls.append, 6, 10)
    assert calls == [slice(0, 6)]


def test_split_run_reraises_a_worker_error(split_everything):
    split_everything(2)

    def fail(items):
        raise ValueError(f"bad items {items}")

    with pytest.raises(ValueError, match="bad items"):
        threads.split_run(fail, 4, 1)


def _train_step(options, mask=None, seed=0):
    rng = np.random.default_rng(seed)
    layer = ConvLSTM2D(2, 3, seed=seed, **options)
    layer.set_weights([rng.uniform(-0.6, 0.6, w.shape).astype(w.dtype)
                       for w in layer.get_weights()])
    x = rng.normal(size=(5, 4, 6, 5, 2)).astype(np.float32)
    output = layer.forward(x, mask=mask, training=True)
    d_output = rng.normal(size=output.shape).astype(np.float32)
    d_x = layer.backward(d_output)
    return [output, d_x, *(owner.grads[key] for _, owner, key in layer.named_params())]


MASK = np.array([[1, 1, 0, 1], [1, 0, 0, 1], [0, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 0]], bool)


@pytest.mark.parametrize(
    ("options", "mask"),
    [
        ({}, None),
        ({}, MASK),
        ({"dropout": 0.3, "recurrent_dropout": 0.2}, None),
        ({"activation": "relu", "recurrent_activation": "hard_sigmoid"}, MASK),
    ],
    ids=["default", "mask", "dropout", "other_activations"],
)
@pytest.mark.parametrize("grouped", [False, True], ids=["steps_split", "sample_groups"])
def test_convlstm_on_three_threads_matches_one(split_everything, monkeypatch, hand_offs,
                                              pinned_blas, options, mask, grouped):
    monkeypatch.setattr(threads, "MIN_GROUP_PIXELS", 1 if grouped else 10**9)
    split_everything(1)
    expected = _train_step(options, mask)
    split_everything(3)
    actual = _train_step(options, mask)
    assert (3, "groups" if grouped else None) in hand_offs  # the work was split that way
    for got, want in zip(actual, expected):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    ("options", "mask"),
    [({}, None), ({}, MASK), ({"dropout": 0.3, "recurrent_dropout": 0.2}, None),
     ({"use_bias": False, "return_sequences": True}, MASK)],
    ids=["default", "mask", "dropout", "no_bias_sequences"],
)
def test_sample_groups_compute_what_one_batch_computes(split_everything, monkeypatch,
                                                       pinned_blas, options, mask):
    """Samples never meet in a recurrence: the groups' outputs, input gradients and weight
    gradients (added group by group) are the whole batch's to float32 rounding (BLAS may
    round a product of fewer rows differently)."""
    split_everything(2)
    monkeypatch.setattr(threads, "MIN_GROUP_PIXELS", 10**9)
    whole = _train_step(options, mask)
    monkeypatch.setattr(threads, "MIN_GROUP_PIXELS", 60)  # 2 of the 5 samples of 6x5 a group
    assert threads.sample_groups(5, 30) == [slice(0, 2), slice(2, 5)]
    groups = _train_step(options, mask)
    for got, want in zip(groups[:2], whole[:2]):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    for got, want in zip(groups[2:], whole[2:]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_sample_groups_are_set_by_the_shape():
    assert threads.sample_groups(8, 256) == [slice(0, 4), slice(4, 8)]  # workload m32
    assert len(threads.sample_groups(16, 4096)) == threads.MAX_GROUPS
    assert threads.sample_groups(1, 10**6) == [slice(0, 1)]
    assert threads.sample_groups(3, 7) == [slice(0, 3)]


def test_run_groups_gives_each_thread_its_share_and_keeps_order(split_everything,
                                                                pinned_blas):
    split_everything(4)
    seen = threads.run_groups(lambda index: (index, threads.thread_count()), 2)
    assert seen == [(0, 2), (1, 2)]  # two groups at once, each splitting over two threads
    assert threads.thread_count() == 4  # the share ends with the group
    assert [i for i, _ in threads.run_groups(lambda i: (i, 0), 7)] == list(range(7))


def test_each_group_thread_splits_on_a_pool_of_its_own(split_everything, pinned_blas,
                                                      hand_offs):
    """8 threads, 4 groups: each group thread splits its work over 2 threads of its own, not
    all four over one shared helper."""
    split_everything(8)
    threads.run_groups(lambda index: threads.split_run(lambda items: None, 4, 1), 4)
    splits = {whose for count, whose in hand_offs if whose != "groups"}
    assert (4, "groups") in hand_offs and len(splits) == 4
    assert {count for count, whose in hand_offs if whose != "groups"} == {2}


def test_groups_run_one_after_another_while_blas_has_its_own_threads(split_everything,
                                                                    hand_offs):
    """Without BLAS pinned to one thread (no threadpoolctl, or CONVLSTM_BLAS_THREADS), groups
    on several threads would each start BLAS's threads: they run here instead, each split
    over every thread as before."""
    split_everything(4)
    assert threads.run_groups(lambda index: threads.thread_count(), 3) == [4, 4, 4]
    assert all(whose != "groups" for _, whose in hand_offs)


def test_a_failing_slice_returns_only_when_every_slice_is_done(split_everything):
    split_everything(3)
    finished = []

    def work(items):
        if items.start == 1:
            raise ValueError("a helper's slice fails at once")
        time.sleep(0.2 * items.start)
        finished.append(items.start)

    with pytest.raises(ValueError, match="fails at once"):
        threads.split_run(work, 3, 1)
    assert sorted(finished) == [0, 2]  # the slowest slice had finished too


def test_splits_inside_groups_do_not_wait_behind_the_groups(split_everything, pinned_blas):
    """Groups and the splits inside them use separate pools: with 4 threads, 2 groups each
    split over 2 threads would deadlock on one shared 2-thread pool."""
    split_everything(4)
    counted = np.zeros(8, int)

    def group(index):
        def mark(items):
            counted[items] += 1
        threads.split_run(mark, 8, 1)

    runner = threading.Thread(target=threads.run_groups, args=(group, 2), daemon=True)
    runner.start()
    runner.join(timeout=30)
    assert not runner.is_alive(), "run_groups deadlocked"
    np.testing.assert_array_equal(counted, np.full(8, 2))


def test_gradients_in_sample_groups(split_everything, monkeypatch, pinned_blas):
    split_everything(2)
    monkeypatch.setattr(threads, "MIN_GROUP_PIXELS", 16)
    rng = np.random.default_rng(3)
    layer = ConvLSTM2D(2, 2, dtype="float64", return_state=True, return_sequences=True)
    layer.set_weights([rng.uniform(-0.5, 0.5, w.shape) for w in layer.get_weights()])
    check_gradients(layer, rng.normal(size=(3, 3, 4, 4, 2)))


def test_gradients_on_three_threads(split_everything):
    split_everything(3)
    rng = np.random.default_rng(2)
    layer = ConvLSTM2D(2, 2, dtype="float64", return_state=True)
    layer.set_weights([rng.uniform(-0.5, 0.5, w.shape) for w in layer.get_weights()])
    check_gradients(layer, rng.normal(size=(3, 3, 4, 4, 2)))


def _split_in_child():
    seen = np.zeros(4, int)

    def mark(items):
        seen[items] += 1

    threads.split_run(mark, 4, 1)
    return seen.tolist()


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_a_forked_child_makes_its_own_threads(split_everything):
    split_everything(2)
    threads.split_run(lambda items: None, 4, 1)  # the parent's pool exists before the fork
    assert in_forked_child(_split_in_child, "splitting work") == [1, 1, 1, 1]


def test_split_products_match_numpy_and_each_other(split_everything, monkeypatch):
    # Inside recurrence() BLAS runs on one thread and the products are split by column blocks.
    monkeypatch.setenv("CONVLSTM_BLAS_THREADS", "1")
    monkeypatch.setattr(threads, "MIN_PRODUCT_COLUMNS", 7)
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(6, 5)), rng.normal(size=(5, 40))
    c = rng.normal(size=(3, 40))
    results = []
    for count in (1, 3):
        split_everything(count)
        with threads.recurrence():
            out = threads.split_matmul(a, b, np.empty((6, 40)))
            results.append((out, threads.split_matmul_transposed(b, c)))
    assert len(threads._column_parts(40)) == 5
    np.testing.assert_allclose(results[0][0], a @ b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(results[0][1], b @ c.T, rtol=1e-12, atol=1e-12)
    for one, three in zip(*results):
        np.testing.assert_array_equal(one, three)  # blocks fixed by the shape, not the threads


def test_train_step_split_into_product_blocks_matches_on_any_thread_count(
        split_everything, monkeypatch):
    monkeypatch.setenv("CONVLSTM_BLAS_THREADS", "1")
    monkeypatch.setattr(threads, "MIN_PRODUCT_COLUMNS", 16)
    split_everything(1)
    expected = _train_step({}, MASK)
    split_everything(3)
    actual = _train_step({}, MASK)
    for got, want in zip(actual, expected):
        np.testing.assert_array_equal(got, want)
    monkeypatch.setenv("CONVLSTM_BLAS_THREADS", "0")  # BLAS left alone: one product per step
    unsplit = _train_step({}, MASK)
    for got, want in zip(actual, unsplit):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_recurrence_runs_blas_on_one_thread_and_restores_it(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return [i["num_threads"] for i in threadpoolctl.threadpool_info()
                if i["user_api"] == "blas"]

    before = blas_threads()
    monkeypatch.delenv("CONVLSTM_BLAS_THREADS", raising=False)
    assert threads.recurrence_blas_threads() == 1
    with threads.recurrence():
        assert set(blas_threads()) <= {1}
        assert threads._single_blas[0] == 1
    assert blas_threads() == before and threads._single_blas[0] == 0
    monkeypatch.setenv("CONVLSTM_BLAS_THREADS", "0")
    assert threads.recurrence_blas_threads() is None
    with threads.recurrence():
        assert blas_threads() == before and threads._single_blas[0] == 0
    monkeypatch.setenv("CONVLSTM_BLAS_THREADS", "2")
    assert threads.recurrence_blas_threads() == 2

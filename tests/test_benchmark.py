"""The benchmark's harness (``benchmarks/harness.py``): the FLOP count, the workloads, our runners,
the timing summary. No timing and no subprocesses here: ``pytest benchmarks`` runs the smoke tests
that time things and spawn the benchmark."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from convlstm import ConvLSTM2D
from convlstm.losses import MeanSquaredError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import harness as bench


def test_the_installed_package_holds_no_benchmark():
    assert importlib.util.find_spec("convlstm.benchmark") is None


def test_thread_environment_sets_every_variable():
    env = bench.thread_environment(3)
    assert all(env[name] == "3" for name in bench.THREAD_VARIABLES)
    assert bench.convlstm.__file__.startswith(env["PYTHONPATH"].split(os.pathsep)[0])


def test_flop_count_by_hand():
    # T=2, B=3, H=4, W=5, C=6, F=7: 120 pixels, each 9 taps x 13 channels x 28 outputs x 2.
    shape = bench.ConvLSTMShape(batch=3, time=2, height=4, width=5, in_channels=6, filters=7)
    assert bench.convlstm_flops(shape) == 2 * 120 * 9 * 13 * 28 == 786240
    assert bench.training_flops(shape) == 3 * 786240


def test_issue_shapes_and_flops():
    assert bench.SHAPES["c"] == bench.ConvLSTMShape(4, 10, 64, 64, 64, 64)
    assert bench.SHAPES["c"].text() == "(4, 10, 64, 64, 64 -> 64)"
    # c: 2 * 10*4*64*64 pixels * 9 taps * 128 in * 256 out.
    assert bench.convlstm_flops(bench.SHAPES["c"]) == 2 * 163840 * 9 * 128 * 256
    names = [w.name for w in bench.workloads()]
    assert names == [f"{g}/{k}" for g in "abcd" for k in ("forward", "train")] + [
        "ed/stream",
        "ea/stream",
        "m32/train",
        "m64/train",
        "pool/forward",
        "pool/backward",
    ]
    assert bench.workloads()[-1].shape == (8, 10, 64, 64, 64)


def test_only_filters_by_group_or_name():
    assert [w.name for w in bench.workloads(True, ["d"])] == ["d/forward", "d/train"]
    assert [w.name for w in bench.workloads(True, ["b/train", "pool"])] == [
        "b/train",
        "pool/forward",
        "pool/backward",
    ]
    with pytest.raises(ValueError, match=r"benchmark: expected --only .*got \['z'\]"):
        bench.workloads(True, ["z"])


def test_training_step_gradients_are_nonzero_and_finite():
    (workload,) = bench.workloads(quick=True, only=["a/train"])
    problem = bench.problem_for(workload)
    x_before = problem.x.copy()
    result = bench.our_runner(workload, problem).run()
    assert set(result) == {"loss", "d_x", "d_kernel", "d_recurrent_kernel", "d_bias"}
    assert result["d_x"].shape == problem.x.shape
    assert result["d_kernel"].shape == problem.kernel.shape
    assert result["d_recurrent_kernel"].shape == problem.recurrent_kernel.shape
    for name, value in result.items():
        assert value.dtype == np.float32, name
        assert np.all(np.isfinite(value)), name
        assert np.any(value != 0), name
    np.testing.assert_array_equal(problem.x, x_before)


def test_training_step_gradient_matches_finite_difference():
    # The loss the step reports moves as its d_x says (central difference, one element).
    (workload,) = bench.workloads(quick=True, only=["d/train"])
    problem = bench.problem_for(workload)
    layer = bench.build_layer(problem)
    loss = MeanSquaredError()
    x = problem.x.astype(np.float64)
    layer64 = ConvLSTM2D(problem.shape.in_channels, problem.shape.filters, 3, dtype="float64")
    layer64.set_weights([w.astype(np.float64) for w in layer.get_weights()])
    target = problem.target.astype(np.float64)
    d_x = bench.training_step(layer64, x, target, loss)["d_x"]
    index, eps = (0, 1, 2, 3, 1), 1e-6
    values = []
    for sign in (1, -1):
        shifted = x.copy()
        shifted[index] += sign * eps
        values.append(loss(target, layer64.forward(shifted)))
    assert d_x[index] == pytest.approx((values[0] - values[1]) / (2 * eps), rel=1e-5)


def test_pool_runners_return_pooled_output_and_routed_gradient():
    forward, backward = bench.workloads(quick=True, only=["pool"])
    x, d_output = bench.problem_for(forward)
    output = bench.our_runner(forward, (x, d_output)).run()["output"]
    B, D, H, W, C = x.shape
    expected = x.reshape(B, D // 2, 2, H // 2, 2, W // 2, 2, C).max(axis=(2, 4, 6))
    np.testing.assert_array_equal(output, expected)
    runner = bench.our_runner(backward, (x, d_output))
    runner.prepare()
    d_x = runner.run()["d_x"]
    assert d_x.shape == x.shape
    np.testing.assert_allclose(d_x.sum(), d_output.sum(), rtol=1e-5)
    assert np.count_nonzero(d_x) == d_output.size


def test_timing_summary():
    timing = bench.Timing([0.3, 0.1, 0.2, 0.5, 0.4])
    assert (timing.median, timing.minimum, timing.maximum) == (0.3, 0.1, 0.5)
    record = timing.to_dict(flops=3_000_000_000, peak=20.0)
    assert record["gflops"] == pytest.approx(10.0)
    assert record["peak_share"] == pytest.approx(0.5)
    assert timing.to_dict(flops=None, peak=20.0)["gflops"] is None




def test_blas_warning_names_the_pinning_variables(monkeypatch):
    for name in bench.PINNING_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert bench.blas_warning() is None
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    warning = bench.blas_warning()
    assert warning.startswith("WARNING: OPENBLAS_CORETYPE=Haswell is set")
    assert "env -u OPENBLAS_CORETYPE python benchmarks/run.py" in warning
    record = bench.blas_record()
    assert record["pinning_variables"]["OPENBLAS_CORETYPE"] == "Haswell"
    assert record["warning"] == warning


def test_blas_text_names_library_kernel_and_threads():
    entry = {"internal_api": "openblas", "version": "0.3.31", "architecture": "SkylakeX",
             "num_threads": 2}
    assert bench.blas_text([entry]) == "openblas 0.3.31 (kernel SkylakeX, 2 threads)"
    assert bench.blas_text([]).startswith("BLAS unknown")


def test_workload_m_selects_both_sizes_and_counts_both_layers():
    names = [w.name for w in bench.workloads(only=["m"])]
    assert names == ["m32/train", "m64/train"]
    (m32,) = bench.workloads(only=["m32/train"])
    model = bench.ForecasterShape(*m32.shape)
    assert (model.batch, model.time, model.filters) == (8, 19, 32)
    first, second = model.convlstm_shapes()
    assert first == bench.ConvLSTMShape(8, 19, 16, 16, 16, 32)
    assert second == bench.ConvLSTMShape(8, 19, 16, 16, 32, 32)
    assert m32.flops == bench.training_flops(first) + bench.training_flops(second)


def test_workload_m_runner_is_one_train_on_batch():
    (workload,) = bench.workloads(quick=True, only=["m32"])
    problem = bench.problem_for(workload)
    runner = bench.our_runner(workload, problem)
    result = runner.collect(runner.run())
    model = bench.forecaster_model(problem.shape)
    model.set_weights(problem.weights)
    expected = model.train_on_batch(problem.x, problem.target)
    assert float(result["loss"]) == pytest.approx(expected, rel=1e-6)
    assert len(result) == 1 + len(problem.weights)
    for k, weight in enumerate(problem.weights):
        assert result[f"d_{k}"].shape == weight.shape
        assert np.abs(result[f"d_{k}"]).max() > 0


def test_workload_e_streams_one_frame_per_call_as_one_sequence():
    assert [w.name for w in bench.workloads(only=["e"])] == ["ed/stream", "ea/stream"]
    (workload,) = bench.workloads(quick=True, only=["ed"])
    problem = bench.problem_for(workload)
    runner = bench.our_runner(workload, problem)
    for _ in range(2):  # states reset between runs
        runner.prepare()
        streamed = runner.collect(runner.run())["output"]
        np.testing.assert_allclose(streamed, bench.build_layer(problem).forward(problem.x),
                                   rtol=1e-6, atol=1e-6)

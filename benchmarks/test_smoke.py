"""Smoke tests of the benchmark command: they time tiny workloads and spawn fresh processes, so
they are not part of the unit suite (``pytest`` runs ``tests/``). Run them with
``pytest benchmarks``. No timing is asserted."""

from __future__ import annotations

import json

import pytest

import harness as bench
import run as bench_run

THREADS = "2"


@pytest.fixture
def threads_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """Thread variables already set, so ``main`` runs in this process instead of re-executing
    (NumPy's BLAS keeps the thread count it started with; no timing is checked here)."""
    for name in bench.THREAD_VARIABLES:
        monkeypatch.setenv(name, THREADS)


def test_main_quick_writes_json(tmp_path, capsys, threads_set):
    path = tmp_path / "out" / "bench.json"
    assert bench_run.main(["--quick", "--only", "d", "--json", str(path)]) == 0
    results = json.loads(path.read_text())
    assert {
        "machine",
        "threads",
        "quick",
        "repeats",
        "flop_count",
        "memory_method",
        "matmul_peak_gflops",
        "workloads",
        "memory",
    } <= set(results)
    assert results["threads"] == 2 and results["quick"] is True
    assert results["matmul_peak_gflops"] > 0
    assert {"libraries", "pinning_variables", "warning"} <= set(results["blas"])
    assert [w["name"] for w in results["workloads"]] == ["d/forward", "d/train"]
    for record in results["workloads"]:
        ours = record["ours"]
        assert len(ours["runs_s"]) == results["repeats"]
        assert ours["min_s"] <= ours["median_s"] <= ours["max_s"]
        assert ours["gflops"] > 0 and ours["peak_share"] > 0
        assert record["flops"] == bench.convlstm_flops(bench.ConvLSTMShape(*record["shape"])) * (
            3 if record["name"].endswith("train") else 1
        )
    assert results["memory"] == []  # only b's training step is measured for memory
    table = capsys.readouterr().out
    assert "d/train" in table and "GFLOP/s" in table


def test_memory_probe_in_fresh_process():
    record = bench.run_memory_probe(bench.our_memory_command("b", quick=True), threads=1)
    assert record["library"] == "convlstm" and record["workload"] == "b/train"
    assert record["peak_mib"] >= record["baseline_mib"] > 0
    assert record["step_mib"] == pytest.approx(record["peak_mib"] - record["baseline_mib"])


def test_main_refuses_few_repeats(capsys):
    with pytest.raises(SystemExit):
        bench_run.main(["--repeats", "3"])
    assert "--repeats must be at least 5" in capsys.readouterr().err


def test_main_reexecutes_with_thread_variables(tmp_path, monkeypatch, capfd):
    for name in bench.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "bench.json"
    arguments = ["--quick", "--only", "d/forward", "--threads", "1", "--json", str(path)]
    assert bench_run.main(arguments) == 0
    results = json.loads(path.read_text())
    assert set(results["thread_variables"].values()) == {"1"}
    assert "d/forward" in capfd.readouterr().out


def test_quick_run_writes_no_json_unless_asked(tmp_path, monkeypatch, threads_set):
    before = bench_run.DEFAULT_JSON.read_bytes()
    monkeypatch.chdir(tmp_path)
    assert bench_run.main(["--quick", "--only", "d/forward"]) == 0
    assert bench_run.DEFAULT_JSON.read_bytes() == before
    assert list(tmp_path.iterdir()) == []


def test_scaling_quick_writes_json_and_png(tmp_path, threads_set):
    import scaling

    stem = tmp_path / "scaling"
    assert scaling.main(["--quick", "--repeats", "1", "--out", str(stem)]) == 0
    results = json.loads(stem.with_suffix(".json").read_text())
    assert {p["sweep"] for p in results["points"]} == set(scaling.SWEEPS)
    assert all(p["checked"] and p["ours_s"] > 0 and p["torch_s"] > 0 for p in results["points"])
    assert stem.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"

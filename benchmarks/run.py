"""The speed benchmark: this library against PyTorch's CPU build, in one run.

How to run (from the repository root, with the library installed or ``PYTHONPATH=src``)::

    pip install torch==2.13.0 && python benchmarks/run.py
    python benchmarks/run.py --only b,c --repeats 7       # some workloads, more runs
    python benchmarks/run.py --quick --json /tmp/q.json   # smoke test: tiny shapes, 2 runs

Options: ``--threads N`` (default 2; BLAS, OpenMP and ``torch.set_num_threads``), ``--quick``,
``--only a,b,c,d,pool`` (or names such as ``b/train``), ``--repeats N`` (at least 5, default 5),
``--json PATH`` (default ``benchmarks/results.json``, the committed results; a ``--quick`` run
writes JSON only where ``--json`` says).

For each workload (see ``harness.py`` beside this file for the shapes, the FLOP count and the memory
method) the run first checks that both libraries compute the same result on the same weights
and input (forward and streaming outputs within 1e-4; for a training step the loss, the input
gradient and every weight gradient within 1e-3 of their largest magnitude; pooling exactly) and
refuses to time a workload where they differ. That checking run is each side's warm-up. Then it
times ``--repeats`` rounds, interleaved: each round runs ours and each PyTorch design once, in an
order that rotates, so drift on a shared machine hits every side alike, with an untimed 0.25 s pause
before each run so the other library's thread pool has gone idle. The table gives, per workload,
our median (min-max), PyTorch's faster design with its median (min-max), GFLOP/s, ours/theirs
(below 1: we are faster) and each side's share of the float32 matrix-product peak measured at
the start of the run. The peak memory of the training step on b is measured for each library
(and each PyTorch design) in a fresh process.

When torch is not importable, the run says so and times our half alone. The exit status is 1
when some workload was refused because the libraries disagree.

Timings on a shared 2-core machine are noisy: compare the ratios of one run (both sides saw the
same conditions), look at min-max, and rerun a workload (``--only``) whose numbers look off.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if importlib.util.find_spec("convlstm") is None and (HERE.parent / "src" / "convlstm").is_dir():
    sys.path.insert(0, str(HERE.parent / "src"))  # a source checkout without an install
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # torch_convlstm, imported only when torch is

import numpy as np  # noqa: E402 (after the sys.path fallback)

import harness as bench  # noqa: E402

DEFAULT_JSON = HERE / "results.json"
FORWARD_ATOL = 1e-4
GRADIENT_RTOL = 1e-3  # of the largest magnitude of PyTorch's array
SETTLE_S = 0.25  # pause before each timed run: the previous side's threads go idle


def compare(
    ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray], kind: str
) -> dict[str, Any]:
    """Largest differences between the two libraries' results and whether they pass.

    Forward outputs must agree within ``FORWARD_ATOL``; training results (loss, d_x and each
    weight's gradient) within ``GRADIENT_RTOL`` times the largest magnitude of each array (an
    MSE gradient scales with 1/size, so an absolute tolerance would pass anything); pooling
    results exactly.
    """
    errors, passed = {}, True
    for key, reference in theirs.items():
        reference = np.asarray(reference, np.float64)
        value = np.asarray(ours[key], np.float64)
        if value.shape != reference.shape:
            errors[key] = f"shape {value.shape} vs {reference.shape}"
            passed = False
            continue
        error = float(np.max(np.abs(value - reference))) if value.size else 0.0
        scale = float(np.max(np.abs(reference))) if reference.size else 0.0
        limit = {"train": GRADIENT_RTOL * scale, "forward": FORWARD_ATOL,
                 "stream": FORWARD_ATOL}.get(kind, 0.0)
        errors[key] = {
            "max_abs_error": error,
            "max_abs_value": scale,
            "limit": limit,
            "dtypes": [str(np.asarray(ours[key]).dtype), str(np.asarray(theirs[key]).dtype)],
        }
        passed = passed and error <= limit and bool(np.isfinite(value).all())
    return {"passed": passed, "errors": errors}


def check(
    workload: bench.Workload, ours: bench.Runner, theirs: dict[str, bench.Runner]
) -> dict[str, Any]:
    """Run every side once (the warm-up) and compare each PyTorch design with ours."""
    if ours.prepare is not None:
        ours.prepare()
    our_result = ours.collect(ours.run())
    kind = workload.kind if workload.group != "pool" else "pool"
    report = {}
    for design, runner in theirs.items():
        if runner.prepare is not None:
            runner.prepare()
        report[design] = compare(our_result, runner.collect(runner.run()), kind)
    return {"passed": all(r["passed"] for r in report.values()), "designs": report}


def time_interleaved(runners: dict[str, bench.Runner], repeats: int) -> dict[str, bench.Timing]:
    """``repeats`` rounds; each round times every runner once, the order rotating by round.

    Before each timed run the process sleeps ``SETTLE_S`` (untimed) so the thread pool of the
    side that ran before has gone idle: OpenBLAS workers spin for about 0.1 s after a call, and
    on 2 cores a spinning pool would slow the other library down.
    """
    names = list(runners)
    runs: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            time.sleep(SETTLE_S)
            runs[name].append(bench.time_once(runners[name]))
    return {name: bench.Timing(values) for name, values in runs.items()}


def run_workload(
    workload: bench.Workload, args: argparse.Namespace, peak: float, torch_runners: Any
) -> dict[str, Any]:
    """Check, then time, one workload on both sides; the JSON record."""
    problem = bench.problem_for(workload)
    ours = bench.our_runner(workload, problem)
    theirs = torch_runners(workload, problem)
    record: dict[str, Any] = {
        "name": workload.name,
        "shape": list(workload.shape),
        "shape_text": workload.shape_text,
        "flops": workload.flops,
    }
    record["check"] = check(workload, ours, theirs)
    if not record["check"]["passed"]:
        record["skipped"] = "results differ between the libraries; not timed"
        return record
    timings = time_interleaved({"ours": ours, **theirs}, args.repeats)
    record["ours"] = timings.pop("ours").to_dict(workload.flops, peak)
    record["torch"] = {design: t.to_dict(workload.flops, peak) for design, t in timings.items()}
    best = min(record["torch"], key=lambda design: record["torch"][design]["median_s"])
    record["torch_best"] = best
    record["ratio"] = record["ours"]["median_s"] / record["torch"][best]["median_s"]
    return record


def memory_rows(args: argparse.Namespace, designs: tuple[str, ...]) -> list[dict[str, Any]]:
    """Peak memory of the training step on b: ours and each PyTorch design, fresh processes."""
    quick = ["--quick"] if args.quick else []
    rows = [bench.run_memory_probe(bench.our_memory_command("b", args.quick), args.threads)]
    for design in designs:
        command = [
            sys.executable,
            str(HERE / "torch_convlstm.py"),
            "--memory-probe",
            "b",
            "--design",
            design,
            *quick,
        ]
        rows.append(bench.run_memory_probe(command, args.threads))
    return rows


def span(timing: dict[str, Any]) -> str:
    """``median (min-max)`` in milliseconds."""
    return (
        f"{bench.ms(timing['median_s'])} ({bench.ms(timing['min_s'])}-{bench.ms(timing['max_s'])})"
    )


def table(results: dict[str, Any]) -> str:
    """The printed report."""
    machine = results["machine"]
    header = [
        "workload",
        "shape",
        "ours ms (min-max)",
        "torch ms (min-max)",
        "torch design",
        "ours GFLOP/s",
        "torch GFLOP/s",
        "ours/torch",
        "ours peak",
        "torch peak",
    ]
    rows = []
    for record in results["workloads"]:
        if "skipped" in record:
            rows.append(
                [
                    record["name"],
                    record["shape_text"],
                    "NOT TIMED: results differ",
                    "-",
                    "-",
                    "-",
                    "-",
                    "-",
                    "-",
                    "-",
                ]
            )
            continue
        ours, best = record["ours"], record["torch"][record["torch_best"]]
        rows.append(
            [
                record["name"],
                record["shape_text"],
                span(ours),
                span(best),
                record["torch_best"],
                bench.number(ours["gflops"]),
                bench.number(best["gflops"]),
                f"{record['ratio']:.2f}",
                bench.number(ours["peak_share"], "{:.0%}"),
                bench.number(best["peak_share"], "{:.0%}"),
            ]
        )
    lines = [
        f"convlstm {machine['convlstm']} (NumPy {machine['numpy']}) vs PyTorch "
        f"{machine['torch']} CPU; {results['threads']} threads; {machine['cpu']} "
        f"({machine['cpu_count']} cores); Python {machine['python']}",
        f"NumPy's BLAS: {bench.blas_text(results['blas']['libraries'])}",
        *([results["blas"]["warning"]] if results["blas"]["warning"] else []),
        f"float32 matmul peak {results['matmul_peak_gflops']:.1f} GFLOP/s (best of 5 "
        f"{results['matmul_size']}^3 "
        f"products); median of {results['repeats']} interleaved runs after a checked warm-up",
        f"FLOPs: {bench.FLOP_COUNT}. ours/torch < 1: we are faster.",
        "",
        bench.format_table(header, rows),
    ]
    memory = [row for row in results["memory"] if "error" not in row]
    if memory:
        lines += ["", f"peak memory of the training step on b ({bench.MEMORY_METHOD}):", ""]
        lines.append(
            bench.format_table(
                ["library", "workload", "step MiB", "process peak MiB"],
                [
                    [r["library"], r["workload"], f"{r['step_mib']:.0f}", f"{r['peak_mib']:.0f}"]
                    for r in memory
                ],
            )
        )
    lines += [f"memory probe failed: {row['error']}" for row in results["memory"] if "error" in row]
    return "\n".join(lines)


def write_results(path: str | None, results: dict[str, Any]) -> None:
    """Write the JSON record to ``path``, if there is one, and say so."""
    if path:
        bench.write_json(path, results)
        print(f"\nwrote {path}")


def main(argv: list[str] | None = None) -> int:
    """Check, time and report both libraries (ours alone without torch); 0 on success."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = bench.build_parser("benchmarks/run.py", __doc__.splitlines()[0])
    # internal: our training step on GROUP alone, in this fresh process; one JSON line out
    parser.add_argument("--memory-probe", default=None, metavar="GROUP", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_probe is not None:
        print(json.dumps(bench.memory_probe(args.memory_probe, args.quick)))
        return 0
    if args.json is None and not args.quick:
        args.json = str(DEFAULT_JSON)
    bench.checked_options(parser, args)
    if not bench.threads_are_set(args.threads):
        return bench.reexecute([sys.executable, str(Path(__file__).resolve()), *argv], args.threads)
    warning = bench.blas_warning()
    if warning:
        print(f"\n{'!' * 100}\n{warning}\n{'!' * 100}\n", file=sys.stderr, flush=True)
    try:
        import torch

        import torch_convlstm
    except ImportError as error:
        print(
            f"PyTorch is not importable ({error}); timing this library alone. "
            "For the comparison: pip install torch==2.13.0\n"
        )
        results = bench.run_ours(args)
        results["torch"] = None
        print(bench.our_table(results))
        write_results(args.json, results)
        return 0

    torch.set_num_threads(args.threads)
    peak = bench.matmul_peak(bench.matmul_size(args.quick))
    records = []
    for workload in bench.workloads(args.quick, args.only):
        print(f"{workload.name} {workload.shape_text} ...", file=sys.stderr, flush=True)
        records.append(run_workload(workload, args, peak, torch_convlstm.torch_runners))
        gc.collect()
    selected = {w.name for w in bench.workloads(args.quick, args.only)}
    memory = memory_rows(args, torch_convlstm.DESIGNS) if "b/train" in selected else []
    results = {
        "machine": {**bench.machine_info(), "torch": torch.__version__},
        "threads": args.threads,
        "torch_threads": torch.get_num_threads(),
        "thread_variables": {name: os.environ.get(name) for name in bench.THREAD_VARIABLES},
        "quick": args.quick,
        "repeats": args.repeats,
        "warmup": "the correctness-check run of each side",
        "flop_count": bench.FLOP_COUNT,
        "memory_method": bench.MEMORY_METHOD,
        "tolerances": {
            "forward_atol": FORWARD_ATOL,
            "gradient_rtol": GRADIENT_RTOL,
            "pool": "exact",
        },
        "blas": bench.blas_record(),
        "matmul_peak_gflops": peak,
        "matmul_size": bench.matmul_size(args.quick),
        "workloads": records,
        "memory": memory,
    }
    print(table(results))
    write_results(args.json, results)
    refused = [r["name"] for r in records if "skipped" in r]
    if refused:
        print(f"results differ, not timed: {', '.join(refused)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

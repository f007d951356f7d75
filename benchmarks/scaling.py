"""How cost grows: forward and training-step time against T, H*W, batch and filters, ours and
PyTorch's, on log axes with the ideal linear slope drawn.

From a base shape (batch, time, height, width, in_channels -> filters), each sweep multiplies
one size by 1, 2, 4 and 8 (H and W each by the square root, so the pixels grow by those factors)
and times ``--repeats`` interleaved runs of ours and both PyTorch designs (the faster design is
plotted), as ``run.py`` does. The dashed line through each first point is the linear slope
(twice the size, twice the time); a curve below it grows slower than linear.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/scaling.py

writes ``benchmarks/scaling.json`` and ``benchmarks/scaling.png`` (``--out`` to change the stem).
BLAS and PyTorch run on ``--threads`` threads (default 2), set before NumPy is imported.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if importlib.util.find_spec("convlstm") is None and (HERE.parent / "src" / "convlstm").is_dir():
    sys.path.insert(0, str(HERE.parent / "src"))
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import harness as bench  # noqa: E402

BASE = bench.ConvLSTMShape(batch=2, time=8, height=32, width=32, in_channels=8, filters=32)
FACTORS = (1, 2, 4, 8)
SWEEPS = ("time", "pixels", "batch", "filters")


def scaled(base: bench.ConvLSTMShape, sweep: str, factor: int) -> bench.ConvLSTMShape:
    """``base`` with one size multiplied by ``factor`` (pixels: H and W by its square root,
    rounded to the next integer, then W set so H*W is exact where it can be)."""
    if sweep == "time":
        return replace(base, time=base.time * factor)
    if sweep == "batch":
        return replace(base, batch=base.batch * factor)
    if sweep == "filters":
        return replace(base, filters=base.filters * factor)
    side = round(base.height * factor**0.5)
    return replace(base, height=side, width=base.height * base.width * factor // side)


def measure(repeats: int, quick: bool, factors: tuple[int, ...] = FACTORS) -> dict[str, Any]:
    """Median seconds of ours and of PyTorch's faster design for every sweep point."""
    import run as bench_run
    import torch_convlstm

    base = bench.QUICK_SHAPES["d"] if quick else BASE
    factors = factors[:2] if quick else factors
    points = []
    for sweep in SWEEPS:
        for factor in factors:
            shape = scaled(base, sweep, factor)
            fields = tuple(asdict(shape).values())
            for kind in ("forward", "train"):
                flops = (bench.convlstm_flops(shape) if kind == "forward"
                         else bench.training_flops(shape))
                workload = bench.Workload(sweep, kind, fields, shape.text(), flops)
                problem = bench.convlstm_problem(shape)
                ours = bench.our_runner(workload, problem)
                theirs = torch_convlstm.torch_runners(workload, problem)
                check = bench_run.check(workload, ours, theirs)
                timings = bench_run.time_interleaved({"ours": ours, **theirs}, repeats)
                torch_best = min(t.median for name, t in timings.items() if name != "ours")
                points.append({"sweep": sweep, "factor": factor, "kind": kind,
                               "shape": list(fields), "shape_text": shape.text(),
                               "checked": check["passed"], "ours_s": timings["ours"].median,
                               "torch_s": torch_best})
                print(f"{sweep} x{factor} {kind} {shape.text()}: ours "
                      f"{bench.ms(timings['ours'].median)} ms, torch {bench.ms(torch_best)} ms",
                      file=sys.stderr, flush=True)
    return {"base": list(asdict(base).values()), "factors": list(factors), "points": points}


def plot(results: dict[str, Any], path: Path) -> None:
    """Four panels (one per sweep): time against the factor, log-log, with the linear slope."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(SWEEPS), figsize=(4 * len(SWEEPS), 3.6), sharey=False)
    styles = {("ours", "forward"): ("C0", "-"), ("ours", "train"): ("C0", "--"),
              ("torch", "forward"): ("C1", "-"), ("torch", "train"): ("C1", "--")}
    labels = {"time": "time steps T", "pixels": "pixels H*W", "batch": "batch",
              "filters": "filters F"}
    for axis, sweep in zip(axes, SWEEPS):
        for (library, kind), (color, line) in styles.items():
            rows = [p for p in results["points"] if p["sweep"] == sweep and p["kind"] == kind]
            factors = [p["factor"] for p in rows]
            seconds = [p[f"{library}_s"] * 1e3 for p in rows]
            axis.plot(factors, seconds, color=color, linestyle=line, marker="o",
                      label=f"{'convlstm' if library == 'ours' else 'PyTorch'} {kind}")
            if library == "ours":
                axis.plot(factors, [seconds[0] * f / factors[0] for f in factors], color="grey",
                          linestyle=":", linewidth=1,
                          label="linear slope" if kind == "forward" else None)
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel(f"{labels[sweep]} (x base)")
        axis.set_title(labels[sweep])
        axis.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("ms per call (median)")
    axes[0].legend(fontsize=7)
    base = bench.ConvLSTMShape(*results["base"]).text()
    figure.suptitle(f"How cost grows from the base shape {base} (log axes)", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    """Measure (in a process with the thread variables set), write the JSON and the PNG."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny shapes: a smoke test")
    parser.add_argument("--factors", default=",".join(map(str, FACTORS)),
                        help="the multiples of the base shape (default 1,2,4,8)")
    parser.add_argument("--out", default=str(HERE / "scaling"), help="path stem of .json/.png")
    args = parser.parse_args(argv)
    if not bench.threads_are_set(args.threads):
        return bench.reexecute([sys.executable, str(Path(__file__).resolve()), *argv],
                               args.threads)
    import torch

    torch.set_num_threads(args.threads)
    results = {"machine": {**bench.machine_info(), "torch": torch.__version__},
               "blas": bench.blas_record(), "threads": args.threads, "repeats": args.repeats,
               **measure(args.repeats, args.quick,
                         tuple(int(f) for f in args.factors.split(",")))}
    stem = Path(args.out)
    bench.write_json(stem.with_suffix(".json"), results)
    plot(results, stem.with_suffix(".png"))
    print(f"wrote {stem.with_suffix('.json')} and {stem.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

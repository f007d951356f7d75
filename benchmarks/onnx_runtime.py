"""Inference time of an exported model under ONNX Runtime, beside our own forward.

How to run (from the repository root, with the library installed or ``PYTHONPATH=src``, and
``pip install onnx onnxruntime``)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/onnx_runtime.py
    python benchmarks/onnx_runtime.py --repeats 25 --threads 2

Each workload is exported once (to a temporary folder), both sides are run once to warm up and
to check that they agree (the largest absolute difference is printed), then timed ``--repeats``
rounds, interleaved (ours, then ONNX Runtime, in each round, with an untimed 0.25 s pause before
each run). ONNX Runtime gets ``--threads`` intra-op threads, told not to spin between runs;
ours uses its usual threads (BLAS and ``CONVLSTM_NUM_THREADS``). Informative only: there is no
target, and a shared machine is noisy (read min-max).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if importlib.util.find_spec("convlstm") is None and (HERE.parent / "src" / "convlstm").is_dir():
    sys.path.insert(0, str(HERE.parent / "src"))  # a source checkout without an install

import numpy as np  # noqa: E402 (after the sys.path fallback)

from convlstm import ConvLSTM2D, Sequential, forecasting  # noqa: E402


def workloads():
    """(name, model, input) triples: the Moving MNIST forecaster, the README's next-frame model
    and the speed benchmark's ConvLSTM shape a."""
    rng = np.random.default_rng(0)
    yield ("forecaster 10 frames", forecasting.forecaster(),
           rng.random((1, 10, 64, 64, 1), np.float32))
    yield ("forecaster 10 frames, batch 8", forecasting.forecaster(),
           rng.random((8, 10, 64, 64, 1), np.float32))
    yield ("next-frame (README)", forecasting.next_frame_model((None, 16, 16, 1), filters=8),
           rng.random((4, 5, 16, 16, 1), np.float32))
    yield ("ConvLSTM2D 1->32 (bench a)",
           Sequential([ConvLSTM2D(1, 32, 3, "same", seed=0)], input_shape=(None, 32, 32, 1)),
           rng.random((1, 10, 32, 32, 1), np.float32))


SETTLE_S = 0.25  # an untimed pause before each run: the other side's threads go idle


def timed(function, repeats_into: list[float]) -> None:
    time.sleep(SETTLE_S)
    start = time.perf_counter()
    function()
    repeats_into.append(time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds per workload")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    args = parser.parse_args(argv)
    try:
        import onnxruntime as ort
    except ImportError:
        print("needs onnxruntime: pip install onnx onnxruntime", file=sys.stderr)
        return 2
    import convlstm.onnx

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    # ONNX Runtime's threads spin after a run by default, taking the CPU from ours.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    print(f"onnxruntime {ort.__version__}, {args.threads} intra-op threads; float32; median "
          f"(min-max) of {args.repeats} interleaved runs after a checked warm-up")
    header = (f"{'workload':<32} {'input':<22} {'ours ms':>22} {'onnxruntime ms':>22} "
              f"{'ort/ours':>8} {'max |diff|':>10}")
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as folder:
        for name, model, x in workloads():
            path = Path(folder) / "model.onnx"
            convlstm.onnx.export(model, path)
            session = ort.InferenceSession(str(path), options,
                                           providers=["CPUExecutionProvider"])
            difference = float(np.abs(session.run(None, {"x": x})[0] - model.forward(x)).max())
            ours, theirs = [], []
            for _ in range(args.repeats):
                timed(lambda model=model, x=x: model.forward(x), ours)
                timed(lambda session=session, x=x: session.run(None, {"x": x}), theirs)
            cells = [f"{1e3 * statistics.median(t):.1f} ({1e3 * min(t):.1f}-{1e3 * max(t):.1f})"
                     for t in (ours, theirs)]
            ratio = statistics.median(theirs) / statistics.median(ours)
            print(f"{name:<32} {x.shape!s:<22} {cells[0]:>22} {cells[1]:>22} {ratio:>8.2f} "
                  f"{difference:>10.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

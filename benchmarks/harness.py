"""The benchmark's shared half: the workloads, this library's runners, timing, memory and tables.

NumPy only; ``run.py`` (the command) and ``torch_convlstm.py`` (PyTorch's runners) import it.
Nothing here is part of the installed package: the benchmark lives in ``benchmarks/``.

Workloads (float32, channels-last, ``ConvLSTM2D(C, F, 3, "same")``, shapes
(batch, time, height, width, C -> F)): a (1, 10, 32, 32, 1 -> 32), b (16, 10, 64, 64, 1 -> 64),
c (4, 10, 64, 64, 64 -> 64), d (1, 10, 16, 16, 8 -> 16). Each gives ``<shape>/forward``
(inference) and ``<shape>/train`` (forward with ``training=True``, mean-squared-error loss against
a fixed target, backward to the input and every weight). ``pool/forward`` and ``pool/backward``
are MaxPooling3D((2, 2, 2)) on (8, 10, 64, 64, 64). ``m32/train`` and ``m64/train`` (``--only m``
selects both) are workload m, the model users train: the Moving MNIST forecaster
(``convlstm.forecasting.forecaster``, 4x4 space-to-depth, 2 ConvLSTM2D of 32 or 64 filters, a 1x1
sigmoid head) at batch 8 and 16, T=19, timed as one whole ``train_on_batch`` with binary
cross-entropy and Adam (its FLOPs: both ConvLSTM2D layers' training FLOPs, the head not counted).
``ed/stream`` and ``ea/stream`` (``--only e``) are workload e, streaming: d's and a's layer,
stateful, fed 100 frames one call each (inference); the time is the whole 100 calls.

Method:

* Timing: one warm-up run, then ``--repeats`` (at least 5) timed runs with ``time.perf_counter``;
  median, min and max are reported. Work a step needs but does not count (the training forward
  before a pooling backward) runs untimed just before each run.
* FLOPs: the multiply-adds of the input and recurrent convolutions, 2 FLOPs each:
  ``2*T*B*H*W*kh*kw*(C+F)*4F`` for a forward. A training step counts as 3 forwards (the forward,
  then the input and weight gradients of both convolutions). Gate arithmetic, bias and padding
  are not counted; pooling counts no FLOPs (it moves memory).
* Matrix-product peak: the best of several float32 ``np.matmul`` of two 2048x2048 matrices
  (``2*n**3`` FLOPs), measured in the same run; each workload reports its share of it.
* Threads: BLAS reads its thread count when NumPy is imported, so ``run.py`` re-executes itself
  with OMP_NUM_THREADS, OPENBLAS_NUM_THREADS,
  MKL_NUM_THREADS, BLIS_NUM_THREADS and VECLIB_MAXIMUM_THREADS set to ``--threads`` unless they
  already are.
* Memory: the training step on b runs alone in a fresh process (``run.py --memory-probe b``), which
  builds the inputs and weights, reads its RSS (the baseline, after imports and inputs), resets
  the kernel's peak-RSS mark to it (``/proc/self/clear_refs``), runs one step and reads the mark
  (``VmHWM``); the step's peak is the difference. Not ``ru_maxrss``: on Linux a child's
  ``ru_maxrss`` starts from its parent's RSS at the fork, so it would report the parent's memory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import convlstm
from convlstm import ConvLSTM2D, MaxPooling3D
from convlstm.losses import MeanSquaredError

HERE = Path(__file__).resolve().parent

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)
KERNEL = 3
MIN_REPEATS = 5
FLOP_COUNT = (
    "forward: 2*T*B*H*W*kh*kw*(C+F)*4F (multiply-adds of the input and recurrent convolutions); "
    "training step: 3x forward; pooling: none"
)
MEMORY_METHOD = (
    "one training step in a fresh process per library, after imports and after its inputs, "
    "target and weights are built: peak RSS during the step (VmHWM, reset to the current RSS "
    "just before it) minus the RSS just before it"
)


@dataclass(frozen=True)
class ConvLSTMShape:
    """(batch, time, height, width, in_channels -> filters) of a ConvLSTM2D workload."""

    batch: int
    time: int
    height: int
    width: int
    in_channels: int
    filters: int

    def text(self) -> str:
        """``(B, T, H, W, C -> F)``."""
        B, T, H, W, C, F = asdict(self).values()
        return f"({B}, {T}, {H}, {W}, {C} -> {F})"


SHAPES = {
    "a": ConvLSTMShape(1, 10, 32, 32, 1, 32),
    "b": ConvLSTMShape(16, 10, 64, 64, 1, 64),
    "c": ConvLSTMShape(4, 10, 64, 64, 64, 64),
    "d": ConvLSTMShape(1, 10, 16, 16, 8, 16),
}
QUICK_SHAPES = {
    "a": ConvLSTMShape(1, 3, 8, 8, 1, 4),
    "b": ConvLSTMShape(2, 3, 8, 8, 1, 4),
    "c": ConvLSTMShape(1, 3, 8, 8, 4, 4),
    "d": ConvLSTMShape(1, 3, 6, 6, 2, 3),
}
@dataclass(frozen=True)
class ForecasterShape:
    """Workload m: the Moving MNIST forecaster (``convlstm.forecasting.forecaster``) on
    (batch, time, 64, 64, 1) frames: 4x4 space-to-depth to 16x16x16, ``layers`` ConvLSTM2D of
    ``filters`` with ``kernel`` x ``kernel`` kernels, a 1x1 sigmoid head, binary
    cross-entropy, Adam."""

    batch: int
    time: int
    filters: int
    frame: int = 64
    kernel: int = KERNEL
    layers: int = 2
    block: int = 4

    def text(self) -> str:
        """``(B, T, 64, 64, 1), 2x ConvLSTM2D F=32``."""
        return (f"({self.batch}, {self.time}, {self.frame}, {self.frame}, 1), "
                f"{self.layers}x F={self.filters}")

    def convlstm_shapes(self) -> list[ConvLSTMShape]:
        """The ConvLSTM2D layers' shapes, after space-to-depth."""
        side, depth = self.frame // self.block, self.block**2
        return [ConvLSTMShape(self.batch, self.time, side, side, depth if k == 0 else
                              self.filters, self.filters) for k in range(self.layers)]


STREAM_SHAPES = {"ed": ConvLSTMShape(1, 100, 16, 16, 8, 16),
                 "ea": ConvLSTMShape(1, 100, 32, 32, 1, 32)}
QUICK_STREAM_SHAPES = {"ed": ConvLSTMShape(1, 5, 6, 6, 2, 3),
                       "ea": ConvLSTMShape(1, 5, 8, 8, 1, 4)}
MODEL_SHAPES = {"m32": ForecasterShape(8, 19, 32), "m64": ForecasterShape(16, 19, 64)}
QUICK_MODEL_SHAPES = {"m32": ForecasterShape(2, 3, 4, frame=16),
                      "m64": ForecasterShape(2, 3, 8, frame=16)}
LEARNING_RATE = 1e-3
POOL_SHAPE = (8, 10, 64, 64, 64)  # (B, D, H, W, C)
QUICK_POOL_SHAPE = (2, 4, 8, 8, 4)
POOL_SIZE = (2, 2, 2)
GROUPS = (*SHAPES, *STREAM_SHAPES, *MODEL_SHAPES, "pool")
ALIASES = {"m": tuple(MODEL_SHAPES), "e": tuple(STREAM_SHAPES)}  # --only m: both m sizes


def convlstm_flops(shape: ConvLSTMShape, kernel: int = KERNEL) -> int:
    """FLOPs of one ConvLSTM2D forward: ``2*T*B*H*W*k*k*(C+F)*4F`` ("same", stride 1)."""
    s = shape
    pixels = s.time * s.batch * s.height * s.width
    return 2 * pixels * kernel * kernel * (s.in_channels + s.filters) * 4 * s.filters


def training_flops(shape: ConvLSTMShape, kernel: int = KERNEL) -> int:
    """FLOPs of one training step: 3x the forward (forward, input gradient, weight gradient)."""
    return 3 * convlstm_flops(shape, kernel)


# ---------------------------------------------------------------------------------- workloads


@dataclass(frozen=True)
class Workload:
    """One timed step: ``name`` is ``<group>/<kind>``, e.g. ``b/train`` or ``pool/backward``."""

    group: str
    kind: str  # "forward" | "train" (ConvLSTM2D), "forward" | "backward" (pool)
    shape: tuple[int, ...]
    shape_text: str
    flops: int | None

    @property
    def name(self) -> str:
        return f"{self.group}/{self.kind}"


def workloads(quick: bool = False, only: Sequence[str] | None = None) -> list[Workload]:
    """The benchmark's workloads in table order, filtered by group (``b``) or name (``b/train``).

    Raises:
        ValueError: when ``only`` names no known group or workload.
    """
    shapes = QUICK_SHAPES if quick else SHAPES
    result = []
    for group, shape in shapes.items():
        fields = tuple(asdict(shape).values())
        result.append(Workload(group, "forward", fields, shape.text(), convlstm_flops(shape)))
        result.append(Workload(group, "train", fields, shape.text(), training_flops(shape)))
    for group, shape in (QUICK_STREAM_SHAPES if quick else STREAM_SHAPES).items():
        fields = tuple(asdict(shape).values())
        result.append(Workload(group, "stream", fields, shape.text(), convlstm_flops(shape)))
    for group, model in (QUICK_MODEL_SHAPES if quick else MODEL_SHAPES).items():
        flops = sum(training_flops(shape, model.kernel) for shape in model.convlstm_shapes())
        result.append(Workload(group, "train", tuple(asdict(model).values()), model.text(),
                               flops))
    pool = QUICK_POOL_SHAPE if quick else POOL_SHAPE
    for kind in ("forward", "backward"):
        result.append(Workload("pool", kind, pool, str(pool), None))
    if not only:
        return result
    only = [group for item in only for group in ALIASES.get(item, (item,))]
    known = set(GROUPS) | {w.name for w in result}
    unknown = [item for item in only if item not in known]
    if unknown:
        raise ValueError(
            f"benchmark: expected --only to list groups {['m', *GROUPS]} or workloads such as "
            f"'b/train'; got {unknown}."
        )
    return [w for w in result if w.group in only or w.name in only]


@dataclass
class ConvLSTMProblem:
    """Inputs and Keras-layout weights shared by every library timing a ConvLSTM workload.

    Shapes: x (B, T, H, W, C), target (B, T, H, W, F), kernel (3, 3, C, 4F),
    recurrent_kernel (3, 3, F, 4F), bias (4F,); all float32.
    """

    shape: ConvLSTMShape
    x: np.ndarray
    target: np.ndarray
    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    bias: np.ndarray


def convlstm_problem(shape: ConvLSTMShape, seed: int = 0) -> ConvLSTMProblem:
    """Seeded inputs, target and weights (Keras' initializers, a small random bias)."""
    rng = np.random.default_rng(seed)
    B, T, H, W, C, F = asdict(shape).values()
    layer = ConvLSTM2D(C, F, KERNEL, "same", seed=seed)
    kernel, recurrent_kernel, bias = layer.get_weights()
    bias = bias + 0.1 * rng.standard_normal(bias.shape, dtype=np.float32)
    x = rng.standard_normal((B, T, H, W, C), dtype=np.float32)
    target = rng.standard_normal((B, T, H, W, F), dtype=np.float32)
    return ConvLSTMProblem(shape, x, target, kernel, recurrent_kernel, bias)


def pool_problem(shape: tuple[int, ...], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (x, d_output) for MaxPooling3D((2, 2, 2)): x (B, D, H, W, C), d_output pooled."""
    rng = np.random.default_rng(seed)
    B, D, H, W, C = shape
    pd, ph, pw = POOL_SIZE
    x = rng.standard_normal(shape, dtype=np.float32)
    d_output = rng.standard_normal((B, D // pd, H // ph, W // pw, C), dtype=np.float32)
    return x, d_output


@dataclass
class ForecasterProblem:
    """Workload m's frames, target and the initial weights both libraries start from.

    Shapes: x and target (B, T, 64, 64, 1) in [0, 1]; ``weights`` is ``Sequential.get_weights``
    of ``forecaster(filters=F)``: per ConvLSTM2D kernel (3, 3, C, 4F), recurrent kernel
    (3, 3, F, 4F), bias (4F,); then the head's kernel (1, 1, 1, F, 16) and bias (16,).
    """

    shape: ForecasterShape
    x: np.ndarray
    target: np.ndarray
    weights: list[np.ndarray]


def forecaster_model(shape: ForecasterShape, seed: int = 0):
    """Our Moving MNIST forecaster at ``shape``, compiled with Adam and binary cross-entropy."""
    from convlstm.forecasting import forecaster
    from convlstm.optimizers import Adam

    model = forecaster((shape.frame, shape.frame, 1), filters=shape.filters, layers=shape.layers,
                       kernel_size=shape.kernel, block_size=shape.block, seed=seed)
    model.compile(Adam(LEARNING_RATE), "binary_crossentropy")
    return model


def forecaster_problem(shape: ForecasterShape, seed: int = 0) -> ForecasterProblem:
    """Seeded sparse frames (as Moving MNIST: mostly black), their targets and the weights."""
    rng = np.random.default_rng(seed)
    frames = (shape.batch, shape.time, shape.frame, shape.frame, 1)
    x = (rng.random(frames, dtype=np.float32) ** 8).astype(np.float32)
    target = (rng.random(frames, dtype=np.float32) ** 8).astype(np.float32)
    return ForecasterProblem(shape, x, target, forecaster_model(shape, seed).get_weights())


def problem_for(workload: Workload, seed: int = 0) -> Any:
    """The problem of ``workload``: a :class:`ConvLSTMProblem`, a :class:`ForecasterProblem`
    or pooling's (x, d_output)."""
    if workload.group == "pool":
        return pool_problem(workload.shape, seed)
    if workload.group in MODEL_SHAPES:
        return forecaster_problem(ForecasterShape(*workload.shape), seed)
    return convlstm_problem(ConvLSTMShape(*workload.shape), seed)


@dataclass
class Runner:
    """How one library runs one workload.

    ``run()`` is the timed step; ``prepare()`` (if any) runs untimed before each run;
    ``collect(result)`` turns what ``run`` returned into named NumPy arrays in this library's
    layouts (``output``; ``loss``, ``d_x``, ``d_kernel``, ``d_recurrent_kernel``, ``d_bias``;
    pooling ``output`` or ``d_x``) for the cross-library check.
    """

    run: Callable[[], Any]
    prepare: Callable[[], Any] | None = None
    collect: Callable[[Any], dict[str, np.ndarray]] = field(default=lambda result: result)


def build_layer(problem: ConvLSTMProblem) -> ConvLSTM2D:
    """A ConvLSTM2D(C, F, 3, "same") holding the problem's weights."""
    s = problem.shape
    layer = ConvLSTM2D(s.in_channels, s.filters, KERNEL, "same")
    layer.set_weights([problem.kernel, problem.recurrent_kernel, problem.bias])
    return layer


def training_step(
    layer: ConvLSTM2D, x: np.ndarray, target: np.ndarray, loss: MeanSquaredError
) -> dict[str, np.ndarray]:
    """Forward (training), MSE loss and its gradient, backward to the input and every weight.

    Returns:
        ``loss`` (0-d), ``d_x`` (x's shape) and ``d_<weight>`` for every weight (its shape).
    """
    output = layer.forward(x, training=True)
    value, d_output = loss.value_and_gradient(target, output)
    d_x = layer.backward(d_output)
    grads = {
        f"d_{name.rsplit('/', 1)[-1]}": owner.grads[key]
        for name, owner, key in layer.named_params()
    }
    return {"loss": np.asarray(value, np.float32), "d_x": d_x, **grads}


def forecaster_runner(problem: ForecasterProblem) -> Runner:
    """Our whole ``train_on_batch`` of workload m (forward, loss, backward, Adam's update);
    ``collect`` gives the loss and every weight's gradient of that step, by weight index."""
    model = forecaster_model(problem.shape)
    model.set_weights(problem.weights)

    def collect(loss: float) -> dict[str, np.ndarray]:
        _, grads = model.trainable_weights()
        return {"loss": np.asarray(loss, np.float32),
                **{f"d_{k}": grad for k, grad in enumerate(grads.values())}}

    return Runner(run=lambda: model.train_on_batch(problem.x, problem.target), collect=collect)


def stream_runner(problem: ConvLSTMProblem) -> Runner:
    """Workload e: a stateful layer fed one frame per call, T calls (inference), as a live
    video or radar feed runs; the states are reset before each run (untimed)."""
    s = problem.shape
    layer = ConvLSTM2D(s.in_channels, s.filters, KERNEL, "same", stateful=True)
    layer.set_weights([problem.kernel, problem.recurrent_kernel, problem.bias])
    frames = [np.ascontiguousarray(problem.x[:, t : t + 1]) for t in range(s.time)]

    def stream() -> dict[str, np.ndarray]:
        return {"output": np.concatenate([layer.forward(frame) for frame in frames], axis=1)}

    return Runner(run=stream, prepare=layer.reset_states)


def our_runner(workload: Workload, problem: Any) -> Runner:
    """This library's :class:`Runner` for ``workload`` on ``problem``."""
    if workload.group in MODEL_SHAPES:
        return forecaster_runner(problem)
    if workload.kind == "stream":
        return stream_runner(problem)
    if workload.group == "pool":
        x, d_output = problem
        pool = MaxPooling3D(POOL_SIZE)
        if workload.kind == "forward":
            return Runner(run=lambda: {"output": pool.forward(x)})
        return Runner(
            run=lambda: {"d_x": pool.backward(d_output)},
            prepare=lambda: pool.forward(x, training=True),
        )
    layer = build_layer(problem)
    if workload.kind == "forward":
        return Runner(run=lambda: {"output": layer.forward(problem.x)})
    loss = MeanSquaredError()
    return Runner(run=lambda: training_step(layer, problem.x, problem.target, loss))


# ------------------------------------------------------------------------------------ timing


@dataclass
class Timing:
    """Seconds of each timed run, with their median, min and max."""

    runs: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def minimum(self) -> float:
        return min(self.runs)

    @property
    def maximum(self) -> float:
        return max(self.runs)

    def gflops(self, flops: int | None) -> float | None:
        """GFLOP/s at the median time, or None for a workload without a FLOP count."""
        return None if flops is None else flops / self.median / 1e9

    def to_dict(self, flops: int | None = None, peak: float | None = None) -> dict[str, Any]:
        """The JSON record: seconds, GFLOP/s at the median and its share of ``peak``."""
        rate = self.gflops(flops)
        return {
            "median_s": self.median,
            "min_s": self.minimum,
            "max_s": self.maximum,
            "runs_s": self.runs,
            "gflops": rate,
            "peak_share": None if rate is None or not peak else rate / peak,
        }


def time_once(runner: Runner) -> float:
    """Seconds of one ``runner.run()`` (``prepare`` runs first, untimed)."""
    if runner.prepare is not None:
        runner.prepare()
    start = time.perf_counter()
    runner.run()
    return time.perf_counter() - start


def time_runner(runner: Runner, repeats: int, warmup: int = 1) -> Timing:
    """``warmup`` untimed runs, then ``repeats`` timed ones."""
    for _ in range(warmup):
        time_once(runner)
    return Timing([time_once(runner) for _ in range(repeats)])


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """The machine's float32 matrix-product rate in GFLOP/s: best of ``repeats`` n^3 products."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), np.float32)
    np.matmul(a, b, out=out)  # warm-up
    best = min(time_once(Runner(run=lambda: np.matmul(a, b, out=out))) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def matmul_size(quick: bool) -> int:
    """The side of the peak-measuring matrices: 2048, or 512 with ``--quick``."""
    return 512 if quick else 2048


# ------------------------------------------------------------------------------------ memory


def _status_mib(field: str) -> float | None:
    """``VmRSS`` or ``VmHWM`` of this process in MiB (Linux ``/proc/self/status``), or None."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024  # kB
    return None


def _reset_peak_rss() -> bool:
    """Set the kernel's peak-RSS mark (VmHWM) to the current RSS (Linux 4.0+); False if not."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _max_rss_mib() -> float:
    """``ru_maxrss`` in MiB (KiB on Linux, bytes on macOS); the fallback off Linux."""
    import resource  # POSIX only

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


def measure_step_memory(step: Callable[[], Any]) -> dict[str, Any]:
    """Peak memory of one ``step()`` above the memory in use just before it, in MiB.

    Linux: the RSS before the step is the baseline, the peak-RSS mark is reset to it, and the
    mark after the step is the peak. Elsewhere ``ru_maxrss`` before and after (which also holds
    whatever peak came before the step). Meant for a fresh process that has built its inputs.
    """
    baseline = _status_mib("VmRSS")
    if baseline is not None and _reset_peak_rss():
        step()
        peak, method = _status_mib("VmHWM"), "VmHWM after clear_refs"
    else:
        baseline = _max_rss_mib()
        step()
        peak, method = _max_rss_mib(), "ru_maxrss"
    return {
        "baseline_mib": baseline,
        "peak_mib": peak,
        "step_mib": peak - baseline,
        "method": method,
    }


def memory_probe(group: str = "b", quick: bool = False) -> dict[str, Any]:
    """Our training step on ``group`` measured in this process (call it in a fresh one)."""
    (workload,) = workloads(quick, [f"{group}/train"])
    runner = our_runner(workload, problem_for(workload))
    return {"library": "convlstm", "workload": workload.name, **measure_step_memory(runner.run)}


def run_memory_probe(command: Sequence[str], threads: int) -> dict[str, Any]:
    """Run a ``--memory-probe`` command in a fresh process and read its last stdout line."""
    completed = subprocess.run(
        list(command), env=thread_environment(threads), capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        return {"error": completed.stderr.strip().splitlines()[-1:] or ["no output"]}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def our_memory_command(group: str, quick: bool) -> list[str]:
    """The command line of our memory probe."""
    return [
        sys.executable,
        str(HERE / "run.py"),
        "--memory-probe",
        group,
        *(["--quick"] if quick else []),
    ]


# ----------------------------------------------------------------------------------- threads


def thread_environment(threads: int) -> dict[str, str]:
    """This process's environment with every BLAS/OpenMP thread variable set to ``threads``,
    and the directory holding the imported ``convlstm`` first on PYTHONPATH (children import
    the same copy)."""
    env = dict(os.environ)
    env.update({name: str(threads) for name in THREAD_VARIABLES})
    package_root = str(Path(convlstm.__file__).resolve().parents[1])
    paths = [package_root, *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def threads_are_set(threads: int) -> bool:
    """Whether every thread variable already says ``threads`` (so no re-execution is needed)."""
    return all(os.environ.get(name) == str(threads) for name in THREAD_VARIABLES)


def reexecute(command: Sequence[str], threads: int) -> int:
    """Run ``command`` with the thread variables set; its exit status."""
    return subprocess.run(list(command), env=thread_environment(threads), check=False).returncode


# ----------------------------------------------------------------------------------- reports


def blas_info() -> list[dict[str, Any]]:
    """The BLAS libraries NumPy has loaded, as threadpoolctl reports them: library, version,
    kernel (``architecture``, OpenBLAS's name for the CPU kernel it runs) and thread count; an
    empty list when threadpoolctl is not installed."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keys = ("internal_api", "version", "architecture", "num_threads", "threading_layer",
            "filepath")
    return [{key: entry.get(key) for key in keys}
            for entry in threadpool_info() if entry.get("user_api") == "blas"]


def blas_text(blas: Sequence[dict[str, Any]]) -> str:
    """One line naming each BLAS, its kernel and threads, e.g. ``openblas 0.3.31 (kernel
    SkylakeX, 2 threads)``."""
    if not blas:
        return "BLAS unknown (pip install threadpoolctl to name it)"
    return "; ".join(
        f"{entry['internal_api']} {entry['version']} (kernel {entry['architecture']}, "
        f"{entry['num_threads']} threads)" for entry in blas)


PINNING_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def blas_warning() -> str | None:
    """A loud warning when the environment pins OpenBLAS's kernel (``OPENBLAS_CORETYPE``) or
    tunes it (``OPENBLAS_L2_SIZE``): NumPy then does not run the kernel it picks on a user's
    machine, while PyTorch (oneDNN) is not affected, so the comparison is skewed."""
    pinned = {name: os.environ[name] for name in PINNING_VARIABLES if name in os.environ}
    if not pinned:
        return None
    settings = " ".join(f"{name}={value}" for name, value in pinned.items())
    unset = " ".join(f"-u {name}" for name in pinned)
    return (
        f"WARNING: {settings} is set: NumPy's OpenBLAS runs a pinned kernel, not the one it "
        f"picks for this CPU on a user's machine (PyTorch is not affected). These numbers do "
        f"not describe what users get. Rerun with: env {unset} python benchmarks/run.py"
    )


def blas_record() -> dict[str, Any]:
    """The JSON record of the BLAS in use and of the variables that pin or tune it."""
    return {
        "libraries": blas_info(),
        "pinning_variables": {name: os.environ.get(name) for name in PINNING_VARIABLES},
        "warning": blas_warning(),
    }


def machine_info() -> dict[str, Any]:
    """Python, NumPy, OS and CPU model, for the JSON record."""
    cpu = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "convlstm": convlstm.__version__,
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
    }


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table, columns padded to their widest cell, numbers right-aligned."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [
            str(cell).ljust(width) if i == 0 else str(cell).rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths))
        ]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def ms(seconds: float | None) -> str:
    """Milliseconds with 3 significant-ish digits, or ``-``."""
    if seconds is None:
        return "-"
    value = seconds * 1e3
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def number(value: float | None, pattern: str = "{:.1f}") -> str:
    """``pattern`` applied to ``value``, or ``-`` for None."""
    return "-" if value is None else pattern.format(value)


def build_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The options of ``run.py``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument(
        "--threads",
        type=int,
        default=2,
        help="BLAS/OpenMP threads, set before NumPy is imported (default 2)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small shapes and 2 timed runs: a smoke test, not a measurement",
    )
    parser.add_argument(
        "--only",
        default=None,
        help=f"comma-separated groups {','.join(GROUPS)} or names like b/train",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help=f"timed runs per workload (default {MIN_REPEATS}, at least "
        f"{MIN_REPEATS} unless --quick)",
    )
    parser.add_argument("--json", default=None, metavar="PATH", help="write the results here")
    return parser


def checked_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Fill ``args.repeats`` and ``args.only`` (a list) and refuse bad values."""
    if args.threads < 1:
        parser.error(f"--threads must be at least 1; got {args.threads}.")
    if args.repeats is None:
        args.repeats = 2 if args.quick else MIN_REPEATS
    if args.repeats < (1 if args.quick else MIN_REPEATS):
        parser.error(
            f"--repeats must be at least {MIN_REPEATS} (the median of at least "
            f"{MIN_REPEATS} runs) unless --quick; got {args.repeats}."
        )
    args.only = (
        [item.strip() for item in args.only.split(",") if item.strip()] if args.only else None
    )
    try:
        workloads(args.quick, args.only)
    except ValueError as error:
        parser.error(str(error))


def run_ours(args: argparse.Namespace) -> dict[str, Any]:
    """Time our half: the matrix-product peak, every selected workload and the memory probe."""
    peak = matmul_peak(matmul_size(args.quick))
    records = []
    for workload in workloads(args.quick, args.only):
        runner = our_runner(workload, problem_for(workload))
        timing = time_runner(runner, args.repeats)
        records.append(
            {
                "name": workload.name,
                "shape": list(workload.shape),
                "shape_text": workload.shape_text,
                "flops": workload.flops,
                "ours": timing.to_dict(workload.flops, peak),
            }
        )
        del runner
    memory = []
    if args.only is None or "b" in args.only or "b/train" in args.only:
        memory.append(run_memory_probe(our_memory_command("b", args.quick), args.threads))
    return {
        "machine": machine_info(),
        "threads": args.threads,
        "thread_variables": {name: os.environ.get(name) for name in THREAD_VARIABLES},
        "quick": args.quick,
        "repeats": args.repeats,
        "warmup": 1,
        "flop_count": FLOP_COUNT,
        "memory_method": MEMORY_METHOD,
        "blas": blas_record(),
        "matmul_peak_gflops": peak,
        "matmul_size": matmul_size(args.quick),
        "workloads": records,
        "memory": memory,
    }


def our_table(results: dict[str, Any]) -> str:
    """The printed table of :func:`run_ours`'s results."""
    rows = []
    for record in results["workloads"]:
        t = record["ours"]
        rows.append(
            [
                record["name"],
                record["shape_text"],
                ms(t["median_s"]),
                ms(t["min_s"]),
                ms(t["max_s"]),
                number(t["gflops"]),
                number(t["peak_share"], "{:.0%}"),
            ]
        )
    header = ["workload", "shape", "median ms", "min ms", "max ms", "GFLOP/s", "of peak"]
    lines = [
        f"convlstm {results['machine']['convlstm']} benchmark, NumPy {np.__version__}, "
        f"{results['threads']} threads, {results['machine']['cpu']}",
        f"BLAS: {blas_text(results['blas']['libraries'])}",
        *([results["blas"]["warning"]] if results["blas"]["warning"] else []),
        f"float32 matmul peak: {results['matmul_peak_gflops']:.1f} GFLOP/s (best of 5 "
        f"{results['matmul_size']}^3 products); "
        f"median of {results['repeats']} runs after 1 warm-up; FLOPs: {FLOP_COUNT}",
        "",
        format_table(header, rows),
    ]
    for record in results["memory"]:
        if "error" in record:
            lines.append(f"\nmemory probe failed: {record['error']}")
        else:
            lines.append(
                f"\npeak memory of {record['workload']}, one step in a fresh process: "
                f"{record['step_mib']:.0f} MiB above the baseline after imports and inputs "
                f"(process peak {record['peak_mib']:.0f} MiB)"
            )
    return "\n".join(lines)


def write_json(path: str | os.PathLike[str], results: dict[str, Any]) -> None:
    """Write ``results`` as indented JSON, creating the parent folder."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(results, indent=2) + "\n")

"""The ``convlstm`` command: demo, train, predict, info and export."""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import math
import os
import re
import shlex
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

from convlstm import __version__, datasets, demo, forecasting, limits, runs, saving
from convlstm._files import atomic_write, writable_path
from convlstm.arguments import (
    DefaultsHelp,
    OneLineParser,
    given_flags,
    integer,
    number,
    report,
)
from convlstm.callbacks import Callback, ModelCheckpoint, StepLimit, TimeLimit
from convlstm.console import (
    ProgressBar,
    UsageError,
    output_folder,
    progress_line,
    refuse_unused,
)
from convlstm.optimizers import Adam, ExponentialDecay

EXIT_INTERRUPTED = 130
COUNT, SEED, POSITIVE = integer(1), integer(0, 2**63 - 1), number(0)
"""The flag types most flags share: a count >= 1, a 64-bit seed >= 0 (well within
limits.MAX_INTEGER_BITS, so the model it seeds always loads), a positive finite number."""


# --------------------------------------------------------------------------------------- train

def _read_array(path: str, key: str | None = None, flag: str = "--data") -> np.ndarray:
    """The non-empty numeric array in a .npy file, or the one named ``key`` (default: the
    first) in a .npz; ``flag`` names the file's flag in errors."""
    if not os.path.isfile(path):
        raise UsageError(f"{flag}: no such file: {path}" if not os.path.isdir(path) else
                         f"{flag}: {path} is a folder; expected a .npy or .npz file")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, MemoryError) as error:
        raise UsageError(f"{flag}: cannot read {path} as .npy or .npz: {error}") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        if key is not None:
            raise UsageError(f"--key: {path} is a .npy file; --key names an array in a .npz")
        array = loaded
    else:
        with loaded:
            names = loaded.files
            if key is not None and key not in names:
                raise UsageError(f"--key: {path} has no array {key!r}; it has {names}")
            if not names:
                raise UsageError(f"{flag}: {path} holds no arrays")
            try:
                array = loaded[key or names[0]]
            except (OSError, ValueError, EOFError, zipfile.BadZipFile, MemoryError) as error:
                raise UsageError(f"{flag}: cannot read {path}: {error}") from None
    if array.dtype.kind not in "biuf":
        raise UsageError(f"{flag}: {path}: expected numeric frames; got dtype {array.dtype}")
    if array.size == 0:
        raise UsageError(f"{flag}: {path}: expected sequences; got an empty array of shape "
                         f"{array.shape}")
    return array


def _as_unit_interval(array: np.ndarray, path: str) -> np.ndarray:
    """float32 frames in [0, 1] from numeric ones (every caller has checked the dtype): uint8 is
    divided by 255; anything else must already fit."""
    array = (array / 255.0 if array.dtype == np.uint8 else array).astype(np.float32)
    if not np.isfinite(array).all():
        raise UsageError(f"{path}: the frames contain NaN or infinite values")
    if array.min() < 0 or array.max() > 1:
        raise UsageError(f"{path}: expected values in [0, 1] (or uint8 0-255); got "
                         f"[{array.min():g}, {array.max():g}]")
    return array


def _load_sequences(path: str, key: str | None, time_axis: int) -> np.ndarray:
    """(N, T, H, W, C) float32 in [0, 1] from a .npy/.npz file of 4-D or 5-D sequences."""
    array = _read_array(path, key)
    if array.ndim not in (4, 5):
        raise UsageError(
            f"--data: {path}: expected sequences of shape (N, T, H, W) or (N, T, H, W, C); "
            f"got {array.shape}")
    if time_axis == 0:
        array = array.swapaxes(0, 1)
    if array.ndim == 4:
        array = array[..., None]
    array = _as_unit_interval(array, path)
    if array.shape[1] < 2:
        raise UsageError(f"--data: {path}: sequences need at least 2 frames; got "
                         f"{array.shape[1]}")
    return array


def _training_count(args: argparse.Namespace, sequences: int) -> int:
    """The sequences ``fit`` trains on after ``--validation-split`` (as ``fit`` splits)."""
    if sequences < 2 or not args.validation_split:
        return sequences
    count = math.floor(sequences * (1 - args.validation_split))
    if count < 1:
        raise UsageError(f"--validation-split: {args.validation_split:g} of the {sequences} "
                         f"sequences in {args.data} leaves none to train on")
    return count


DATA_ONLY = ("--key", "--time-axis", "--epochs", "--validation-split")
DATASET_ONLY = ("--steps", "--minutes", "--learning-rate-decay")
"""The train flags that one source of sequences takes and the other does not."""


def _train(args: argparse.Namespace) -> int:
    if args.dataset == "moving-mnist":
        refuse_unused(args.given, DATA_ONLY, "with --dataset moving-mnist (it trains --steps "
                                             "on fresh sequences)")
        if args.workers or args.scheduler:
            raise UsageError("--workers/--scheduler: distributed training takes --data")
        return _train_moving_mnist(args)
    if args.data is None:
        raise UsageError("--data: give a .npy/.npz file of sequences, or --dataset moving-mnist")
    refuse_unused(args.given, DATASET_ONLY, "with --data (it trains --epochs over the file)")
    sequences = _load_sequences(args.data, args.key, args.time_axis)
    training = _training_count(args, len(sequences))
    out = output_folder(args.out)
    runs.check_folder(out, args.resume, args.overwrite)
    checkpoint, state_file = out / runs.MODEL, out / runs.STATE
    state = {"epochs_done": 0, "loss": [], "val_loss": [],
             "architecture": runs.architecture(args)}
    if args.resume:
        state = runs.read_state(state_file, {"epochs_done": int, "loss": list,
                                             "val_loss": list})
        runs.check_architecture(state, args, args.given, state_file)
        model = _read_model(checkpoint, "--resume")
        frames = tuple(_input_shape(model, "--resume", checkpoint)[1:])
        if frames != sequences.shape[2:]:
            raise UsageError(f"--data: frames of shape {sequences.shape[2:]} in {args.data} do "
                             f"not fit the checkpoint's {frames}")
        print(f"resuming after epoch {state['epochs_done']}")
    else:
        with limits.weight_budget("--filters/--layers/--kernel"):
            model = forecasting.next_frame_model(
                (sequences.shape[1] - 1, *sequences.shape[2:]), filters=args.filters,
                layers=args.layers, kernel_size=args.kernel, seed=args.seed)
    model.compile(Adam(args.learning_rate), "binary_crossentropy")
    x, y = sequences[:, :-1], sequences[:, 1:]
    remaining = args.epochs - state["epochs_done"]
    if remaining <= 0:
        print(f"already trained for {state['epochs_done']} epochs")
        return 0

    class SaveState(Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
            state["epochs_done"] += 1
            state["loss"].append(logs["loss"])
            state["val_loss"].append(logs.get("val_loss"))
            demo.write_json(state_file, state)
            print(f"epoch {state['epochs_done']}/{args.epochs}  loss {logs['loss']:.5f}"
                  + (f"  val_loss {logs['val_loss']:.5f}" if "val_loss" in logs else ""))

    validation = args.validation_split if training < len(x) else 0.0
    progress = ProgressBar(remaining * -(-training // args.batch_size), loss_name="bce")
    try:
        with _dask_client(args) as client:
            fit = model.fit if client is None else functools.partial(
                _distributed().fit, model, client=client)
            fit(x, y, epochs=remaining, batch_size=args.batch_size,
                validation_split=validation, verbose=0, seed=args.seed,
                callbacks=[progress, ModelCheckpoint(str(checkpoint), monitor="loss"),
                           SaveState()])
    except KeyboardInterrupt:
        return _interrupted(progress, checkpoint)
    progress.close()
    print(f"wrote {checkpoint}")
    return 0


def _train_moving_mnist(args: argparse.Namespace) -> int:
    """Train the direct forecaster on fresh Moving MNIST rounds; resumable at round ends."""
    out = output_folder(args.out)
    runs.check_folder(out, args.resume, args.overwrite)
    checkpoint, state_file = out / runs.MODEL, out / runs.STATE
    optimizer_file = out / runs.OPTIMIZER
    learning_rate = args.learning_rate if args.learning_rate_decay == 1 else ExponentialDecay(
        args.learning_rate, args.steps, args.learning_rate_decay)
    optimizer = Adam(learning_rate)
    if args.resume:
        state = runs.read_state(state_file, {"rounds_done": int, "steps_done": int,
                                             "seconds": (int, float), "loss": list,
                                             "command": str})
        runs.check_architecture(state, args, args.given, state_file)
        model = _read_model(checkpoint, "--resume")
        runs.restore_optimizer(optimizer, optimizer_file, model.trainable_weights()[0])
        print(f"resuming after step {state['steps_done']}")
    else:
        with limits.weight_budget("--filters/--layers/--kernel"):
            model = forecasting.forecaster(filters=args.filters, layers=args.layers,
                                           kernel_size=args.kernel, seed=args.seed)
        state = {"dataset": "moving-mnist", "command": shlex.join(["convlstm", *sys.argv[1:]]),
                 "rounds_done": 0, "steps_done": 0, "seconds": 0.0, "loss": [],
                 "architecture": runs.architecture(args)}
    model.compile(optimizer, "binary_crossentropy")
    steps_left = args.steps - state["steps_done"]
    if steps_left <= 0:
        print(f"already trained for {state['steps_done']} steps")
        return 0
    print(f"model: {demo.count_weights(model):,} weights; training {steps_left} steps on fresh "
          f"Moving MNIST sequences ({demo.ROUND_SIZE} a round)")
    progress, steps = ProgressBar(steps_left, loss_name="bce"), StepLimit(steps_left)
    time_limit = [TimeLimit(60 * args.minutes)] if args.minutes else []
    started = time.perf_counter()
    try:
        for round_number, loss in forecasting.train_direct(
            model, lambda count, r: datasets.moving_mnist(
                count, seed=demo.train_seed(args.seed, r)),
            context=demo.CONTEXT, rounds=itertools.count(state["rounds_done"]),
            round_size=demo.ROUND_SIZE, batch_size=args.batch_size,
            callbacks=[progress, steps, *time_limit],
        ):
            now = time.perf_counter()
            state.update(rounds_done=round_number + 1, seconds=state["seconds"] + now - started,
                         steps_done=args.steps - steps_left + steps.done)
            state["loss"].append(loss)
            started = now
            model.metadata.update(forecast="direct", context=demo.CONTEXT,
                                  command=state["command"], steps=state["steps_done"],
                                  train_seconds=round(state["seconds"]),
                                  batch_size=args.batch_size)
            model.save(checkpoint)
            runs.save_optimizer(optimizer, optimizer_file)
            demo.write_json(state_file, state)
    except KeyboardInterrupt:
        return _interrupted(progress, checkpoint)
    progress.close()
    print(f"wrote {checkpoint} after {state['steps_done']} steps")
    return 0


def _interrupted(progress: ProgressBar, checkpoint: Path) -> int:
    """Ctrl-C during training: end the bar, say where the last checkpoint is."""
    progress.close()
    saved = f"; the last checkpoint is {checkpoint}" if checkpoint.exists() else ""
    print(f"\ninterrupted{saved}", file=sys.stderr)
    return EXIT_INTERRUPTED


# ------------------------------------------------------------------------------ predict, info

def _distributed():
    try:
        from convlstm import distributed
    except ImportError:
        raise UsageError("--workers/--scheduler need Dask: pip install 'dask[array]' "
                         "distributed zarr (from a clone: pip install -e '.[distributed]')"
                         ) from None
    return distributed


@contextlib.contextmanager
def _dask_client(args: argparse.Namespace):
    """None without --workers/--scheduler; else a client, closed (its local cluster too) after."""
    if not (args.workers or args.scheduler):
        yield None
        return
    distributed = _distributed()
    flag = "--scheduler" if args.scheduler else "--workers"
    try:
        client = distributed.connect(args.scheduler, workers=args.workers)
    except (OSError, ValueError, TypeError) as error:  # ConnectionError and TimeoutError too
        message = re.sub(r"^[\w.]+: ", "", str(error))  # without connect's own name
        raise UsageError(f"{flag}: {message}") from None
    with client:
        yield client


def _predict_distributed(args: argparse.Namespace) -> int:
    """The predict command over a Dask cluster: .npy/zarr in, .npy/zarr out, chunk by chunk."""
    distributed = _distributed()
    model = _read_model(args.model)
    frame_shape = _input_shape(model, "--model", args.model)[1:]  # (H, W, C)
    if not os.path.exists(args.input):
        raise UsageError(f"--input: no such file or store: {args.input}")
    sequences = distributed.samples(args.input, batch_size=args.batch_size)
    channels_given = sequences.ndim == 5
    if sequences.ndim == 4:
        sequences = sequences[..., None]
    if sequences.ndim != 5 or sequences.shape[2:] != frame_shape:
        raise UsageError(f"--input: expected sequences (N, T, H, W[, C]) of frames "
                         f"{frame_shape}; got {sequences.shape}")
    if sequences.dtype.kind not in "biuf":
        raise UsageError(f"--input: expected numeric frames; got dtype {sequences.dtype}")
    sequences = sequences.map_blocks(_unit_block, args.input, dtype=np.float32)
    with _dask_client(args) as client:
        future = distributed.forecast(model, sequences, args.frames, client=client,
                                      batch_size=args.batch_size)
        future = future if channels_given else future[..., 0]  # the input's rank
        started = time.perf_counter()

        def progress(done: int, total: int) -> None:  # a line every tenth of the way
            if done % max(1, total // 10) and done < total:
                return
            print(progress_line("chunk", done, total, started), file=sys.stderr, flush=True)

        distributed.write(future, args.output, client=client, progress=progress)
    print(f"wrote {args.frames} predicted frames of {len(future)} sequences to {args.output}")
    return 0


def _unit_block(block: np.ndarray, path: str) -> np.ndarray:
    """One chunk of frames as float32 in [0, 1] (uint8 divided by 255), checked as it is read."""
    try:
        return _as_unit_interval(block, path)
    except UsageError as error:
        raise ValueError(str(error)) from None


def _predict(args: argparse.Namespace) -> int:
    if args.workers or args.scheduler:
        return _predict_distributed(args)
    if args.input.endswith(".zarr") or args.output.endswith(".zarr"):
        raise UsageError("--input/--output: zarr stores need --workers or --scheduler")
    output = writable_path("--output", args.output)
    output = output if output.endswith(".npy") else writable_path("--output", output + ".npy")
    model = _read_model(args.model)
    frame_shape = _input_shape(model, "--model", args.model)[1:]  # (H, W, C)
    array = _read_array(args.input, flag="--input")
    if array.ndim == 3 or (array.ndim == 4 and array.shape[1:] == frame_shape):
        single, sequences = True, array.reshape(1, *array.shape[:3], -1)  # one sequence
        channels_given = array.ndim == 4
    else:
        single, sequences = False, array.reshape(*array.shape[:4], -1) if array.ndim in (4, 5) \
            else array
        channels_given = array.ndim == 5
    if sequences.ndim != 5 or sequences.shape[2:] != frame_shape:
        height, width, channels = frame_shape
        raise UsageError(f"--input: {args.input}: expected one sequence (T, {height}, {width}"
                         f"[, {channels}]) or many (N, T, {height}, {width}[, {channels}]) for "
                         f"the model's frames {frame_shape}; got {array.shape}")
    future = forecasting.forecast(model, _as_unit_interval(sequences, args.input), args.frames,
                                  batch_size=args.batch_size)
    future = future[0] if single else future
    with atomic_write(output) as file:
        np.save(file, future if channels_given else future[..., 0])  # the input's rank
    print(f"wrote {args.frames} predicted frames to {output}")
    return 0


KERAS_SUFFIXES = {".keras": "Keras 3 .keras archive", ".h5": "Keras .h5 file"}


def _model_kind(path: str) -> str:
    return KERAS_SUFFIXES.get(Path(path).suffix, f"numpy-convlstm native model (format "
                                                 f"version {saving.VERSION})")


def _read_model(path: str | Path, flag: str | None = "--model"):
    """A native model file, or a Keras .keras/.h5 file (needs h5py); ``flag`` names the file's
    flag in errors (None: the message names the file alone)."""
    try:
        if Path(path).suffix in KERAS_SUFFIXES:
            from convlstm.keras import load_keras

            return load_keras(path)
        return saving.load(path)
    except (ValueError, TypeError, OSError) as error:
        raise UsageError(f"{flag}: {error}" if flag else str(error)) from None


def _input_shape(model, flag: str, path: str | Path) -> tuple[int | None, ...]:
    """The model's input shape (time, height, width, channels), which predict and resume need."""
    shape = getattr(model, "input_shape", None)
    if not shape or len(shape) != 4:
        raise UsageError(f"{flag}: {path} holds a {type(model).__name__} with input shape "
                         f"{shape}; expected a Sequential saved with input_shape=(time, height, "
                         "width, channels)")
    return tuple(shape)


def _info(args: argparse.Namespace) -> int:
    model = _read_model(args.file, None)
    print(f"{args.file}: {_model_kind(args.file)}")
    if getattr(model, "input_shape", None):
        model.summary()
    else:
        print(repr(model))
    for key, value in getattr(model, "metadata", {}).items():
        print(f"{key}: {value}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from convlstm.onnx import export

    model = _read_model(args.model)
    path = export(model, writable_path("--onnx", args.onnx), opset=args.opset,
                  dynamic_batch=not args.static_batch, dynamic_time=not args.static_time,
                  states=args.states)
    print(f"wrote {path}")
    return 0


# ---------------------------------------------------------------------------------- arguments

def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="convlstm", description="ConvLSTM in pure NumPy: demo, train, predict, inspect.")
    parser.add_argument("--version", action="version", version=f"convlstm {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    formatter = DefaultsHelp
    show = commands.add_parser(
        "demo", formatter_class=formatter,
        help="train a ConvLSTM forecaster on Moving MNIST (real digits) and draw its forecasts",
        description="Generate Moving MNIST from real handwritten digits, train a ConvLSTM to "
                    "forecast 10 frames from 10 (at most 4 minutes on 2 cores), score it per "
                    "horizon against repeating the last frame and the mean frame on 1,000 test "
                    "sequences of held-out digits, and write pictures, the model and metrics.")
    show.add_argument("--dataset", choices=("moving-mnist", "shapes"), default="moving-mnist",
                      help="Moving MNIST, or the built-in moving shapes (next-frame prediction)")
    show.add_argument("--pretrained", action="store_true",
                      help="skip training: score and draw the shipped pretrained model")
    show.add_argument("--out", help="output folder (default: a new convlstm-demo-<time> folder)")
    show.add_argument("--seed", type=SEED, default=0, help="seeds data and model")
    show.add_argument("--quick", action="store_true",
                      help="a small model and test set, about 30 seconds in all")
    show.add_argument("--steps", type=COUNT,
                      help="training steps (moving-mnist: 2000, quick 150; shapes: about 300)")
    show.add_argument("--minutes", type=POSITIVE,
                      help="moving-mnist: stop training after this long (default 4)")
    show.add_argument("--test-sequences", type=integer(1, 10_000),
                      help="moving-mnist: test sequences to score (default 1000)")
    show.add_argument("--filters", type=COUNT,
                      help="channels of each ConvLSTM layer (moving-mnist 16, shapes 12)")
    show.add_argument("--batch-size", type=COUNT, help="sequences per training step (8)")
    show.add_argument("--learning-rate", type=POSITIVE,
                      help="Adam's step size (moving-mnist 3e-3, shapes 2e-3)")
    show.add_argument("--examples", type=integer(1, 64), default=4, help="sequences to draw")
    show.add_argument("--size", type=integer(8, 512), help="shapes: frame height and width (32)")
    show.add_argument("--frames", type=integer(3, 1000), help="shapes: frames per sequence (10)")
    show.add_argument("--objects", type=integer(1, 100), default=2,
                      help="shapes: objects per sequence")
    show.add_argument("--speed", type=POSITIVE, help="shapes: pixels per frame (size/16)")
    show.add_argument("--sequences", type=integer(16, 20_000), help="shapes: sequences to generate")
    show.set_defaults(run=demo.run)

    train = commands.add_parser(
        "train", formatter_class=formatter,
        help="train a forecaster on Moving MNIST or a next-frame predictor on your sequences",
        description="--dataset moving-mnist trains the direct 10-frame forecaster on fresh "
                    "Moving MNIST sequences (the recipe of the pretrained model). --data trains "
                    "a next-frame predictor on sequences from a .npy/.npz file: (N, T, H, W) or "
                    "(N, T, H, W, C), values in [0, 1] or uint8; the public Moving MNIST file "
                    "is time-major (20, N, 64, 64): pass --time-axis 0.")
    source = train.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help=".npy or .npz file of sequences")
    source.add_argument("--dataset", choices=("moving-mnist",),
                        help="generate Moving MNIST from real digits as training goes")
    train.add_argument("--key", help="--data: array name inside an .npz (default: the first)")
    train.add_argument("--time-axis", type=int, choices=(0, 1), default=1,
                       help="--data: axis of time in the file (1: (N, T, ...))")
    train.add_argument("--out", default="convlstm-model", help="folder for model.npz and logs")
    train.add_argument("--layers", type=integer(1, 100), default=2, help="ConvLSTM2D layers")
    train.add_argument("--filters", type=COUNT, default=32, help="channels per layer")
    train.add_argument("--kernel", type=COUNT, default=3, help="kernel size")
    train.add_argument("--epochs", type=COUNT, default=5, help="--data: total epochs")
    train.add_argument("--steps", type=COUNT, default=20000,
                       help="--dataset: total training steps")
    train.add_argument("--minutes", type=POSITIVE,
                       help="--dataset: stop this run after this long (resume later)")
    train.add_argument("--batch-size", type=COUNT, default=8, help="sequences per step")
    train.add_argument("--learning-rate", type=POSITIVE, default=3e-3,
                       help="Adam's step size")
    train.add_argument("--learning-rate-decay", type=number(0, 1, up_to=True), default=1.0,
                       help="--dataset: factor the step size shrinks by over --steps")
    train.add_argument("--validation-split", type=number(0, 1, or_equal=True), default=0.1,
                       help="--data: fraction held out for validation")
    train.add_argument("--seed", type=SEED, default=0,
                       help="seeds the model, the data and shuffling")
    again = train.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue the run in --out (architecture flags, if given, must "
                            "match it)")
    again.add_argument("--overwrite", action="store_true",
                       help="start again even if --out holds a run")
    _add_cluster_flags(train)
    train.set_defaults(run=_train)

    predict = commands.add_parser(
        "predict", formatter_class=formatter,
        help="forecast future frames with a trained model",
        description="Forecast the frames that follow each input sequence, the way the model "
                    "was trained (model.metadata['forecast']): one pass over the input and "
                    "blank frames for a direct forecaster, each prediction fed back otherwise.")
    predict.add_argument("--model", required=True,
                         help="a model.npz written by train or demo, or a Keras .keras/.h5 file")
    predict.add_argument("--input", required=True,
                         help=".npy of one sequence (T, H, W[, C]) or many (N, T, H, W[, C]); "
                              "with a cluster, many, in a .npy or a zarr store")
    predict.add_argument("--output", required=True,
                         help=".npy to write the predictions to (with a cluster: or .zarr)")
    predict.add_argument("--frames", type=integer(1, 10_000), default=10, help="frames to predict")
    predict.add_argument("--batch-size", type=COUNT, default=32,
                         help="sequences per forward pass (and per chunk with a cluster)")
    _add_cluster_flags(predict)
    predict.set_defaults(run=_predict)

    info = commands.add_parser("info", formatter_class=formatter, help="describe a model file",
                               description="Print a model file's kind, layers, shapes and "
                                           "parameter counts.")
    info.add_argument("file", help="a model.npz, or a Keras .keras/.h5 file")
    info.set_defaults(run=_info)

    onnx_export = commands.add_parser(
        "export", formatter_class=formatter, help="export a model to ONNX (needs onnx)",
        description="Write a model as an ONNX graph of standard operators that ONNX Runtime "
                    "runs with the same numbers; batch and time stay dynamic.")
    onnx_export.add_argument("--model", required=True,
                             help="a model.npz, or a Keras .keras/.h5 file")
    onnx_export.add_argument("--onnx", required=True, help="the .onnx file to write")
    onnx_export.add_argument("--opset", type=COUNT, default=17, help="ONNX opset")
    onnx_export.add_argument("--states", action="store_true",
                             help="ConvLSTM2D initial states as optional inputs, final states "
                                  "as outputs")
    onnx_export.add_argument("--static-batch", action="store_true", help="fix the batch to 1")
    onnx_export.add_argument("--static-time", action="store_true",
                             help="fix the time axis to the model's input shape's")
    onnx_export.set_defaults(run=_export)
    return parser


def _add_cluster_flags(command: argparse.ArgumentParser) -> None:
    cluster = command.add_mutually_exclusive_group()
    cluster.add_argument("--workers", type=integer(1, 1024),
                         help="run on a local Dask cluster of this many worker processes "
                              "(needs Dask: pip install -e '.[distributed]')")
    cluster.add_argument("--scheduler", metavar="ADDRESS",
                         help="run on the Dask cluster whose scheduler is at ADDRESS, e.g. "
                              "tcp://10.0.0.5:8786")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``convlstm`` command; returns the exit status (2 for bad input, with
    one line on stderr naming the flag or the file)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.given = given_flags(argv)
    try:
        return args.run(args)
    except (UsageError, ValueError, TypeError, OSError, ImportError) as error:
        return report(args.command, error)
    except MemoryError as error:
        return report(args.command, f"not enough memory for these settings ({error})")
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())

"""The ``convlstm`` command: demo, train, predict and info."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from convlstm import __version__, data, nextframe, saving
from convlstm.callbacks import Callback, ModelCheckpoint
from convlstm.optimizers import Adam

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A problem with the user's input: reported in one line, exit status 2."""


class ProgressBar(Callback):
    """``step 40/300 [#####.....] loss 0.0213  1m05s left`` on stderr, redrawn in place on a
    terminal and printed every tenth of the way otherwise."""

    def __init__(self, total_steps: int, stream=sys.stderr) -> None:
        self.total, self.stream = total_steps, stream
        self.step, self.started = 0, time.perf_counter()
        self.interactive = stream.isatty()
        self.losses: list[float] = []

    def on_batch_end(self, batch: int, logs: dict[str, float]) -> None:
        self.step += 1
        self.losses.append(logs["loss"])
        if not self.interactive and self.step % max(1, self.total // 10) and self.step < self.total:
            return
        elapsed = time.perf_counter() - self.started
        left = elapsed / self.step * (self.total - self.step)
        filled = round(20 * self.step / self.total)
        line = (f"step {self.step}/{self.total} [{'#' * filled}{'.' * (20 - filled)}] "
                f"loss {logs['loss']:.4f}  {_duration(left)} left")
        end = "\r" if self.interactive and self.step < self.total else "\n"
        print(("\r" if self.interactive else "") + line, end=end, file=self.stream, flush=True)


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


# ---------------------------------------------------------------------------------------- demo

DEMO_SETTINGS = {
    # Default: about 3 minutes on 2 cores. Quick: about 30 seconds, still ahead of the baselines.
    "default": {"size": 32, "frames": 10, "sequences": 384, "steps": 300, "filters": 12,
                "batch_size": 8},
    "quick": {"size": 24, "frames": 8, "sequences": 160, "steps": 120, "filters": 8,
              "batch_size": 8},
}


def _demo(args: argparse.Namespace) -> int:
    settings = DEMO_SETTINGS["quick" if args.quick else "default"]
    pick = {key: getattr(args, key) if getattr(args, key) is not None else value
            for key, value in settings.items()}
    out = Path(args.out or datetime.now().strftime("convlstm-demo-%Y%m%d-%H%M%S"))
    out.mkdir(parents=True, exist_ok=True)
    speed = args.speed if args.speed is not None else pick["size"] / 16
    sequences = data.moving_shapes(pick["sequences"], pick["frames"], pick["size"], args.objects,
                                   speed, seed=args.seed)
    held_out = max(8, len(sequences) // 8)
    train, test = sequences[:-held_out], sequences[-held_out:]
    print(f"data: {len(train)} training and {len(test)} held-out sequences of "
          f"{pick['frames']} frames, {pick['size']}x{pick['size']} pixels, {args.objects} shapes")

    model = nextframe.next_frame_model((pick["frames"] - 1, pick["size"], pick["size"], 1),
                                       filters=pick["filters"], seed=args.seed)
    model.compile(Adam(args.learning_rate), "binary_crossentropy")
    batches = -(-len(train) // pick["batch_size"])
    epochs = max(1, round(pick["steps"] / batches))
    print(f"model: {sum(w.size for w in model.get_weights()):,} weights; training "
          f"{epochs * batches} steps")
    progress = ProgressBar(epochs * batches)
    history = model.fit(train[:, :-1], train[:, 1:], epochs=epochs, batch_size=pick["batch_size"],
                        validation_data=(test[:, :-1], test[:, 1:]), callbacks=[progress],
                        verbose=0, seed=args.seed)

    errors = nextframe.next_frame_errors(model, test, train.mean(axis=(0, 1)))
    context_length = pick["frames"] // 2
    shown = test[: args.examples]
    future = nextframe.rollout(model, shown[:, :context_length], pick["frames"] - context_length)
    rollout_error = float(np.mean((future - shown[:, context_length:]) ** 2))
    print("next-frame mean squared error on held-out sequences:")
    for name, value in errors.items():
        print(f"  {name.replace('_', ' '):<18} {value:.5f}")

    from convlstm import figures

    figures.prediction_grid(str(out / "predictions.png"), shown[:, :context_length],
                            shown[:, context_length:], future)
    figures.truth_vs_prediction_gif(str(out / "truth_vs_prediction.gif"),
                                    shown[:, context_length:], future)
    steps_per_epoch = batches
    figures.loss_curve(str(out / "loss.png"), progress.losses,
                       [((e + 1) * steps_per_epoch, v)
                        for e, v in enumerate(history.history["val_loss"])])
    model.save(out / "model.npz")
    metrics = {"next_frame_mse": errors, "rollout_mse": rollout_error,
               "rollout_context_frames": context_length, "epochs": epochs,
               "steps": epochs * batches, "loss": history.history["loss"],
               "val_loss": history.history["val_loss"], "settings": {**pick, "seed": args.seed}}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    beats = errors["model"] < min(errors["repeat_last_frame"], errors["mean_frame"])
    print(f"the model {'beats' if beats else 'does NOT beat'} both baselines")
    print(f"wrote {out}/: predictions.png, truth_vs_prediction.gif, loss.png, model.npz, "
          "metrics.json")
    return 0


# --------------------------------------------------------------------------------------- train

def _read_array(path: str, key: str | None = None) -> np.ndarray:
    """The array in a .npy file, or the one named ``key`` (default: the first) in a .npz."""
    if not os.path.exists(path):
        raise UsageError(f"no such file: {path}")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read {path} as .npy or .npz: {error}") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        return loaded
    with loaded:
        names = loaded.files
        if not names:
            raise UsageError(f"{path} holds no arrays")
        if key is not None and key not in names:
            raise UsageError(f"{path} has no array {key!r}; it has {names}")
        return loaded[key or names[0]]


def _as_unit_interval(array: np.ndarray, path: str) -> np.ndarray:
    """float32 frames in [0, 1]: uint8 is divided by 255; anything else must already fit."""
    if array.dtype.kind not in "biuf":
        raise UsageError(f"{path}: expected numeric frames; got dtype {array.dtype}")
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
            f"{path}: expected sequences of shape (N, T, H, W) or (N, T, H, W, C); "
            f"got {array.shape}")
    if time_axis == 0:
        array = array.swapaxes(0, 1)
    if array.ndim == 4:
        array = array[..., None]
    array = _as_unit_interval(array, path)
    if array.shape[1] < 2:
        raise UsageError(f"{path}: sequences need at least 2 frames; got {array.shape[1]}")
    return array


def _train(args: argparse.Namespace) -> int:
    sequences = _load_sequences(args.data, args.key, args.time_axis)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint, state_file = out / "model.npz", out / "training.json"
    state = {"epochs_done": 0, "loss": [], "val_loss": []}
    if args.resume:
        if not checkpoint.exists() or not state_file.exists():
            raise UsageError(f"nothing to resume in {out}: no model.npz and training.json")
        model = saving.load(checkpoint)
        state = json.loads(state_file.read_text())
        print(f"resuming after epoch {state['epochs_done']}")
    else:
        model = nextframe.next_frame_model(
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
            state_file.write_text(json.dumps(state))
            print(f"epoch {state['epochs_done']}/{args.epochs}  loss {logs['loss']:.5f}"
                  + (f"  val_loss {logs['val_loss']:.5f}" if "val_loss" in logs else ""))

    validation = args.validation_split if len(x) > 1 else 0.0
    batches = -(-round(len(x) * (1 - validation)) // args.batch_size)
    try:
        model.fit(x, y, epochs=remaining, batch_size=args.batch_size,
                  validation_split=validation, verbose=0, seed=args.seed,
                  callbacks=[ProgressBar(remaining * batches),
                             ModelCheckpoint(str(checkpoint), monitor="loss"), SaveState()])
    except KeyboardInterrupt:
        saved = f"; the last checkpoint is {checkpoint}" if checkpoint.exists() else ""
        print(f"\ninterrupted{saved}", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"wrote {checkpoint}")
    return 0


# ------------------------------------------------------------------------------ predict, info

def _predict(args: argparse.Namespace) -> int:
    model = _read_model(args.model)
    frame_shape = tuple(model.input_shape[1:])  # (H, W, C)
    array = _read_array(args.input)
    if array.ndim == 3 or (array.ndim == 4 and array.shape[1:] == frame_shape):
        single, sequences = True, array.reshape(1, *array.shape[:3], -1)  # one sequence
    elif array.ndim in (4, 5):
        single, sequences = False, array.reshape(*array.shape[:4], -1)
    else:
        raise UsageError(f"{args.input}: expected (T, H, W[, C]) or (N, T, H, W[, C]); got "
                         f"{array.shape}")
    if sequences.shape[2:] != frame_shape:
        raise UsageError(f"{args.input}: frames of shape {sequences.shape[2:]} do not fit the "
                         f"model's {frame_shape}")
    future = nextframe.rollout(model, _as_unit_interval(sequences, args.input), args.frames)
    np.save(args.output, future[0] if single else future)
    print(f"wrote {args.frames} predicted frames to {args.output}")
    return 0


KERAS_SUFFIXES = {".keras": "Keras 3 .keras archive", ".h5": "Keras .h5 file"}


def _model_kind(path: str) -> str:
    return KERAS_SUFFIXES.get(Path(path).suffix, f"numpy-convlstm native model (format "
                                                 f"version {saving.VERSION})")


def _read_model(path: str):
    """A native model file, or a Keras .keras/.h5 file (needs h5py)."""
    if not os.path.exists(path):
        raise UsageError(f"no such file: {path}")
    try:
        if Path(path).suffix in KERAS_SUFFIXES:
            from convlstm.keras import load_keras

            return load_keras(path)
        return saving.load(path)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _info(args: argparse.Namespace) -> int:
    model = _read_model(args.file)
    print(f"{args.file}: {_model_kind(args.file)}")
    print(model.summary() if getattr(model, "input_shape", None) else repr(model))
    return 0


# ---------------------------------------------------------------------------------- arguments

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convlstm", description="ConvLSTM in pure NumPy: demo, train, predict, inspect.")
    parser.add_argument("--version", action="version", version=f"convlstm {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="train a next-frame predictor on built-in moving shapes and draw it",
        description="Generate moving-shape sequences, train a next-frame predictor, compare it "
                    "with two baselines and write pictures, the model and metrics.")
    demo.add_argument("--out", help="output folder (default: a new convlstm-demo-<time> folder)")
    demo.add_argument("--seed", type=int, default=0, help="seeds data and model (default 0)")
    demo.add_argument("--quick", action="store_true", help="a smaller problem, about 30 s")
    demo.add_argument("--size", type=_positive, help="frame height and width in pixels")
    demo.add_argument("--frames", type=_at_least_3, help="frames per sequence")
    demo.add_argument("--objects", type=_positive, default=2, help="shapes per sequence")
    demo.add_argument("--speed", type=float, help="pixels per frame (default size/16)")
    demo.add_argument("--sequences", type=_at_least_16, help="how many sequences to generate")
    demo.add_argument("--steps", type=_positive, help="about how many training steps")
    demo.add_argument("--filters", type=_positive, help="channels of each ConvLSTM layer")
    demo.add_argument("--batch-size", type=_positive, help="sequences per training step")
    demo.add_argument("--learning-rate", type=float, default=2e-3, help="Adam's step size")
    demo.add_argument("--examples", type=_positive, default=4, help="sequences to draw")
    demo.set_defaults(run=_demo)

    train = commands.add_parser(
        "train", help="train a next-frame predictor on your own sequences",
        description="Train on sequences from a .npy/.npz file: (N, T, H, W) or (N, T, H, W, C), "
                    "values in [0, 1] or uint8. The public Moving MNIST file is time-major "
                    "(20, N, 64, 64): pass --time-axis 0.")
    train.add_argument("--data", required=True, help=".npy or .npz file of sequences")
    train.add_argument("--key", help="array name inside an .npz (default: the first)")
    train.add_argument("--time-axis", type=int, choices=(0, 1), default=1,
                       help="axis of time in the file (default 1: (N, T, ...))")
    train.add_argument("--out", default="convlstm-model", help="folder for model.npz and logs")
    train.add_argument("--layers", type=_positive, default=2, help="ConvLSTM2D layers")
    train.add_argument("--filters", type=_positive, default=16, help="channels per layer")
    train.add_argument("--kernel", type=_positive, default=3, help="kernel size")
    train.add_argument("--epochs", type=_positive, default=5, help="total epochs")
    train.add_argument("--batch-size", type=_positive, default=8, help="sequences per step")
    train.add_argument("--learning-rate", type=float, default=1e-3, help="Adam's step size")
    train.add_argument("--validation-split", type=float, default=0.1,
                       help="fraction held out for validation (default 0.1)")
    train.add_argument("--seed", type=int, default=0, help="seeds the model and shuffling")
    train.add_argument("--resume", action="store_true",
                       help="continue from the checkpoint in --out")
    train.set_defaults(run=_train)

    predict = commands.add_parser(
        "predict", help="roll a trained model forward to predict future frames",
        description="Feed the input frames, then each predicted frame, back into the model.")
    predict.add_argument("--model", required=True,
                         help="a model.npz written by train or demo, or a Keras .keras/.h5 file")
    predict.add_argument("--input", required=True,
                         help=".npy of one sequence (T, H, W[, C]) or many (N, T, H, W[, C])")
    predict.add_argument("--output", required=True, help=".npy to write the predictions to")
    predict.add_argument("--frames", type=_positive, default=10, help="frames to predict")
    predict.set_defaults(run=_predict)

    info = commands.add_parser("info", help="describe a model file",
                               description="Print a model file's kind, layers, shapes and "
                                           "parameter counts.")
    info.add_argument("file", help="a model.npz, or a Keras .keras/.h5 file")
    info.set_defaults(run=_info)
    return parser


def _integer_at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer; got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}; got {value}")
        return value

    return parse


_positive, _at_least_3, _at_least_16 = (_integer_at_least(n) for n in (1, 3, 16))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``convlstm`` command; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (UsageError, ValueError, TypeError, FileNotFoundError, ImportError) as error:
        print(f"convlstm {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())

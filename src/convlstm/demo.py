"""``convlstm demo``: train (or load) a forecaster, score it against the baselines, draw it.

Two data sets: Moving MNIST from real digits (the default; the ConvLSTM paper's benchmark, 10
frames in, 10 forecast) and the built-in moving shapes (a next-frame predictor).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from convlstm import data, datasets, figures, forecasting, limits
from convlstm._files import atomic_path, atomic_write
from convlstm.callbacks import StepLimit, TimeLimit
from convlstm.console import ProgressBar, UsageError, duration, output_folder, refuse_unused
from convlstm.optimizers import Adam

CONTEXT, HORIZON = 10, 10
TEST_SEED = 2015
"""The Moving MNIST test sequences are always these (test digits, this seed), so every run,
the README and the pretrained model's numbers are scored on the same 1,000 sequences."""

MOVING_MNIST = {
    # Default: at most 4 minutes of training on 2 cores (16 filters: on a busy machine 32 got
    # 270 steps in 4 minutes, 16 got 655 and a wider margin over the baselines). Quick: about
    # 30 seconds in all.
    "default": {"filters": 16, "batch_size": 8, "steps": 2000, "minutes": 4.0,
                "test_sequences": 1000, "learning_rate": 3e-3},
    "quick": {"filters": 8, "batch_size": 8, "steps": 150, "minutes": 0.5,
              "test_sequences": 100, "learning_rate": 3e-3},
}
ROUND_SIZE = 256
"""Fresh training sequences drawn at a time."""

SHAPES = {
    # Default: about 3 minutes on 2 cores. Quick: about 30 seconds.
    "default": {"size": 32, "frames": 10, "sequences": 384, "steps": 300, "filters": 12,
                "batch_size": 8, "learning_rate": 2e-3},
    "quick": {"size": 24, "frames": 8, "sequences": 160, "steps": 120, "filters": 8,
              "batch_size": 8, "learning_rate": 2e-3},
}


def settings(args: argparse.Namespace, table: dict[str, dict]) -> dict:
    """The preset (default or quick) with the options the user gave laid over it."""
    preset = table["quick" if args.quick else "default"]
    return {key: value if getattr(args, key, None) is None else getattr(args, key)
            for key, value in preset.items()}


def demo_folder(args: argparse.Namespace) -> Path:
    """``--out``, or a new time-stamped folder (see :func:`console.output_folder`)."""
    return output_folder(datetime.now().strftime("convlstm-demo-%Y%m%d-%H%M%S")
                         if args.out is None else args.out)


def draw(path: Path, figure: Callable[..., None], *args: Any, **kwargs: Any) -> None:
    """``figure(path, *args, **kwargs)`` written whole or not at all: drawn to a temporary
    file beside ``path``, then renamed."""
    with atomic_path(path) as partial:
        figure(partial, *args, **kwargs)


def train_seed(seed: int, round_number: int) -> int:
    """The data seed of one training round: different rounds and runs never share one."""
    return int(np.random.default_rng([seed, round_number]).integers(2**31))


SHAPES_ONLY = ("--size", "--frames", "--objects", "--speed", "--sequences")
MOVING_MNIST_ONLY = ("--minutes", "--test-sequences")
TRAINING = ("--steps", "--minutes", "--filters", "--batch-size", "--learning-rate")
"""The demo flags that only one data set takes, and the ones ``--pretrained`` makes moot."""


def run(args: argparse.Namespace) -> int:
    """The demo subcommand; returns the exit status."""
    given = getattr(args, "given", set())
    if args.dataset == "shapes":
        if args.pretrained:
            raise UsageError("--pretrained: the shipped model is for --dataset moving-mnist")
        refuse_unused(given, MOVING_MNIST_ONLY, "with --dataset shapes")
        return shapes_demo(args)
    refuse_unused(given, SHAPES_ONLY, "with --dataset moving-mnist (the shapes' options)")
    if args.pretrained:
        refuse_unused(given, TRAINING, "with --pretrained (it trains nothing)")
    return moving_mnist_demo(args)


def moving_mnist_demo(args: argparse.Namespace) -> int:
    pick = settings(args, MOVING_MNIST)
    out = demo_folder(args)
    test = datasets.moving_mnist(pick["test_sequences"], frames=CONTEXT + HORIZON,
                                 split="test", seed=TEST_SEED)
    mean_frame = datasets.moving_mnist(pick["test_sequences"], split="train",
                                       seed=train_seed(args.seed, 0)).mean(axis=(0, 1))
    print(f"data: Moving MNIST from real digits, 64x64, {CONTEXT} frames in and {HORIZON} to "
          f"forecast; {len(test)} test sequences from held-out digits")
    started = time.perf_counter()
    losses: list[float] = []
    if args.pretrained:
        from convlstm.pretrained import pretrained

        model = pretrained("moving-mnist")
        print(f"model: the pretrained forecaster, {count_weights(model):,} weights; trained by "
              f"`{model.metadata.get('command', '?')}` in "
              f"{duration(model.metadata.get('train_seconds', 0))}")
    else:
        with limits.weight_budget("--filters"):
            model = forecasting.forecaster(filters=pick["filters"], seed=args.seed)
        model.compile(Adam(pick["learning_rate"]), "binary_crossentropy")
        print(f"model: {count_weights(model):,} weights; training from scratch for "
              f"{pick['steps']} steps or {pick['minutes']:g} minutes, whichever comes first")
        progress = ProgressBar(pick["steps"], loss_name="bce")
        rounds = range(-(-pick["steps"] * pick["batch_size"] // ROUND_SIZE))
        for _ in forecasting.train_direct(
            model, lambda count, r: datasets.moving_mnist(count, seed=train_seed(args.seed, r)),
            context=CONTEXT, rounds=rounds, round_size=ROUND_SIZE,
            batch_size=pick["batch_size"],
            callbacks=[progress, TimeLimit(60 * pick["minutes"]), StepLimit(pick["steps"])],
        ):
            pass
        progress.close()
        losses = progress.losses
    trained = time.perf_counter() - started

    context, truth = test[:, :CONTEXT], test[:, CONTEXT:]
    forecasts = {"model": forecasting.forecast(model, context, HORIZON),
                 **forecasting.baselines(context, HORIZON, mean_frame)}
    scores = forecasting.evaluate(truth, forecasts)
    print_scores(scores)
    beats = beats_baselines(scores, "mse_frame", lower=True)
    print(f"the model's per-frame MSE is {'below' if beats else 'NOT below'} both baselines at "
          "every horizon")
    sharper = beats_baselines(scores, "ssim", lower=False)
    print(f"the model's SSIM is {'above' if sharper else 'NOT above'} both baselines at every "
          "horizon")

    shown = slice(0, args.examples)
    draw(out / "forecast.png", figures.prediction_grid, context[shown], truth[shown],
         forecasts["model"][shown], frame_labels=True)
    draw(out / "horizons.png", figures.horizon_curves, scores)
    draw(out / "forecast.gif", figures.truth_vs_prediction_gif, truth[shown],
         forecasts["model"][shown])
    written = ["forecast.png", "horizons.png", "forecast.gif"]
    if losses:
        draw(out / "loss.png", figures.loss_curve, losses)
        written.append("loss.png")
    model.save(out / "model.npz")
    report = {
        "horizons": list(range(1, HORIZON + 1)),
        "methods": scores,
        "model_beats_both_baselines_in_mse_at_every_horizon": beats,
        "model_beats_both_baselines_in_ssim_at_every_horizon": sharper,
        "settings": {**pick, "seed": args.seed, "pretrained": args.pretrained,
                     "context": CONTEXT, "test_seed": TEST_SEED},
        "timings": {"training_seconds": None if args.pretrained else trained,
                    "steps": len(losses)},
        "loss": losses,
    }
    write_json(out / "metrics.json", report)
    print(f"wrote {out}/: {', '.join(written)}, model.npz, metrics.json")
    return 0


def beats_baselines(scores: dict[str, dict[str, list[float]]], metric: str, lower: bool) -> bool:
    """Whether the model is better than both baselines on ``metric`` at every horizon."""
    model, rivals = scores["model"][metric], [scores[name][metric] for name in
                                              ("repeat_last_frame", "mean_frame")]
    return all((mine < min(theirs)) if lower else (mine > max(theirs))
               for mine, *theirs in zip(model, *rivals))


def count_weights(model) -> int:
    return sum(weight.size for weight in model.get_weights())


def print_scores(scores: dict[str, dict[str, list[float]]]) -> None:
    """A table: per-frame MSE and SSIM of every method at every horizon."""
    names = list(scores)
    print("frames ahead  " + "  ".join(f"{name.replace('_', ' '):>26}" for name in names))
    print("              " + "  ".join(f"{'MSE/frame':>14}{'SSIM':>12}" for _ in names))
    horizons = len(scores[names[0]]["mse_frame"])
    for t in range(horizons):
        row = "  ".join(f"{scores[n]['mse_frame'][t]:14.1f}{scores[n]['ssim'][t]:12.3f}"
                        for n in names)
        print(f"{t + 1:>12}  {row}")
    means = "  ".join(f"{np.mean(scores[n]['mse_frame']):14.1f}{np.mean(scores[n]['ssim']):12.3f}"
                      for n in names)
    print(f"{'mean':>12}  {means}")


def write_json(path: Path, value: object) -> None:
    """Write JSON whole or not at all (a temporary file, then a rename)."""
    with atomic_write(path) as file:
        file.write(json.dumps(value, indent=2).encode())


def shapes_demo(args: argparse.Namespace) -> int:
    pick = settings(args, SHAPES)
    out = demo_folder(args)
    speed = args.speed if args.speed is not None else pick["size"] / 16
    sequences = data.moving_shapes(pick["sequences"], pick["frames"], pick["size"], args.objects,
                                   speed, seed=args.seed)
    held_out = max(8, len(sequences) // 8)
    train, test = sequences[:-held_out], sequences[-held_out:]
    print(f"data: {len(train)} training and {len(test)} held-out sequences of "
          f"{pick['frames']} frames, {pick['size']}x{pick['size']} pixels, {args.objects} "
          f"objects each")

    with limits.weight_budget("--filters"):
        model = forecasting.next_frame_model(
            (pick["frames"] - 1, pick["size"], pick["size"], 1), filters=pick["filters"],
            seed=args.seed)
    model.compile(Adam(pick["learning_rate"]), "binary_crossentropy")
    batches = -(-len(train) // pick["batch_size"])
    epochs = max(1, round(pick["steps"] / batches))
    print(f"model: {count_weights(model):,} weights; training {epochs * batches} steps")
    progress = ProgressBar(epochs * batches, loss_name="bce")
    history = model.fit(train[:, :-1], train[:, 1:], epochs=epochs, batch_size=pick["batch_size"],
                        validation_data=(test[:, :-1], test[:, 1:]), callbacks=[progress],
                        verbose=0, seed=args.seed)
    progress.close()

    inputs, targets = test[:, :-1], test[:, 1:]
    mean_frame = train.mean(axis=(0, 1))
    errors = {
        "model": float(np.mean((model.predict(inputs) - targets) ** 2)),
        "repeat_last_frame": float(np.mean((inputs - targets) ** 2)),
        "mean_frame": float(np.mean((mean_frame - targets) ** 2)),
    }
    context_length = pick["frames"] // 2
    shown = test[: args.examples]
    future = forecasting.forecast(model, shown[:, :context_length],
                                  pick["frames"] - context_length)
    rollout_error = float(np.mean((future - shown[:, context_length:]) ** 2))
    print("next-frame mean squared error on held-out sequences:")
    for name, value in errors.items():
        print(f"  {name.replace('_', ' '):<18} {value:.5f}")

    draw(out / "predictions.png", figures.prediction_grid, shown[:, :context_length],
         shown[:, context_length:], future)
    draw(out / "truth_vs_prediction.gif", figures.truth_vs_prediction_gif,
         shown[:, context_length:], future)
    draw(out / "loss.png", figures.loss_curve, progress.losses,
         [((e + 1) * batches, v) for e, v in enumerate(history.history["val_loss"])])
    model.save(out / "model.npz")
    write_json(out / "metrics.json", {
        "next_frame_mse": errors, "rollout_mse": rollout_error,
        "rollout_context_frames": context_length, "epochs": epochs, "steps": epochs * batches,
        "loss": history.history["loss"], "val_loss": history.history["val_loss"],
        "settings": {**pick, "seed": args.seed}})
    beats = errors["model"] < min(errors["repeat_last_frame"], errors["mean_frame"])
    print(f"the model {'beats' if beats else 'does NOT beat'} both baselines")
    print(f"wrote {out}/: predictions.png, truth_vs_prediction.gif, loss.png, model.npz, "
          "metrics.json")
    return 0

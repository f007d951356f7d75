"""Multi-step forecasting: the models, how they are trained, roll-outs and the baselines.

Two ways to forecast ``steps`` frames after a context of observed frames:

- **direct** (the Moving MNIST model): the model is trained on ``(x, y)`` pairs from
  :func:`direct_pairs`, where ``y`` is each frame's successor and ``x`` shows the context frames
  and then zeros: the model learns to carry the future in its states. A forecast is one forward
  pass over the context followed by ``steps - 1`` blank frames.
- **autoregressive** (a next-frame model): each predicted frame is fed back in as the next input.

:func:`forecast` takes the method a model was trained for from ``model.metadata["forecast"]``
(which the native file keeps), so a user calls it the same way for both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from convlstm import _validation as check
from convlstm import metrics
from convlstm.callbacks import Callback
from convlstm.layers.conv import Conv3D
from convlstm.layers.convlstm import ConvLSTM2D
from convlstm.layers.normalization import BatchNormalization
from convlstm.layers.space_to_depth import DepthToSpace, SpaceToDepth
from convlstm.models import Sequential

METHODS = ("direct", "autoregressive")

HEAD_BIAS = -3.0
"""The sigmoid head starts at sigmoid(-3) ~ 0.05: Moving MNIST frames are mostly black, and a
head that starts at 0.5 spends its first hundreds of steps unlearning grey."""


def forecaster(
    frame_shape: tuple[int, int, int] = (64, 64, 1),
    *,
    filters: int = 32,
    layers: int = 2,
    kernel_size: int = 3,
    block_size: int = 4,
    seed: int = 0,
) -> Sequential:
    """The ConvLSTM forecaster of Shi et al. (2015) for Moving MNIST, at a size 2 cores train.

    Frames are cut into ``block_size`` x ``block_size`` patches stacked as channels (64x64x1 ->
    16x16x16, as in the paper), run through stacked ConvLSTM2D layers, mapped back to patch
    pixels by a 1x1 sigmoid convolution and put back in place.

    Args:
        frame_shape: (height, width, channels) of one frame; height and width must be
            multiples of ``block_size``.
        filters: channels of every ConvLSTM2D.
        layers: how many ConvLSTM2D layers.
        kernel_size: their kernel size.
        block_size: the patch size.
        seed: seeds every layer's initializer.

    Returns:
        A model mapping (B, T, H, W, C) frames to (B, T, H, W, C) values in [0, 1], with
        ``metadata["forecast"] == "direct"``.
    """
    owner = "forecaster"
    height, width, channels = _frame_shape(owner, "frame_shape", frame_shape, 3)
    layers = check.positive_int(owner, "layers", layers)
    seed = check.non_negative_int(owner, "seed", seed)
    block_size = check.positive_int(owner, "block_size", block_size)
    depth = channels * block_size * block_size
    stack: list = [SpaceToDepth(block_size)]
    for index in range(layers):
        stack.append(ConvLSTM2D(depth if index == 0 else filters, filters, kernel_size, "same",
                                seed=seed + index))
    head = Conv3D(depth, 1, activation="sigmoid", seed=seed + layers)
    stack += [head, DepthToSpace(block_size)]
    model = Sequential(stack, input_shape=(None, height, width, channels))
    head.params["bias"][:] = HEAD_BIAS
    model.metadata["forecast"] = "direct"
    return model


def next_frame_model(
    input_shape: tuple[int | None, int, int, int],
    filters: int = 16,
    layers: int = 2,
    kernel_size: int = 3,
    seed: int = 0,
) -> Sequential:
    """Stacked ConvLSTM2D layers (BatchNormalization between them) and a Conv3D sigmoid head,
    in the spirit of the Keras next-frame example; forecasts autoregressively.

    Args:
        input_shape: (time, height, width, channels) of one input sequence.
        filters: channels of every ConvLSTM2D.
        layers: how many ConvLSTM2D layers.
        kernel_size: their kernel size.
        seed: seeds every layer's initializer.

    Returns:
        A model mapping (B, T, H, W, C) frames to (B, T, H, W, C) predictions of the frame
        after each one, in [0, 1].
    """
    owner = "next_frame_model"
    channels = _frame_shape(owner, "input_shape", input_shape, 4)[-1]
    layers = check.positive_int(owner, "layers", layers)
    seed = check.non_negative_int(owner, "seed", seed)
    stack = []
    for index in range(layers):
        if index:
            stack.append(BatchNormalization(momentum=0.9))
        in_channels = channels if index == 0 else filters
        stack.append(ConvLSTM2D(in_channels, filters, kernel_size, "same", seed=seed + index))
    stack.append(Conv3D(channels, 3, padding="same", activation="sigmoid", seed=seed + layers))
    model = Sequential(stack, input_shape=input_shape)
    model.metadata["forecast"] = "autoregressive"
    return model


def _frame_shape(owner: str, name: str, value: object, length: int) -> tuple:
    """A shape of ``length`` entries: positive ints, the first may be None (any length)."""
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) != length or any(
            not (check._is_int(n) and n >= 1) and not (n is None and i == 0 and length == 4)
            for i, n in enumerate(value)):
        names = ("time", "height", "width", "channels")[-length:]
        raise ValueError(f"{owner}: expected {name} to be ({', '.join(names)}) of positive ints; "
                         f"got {value!r}.")
    return tuple(value)


def _sequences(owner: str, name: str, value: object) -> np.ndarray:
    """``value`` as a real (N, T, H, W, C) array with T >= 1."""
    array = check.real_array(owner, name, value)
    if array.ndim != 5 or array.shape[1] < 1:
        raise ValueError(f"{owner}: expected {name} of shape (N, T, H, W, C) with T >= 1; got "
                         f"{check.shape_text(array.shape)}.")
    return array


def direct_pairs(sequences: np.ndarray, context: int) -> tuple[np.ndarray, np.ndarray]:
    """Training pairs for direct multi-step forecasting.

    Args:
        sequences: (N, T, H, W, C) whole sequences.
        context: how many frames the model sees; the ``T - context`` after them are forecast.

    Returns:
        ``x`` (N, T - 1, H, W, C): the first ``context`` frames, then zeros; ``y``
        (N, T - 1, H, W, C): frames 1 to T - 1, each the successor of the same step of ``x``.
    """
    owner = "direct_pairs"
    sequences = check.real_array(owner, "sequences", sequences)
    if sequences.ndim != 5:
        raise ValueError(f"{owner}: expected sequences of shape (N, T, H, W, C); got "
                         f"{sequences.shape}.")
    context = check.positive_int(owner, "context", context)
    if context >= sequences.shape[1]:
        raise ValueError(f"{owner}: expected context < the {sequences.shape[1]} frames of each "
                         f"sequence, so some remain to forecast; got {context}.")
    x = sequences[:, :-1].copy()
    x[:, context:] = 0
    return x, sequences[:, 1:]


def train_direct(
    model: Sequential,
    sample: Callable[[int, int], np.ndarray],
    *,
    context: int,
    rounds: Iterable[int],
    round_size: int,
    batch_size: int,
    callbacks: Sequence[Callback] = (),
) -> Iterator[tuple[int, float]]:
    """Train a direct forecaster on fresh sequences: every round draws ``round_size`` new ones,
    so the model never sees a sequence twice and cannot overfit the motions.

    Args:
        model: a compiled model (see :func:`forecaster`).
        sample: ``sample(count, round)`` returns (count, T, H, W, C) sequences; the same round
            must give the same sequences, so a resumed run sees what the first one would have.
        context: frames shown to the model; the rest of each sequence is forecast.
        rounds: the round numbers to run, e.g. ``range(10)`` (``range(4, 10)`` resumes).
        round_size: sequences per round.
        batch_size: sequences per training step.
        callbacks: as for ``fit``; when one sets ``model.stop_training``, training stops after
            that step.

    Yields:
        ``(round, loss)`` after each round, loss being its mean training loss.
    """
    owner = "train_direct"
    _check_model(owner, model)
    if not callable(sample):
        raise TypeError(f"{owner}: expected sample to be a callable sample(count, round); got "
                        f"{sample!r}.")
    if not isinstance(rounds, Iterable):
        raise TypeError(f"{owner}: expected rounds to be an iterable of round numbers such as "
                        f"range(10); got {rounds!r}.")
    context = check.positive_int(owner, "context", context)
    round_size = check.positive_int(owner, "round_size", round_size)
    batch_size = check.positive_int(owner, "batch_size", batch_size)
    return _rounds(owner, model, sample, context, rounds, round_size, batch_size, callbacks)


def _rounds(owner, model, sample, context, rounds, round_size, batch_size, callbacks):
    """The generator of :func:`train_direct`, once its arguments are checked."""
    for round_number in rounds:
        check.non_negative_int(owner, "each round number", round_number)
        sequences = _sequences(owner, "sample(round_size, round)'s result",
                               sample(round_size, round_number))
        if len(sequences) != round_size:
            raise ValueError(f"{owner}: expected sample(round_size, round) to return round_size="
                             f"{round_size} sequences; got {len(sequences)}.")
        x, y = direct_pairs(sequences, context)
        history = model.fit(x, y, epochs=1, batch_size=batch_size, callbacks=callbacks,
                            verbose=0, seed=round_number)
        yield round_number, history.history["loss"][0]
        if model.stop_training:
            return


def forecast(
    model: Sequential,
    context: np.ndarray,
    steps: int,
    *,
    method: str | None = None,
    batch_size: int = 32,
) -> np.ndarray:
    """The ``steps`` frames that follow ``context``.

    Args:
        model: a trained model whose outputs predict each input step's next frame.
        context: (B, T, H, W, C) observed frames.
        steps: how many frames to forecast.
        method: "direct" (context then blank frames, one pass) or "autoregressive" (each
            prediction fed back); default: ``model.metadata["forecast"]``, else autoregressive.
        batch_size: sequences per forward pass.

    Returns:
        (B, steps, H, W, C) float32.
    """
    owner = "forecast"
    _check_model(owner, model)
    batch_size = check.positive_int(owner, "batch_size", batch_size)
    method = method or getattr(model, "metadata", {}).get("forecast", "autoregressive")
    method = check.choice(owner, "method", method, METHODS)
    steps = check.positive_int(owner, "steps", steps)
    context = _sequences(owner, "context", context).astype(np.float32, copy=False)
    check.fits_in_memory(owner, "the forecast (of steps frames)",
                         (len(context), steps, *context.shape[2:]), np.float32)
    if method == "direct":
        blank = np.zeros((len(context), steps - 1, *context.shape[2:]), np.float32)
        outputs = model.predict(np.concatenate([context, blank], axis=1), batch_size)
        return outputs[:, context.shape[1] - 1 :]
    sequence, predicted = context, []
    for _ in range(steps):
        following = model.predict(sequence, batch_size)[:, -1:]
        predicted.append(following)
        sequence = np.concatenate([sequence, following], axis=1)
    return np.concatenate(predicted, axis=1)


def _check_model(owner: str, model: object) -> None:
    if not isinstance(model, Sequential):
        raise TypeError(f"{owner}: expected model to be a convlstm Sequential; got "
                        f"{type(model).__name__}.")


def baselines(
    context: np.ndarray, steps: int, mean_frame: np.ndarray
) -> dict[str, np.ndarray]:
    """The two trivial forecasts a model must beat.

    Args:
        context: (B, T, H, W, C) observed frames.
        steps: how many frames to forecast.
        mean_frame: (H, W, C) the training data's mean frame.

    Returns:
        ``{"repeat_last_frame": ..., "mean_frame": ...}``, each (B, steps, H, W, C).
    """
    owner = "baselines"
    context = _sequences(owner, "context", context)
    steps = check.positive_int(owner, "steps", steps)
    mean_frame = check.real_array(owner, "mean_frame", mean_frame)
    check.check_shape(owner, "mean_frame", mean_frame, context.shape[2:])
    shape = (len(context), steps, *context.shape[2:])
    check.fits_in_memory(owner, "each forecast (of steps frames)", shape, np.float32)
    return {
        "repeat_last_frame": np.broadcast_to(context[:, -1:], shape),
        "mean_frame": np.broadcast_to(np.asarray(mean_frame, np.float32), shape),
    }



def evaluate(
    truth: np.ndarray, forecasts: dict[str, np.ndarray]
) -> dict[str, dict[str, list[float]]]:
    """Per-horizon scores of several forecasts of the same frames.

    Args:
        truth: (N, T, H, W, C) the frames that followed, in [0, 1].
        forecasts: (N, T, H, W, C) forecasts by method name.

    Returns:
        ``{method: {"mse_frame": [...], "mse_pixel": [...], "mae_frame": [...], "ssim": [...],
        "psnr": [...]}}``, each list holding T values (see :mod:`convlstm.metrics`).
    """
    owner = "evaluate"
    truth = check.real_array(owner, "truth", truth)
    if not isinstance(forecasts, Mapping):
        raise TypeError(f"{owner}: expected forecasts to be a dict of arrays by method name; got "
                        f"{check.describe(forecasts)}.")
    for name, forecast in forecasts.items():
        check.check_shape(owner, f"forecasts[{name!r}]", np.asarray(forecast), truth.shape)
    return {
        name: {
            "mse_frame": metrics.mse(truth, forecast).tolist(),
            "mse_pixel": metrics.mse(truth, forecast, reduce="pixel").tolist(),
            "mae_frame": metrics.mae(truth, forecast).tolist(),
            "ssim": metrics.ssim(truth, forecast).tolist(),
            "psnr": metrics.psnr(truth, forecast).tolist(),
        }
        for name, forecast in forecasts.items()
    }

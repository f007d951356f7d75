"""Next-frame prediction: the model the demo trains, roll-outs and the baselines it must beat."""

from __future__ import annotations

import numpy as np

from convlstm.layers.conv import Conv3D
from convlstm.layers.convlstm import ConvLSTM2D
from convlstm.layers.normalization import BatchNormalization
from convlstm.models import Sequential


def next_frame_model(
    input_shape: tuple[int, int, int, int],
    filters: int = 16,
    layers: int = 2,
    kernel_size: int = 3,
    seed: int = 0,
) -> Sequential:
    """Stacked ConvLSTM2D layers (BatchNormalization between them) and a Conv3D sigmoid head,
    in the spirit of the Keras next-frame example.

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
    channels = input_shape[-1]
    stack = []
    for index in range(layers):
        if index:
            stack.append(BatchNormalization(momentum=0.9))
        in_channels = channels if index == 0 else filters
        stack.append(ConvLSTM2D(in_channels, filters, kernel_size, "same", seed=seed + index))
    stack.append(Conv3D(channels, 3, padding="same", activation="sigmoid", seed=seed + layers))
    return Sequential(stack, input_shape=input_shape)


def rollout(model: Sequential, context: np.ndarray, frames: int) -> np.ndarray:
    """Predict ``frames`` future frames autoregressively, feeding each prediction back in.

    Args:
        model: a next-frame model.
        context: (B, T, H, W, C) observed frames.
        frames: how many frames to predict.

    Returns:
        (B, frames, H, W, C).
    """
    sequence = np.asarray(context, dtype=np.float32)
    predicted = []
    for _ in range(frames):
        following = model.predict(sequence)[:, -1:]
        predicted.append(following)
        sequence = np.concatenate([sequence, following], axis=1)
    return np.concatenate(predicted, axis=1)


def next_frame_errors(
    model: Sequential, sequences: np.ndarray, mean_frame: np.ndarray
) -> dict[str, float]:
    """Mean squared error of predicting each frame from the ones before it, for the model and
    two baselines: repeating the last frame, and the training set's mean frame.

    Args:
        model: a next-frame model.
        sequences: (B, T, H, W, C) held-out sequences.
        mean_frame: (H, W, C) mean frame of the training data.
    """
    inputs, targets = sequences[:, :-1], sequences[:, 1:]
    return {
        "model": float(np.mean((model.predict(inputs) - targets) ** 2)),
        "repeat_last_frame": float(np.mean((inputs - targets) ** 2)),
        "mean_frame": float(np.mean((mean_frame - targets) ** 2)),
    }

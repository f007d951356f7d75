"""Generate the Keras file fixtures of the ConvRNN family in ``tests/fixtures/convrnn_files/``.

Like ``make_keras_file_fixtures.py`` (whose helpers it reuses), for ConvLSTM1D, ConvLSTM3D and
Bidirectional:
real Keras 3 models saved as ``.keras`` and as legacy ``.h5``, with Keras' outputs in
``expected.npz``; and our models exported with ``save_keras`` (``roundtrip_*.keras``), which
this script loads in Keras and checks against our outputs (atol 1e-5) before recording Keras'
outputs. ``tests/test_keras_convrnn_files.py`` reads everything with NumPy and h5py alone.

How to run (from the repository root)::

    KERAS_BACKEND=torch python scripts/make_keras_convrnn_file_fixtures.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras
import numpy as np
from make_keras_file_fixtures import (
    BATCH,
    case_rng,
    check_close,
    deflate,
    fixed_weights,
    fresh,
    run,
    sequential,
)
from make_keras_fixtures import grid_uniform, save_npz

import convlstm
from convlstm import keras as convlstm_keras

OUT_DIR = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "convrnn_files"
layers = keras.layers


def conv_lstm1d_model() -> keras.Model:
    return sequential(
        (4, 7, 2),
        layers.ConvLSTM1D(3, 3, padding="same", return_sequences=True, go_backwards=True),
        layers.TimeDistributed(layers.MaxPooling1D(2)),
        layers.ConvLSTM1D(2, 2, strides=2, recurrent_activation="hard_sigmoid"),
        layers.Flatten(),
        layers.Dense(2),
    )


def conv_lstm3d_model() -> keras.Model:
    return sequential(
        (3, 2, 4, 5, 1),
        layers.ConvLSTM3D(2, (1, 3, 3), padding="same", return_sequences=True),
        layers.ConvLSTM3D(2, 2, padding="valid", dilation_rate=(1, 1, 2), use_bias=False,
                          return_sequences=False),
        layers.Flatten(),
    )


def conv_lstm3d_channels_first_model() -> keras.Model:
    return sequential(
        (3, 1, 2, 4, 4),
        layers.ConvLSTM3D(2, 2, strides=(1, 2, 2), padding="same",
                          data_format="channels_first", return_sequences=True),
    )


def bidirectional_model() -> keras.Model:
    return sequential(
        (3, 4, 5, 1),
        layers.Bidirectional(layers.ConvLSTM2D(2, 3, padding="same", return_sequences=True)),
        layers.Bidirectional(layers.ConvLSTM2D(2, 2, padding="valid"), merge_mode="sum"),
        layers.Flatten(),
        layers.Dense(2),
    )


def bidirectional_backward_layer_model() -> keras.Model:
    backward = layers.ConvLSTM1D(3, 2, padding="same", go_backwards=True,
                                 return_sequences=True, recurrent_activation="hard_sigmoid")
    return sequential(
        (4, 6, 2),
        layers.Bidirectional(layers.ConvLSTM1D(3, 3, padding="same", return_sequences=True),
                             merge_mode="mul", backward_layer=backward),
    )


CASES = {  # name -> (build, sample shape)
    "conv_lstm1d": (conv_lstm1d_model, (4, 7, 2)),
    "conv_lstm3d": (conv_lstm3d_model, (3, 2, 4, 5, 1)),
    "conv_lstm3d_channels_first": (conv_lstm3d_channels_first_model, (3, 1, 2, 4, 4)),
    "bidirectional": (bidirectional_model, (3, 4, 5, 1)),
    "bidirectional_backward_layer": (bidirectional_backward_layer_model, (4, 6, 2)),
}


def roundtrip_models() -> dict[str, convlstm.Sequential]:
    return {
        "roundtrip_conv_lstm1d": convlstm.Sequential(
            [
                convlstm.ConvLSTM1D(2, 3, 3, num_layers=2, leaky_relu_slope=0.1),
                convlstm.TimeDistributed(convlstm.MaxPooling1D(2, padding="same")),
                convlstm.ConvLSTM1D(3, 2, 2, "valid", return_sequences=False,
                                    go_backwards=True),
                convlstm.Flatten(),
                convlstm.Dense(2),
            ],
            input_shape=(4, 7, 2),
        ),
        "roundtrip_conv_lstm3d": convlstm.Sequential(
            [
                convlstm.ConvLSTM3D(1, 2, (1, 2, 3), stride=(1, 2, 1), num_layers=2,
                                    data_format="channels_first",
                                    recurrent_activation="hard_sigmoid"),
                convlstm.Flatten(),
            ],
            input_shape=(3, 1, 2, 5, 4),
        ),
        "roundtrip_bidirectional": convlstm.Sequential(
            [
                convlstm.Bidirectional(convlstm.ConvLSTM3D(1, 2, (1, 2, 2), stride=(1, 1, 2)),
                                       merge_mode="ave"),
                convlstm.Bidirectional(
                    convlstm.ConvLSTM3D(2, 2, 2, "valid", return_sequences=False),
                    backward_layer=convlstm.ConvLSTM3D(2, 3, 2, "valid", go_backwards=True,
                                                       return_sequences=False)),
                convlstm.Flatten(),
            ],
            input_shape=(3, 2, 4, 6, 1),
        ),
    }


def make_keras_cases(expected: dict[str, np.ndarray]) -> None:
    """Each Keras model as .keras (deflated) and legacy .h5, with Keras' output."""
    for name, (build, sample) in CASES.items():
        rng = case_rng(name)
        model = fresh(build)
        model.set_weights(fixed_weights(rng, model))
        x = grid_uniform(rng, (BATCH, *sample), -1.0, 1.0, "float32")
        model.save(OUT_DIR / f"{name}.keras")
        deflate(OUT_DIR / f"{name}.keras")
        model.save(OUT_DIR / f"{name}.h5")
        expected[f"x_{name}"], expected[f"y_{name}"] = x, run(model, x)
        for suffix in (".keras", ".h5"):
            ours = convlstm_keras.load_keras(OUT_DIR / f"{name}{suffix}").forward(x)
            check_close(f"{name}{suffix}", ours, expected[f"y_{name}"])


def make_roundtrip(expected: dict[str, np.ndarray]) -> None:
    """Our models through save_keras into Keras: Keras must compute our outputs."""
    for name, model in roundtrip_models().items():
        rng = case_rng(name)
        model.set_weights([grid_uniform(rng, w.shape, -0.5, 0.5, "float32")
                           for w in model.get_weights()])
        x = grid_uniform(rng, (BATCH, *model.input_shape), -1.0, 1.0, "float32")
        path = OUT_DIR / f"{name}.keras"
        convlstm_keras.save_keras(model, path)
        deflate(path)
        keras.backend.clear_session()
        theirs = run(keras.saving.load_model(path), x)
        check_close(f"{name} (Keras loading our .keras)", model.forward(x), theirs)
        expected[f"x_{name}"], expected[f"y_{name}"] = x, theirs


def main() -> None:
    keras.utils.set_random_seed(20261129)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for stale in OUT_DIR.iterdir():
        stale.unlink()
    expected: dict[str, np.ndarray] = {}
    make_keras_cases(expected)
    make_roundtrip(expected)
    save_npz(OUT_DIR / "expected.npz", expected)
    for path in sorted(OUT_DIR.iterdir()):
        print(f"{path.name:40s} {path.stat().st_size:8,d} bytes")


if __name__ == "__main__":
    main()

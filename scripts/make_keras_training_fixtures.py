"""Generate the Keras 3 training fixtures in ``tests/fixtures/training/``.

Each case trains a small real Keras 3 ``Sequential`` model for a few epochs with plain SGD
(optionally with momentum), from fixed initial weights on fixed data with ``shuffle=False``,
and records the per-epoch loss Keras reports (the batch-size-weighted mean over the epoch's
batches, so a smaller last batch counts less) and the weights after training. Everything is
seeded and the zip timestamps are fixed, so rerunning the script regenerates byte-identical
files on the same machine (float32 training on another CPU may differ in the last bits).

How to run (from the repository root)::

    KERAS_BACKEND=torch /work/refenv/bin/python scripts/make_keras_training_fixtures.py

File format (``<case>.npz``, float32 arrays)
--------------------------------------------
``model``         0-d string: JSON ``{"input_shape": [...], "layers": [...]}`` (input shape
                  without the batch axis); each layer is ``{"class_name", "config"}`` with our
                  library's constructor kwargs (only the non-default ones), e.g.
                  ``ConvLSTM2D(in_channels, out_channels, ...)``, ``MaxPooling2D(stride=...)``,
                  ``TimeDistributed`` with ``{"layer": {"class_name", "config"}}``.
``fit``           0-d string: JSON ``{"epochs", "batch_size", "learning_rate", "momentum",
                  "loss"}`` (``loss`` is the Keras name, e.g. ``"mse"``).
``x``, ``y``      training data (``shuffle=False``: the batches are taken in order).
``x_val``, ``y_val``   optional validation data.
``initial_w0..``  ``model.get_weights()`` before training (Keras order, our ``set_weights``
                  order); BatchNormalization starts at gamma 1, beta 0, moving mean 0 and
                  moving variance 1, every other weight is uniform(-0.3, 0.3) on a 1/256 grid.
``final_w0..``    ``model.get_weights()`` after training.
``loss``          ``history.history["loss"]``, shape ``(epochs,)``.
``val_loss``      ``history.history["val_loss"]`` when validation data is given.

Our ``ConvLSTM2D`` defaults to ``kernel_size=3, padding="same", return_sequences=True`` (Keras':
``padding="valid", return_sequences=False``); the other layers take Keras' arguments and
defaults.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
import numpy as np
from make_keras_fixtures import grid_uniform, save_npz

OUT_DIR = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "training"
BASE_SEED = 20240604

Data = dict[str, np.ndarray]


def spec(class_name: str, **config: Any) -> dict[str, Any]:
    """One layer of the model JSON, in our library's terms."""
    return {"class_name": class_name, "config": config}


def keras_layer(layer: Mapping[str, Any]) -> keras.layers.Layer:
    """The Keras layer equivalent to one of our layer specs."""
    name, cfg = layer["class_name"], dict(layer["config"])
    if name == "ConvLSTM2D":
        cfg.pop("in_channels")
        return keras.layers.ConvLSTM2D(
            cfg.pop("out_channels"),
            cfg.pop("kernel_size", 3),
            strides=cfg.pop("stride", 1),
            padding=cfg.pop("padding", "same"),
            return_sequences=cfg.pop("return_sequences", True),
            **cfg,
        )
    if name == "MaxPooling2D":
        return keras.layers.MaxPooling2D(cfg.get("pool_size", 2), strides=cfg.get("stride"))
    if name == "TimeDistributed":
        return keras.layers.TimeDistributed(keras_layer(cfg["layer"]))
    return getattr(keras.layers, name)(**cfg)


def data_convlstm_dense(rng: np.random.Generator) -> Data:
    """Regression: 8 training and 4 validation sequences, 2 targets each."""
    return {
        "x": grid_uniform(rng, (8, 4, 6, 6, 1), -1.0, 1.0, "float32"),
        "y": grid_uniform(rng, (8, 2), -1.0, 1.0, "float32"),
        "x_val": grid_uniform(rng, (4, 4, 6, 6, 1), -1.0, 1.0, "float32"),
        "y_val": grid_uniform(rng, (4, 2), -1.0, 1.0, "float32"),
    }


def data_next_frame(rng: np.random.Generator) -> Data:
    """Next-frame prediction: 5 frames in [0, 1]; input frames 0..3, target frames 1..4."""
    frames = grid_uniform(rng, (6, 5, 6, 6, 1), 0.0, 1.0, "float32")
    return {"x": frames[:, :4].copy(), "y": frames[:, 1:].copy()}


def data_seed003(rng: np.random.Generator) -> Data:
    """Three-class classification with one-hot targets."""
    labels = rng.integers(0, 3, size=6)
    return {
        "x": grid_uniform(rng, (6, 4, 8, 8, 1), 0.0, 1.0, "float32"),
        "y": np.eye(3, dtype="float32")[labels],
    }


@dataclass(frozen=True)
class TrainingCase:
    """One training fixture: our model description, the data maker and the fit settings."""

    name: str
    input_shape: tuple[int, ...]
    layers: tuple[dict[str, Any], ...]
    data: Callable[[np.random.Generator], Data]
    loss: str
    learning_rate: float
    epochs: int
    batch_size: int
    momentum: float = 0.0


CASES: tuple[TrainingCase, ...] = (
    TrainingCase(
        "convlstm_dense",
        (4, 6, 6, 1),
        (
            spec("ConvLSTM2D", in_channels=1, out_channels=3, return_sequences=False),
            spec("Flatten"),
            spec("Dense", units=2),
        ),
        data_convlstm_dense,
        loss="mse",
        learning_rate=0.05,
        epochs=4,
        batch_size=3,
    ),
    TrainingCase(
        "next_frame",
        (4, 6, 6, 1),
        (
            spec("ConvLSTM2D", in_channels=1, out_channels=4),
            spec("BatchNormalization"),
            spec(
                "Conv3D",
                filters=1,
                kernel_size=[3, 3, 3],
                padding="same",
                activation="sigmoid",
            ),
        ),
        data_next_frame,
        loss="binary_crossentropy",
        learning_rate=0.1,
        momentum=0.9,
        epochs=3,
        batch_size=2,
    ),
    TrainingCase(
        "seed003",
        (4, 8, 8, 1),
        (
            spec(
                "TimeDistributed",
                layer=spec("Conv2D", filters=2, kernel_size=3, activation="relu"),
            ),
            spec("TimeDistributed", layer=spec("MaxPooling2D")),
            spec("ConvLSTM2D", in_channels=2, out_channels=3, return_sequences=False),
            spec("Flatten"),
            spec("Dense", units=3, activation="softmax"),
        ),
        data_seed003,
        loss="categorical_crossentropy",
        learning_rate=0.1,
        epochs=3,
        batch_size=3,
    ),
)


def initial_weights(rng: np.random.Generator, model: keras.Model) -> list[np.ndarray]:
    """uniform(-0.3, 0.3) weights; BatchNormalization at gamma 1, beta 0, mean 0, variance 1."""
    weights = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            weights += [np.ones_like(gamma), np.zeros_like(beta), np.zeros_like(mean)]
            weights.append(np.ones_like(variance))
        else:
            weights += [grid_uniform(rng, w.shape, -0.3, 0.3, "float32") for w in layer.weights]
    return weights


def make_case(case: TrainingCase) -> dict[str, np.ndarray]:
    """Build, train and collect the arrays of one training fixture."""
    rng = np.random.default_rng([BASE_SEED, zlib.crc32(case.name.encode())])
    keras.utils.set_random_seed(BASE_SEED)
    model = keras.Sequential(
        [keras.Input(case.input_shape), *(keras_layer(layer) for layer in case.layers)]
    )
    model.set_weights(initial_weights(rng, model))
    data = case.data(rng)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=case.learning_rate, momentum=case.momentum),
        loss=case.loss,
    )
    initial = model.get_weights()
    validation = (data["x_val"], data["y_val"]) if "x_val" in data else None
    history = model.fit(
        data["x"],
        data["y"],
        batch_size=case.batch_size,
        epochs=case.epochs,
        shuffle=False,
        validation_data=validation,
        verbose=0,
    )
    description = {"input_shape": list(case.input_shape), "layers": list(case.layers)}
    fit = {
        "epochs": case.epochs,
        "batch_size": case.batch_size,
        "learning_rate": case.learning_rate,
        "momentum": case.momentum,
        "loss": case.loss,
    }
    arrays = {"model": np.array(json.dumps(description)), **data}
    arrays.update({f"initial_w{i}": w for i, w in enumerate(initial)})
    arrays.update({f"final_w{i}": w for i, w in enumerate(model.get_weights())})
    for key in ("loss", "val_loss"):
        if key in history.history:
            arrays[key] = np.array(history.history[key], dtype="float32")
    arrays["fit"] = np.array(json.dumps(fit))
    return arrays


def main() -> None:
    """Regenerate every fixture and print the per-epoch losses."""
    if keras.backend.backend() != "torch":
        print(f"note: running on the {keras.backend.backend()!r} Keras backend, not torch")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for stale in OUT_DIR.glob("*.npz"):
        stale.unlink()
    for case in CASES:
        arrays = make_case(case)
        path = OUT_DIR / f"{case.name}.npz"
        save_npz(path, arrays)
        print(f"{path.name:20s} {path.stat().st_size:6d} B  loss {arrays['loss'].tolist()}")
        if "val_loss" in arrays:
            print(f"{'':29s}val_loss {arrays['val_loss'].tolist()}")
    total = sum(p.stat().st_size for p in OUT_DIR.glob("*.npz"))
    print(f"{len(CASES)} files, {total / 1024:.1f} KiB in {OUT_DIR}")


if __name__ == "__main__":
    main()

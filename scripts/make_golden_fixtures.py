"""Generate the Keras 3 golden numbers of the optimizer and loss tests (``tests/fixtures/golden/``).

``tests/test_optimizers.py`` and ``tests/test_losses.py`` compare this library with these
numbers. Everything here is fixed, so rerunning the script regenerates the same values.

How to run (from the repository root)::

    pip install torch==2.13.0 keras
    KERAS_BACKEND=torch python scripts/make_golden_fixtures.py

File format
-----------
``optimizers.npz``
    ``params_a`` (2, 2), ``params_b`` (2,): the starting float32 weights.
    ``grads_a`` (4, 2, 2), ``grads_b`` (4, 2): the gradient of each of the 4 steps.
    ``<case>`` (4, 6) float32: after step k, row k is ``[*a.ravel(), *b.ravel()]`` as Keras'
    optimizer (``KERAS_OPTIMIZERS[case]``) left them with ``optimizer.apply(grads, variables)``.

``losses.npz``
    ``<case>_true``, ``<case>_pred``: the float32 inputs; ``<case>`` (0-d float32): Keras'
    ``loss(y_true, y_pred)`` for ``KERAS_LOSSES[case]``.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
import numpy as np

OUT_DIR = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "golden"

PARAMS = {"a": [[0.5, -1.0], [1.5, 2.0]], "b": [0.25, -0.75]}
GRADS = [
    {"a": [[0.3, -0.6], [0.9, 1.2]], "b": [-0.4, 0.8]},
    {"a": [[-0.2, 0.5], [0.7, -1.1]], "b": [0.6, 0.1]},
    {"a": [[0.4, 0.3], [-0.8, 0.2]], "b": [-0.9, -0.3]},
    {"a": [[0.01, -0.02], [0.0, 0.03]], "b": [0.02, -0.01]},  # AMSGrad's maximum differs
]

KERAS_OPTIMIZERS = {
    "sgd": lambda: keras.optimizers.SGD(learning_rate=0.1),
    "sgd_momentum": lambda: keras.optimizers.SGD(learning_rate=0.1, momentum=0.9),
    "sgd_nesterov": lambda: keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True),
    "sgd_weight_decay": lambda: keras.optimizers.SGD(learning_rate=0.1, weight_decay=0.5),
    "sgd_clipnorm": lambda: keras.optimizers.SGD(learning_rate=0.1, clipnorm=0.5),
    "sgd_global_clipnorm": lambda: keras.optimizers.SGD(learning_rate=0.1, global_clipnorm=0.7),
    "sgd_clipvalue": lambda: keras.optimizers.SGD(learning_rate=0.1, clipvalue=0.25),
    "sgd_exponential_decay": lambda: keras.optimizers.SGD(
        learning_rate=keras.optimizers.schedules.ExponentialDecay(0.1, 2, 0.5)
    ),
    "rmsprop": lambda: keras.optimizers.RMSprop(learning_rate=0.01),
    "rmsprop_centered": lambda: keras.optimizers.RMSprop(learning_rate=0.01, centered=True),
    "rmsprop_momentum": lambda: keras.optimizers.RMSprop(learning_rate=0.01, momentum=0.8),
    "rmsprop_centered_momentum": lambda: keras.optimizers.RMSprop(
        learning_rate=0.01, momentum=0.5, centered=True
    ),
    "adam": lambda: keras.optimizers.Adam(learning_rate=0.01),
    "adam_amsgrad": lambda: keras.optimizers.Adam(learning_rate=0.01, beta_2=0.5, amsgrad=True),
    "adam_beta_2": lambda: keras.optimizers.Adam(learning_rate=0.01, beta_2=0.5),
    "adamw": lambda: keras.optimizers.AdamW(learning_rate=0.01, weight_decay=0.1),
}

REG_TRUE = [[0.0, 1.0, 2.0], [-1.0, 0.5, 3.0]]
REG_PRED = [[0.5, 0.8, 2.5], [-0.2, 0.1, 2.0]]
BIN_TRUE = [[0, 1, 1], [1, 0, 0]]
BIN_PRED = [[0.1, 0.8, 0.6], [0.35, 0.2, 0.9]]
CLIP_TRUE = [[1, 1, 0], [0, 1, 0]]
CLIP_PRED = [[0.0, 1.0, 0.5], [1.0, 0.3, 0.0]]
LOGITS = [[-2.0, 0.5, 3.0], [1.5, -0.3, 0.0]]
HUGE = [[1e4, -1e4, 50.0], [-1e4, 1e4, -50.0]]
CAT_TRUE = [[0, 1, 0], [0.2, 0.3, 0.5]]
CAT_PRED = [[0.2, 0.5, 0.3], [0.1, 0.1, 0.6]]  # the second row sums to 0.8
CAT_LOGITS = [[1.0, 2.0, 0.5], [-1.0, 0.0, 3.0]]

KERAS_LOSSES = {  # case: (loss, y_true, y_pred)
    "mse": (lambda: keras.losses.MeanSquaredError(), REG_TRUE, REG_PRED),
    "mae": (lambda: keras.losses.MeanAbsoluteError(), REG_TRUE, REG_PRED),
    "bce": (lambda: keras.losses.BinaryCrossentropy(), BIN_TRUE, BIN_PRED),
    "bce_clipped": (lambda: keras.losses.BinaryCrossentropy(), CLIP_TRUE, CLIP_PRED),
    "bce_logits": (lambda: keras.losses.BinaryCrossentropy(from_logits=True), BIN_TRUE, LOGITS),
    "bce_logits_huge": (lambda: keras.losses.BinaryCrossentropy(from_logits=True), BIN_TRUE, HUGE),
    "cce": (lambda: keras.losses.CategoricalCrossentropy(), CAT_TRUE, CAT_PRED),
    "cce_logits": (
        lambda: keras.losses.CategoricalCrossentropy(from_logits=True), CAT_TRUE, CAT_LOGITS
    ),
    "cce_axis_0": (
        lambda: keras.losses.CategoricalCrossentropy(axis=0),
        np.transpose(CAT_TRUE).tolist(),
        np.transpose(CAT_PRED).tolist(),
    ),
    "cce_logits_huge": (
        lambda: keras.losses.CategoricalCrossentropy(from_logits=True), CAT_TRUE, HUGE
    ),
}


def optimizer_trajectories() -> dict[str, np.ndarray]:
    """The inputs and every case's (steps, 6) trajectory."""
    entries = {f"params_{key}": np.array(value, np.float32) for key, value in PARAMS.items()}
    for key in PARAMS:
        entries[f"grads_{key}"] = np.array([step[key] for step in GRADS], np.float32)
    for name, make in KERAS_OPTIMIZERS.items():
        optimizer = make()
        variables = [keras.Variable(np.array(PARAMS[key], np.float32)) for key in PARAMS]
        rows = []
        for step in GRADS:
            grads = [keras.ops.convert_to_tensor(np.array(step[key], np.float32)) for key in PARAMS]
            optimizer.apply(grads, variables)
            values = [keras.ops.convert_to_numpy(variable) for variable in variables]
            rows.append(np.concatenate([value.ravel() for value in values]))
        entries[name] = np.array(rows, np.float32)
    return entries


def loss_values() -> dict[str, np.ndarray]:
    """The inputs and Keras' float32 value of every case."""
    entries = {}
    for name, (make, y_true, y_pred) in KERAS_LOSSES.items():
        y_true, y_pred = np.array(y_true, np.float32), np.array(y_pred, np.float32)
        value = keras.ops.convert_to_numpy(make()(y_true, y_pred))
        entries[name] = np.array(value, np.float32)
        entries[f"{name}_true"], entries[f"{name}_pred"] = y_true, y_pred
    return entries


def main() -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    print(f"Keras {keras.__version__}, backend {keras.backend.backend()}")
    for name, entries in (("optimizers", optimizer_trajectories()), ("losses", loss_values())):
        path = OUT_DIR / f"{name}.npz"
        np.savez(path, **entries)
        print(f"wrote {path} ({len(entries)} arrays)")


if __name__ == "__main__":
    main()

"""Generate the Keras 3 fixtures of the feed-forward layers in ``tests/fixtures/layers/``.

Each case builds one Keras layer with fixed weights, runs it once in inference mode and once in
training mode on a fixed input, differentiates ``sum(output_train * d_output)`` with torch
autograd, and writes one compressed ``.npz``. Everything is seeded and the zip timestamps are
fixed, so rerunning the script regenerates byte-identical files.

How to run (from the repository root)::

    KERAS_BACKEND=torch /work/refenv/bin/python scripts/make_layer_fixtures.py

File format (``<case>.npz``)
----------------------------
``class_name``    0-d string: our layer class (``convlstm.layers``), e.g. ``"Conv2D"``.
``config``        0-d string: JSON of our constructor kwargs (their names are Keras').
``x``             the input (float32, or float64 for ``dtype="float64"`` cases).
``w0, w1, ..``    the weights in Keras ``get_weights()`` order (our ``set_weights`` order).
``output``        ``layer(x, training=False)`` with those weights.
``output_train``  ``layer(x, training=True)``, called after the inference call.
``d_output``      the upstream gradient used for the backward pass.
``d_x``           d sum(output_train * d_output) / d x.
``g0, g1, ..``    the same for every weight (zeros for non-trainable weights, such as the moving
                  statistics of BatchNormalization).
``after0, ..``    the weights after the training call (BatchNormalization's moving statistics
                  move; the other layers' weights do not).

Our ``Sigmoid()`` and ``Tanh()`` are Keras' ``Activation("sigmoid")`` and ``Activation("tanh")``.
Inputs and weights are drawn on a 1/256 grid, so they are exact in float32 and float64.

float64: on every backend but TensorFlow, Keras 3's type promotion
(``keras.src.backend.common.dtypes.result_type``) turns float64 into float32, so with the torch
backend a float64 ``Dense`` rounds its matmul to float32 and a float64 ``BatchNormalization``
computes in float32 (the convolutions stay float64). The script lifts that demotion, as the
TensorFlow backend has it, so the float64 fixtures hold float64 results.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
import numpy as np
import torch
from keras.src.backend.common import dtypes as keras_dtypes
from make_keras_fixtures import save_npz

OUT_DIR = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "layers"
BASE_SEED = 20240602


@dataclass(frozen=True)
class Case:
    """One fixture: our layer class and kwargs, and the input shape (batch included)."""

    name: str
    class_name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    shape: tuple[int, ...] = (2, 5)
    dtype: str = "float32"


CASES: tuple[Case, ...] = (
    # Dense
    Case("dense_default", "Dense", {"units": 4}, (3, 5)),
    Case("dense_rank3_relu", "Dense", {"units": 3, "activation": "relu"}, (2, 4, 5)),
    Case(
        "dense_no_bias_softmax",
        "Dense",
        {"units": 4, "activation": "softmax", "use_bias": False},
        (3, 5),
    ),
    Case("dense_sigmoid_rank5", "Dense", {"units": 2, "activation": "sigmoid"}, (2, 2, 3, 2, 3)),
    Case("dense_tanh_float64", "Dense", {"units": 3, "activation": "tanh"}, (3, 4), "float64"),
    # Conv2D
    Case("conv2d_valid", "Conv2D", {"filters": 3, "kernel_size": 3}, (2, 6, 7, 2)),
    Case(
        "conv2d_same_stride2_odd",
        "Conv2D",
        {"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same"},
        (2, 7, 6, 2),
    ),
    Case(
        "conv2d_same_kernel2x4",
        "Conv2D",
        {"filters": 2, "kernel_size": (2, 4), "padding": "same"},
        (2, 5, 6, 2),
    ),
    Case(
        "conv2d_valid_stride1x2_relu",
        "Conv2D",
        {"filters": 3, "kernel_size": (3, 2), "strides": (1, 2), "activation": "relu"},
        (2, 6, 7, 2),
    ),
    Case(
        "conv2d_dilation2_same",
        "Conv2D",
        {"filters": 2, "kernel_size": 3, "dilation_rate": 2, "padding": "same"},
        (2, 7, 6, 2),
    ),
    Case(
        "conv2d_channels_first",
        "Conv2D",
        {"filters": 3, "kernel_size": 3, "padding": "same", "data_format": "channels_first"},
        (2, 2, 5, 6),
    ),
    Case(
        "conv2d_no_bias_sigmoid",
        "Conv2D",
        {"filters": 2, "kernel_size": 2, "use_bias": False, "activation": "sigmoid"},
        (2, 5, 5, 3),
    ),
    Case(
        "conv2d_float64",
        "Conv2D",
        {"filters": 3, "kernel_size": 3, "strides": 2},
        (2, 7, 7, 2),
        "float64",
    ),
    # Conv3D
    Case(
        "conv3d_next_frame_head",
        "Conv3D",
        {"filters": 1, "kernel_size": (3, 3, 3), "activation": "sigmoid", "padding": "same"},
        (2, 4, 6, 5, 3),
    ),
    Case("conv3d_valid", "Conv3D", {"filters": 2, "kernel_size": 2}, (2, 3, 4, 5, 2)),
    Case(
        "conv3d_same_stride2_odd",
        "Conv3D",
        {"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"},
        (2, 5, 7, 6, 2),
    ),
    Case(
        "conv3d_dilation_same",
        "Conv3D",
        {"filters": 2, "kernel_size": (2, 3, 3), "dilation_rate": (1, 2, 1), "padding": "same"},
        (1, 4, 6, 5, 2),
    ),
    Case(
        "conv3d_channels_first",
        "Conv3D",
        {"filters": 2, "kernel_size": 3, "data_format": "channels_first", "activation": "relu"},
        (2, 2, 4, 5, 5),
    ),
    Case(
        "conv3d_no_bias_tanh_float64",
        "Conv3D",
        {"filters": 2, "kernel_size": (1, 3, 2), "use_bias": False, "activation": "tanh"},
        (2, 3, 4, 4, 2),
        "float64",
    ),
    # BatchNormalization
    Case("bn_2d", "BatchNormalization", {}, (6, 3)),
    Case("bn_rank4", "BatchNormalization", {}, (3, 4, 5, 2)),
    Case("bn_axis1_channels_first", "BatchNormalization", {"axis": 1}, (3, 2, 4, 5)),
    Case("bn_rank5", "BatchNormalization", {"momentum": 0.9}, (2, 3, 4, 4, 3)),
    Case("bn_no_center", "BatchNormalization", {"center": False, "epsilon": 0.01}, (5, 4, 3)),
    Case("bn_no_scale", "BatchNormalization", {"scale": False}, (5, 4, 3)),
    Case("bn_float64", "BatchNormalization", {"momentum": 0.5}, (4, 3, 3), "float64"),
    # Weightless layers
    Case("flatten_channels_first", "Flatten", {"data_format": "channels_first"}, (2, 3, 4, 2)),
    Case("relu_default", "ReLU", {}, (3, 7)),
    Case(
        "relu_options",
        "ReLU",
        {"max_value": 0.55, "negative_slope": 0.1, "threshold": 0.2},
        (3, 7),
    ),
    Case("leaky_relu_default", "LeakyReLU", {}, (3, 7)),
    Case("sigmoid", "Sigmoid", {}, (3, 7)),
    Case("tanh", "Tanh", {}, (3, 7)),
    Case("activation_elu", "Activation", {"activation": "elu"}, (3, 7)),
    Case("softmax_default", "Softmax", {}, (3, 7)),
    Case("softmax_axis1", "Softmax", {"axis": 1}, (2, 4, 3)),
    # TimeDistributed
    Case(
        "time_distributed_conv2d",
        "TimeDistributed",
        {"layer": {"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": 3}}},
        (2, 3, 5, 5, 2),
    ),
    Case(
        "time_distributed_dense",
        "TimeDistributed",
        {"layer": {"class_name": "Dense", "config": {"units": 3, "activation": "tanh"}}},
        (2, 4, 5),
    ),
)


def case_rng(name: str) -> np.random.Generator:
    """A generator seeded from the case name, so cases do not depend on each other."""
    return np.random.default_rng([BASE_SEED, zlib.crc32(name.encode())])


def grid_uniform(
    rng: np.random.Generator, shape: tuple[int, ...], low: float, high: float, dtype: str
) -> np.ndarray:
    """Uniform values in [low, high) on a 1/256 grid (exact in float32 and float64)."""
    steps = rng.integers(round(low * 256), round(high * 256), size=shape)
    return (steps / 256.0).astype(dtype)


def keras_layer(class_name: str, options: Mapping[str, Any], dtype: str) -> keras.layers.Layer:
    """The Keras layer our ``class_name(**options)`` stands for."""
    if class_name == "TimeDistributed":
        inner = options["layer"]
        return keras.layers.TimeDistributed(
            keras_layer(inner["class_name"], inner["config"], dtype), dtype=dtype
        )
    if class_name in ("Sigmoid", "Tanh"):
        return keras.layers.Activation(class_name.lower(), dtype=dtype)
    return getattr(keras.layers, class_name)(**options, dtype=dtype)


def our_config(case: Case) -> dict[str, Any]:
    """Our constructor kwargs (the layers with weights take dtype)."""
    if case.class_name == "TimeDistributed":
        inner = case.options["layer"]
        return {"layer": {"class_name": inner["class_name"], "config": {**inner["config"]}}}
    weighted = case.class_name in ("Dense", "Conv2D", "Conv3D", "BatchNormalization")
    if weighted and case.dtype != "float32":
        return {**case.options, "dtype": case.dtype}
    return dict(case.options)


def weight_values(rng: np.random.Generator, layer: keras.layers.Layer, dtype: str) -> list:
    """Grid values for every weight; variances and scales stay positive."""
    values = []
    for weight in layer.weights:
        low, high = -0.5, 0.5
        if weight.name in ("moving_variance", "gamma"):
            low, high = 0.5, 1.5
        values.append(grid_uniform(rng, tuple(weight.shape), low, high, dtype))
    return values


def make_case(case: Case) -> dict[str, np.ndarray]:
    """Build, run and differentiate one Keras layer; collect the arrays of the fixture."""
    rng = case_rng(case.name)
    layer = keras_layer(case.class_name, case.options, case.dtype)
    x = grid_uniform(rng, case.shape, -1.0, 1.0, case.dtype)
    layer.build(x.shape)
    layer.set_weights(weight_values(rng, layer, case.dtype))
    arrays: dict[str, np.ndarray] = {
        "class_name": np.array(case.class_name),
        "config": np.array(json.dumps(our_config(case))),
        "x": x,
    }
    arrays.update({f"w{i}": w for i, w in enumerate(layer.get_weights())})
    arrays["output"] = keras.ops.convert_to_numpy(layer(x, training=False))

    x_tensor = torch.tensor(x, requires_grad=True)
    output_train = layer(x_tensor, training=True)
    d_output = grid_uniform(rng, tuple(output_train.shape), -1.0, 1.0, case.dtype)
    loss = (output_train * torch.tensor(d_output)).sum()
    variables = [weight.value for weight in layer.weights]
    trained = [v for v in variables if v.requires_grad]
    d_x, *trained_gradients = torch.autograd.grad(loss, [x_tensor, *trained])
    gradients = dict(zip(map(id, trained), trained_gradients, strict=True))
    arrays["output_train"] = output_train.detach().numpy()
    arrays["d_output"] = d_output
    arrays["d_x"] = d_x.numpy()
    for i, v in enumerate(variables):
        gradient = gradients.get(id(v))
        arrays[f"g{i}"] = (
            np.zeros(tuple(v.shape), case.dtype) if gradient is None else gradient.numpy()
        )
    arrays.update({f"after{i}": w for i, w in enumerate(layer.get_weights())})
    return arrays


def main() -> None:
    """Regenerate every fixture and print a listing."""
    if keras.backend.backend() != "torch":
        raise SystemExit("run with KERAS_BACKEND=torch: the gradients come from torch autograd")
    torch.manual_seed(0)
    # Keep float64 as float64 in Keras' promotion rules (see the module docstring).
    keras_dtypes.BIT64_TO_BIT32_DTYPE["float64"] = "float64"
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for stale in OUT_DIR.glob("*.npz"):
        stale.unlink()
    for case in CASES:
        arrays = make_case(case)
        path = OUT_DIR / f"{case.name}.npz"
        save_npz(path, arrays)
        shapes = f"x{arrays['x'].shape} -> {arrays['output'].shape}"
        print(f"{path.name:40s} {path.stat().st_size:6d} B  {shapes}")
    total = sum(p.stat().st_size for p in OUT_DIR.glob("*.npz"))
    print(f"{len(CASES)} files, {total / 1024:.1f} KiB in {OUT_DIR}")


if __name__ == "__main__":
    main()

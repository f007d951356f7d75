"""Generate the Keras file fixtures in ``tests/fixtures/keras_files/``.

Real Keras 3 models of several shapes are built with fixed weights, saved in every format
:func:`convlstm.keras.load_keras` reads, and run on fixed inputs; ``expected.npz`` holds the
inputs and Keras' outputs, which ``tests/test_convlstm_keras.py`` compares with ours (NumPy and h5py
only, no Keras).

How to run (from the repository root)::

    KERAS_BACKEND=torch /work/refenv/bin/python scripts/make_keras_file_fixtures.py

Files
-----
``<case>.keras``            Keras 3 ``model.save`` archives: one ConvLSTM2D; a stack with
                            MaxPooling3D and LeakyReLU; one file per ConvLSTM2D option that
                            changes the math (strides, dilation, valid padding, no bias,
                            activations incl. hard_sigmoid, go_backwards, last output only,
                            channels_first); the Keras next-frame example (BatchNormalization,
                            Conv3D, time axis None); the seed-003 classifier (TimeDistributed
                            Conv2D/MaxPooling2D, ConvLSTM2D, Flatten, Dense); a single-path
                            Functional model.
``legacy_keras3.h5``        Keras 3's legacy ``model.save("x.h5")``.
``tf_keras2.h5``            a tf.keras 2.15-style legacy file with ``recurrent_activation=
                            "hard_sigmoid"`` (Keras 2's formula). There is no tf.keras here, so
                            the script writes it with h5py following the legacy layout (root
                            attributes ``keras_version`` "2.15.0", ``backend`` "tensorflow",
                            ``model_config``; group ``model_weights`` with ``layer_names``; per
                            layer ``weight_names`` such as "conv_lstm2d/kernel:0"). Keras 3
                            computes the expected outputs with a custom activation
                            clip(0.2x + 0.5, 0, 1).
``tf_keras2_weights.h5``    the same weights as tf.keras 2's ``save_weights`` writes them, with
``tf_keras2_model.json``    the model's ``to_json()``.
``stack.weights.h5``        Keras 3 ``save_weights`` of the stacked model, with
``stack_model.json``        its ``to_json()``.
``unsupported_gru.keras``   a model with a layer this library lacks (GRU).
``branching.keras``         a Functional model with two branches joined by Add.
``roundtrip_<case>.keras``  written by OUR ``save_keras`` (this repository's ``src`` is put on
                            the path), loaded by ``keras.saving.load_model`` and run; Keras'
                            outputs are recorded.

The round trip: the Keras side is checked when this script runs. Every ``roundtrip_*.keras``
must load in Keras 3 and give our outputs (atol 1e-5, asserted here), and our ``.weights.h5``
of it must load into that Keras model with ``load_weights``. The tests then check our side:
the files load here to Keras' recorded outputs, and a fresh ``save_keras`` of the loaded model
reproduces the committed file's config and weights layout exactly, so an export change that
could break Keras shows up without Keras installed.

Size: Keras writes its archives uncompressed (ZIP_STORED), mostly HDF5 padding. Except
``convlstm_single.keras``, kept exactly as Keras wrote it, every archive is re-packed here with
its members unchanged but deflated (which Keras and ``load_keras`` read alike), about ten times
smaller. Keras writes dates and object ids into its files, so rerunning changes those bytes;
the weights, inputs and outputs are seeded and do not change.
"""

from __future__ import annotations

import json
import os
import sys
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import h5py
import keras
import numpy as np
from make_keras_fixtures import grid_uniform, save_npz

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import convlstm  # noqa: E402  (this repository's library, for the round trip)
from convlstm import keras as convlstm_keras  # noqa: E402

OUT_DIR = ROOT / "tests" / "fixtures" / "keras_files"
BASE_SEED = 20240715
BATCH = 2
TOLERANCE = 1e-5
layers = keras.layers


def keras2_hard_sigmoid(x):
    """Keras 2's hard_sigmoid, for Keras 3 to compute the tf.keras 2 file's outputs."""
    return keras.ops.clip(0.2 * x + 0.5, 0.0, 1.0)


@dataclass(frozen=True)
class Case:
    """A Keras model saved as ``<name>.keras``, run on a (BATCH, *sample) input."""

    name: str
    build: Callable[[], keras.Model]
    sample: tuple[int, ...]
    low: float = -1.0


def sequential(input_shape: tuple, *stack: keras.layers.Layer) -> keras.Model:
    return keras.Sequential([keras.Input(input_shape), *stack])


def fresh(build: Callable[[], keras.Model]) -> keras.Model:
    """Build with Keras' name counters reset, so layer names do not depend on the order."""
    keras.backend.clear_session()
    return build()


def conv_lstm(filters: int = 2, kernel: int | tuple = 3, **options) -> keras.layers.Layer:
    options.setdefault("padding", "same")
    options.setdefault("return_sequences", True)
    return layers.ConvLSTM2D(filters, kernel, **options)


def stack_model() -> keras.Model:
    """Named layers: a .keras file addresses weights by class ("layers/conv_lstm2d_1"), not
    by name ("decoder")."""
    return sequential(
        (4, 6, 6, 1),
        conv_lstm(3, name="encoder"),
        layers.MaxPooling3D((2, 2, 2)),
        conv_lstm(2, name="decoder"),
        layers.LeakyReLU(0.2),
    )


def next_frame_model() -> keras.Model:
    """Keras' next-frame example, smaller: time is None, as there."""
    return sequential(
        (None, 6, 6, 1),
        conv_lstm(4, (5, 5), activation="relu"),
        layers.BatchNormalization(),
        conv_lstm(4, (3, 3), activation="relu"),
        layers.BatchNormalization(),
        conv_lstm(4, (1, 1), activation="relu"),
        layers.Conv3D(1, (3, 3, 3), activation="sigmoid", padding="same"),
    )


def seed003_model() -> keras.Model:
    return sequential(
        (4, 8, 8, 1),
        layers.TimeDistributed(layers.Conv2D(2, 3, activation="relu")),
        layers.TimeDistributed(layers.MaxPooling2D()),
        conv_lstm(3, return_sequences=False),
        layers.Flatten(),
        layers.Dense(3, activation="softmax"),
    )


def functional_model() -> keras.Model:
    inputs = keras.Input((3, 5, 5, 1))
    x = conv_lstm(2)(inputs)
    x = layers.Dropout(0.3)(x)
    x = layers.Conv3D(2, (1, 3, 3))(x)
    x = layers.ReLU(max_value=0.5, negative_slope=0.1)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(4)(x)
    x = layers.Activation("tanh")(x)
    return keras.Model(inputs, layers.Softmax()(x))


CASES: tuple[Case, ...] = (
    Case("convlstm_single", lambda: sequential((3, 5, 5, 2), conv_lstm(3)), (3, 5, 5, 2)),
    Case("stack", stack_model, (4, 6, 6, 1)),
    Case(
        "convlstm_strides",
        lambda: sequential((3, 7, 7, 1), conv_lstm(strides=2)),
        (3, 7, 7, 1),
    ),
    Case(
        "convlstm_dilation",
        lambda: sequential((3, 7, 7, 1), conv_lstm(dilation_rate=2)),
        (3, 7, 7, 1),
    ),
    Case(
        "convlstm_valid",
        lambda: sequential((3, 6, 6, 1), conv_lstm(kernel=(2, 3), padding="valid")),
        (3, 6, 6, 1),
    ),
    Case(
        "convlstm_no_bias",
        lambda: sequential((3, 5, 5, 1), conv_lstm(use_bias=False)),
        (3, 5, 5, 1),
    ),
    Case(
        "convlstm_activations",
        lambda: sequential(
            (3, 5, 5, 1), conv_lstm(activation="relu", recurrent_activation="hard_sigmoid")
        ),
        (3, 5, 5, 1),
    ),
    Case(
        "convlstm_go_backwards",
        lambda: sequential((3, 5, 5, 1), conv_lstm(go_backwards=True)),
        (3, 5, 5, 1),
    ),
    Case(
        "convlstm_last_output",
        lambda: sequential((3, 5, 5, 1), conv_lstm(return_sequences=False)),
        (3, 5, 5, 1),
    ),
    Case(
        "convlstm_channels_first",
        lambda: sequential((3, 2, 5, 5), conv_lstm(data_format="channels_first")),
        (3, 2, 5, 5),
    ),
    Case("next_frame", next_frame_model, (3, 6, 6, 1), low=0.0),
    Case("seed003", seed003_model, (4, 8, 8, 1), low=0.0),
    Case("functional", functional_model, (3, 5, 5, 1)),
)


# ------------------------------------------------------------------------------ helpers


def case_rng(name: str) -> np.random.Generator:
    return np.random.default_rng([BASE_SEED, zlib.crc32(name.encode())])


def fixed_weights(rng: np.random.Generator, model: keras.Model) -> list[np.ndarray]:
    """uniform(-0.5, 0.5) on a 1/256 grid; BatchNormalization variances in [0.5, 1.5)."""
    weights = []
    for variable in model.weights:
        low, high = (0.5, 1.5) if "moving_variance" in variable.path else (-0.5, 0.5)
        weights.append(grid_uniform(rng, tuple(variable.shape), low, high, "float32"))
    return weights


def run(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return keras.ops.convert_to_numpy(model(x, training=False))


def check_close(what: str, ours: np.ndarray, theirs: np.ndarray) -> None:
    if ours.shape != theirs.shape or not np.allclose(ours, theirs, rtol=0, atol=TOLERANCE):
        raise AssertionError(f"{what}: our output differs from Keras' (or its shape does).")


def deflate(path: Path) -> None:
    """Re-pack a .keras archive with the same members, deflated."""
    with zipfile.ZipFile(path) as source:
        members = [(info, source.read(info.filename)) for info in source.infolist()]
    with zipfile.ZipFile(path, "w") as target:
        for info, data in members:
            entry = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            target.writestr(entry, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)


def write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value, indent=1) + "\n")


# ---------------------------------------------------------------------------- the cases


def make_keras_case(case: Case, expected: dict[str, np.ndarray]) -> None:
    """Save ``case`` as a .keras archive and record Keras' output; check that we agree."""
    rng = case_rng(case.name)
    model = fresh(case.build)
    model.set_weights(fixed_weights(rng, model))
    x = grid_uniform(rng, (BATCH, *case.sample), case.low, 1.0, "float32")
    path = OUT_DIR / f"{case.name}.keras"
    model.save(path)
    if case.name != "convlstm_single":
        deflate(path)
    expected[f"x_{case.name}"], expected[f"y_{case.name}"] = x, run(model, x)
    check_close(case.name, convlstm_keras.load_keras(path).forward(x), expected[f"y_{case.name}"])


def make_legacy_keras3(expected: dict[str, np.ndarray]) -> None:
    """Keras 3's legacy .h5: BatchNormalization's weight_names (gamma, beta, moving_mean,
    moving_variance) are not the datasets' alphabetical order."""
    name = "legacy_keras3"
    rng = case_rng(name)
    model = fresh(
        lambda: sequential(
            (3, 5, 5, 1),
            conv_lstm(3),
            layers.BatchNormalization(),
            conv_lstm(2, return_sequences=False),
            layers.Flatten(),
            layers.Dense(2),
        )
    )
    model.set_weights(fixed_weights(rng, model))
    x = grid_uniform(rng, (BATCH, 3, 5, 5, 1), -1.0, 1.0, "float32")
    model.save(OUT_DIR / f"{name}.h5")
    expected[f"x_{name}"], expected[f"y_{name}"] = x, run(model, x)


def make_weights_only(expected: dict[str, np.ndarray]) -> None:
    """Keras 3 ``save_weights`` of the stacked model and its ``to_json()``."""
    name = "stack_weights"
    rng = case_rng(name)
    model = fresh(stack_model)
    model.set_weights(fixed_weights(rng, model))
    x = grid_uniform(rng, (BATCH, 4, 6, 6, 1), -1.0, 1.0, "float32")
    model.save_weights(OUT_DIR / "stack.weights.h5")
    write_json(OUT_DIR / "stack_model.json", json.loads(model.to_json()))
    expected[f"x_{name}"], expected[f"y_{name}"] = x, run(model, x)


def tf_keras2_config(filters: int, units: int) -> dict:
    """A tf.keras 2.15 Sequential config (the layer configs as tf.keras wrote them)."""

    def initializer(class_name: str) -> dict:
        return {
            "module": "keras.initializers",
            "class_name": class_name,
            "config": {"seed": None} if class_name != "Zeros" else {},
            "registered_name": None,
        }

    def layer(class_name: str, name: str, **config) -> dict:
        return {
            "module": "keras.layers",
            "class_name": class_name,
            "config": {"name": name, "trainable": True, "dtype": "float32", **config},
            "registered_name": None,
        }

    constraints = {
        "kernel_regularizer": None,
        "bias_regularizer": None,
        "activity_regularizer": None,
        "kernel_constraint": None,
        "bias_constraint": None,
    }
    return {
        "class_name": "Sequential",
        "config": {
            "name": "sequential",
            "layers": [
                {
                    "module": "keras.layers",
                    "class_name": "InputLayer",
                    "config": {
                        "batch_input_shape": [None, 3, 6, 6, 1],
                        "dtype": "float32",
                        "sparse": False,
                        "ragged": False,
                        "name": "conv_lstm2d_input",
                    },
                    "registered_name": None,
                },
                layer(
                    "ConvLSTM2D",
                    "conv_lstm2d",
                    return_sequences=True,
                    return_state=False,
                    go_backwards=False,
                    stateful=False,
                    unroll=False,
                    time_major=False,
                    filters=filters,
                    kernel_size=[3, 3],
                    strides=[1, 1],
                    padding="same",
                    data_format="channels_last",
                    dilation_rate=[1, 1],
                    activation="tanh",
                    recurrent_activation="hard_sigmoid",
                    use_bias=True,
                    kernel_initializer=initializer("GlorotUniform"),
                    recurrent_initializer=initializer("Orthogonal"),
                    bias_initializer=initializer("Zeros"),
                    unit_forget_bias=True,
                    recurrent_regularizer=None,
                    recurrent_constraint=None,
                    dropout=0.0,
                    recurrent_dropout=0.0,
                    **constraints,
                ),
                layer(
                    "BatchNormalization",
                    "batch_normalization",
                    axis=[4],
                    momentum=0.99,
                    epsilon=0.001,
                    center=True,
                    scale=True,
                    beta_initializer=initializer("Zeros"),
                    gamma_initializer=initializer("Ones"),
                    moving_mean_initializer=initializer("Zeros"),
                    moving_variance_initializer=initializer("Ones"),
                    beta_regularizer=None,
                    gamma_regularizer=None,
                    beta_constraint=None,
                    gamma_constraint=None,
                ),
                layer("LeakyReLU", "leaky_re_lu", alpha=0.30000001192092896),
                layer(
                    "MaxPooling3D",
                    "max_pooling3d",
                    pool_size=[1, 2, 2],
                    padding="valid",
                    strides=[1, 2, 2],
                    data_format="channels_last",
                ),
                layer("Flatten", "flatten", data_format="channels_last"),
                layer(
                    "Dense",
                    "dense",
                    units=units,
                    activation="hard_sigmoid",
                    use_bias=True,
                    kernel_initializer=initializer("GlorotUniform"),
                    bias_initializer=initializer("Zeros"),
                    **constraints,
                ),
            ],
        },
    }


TF_KERAS2_WEIGHTS = (
    ("conv_lstm2d", ("kernel", "recurrent_kernel", "bias")),
    ("batch_normalization", ("gamma", "beta", "moving_mean", "moving_variance")),
    ("leaky_re_lu", ()),
    ("max_pooling3d", ()),
    ("flatten", ()),
    ("dense", ("kernel", "bias")),
)


def write_tf_keras2_weights(group: h5py.Group, weights: list[np.ndarray]) -> None:
    """tf.keras 2's ``save_weights_to_hdf5_group``: byte-string attributes, one group per
    layer, datasets under their full weight names."""
    group.attrs["layer_names"] = np.array([name.encode() for name, _ in TF_KERAS2_WEIGHTS])
    group.attrs["backend"] = b"tensorflow"
    group.attrs["keras_version"] = b"2.15.0"
    values = iter(weights)
    for layer_name, names in TF_KERAS2_WEIGHTS:
        layer_group = group.create_group(layer_name)
        weight_names = [f"{layer_name}/{name}:0".encode() for name in names]
        layer_group.attrs["weight_names"] = np.array(weight_names) if weight_names else []
        for weight_name in weight_names:
            layer_group.create_dataset(weight_name.decode(), data=next(values))
    top = group.create_group("top_level_model_weights")
    top.attrs["weight_names"] = []


def make_tf_keras2(expected: dict[str, np.ndarray]) -> None:
    """tf.keras 2.x-style files, written with h5py; Keras 3 computes the outputs with Keras 2's
    hard_sigmoid as a custom activation."""
    name = "tf_keras2"
    rng = case_rng(name)
    reference = fresh(
        lambda: sequential(
            (3, 6, 6, 1),
            conv_lstm(3, recurrent_activation=keras2_hard_sigmoid),
            layers.BatchNormalization(),
            layers.LeakyReLU(0.30000001192092896),
            layers.MaxPooling3D((1, 2, 2)),
            layers.Flatten(),
            layers.Dense(2, activation=keras2_hard_sigmoid),
        )
    )
    weights = fixed_weights(rng, reference)
    reference.set_weights(weights)
    x = grid_uniform(rng, (BATCH, 3, 6, 6, 1), -1.0, 1.0, "float32")
    expected[f"x_{name}"], expected[f"y_{name}"] = x, run(reference, x)
    config = tf_keras2_config(filters=3, units=2)
    with h5py.File(OUT_DIR / f"{name}.h5", "w") as h5:
        h5.attrs["backend"] = b"tensorflow"
        h5.attrs["keras_version"] = b"2.15.0"
        h5.attrs["model_config"] = json.dumps(config).encode()
        write_tf_keras2_weights(h5.create_group("model_weights"), weights)
    with h5py.File(OUT_DIR / f"{name}_weights.h5", "w") as h5:
        write_tf_keras2_weights(h5, weights)
    write_json(
        OUT_DIR / f"{name}_model.json",
        {**config, "keras_version": "2.15.0", "backend": "tensorflow"},
    )


def make_refusals() -> None:
    """A layer we lack, and a branching Functional model."""
    fresh(lambda: sequential((4, 3), layers.GRU(2))).save(OUT_DIR / "unsupported_gru.keras")
    keras.backend.clear_session()
    inputs = keras.Input((3, 5, 5, 1))
    left, right = conv_lstm(2)(inputs), conv_lstm(2)(inputs)
    keras.Model(inputs, layers.Add()([left, right])).save(OUT_DIR / "branching.keras")
    deflate(OUT_DIR / "unsupported_gru.keras")
    deflate(OUT_DIR / "branching.keras")


# ------------------------------------------------------------------------- the round trip


def roundtrip_models() -> dict[str, tuple[convlstm.Sequential, float]]:
    """Our models to export: name -> (model, lowest input value)."""
    return {
        "roundtrip_stack": (
            convlstm.Sequential(
                [
                    convlstm.ConvLSTM2D(1, 3, 3, padding=1, leaky_relu_slope=0.1, num_layers=2),
                    convlstm.MaxPooling3D((1, 2, 2)),
                    convlstm.BatchNormalization(),
                    convlstm.Conv3D(1, (1, 3, 3), padding="same", activation="sigmoid"),
                ],
                input_shape=(3, 6, 6, 1),
            ),
            -1.0,
        ),
        "roundtrip_seed003": (
            convlstm.Sequential(
                [
                    convlstm.TimeDistributed(convlstm.Conv2D(2, 3, activation="relu")),
                    convlstm.TimeDistributed(convlstm.MaxPooling2D(2)),
                    convlstm.ConvLSTM2D(
                        2,
                        3,
                        3,
                        "same",
                        return_sequences=False,
                        go_backwards=True,
                        recurrent_activation="hard_sigmoid",
                    ),
                    convlstm.Flatten(),
                    convlstm.Dropout(0.2),
                    convlstm.Dense(3),
                    convlstm.Sigmoid(),
                ],
                input_shape=(4, 8, 8, 1),
            ),
            0.0,
        ),
        "roundtrip_channels_first": (
            convlstm.Sequential(
                [
                    convlstm.ConvLSTM2D(
                        2, 2, 3, padding=(1, 2), stride=2, data_format="channels_first"
                    ),
                    convlstm.Flatten(),
                    convlstm.Dense(2, activation="tanh"),
                    convlstm.Softmax(),
                ],
                input_shape=(3, 2, 7, 7),
            ),
            -1.0,
        ),
    }


def make_roundtrip(expected: dict[str, np.ndarray], scratch: Path) -> None:
    """Export our models with save_keras, load them in Keras, record and check its outputs."""
    for name, (model, low) in roundtrip_models().items():
        rng = case_rng(name)
        weights = []
        for _, owner, key in model.named_params():
            span = (0.5, 1.5) if key == "moving_variance" else (-0.5, 0.5)
            weights.append(grid_uniform(rng, owner.params[key].shape, *span, "float32"))
        model.set_weights(weights)
        x = grid_uniform(rng, (BATCH, *model.input_shape), low, 1.0, "float32")
        ours = model.forward(x)
        path = OUT_DIR / f"{name}.keras"
        convlstm_keras.save_keras(model, path)
        deflate(path)
        keras.backend.clear_session()
        loaded = keras.saving.load_model(path)
        theirs = run(loaded, x)
        check_close(f"{name} (Keras loading our .keras)", ours, theirs)
        weights_path = scratch / f"{name}.weights.h5"
        convlstm_keras.save_keras(model, weights_path)
        loaded.set_weights([np.zeros_like(w) for w in loaded.get_weights()])
        loaded.load_weights(weights_path)
        check_close(f"{name} (Keras loading our .weights.h5)", ours, run(loaded, x))
        expected[f"x_{name}"], expected[f"y_{name}"] = x, theirs


def main() -> None:
    """Regenerate every fixture and print a listing."""
    import tempfile

    if keras.backend.backend() != "torch":
        print(f"note: running on the {keras.backend.backend()!r} Keras backend, not torch")
    keras.utils.set_random_seed(BASE_SEED)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for stale in OUT_DIR.iterdir():
        stale.unlink()
    expected: dict[str, np.ndarray] = {}
    for case in CASES:
        make_keras_case(case, expected)
    make_legacy_keras3(expected)
    make_weights_only(expected)
    make_tf_keras2(expected)
    make_refusals()
    with tempfile.TemporaryDirectory() as scratch:
        make_roundtrip(expected, Path(scratch))
    save_npz(OUT_DIR / "expected.npz", expected)
    total = 0
    for path in sorted(OUT_DIR.iterdir()):
        total += path.stat().st_size
        print(f"{path.name:34s} {path.stat().st_size:8,d} bytes")
    print(f"{'total':34s} {total:8,d} bytes")


if __name__ == "__main__":
    main()

"""Keras files in and out (``convlstm.keras``), against files Keras 3 wrote and the outputs it
recorded (``scripts/make_keras_file_fixtures.py``). NumPy and h5py only: Keras is not needed."""

import io
import json
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from convlstm import (
    BatchNormalization,
    Conv2D,
    Conv3D,
    ConvLSTM2D,
    Dense,
    Dropout,
    Flatten,
    LeakyReLU,
    MaxPooling2D,
    MaxPooling3D,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
    TimeDistributed,
)
from convlstm.functional import activations
from convlstm.keras import (
    HARD_SIGMOID_KERAS2,
    from_keras_config,
    load_keras,
    save_keras,
    to_keras_config,
)
from convlstm.layers.activation import Activation

FIXTURES = Path(__file__).parent / "fixtures" / "keras_files"
ATOL = 1e-5

KERAS_ARCHIVES = [
    "convlstm_single",
    "stack",
    "convlstm_strides",
    "convlstm_dilation",
    "convlstm_valid",
    "convlstm_no_bias",
    "convlstm_activations",
    "convlstm_go_backwards",
    "convlstm_last_output",
    "convlstm_channels_first",
    "next_frame",
    "seed003",
    "functional",
]
ROUNDTRIPS = ["roundtrip_stack", "roundtrip_seed003", "roundtrip_channels_first"]


@pytest.fixture(scope="module")
def expected():
    with np.load(FIXTURES / "expected.npz", allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def check_outputs(model, expected, name):
    x, y = expected[f"x_{name}"], expected[f"y_{name}"]
    output = model.forward(x)
    assert output.shape == y.shape
    np.testing.assert_allclose(output, y, rtol=0, atol=ATOL)


def layer_types(model):
    return [type(layer) for layer in model.layers]


# ------------------------------------------------------------------------------ import


@pytest.mark.parametrize("name", KERAS_ARCHIVES)
def test_keras_archive_gives_keras_outputs(name, expected):
    check_outputs(load_keras(FIXTURES / f"{name}.keras"), expected, name)


@pytest.mark.parametrize(
    ("name", "attribute", "value"),
    [
        ("convlstm_strides", "stride", (2, 2)),
        ("convlstm_dilation", "dilation", (2, 2)),
        ("convlstm_valid", "padding", "valid"),
        ("convlstm_valid", "kernel_size", (2, 3)),
        ("convlstm_no_bias", "use_bias", False),
        ("convlstm_go_backwards", "go_backwards", True),
        ("convlstm_last_output", "return_sequences", False),
        ("convlstm_channels_first", "data_format", "channels_first"),
        ("convlstm_channels_first", "in_channels", 2),
        ("convlstm_single", "out_channels", 3),
    ],
)
def test_convlstm_options_are_mapped(name, attribute, value):
    layer = load_keras(FIXTURES / f"{name}.keras").layers[0]
    assert isinstance(layer, ConvLSTM2D)
    assert getattr(layer, attribute) == value


def test_keras3_hard_sigmoid_is_keras3s():
    layer = load_keras(FIXTURES / "convlstm_activations.keras").layers[0]
    assert layer.activation is activations.ACTIVATIONS["relu"]
    assert layer.recurrent_activation is activations.ACTIVATIONS["hard_sigmoid"]


def test_stack_keeps_leaky_relu_a_layer_and_tracks_channels():
    model = load_keras(FIXTURES / "stack.keras")
    assert layer_types(model) == [ConvLSTM2D, MaxPooling3D, ConvLSTM2D, LeakyReLU]
    assert [model.layers[0].in_channels, model.layers[2].in_channels] == [1, 3]
    assert model.layers[3].negative_slope == pytest.approx(0.2)
    assert model.input_shape == (4, 6, 6, 1)


def test_next_frame_keeps_time_free(expected):
    model = load_keras(FIXTURES / "next_frame.keras")
    assert layer_types(model) == [ConvLSTM2D, BatchNormalization] * 2 + [ConvLSTM2D, Conv3D]
    assert model.input_shape == (None, 6, 6, 1)  # Keras' time axis is None: any length runs
    x = expected["x_next_frame"]
    longer = np.concatenate([x, x[:, :2]], axis=1)
    assert model.forward(longer).shape == (2, 5, 6, 6, 1)


def test_seed003_and_functional_layers():
    seed003 = load_keras(FIXTURES / "seed003.keras")
    assert layer_types(seed003) == [TimeDistributed, TimeDistributed, ConvLSTM2D, Flatten, Dense]
    assert isinstance(seed003.layers[0].layer, Conv2D)
    assert isinstance(seed003.layers[1].layer, MaxPooling2D)
    functional = load_keras(FIXTURES / "functional.keras")
    assert layer_types(functional) == [
        ConvLSTM2D, Dropout, Conv3D, ReLU, Flatten, Dense, Activation, Softmax,
    ]


def test_legacy_keras3_h5_reads_weight_names_in_order(expected):
    with h5py.File(FIXTURES / "legacy_keras3.h5", "r") as h5:
        group = h5["model_weights/batch_normalization"]
        names = [str(name) for name in group.attrs["weight_names"]]
        stored = sorted(group["sequential/batch_normalization"])
    assert [name.rsplit("/", 1)[1] for name in names] == [
        "gamma", "beta", "moving_mean", "moving_variance",
    ]
    assert stored[:2] == ["beta", "gamma"]  # the datasets' own order is not Keras'
    check_outputs(load_keras(FIXTURES / "legacy_keras3.h5"), expected, "legacy_keras3")


def test_keras3_weights_file_with_a_config(expected):
    json_path = FIXTURES / "stack_model.json"
    check_outputs(
        load_keras(FIXTURES / "stack.weights.h5", config=json_path), expected, "stack_weights"
    )
    config = json.loads(json_path.read_text())
    check_outputs(
        load_keras(FIXTURES / "stack.weights.h5", config=config), expected, "stack_weights"
    )


def stack_built_here():
    return Sequential(
        [
            ConvLSTM2D(1, 3, 3, "same"),
            MaxPooling3D(2),
            ConvLSTM2D(3, 2, 3, "same", leaky_relu_slope=0.2),
        ],
        input_shape=(4, 6, 6, 1),
    )


def test_keras3_weights_file_into_a_model_built_here(expected):
    model = stack_built_here()
    assert load_keras(FIXTURES / "stack.weights.h5", model=model) is model
    check_outputs(model, expected, "stack_weights")
    archive = stack_built_here()
    load_keras(FIXTURES / "stack.keras", model=archive)
    check_outputs(archive, expected, "stack")


def test_tf_keras2_h5_uses_keras2_hard_sigmoid(expected):
    model = load_keras(FIXTURES / "tf_keras2.h5")
    assert layer_types(model) == [
        ConvLSTM2D, BatchNormalization, LeakyReLU, MaxPooling3D, Flatten, Dense,
    ]
    assert model.layers[0].recurrent_activation.name == "hard_sigmoid_keras2"
    assert model.layers[5].activation.name == "hard_sigmoid_keras2"
    assert model.layers[1].axis == 4  # tf.keras stored axis=[4]
    assert model.layers[2].negative_slope == pytest.approx(0.3)  # from Keras 2's "alpha"
    check_outputs(model, expected, "tf_keras2")


def test_tf_keras2_weights_file_with_its_json(expected):
    model = load_keras(FIXTURES / "tf_keras2_weights.h5", config=FIXTURES / "tf_keras2_model.json")
    check_outputs(model, expected, "tf_keras2")


def test_keras_version_decides_hard_sigmoid(expected):
    config = json.loads((FIXTURES / "tf_keras2_model.json").read_text())
    config["keras_version"] = "3.0.0"
    model = load_keras(FIXTURES / "tf_keras2_weights.h5", config=config)
    assert model.layers[0].recurrent_activation is activations.ACTIVATIONS["hard_sigmoid"]
    difference = np.abs(model.forward(expected["x_tf_keras2"]) - expected["y_tf_keras2"]).max()
    assert difference > 1e-3


def test_keras2_hard_sigmoid_values_and_derivative():
    x = np.array([-4.0, -2.5, -1.0, 0.0, 1.0, 2.5, 4.0])
    y = HARD_SIGMOID_KERAS2(x)
    np.testing.assert_allclose(y, [0.0, 0.0, 0.3, 0.5, 0.7, 1.0, 1.0])
    np.testing.assert_allclose(HARD_SIGMOID_KERAS2.derivative(y), [0, 0, 0.2, 0.2, 0.2, 0, 0])
    keras3 = activations.ACTIVATIONS["hard_sigmoid"](np.array([1.0]))
    assert keras3[0] == pytest.approx(4 / 6)  # relu6(x + 3) / 6, not 0.7
    inside = np.array([-1.3, 0.4, 2.2])
    step = 1e-6
    numeric = (HARD_SIGMOID_KERAS2(inside + step) - HARD_SIGMOID_KERAS2(inside - step)) / (2 * step)
    np.testing.assert_allclose(HARD_SIGMOID_KERAS2.derivative(HARD_SIGMOID_KERAS2(inside)), numeric)


def test_chunked_legacy_attributes(tmp_path, expected):
    """Keras splits a long attribute into name0, name1, ...; both spellings read alike."""
    path = tmp_path / "chunked.h5"
    path.write_bytes((FIXTURES / "tf_keras2.h5").read_bytes())
    with h5py.File(path, "a") as h5:
        group = h5["model_weights"]
        names = group.attrs["layer_names"]
        del group.attrs["layer_names"]
        group.attrs["layer_names0"], group.attrs["layer_names1"] = names[:2], names[2:]
    check_outputs(load_keras(path), expected, "tf_keras2")


# ---------------------------------------------------------------------- export (round trip)


@pytest.mark.parametrize("name", ROUNDTRIPS)
def test_our_export_loaded_by_keras_gave_our_outputs(name, expected):
    """The script loaded these save_keras files in Keras 3 and recorded its outputs."""
    check_outputs(load_keras(FIXTURES / f"{name}.keras"), expected, name)


def archive_members(path):
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info.filename) for info in archive.infolist()}


def h5_tree(data):
    """Every group and dataset of an HDF5 file: attributes, shapes, dtypes and values."""
    tree = {}
    with h5py.File(io.BytesIO(data), "r") as h5:

        def visit(name, item):
            attrs = {key: str(value) for key, value in item.attrs.items()}
            if isinstance(item, h5py.Dataset):
                tree[name] = (attrs, item.shape, item.dtype.str, item[()].tobytes())
            else:
                tree[name] = (attrs,)

        h5.visititems(visit)
    return tree


@pytest.mark.parametrize("name", ROUNDTRIPS)
def test_save_keras_still_writes_what_keras_loaded(name, tmp_path):
    """Re-exporting the loaded model reproduces the committed file's members: the config and
    the weights layout that Keras 3 accepted when the fixture script ran."""
    committed = archive_members(FIXTURES / f"{name}.keras")
    path = save_keras(load_keras(FIXTURES / f"{name}.keras"), tmp_path / "again.keras")
    written = archive_members(path)
    assert sorted(written) == ["config.json", "metadata.json", "model.weights.h5"]
    assert json.loads(written["config.json"]) == json.loads(committed["config.json"])
    assert json.loads(written["metadata.json"]) == json.loads(committed["metadata.json"])
    assert h5_tree(written["model.weights.h5"]) == h5_tree(committed["model.weights.h5"])


def test_export_layout_follows_keras():
    model = Sequential(
        [ConvLSTM2D(1, 2, 3, padding=1, leaky_relu_slope=0.1, num_layers=2),
         TimeDistributed(Conv2D(1, 3)), Flatten(), Dense(2), Sigmoid()],
        input_shape=(3, 6, 6, 1),
    )
    config = to_keras_config(model)
    layers = config["config"]["layers"]
    assert [layer["class_name"] for layer in layers] == [
        "InputLayer", "ZeroPadding3D", "ConvLSTM2D", "LeakyReLU", "ZeroPadding3D", "ConvLSTM2D",
        "LeakyReLU", "TimeDistributed", "Flatten", "Dense", "Activation",
    ]
    first = layers[2]["config"]
    assert first["filters"] == 2 and first["strides"] == [1, 1] and first["padding"] == "valid"
    assert layers[1]["config"]["padding"] == [[0, 0], [1, 1], [1, 1]]
    assert layers[2]["build_config"]["input_shape"] == [None, 3, 8, 8, 1]
    assert layers[-1]["config"]["activation"] == "sigmoid"
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        from convlstm.keras.to_keras import export
        from convlstm.keras.weights import write_weights

        write_weights(h5, export(model, with_config=False)[1])
    tree = h5_tree(buffer.getvalue())
    assert tree["layers/conv_lstm2d_1/cell/vars/1"][1] == (3, 3, 2, 8)
    assert tree["layers/time_distributed/layer/vars/0"][1] == (3, 3, 2, 1)
    assert tree["layers/leaky_re_lu_1/vars"][0] == {"name": "leaky_re_lu_1"}


def our_models():
    return {
        "stack": Sequential(
            [ConvLSTM2D(1, 3, 3, padding=(1, 0), stride=2, num_layers=2, leaky_relu_slope=0.3,
                        seed=0),
             MaxPooling3D((1, 2, 1), stride=1), BatchNormalization(), Conv3D(1, (2, 2, 1), seed=1)],
            input_shape=(3, 11, 11, 1),
        ),
        "classifier": Sequential(
            [TimeDistributed(Conv2D(2, 3, activation="relu", seed=0)),
             TimeDistributed(MaxPooling2D()), ConvLSTM2D(2, 2, 3, go_backwards=True, seed=1,
                                                         return_sequences=False),
             Flatten(), Dropout(0.5), Dense(3, seed=2), Tanh(), ReLU(max_value=0.5), Softmax()],
            input_shape=(3, 8, 8, 1),
        ),
        "channels_first": Sequential(
            [ConvLSTM2D(2, 2, (2, 3), padding=(2, 1), data_format="channels_first",
                        dilation=2, seed=3),
             Flatten("channels_first"), Dense(2, activation="sigmoid", seed=4)],
            input_shape=(2, 2, 6, 6),
        ),
        "float64": Sequential(
            [ConvLSTM2D(1, 2, 3, dtype="float64", seed=5), LeakyReLU(0.1)],
            input_shape=(2, 5, 5, 1),
        ),
    }


@pytest.mark.parametrize("name", sorted(our_models()))
def test_round_trip_here(name, tmp_path):
    model = our_models()[name]
    x = np.random.default_rng(0).uniform(-1, 1, (2, *model.input_shape))
    loaded = load_keras(save_keras(model, tmp_path / "model.keras"))
    np.testing.assert_allclose(loaded.forward(x), model.forward(x), rtol=0, atol=1e-6)
    assert [w.dtype for w in loaded.get_weights()] == [w.dtype for w in model.get_weights()]
    fresh = our_models()[name]
    load_keras(save_keras(model, tmp_path / "model.weights.h5"), model=fresh)
    for ours, theirs in zip(fresh.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(ours, theirs)


def test_from_keras_config_builds_the_model():
    model = from_keras_config((FIXTURES / "stack_model.json").read_text())
    assert layer_types(model) == [ConvLSTM2D, MaxPooling3D, ConvLSTM2D, LeakyReLU]
    exported = to_keras_config(stack_built_here())
    rebuilt = from_keras_config(exported)
    assert layer_types(rebuilt) == [ConvLSTM2D, MaxPooling3D, ConvLSTM2D, LeakyReLU]


def test_keras2_functional_config_and_a_single_layer():
    """tf.keras 2 Functional configs list inbound nodes as [[name, node, tensor, kwargs]]."""
    functional = {
        "class_name": "Functional",
        "config": {
            "name": "model",
            "layers": [
                {"class_name": "InputLayer", "name": "input_1", "inbound_nodes": [],
                 "config": {"batch_input_shape": [None, 3, 5, 5, 1], "name": "input_1"}},
                {"class_name": "ConvLSTM2D", "name": "conv_lstm2d",
                 "inbound_nodes": [[["input_1", 0, 0, {}]]],
                 "config": {"name": "conv_lstm2d", "filters": 2, "kernel_size": [3, 3],
                            "activation": None}},
                {"class_name": "Flatten", "name": "flatten",
                 "inbound_nodes": [[["conv_lstm2d", 0, 0, {}]]], "config": {"name": "flatten"}},
            ],
            "input_layers": [["input_1", 0, 0]],
            "output_layers": [["flatten", 0, 0]],
        },
    }
    model = from_keras_config(functional, keras_version="2.15.0")
    assert layer_types(model) == [ConvLSTM2D, Flatten]
    convlstm = model.layers[0]  # Keras 2's defaults where a config leaves keys out
    assert convlstm.recurrent_activation.name == "hard_sigmoid_keras2"
    assert (convlstm.return_sequences, convlstm.padding) == (False, "valid")
    assert convlstm.activation.name == "linear"  # None is Keras' "linear"
    single = from_keras_config({"class_name": "Dense", "config": {"units": 3},
                                "build_config": {"input_shape": [None, 4]}})
    assert layer_types(single) == [Dense] and single.input_shape == (4,)
    assert single.forward(np.ones((2, 4))).shape == (2, 3)


# --------------------------------------------------------------------------- refusals


def test_layer_we_lack_is_named_with_the_supported_ones():
    with pytest.raises(ValueError, match=r"unsupported_gru.keras': layer 'gru' \(GRU\) is not "
                                         r"supported by this library; supported layers: "
                                         r"Activation, BatchNormalization, Bidirectional, "
                                         r"Conv2D, .*, "
                                         r"ZeroPadding3D"):
        load_keras(FIXTURES / "unsupported_gru.keras")


def keras_sequential(*layers, input_shape=(3, 5, 5, 1)):
    return {
        "class_name": "Sequential",
        "config": {
            "name": "sequential",
            "layers": [
                {"class_name": "InputLayer", "config": {"batch_shape": [None, *input_shape]}},
                *({"class_name": name, "config": {"name": name.lower(), **config}}
                  for name, config in layers),
            ],
        },
    }


def test_conv2d_transpose_is_refused():
    spec = keras_sequential(("Conv2DTranspose", {"filters": 2, "kernel_size": 3}),
                            input_shape=(5, 5, 1))
    with pytest.raises(ValueError, match=r"layer 'conv2dtranspose' \(Conv2DTranspose\) is not "
                                         r"supported"):
        from_keras_config(spec)


def test_branching_model_is_refused():
    with pytest.raises(ValueError, match=r"branching.keras': .*the model branches, and only "
                                         r"single-path models can be loaded"):
        load_keras(FIXTURES / "branching.keras")


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ((("ZeroPadding3D", {"padding": [[0, 0], [1, 1], [1, 1]]}), ("Flatten", {})),
         r"ZeroPadding3D is supported only right before a ConvLSTM2D .* before Flatten"),
        ((("ZeroPadding3D", {"padding": [[1, 1], [1, 1], [1, 1]]}),
          ("ConvLSTM2D", {"filters": 2, "kernel_size": 3, "padding": "valid"})),
         r"got padding=\[\[1, 1\], \[1, 1\], \[1, 1\]\] before ConvLSTM2D"),
        ((("ZeroPadding3D", {"padding": [[0, 0], [1, 1], [1, 1]]}),
          ("ConvLSTM2D", {"filters": 2, "kernel_size": 3, "padding": "same"})),
         r"ZeroPadding3D is supported only right before a ConvLSTM2D with padding='valid'"),
        ((("Conv3D", {"filters": 2, "kernel_size": 3, "groups": 2}),),
         r"layer 'conv3d' \(Conv3D\): groups=2 is not supported; expected groups=1"),
        ((("Dense", {"units": 2, "dtype": "mixed_float16"}),),
         r"layer 'dense' \(Dense\): dtype policy 'mixed_float16' is not supported"),
        ((("ConvLSTM2D", {"filters": 2, "kernel_size": 3, "activation": "gelu"}),),
         r"layer 'convlstm2d' \(ConvLSTM2D\): ConvLSTM2D: unknown activation 'gelu'"),
        ((("ConvLSTM2D", {"filters": 2, "return_state": True}),),
         r"layer 'convlstm2d' \(ConvLSTM2D\): Sequential.add: ConvLSTM2D with return_state"),
        ((("Flatten", {}), ("ConvLSTM2D", {"filters": 2})),
         r"layer 'convlstm2d' \(ConvLSTM2D\): expected an input of shape \(batch, time, height, "
         r"width, channels\)"),
    ],
)
def test_config_refusals(layers, message):
    with pytest.raises(ValueError, match=message):
        from_keras_config(keras_sequential(*layers))


def test_weights_on_an_unknown_axis_are_refused():
    spec = keras_sequential(("Flatten", {}), ("Dense", {"units": 2}), input_shape=(None, 4))
    with pytest.raises(ValueError, match=r"layer 'dense' \(Dense\): its weights depend on an "
                                         r"axis whose size is unknown \(None\) in its input "
                                         r"shape \(None, None\)"):
        from_keras_config(spec)


def test_malformed_config_is_refused():
    spec = {"class_name": "Functional", "config": {"layers": [{"class_name": "Dense"}],
                                                   "input_layers": [], "output_layers": []}}
    with pytest.raises(ValueError, match=r"from_keras_config: the Keras config is malformed "
                                         r"\(KeyError: 'config'\)"):
        from_keras_config(spec)


def test_config_without_input_shape_is_refused():
    spec = keras_sequential(("Dense", {"units": 2}))
    spec["config"]["layers"].pop(0)
    with pytest.raises(ValueError, match="the model's input shape is not recorded"):
        from_keras_config(spec)


def test_multi_input_functional_is_refused():
    spec = {"class_name": "Functional", "config": {
        "layers": [], "input_layers": [["a", 0, 0], ["b", 0, 0]], "output_layers": ["c", 0, 0]}}
    with pytest.raises(ValueError, match=r"has 2 inputs and 1 outputs; only single-path"):
        from_keras_config(spec)


# ------------------------------------------------------------------------- bad files


def rewrite_archive(source, target, replace=None, drop=()):
    members = archive_members(source)
    for name in drop:
        del members[name]
    members.update(replace or {})
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return target


def edit_weights(source, target, edit):
    buffer = io.BytesIO(archive_members(source)["model.weights.h5"])
    with h5py.File(buffer, "a") as h5:
        edit(h5)
    return rewrite_archive(source, target, {"model.weights.h5": buffer.getvalue()})


def test_truncated_zip(tmp_path):
    data = (FIXTURES / "stack.keras").read_bytes()
    path = tmp_path / "truncated.keras"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"truncated.keras' is not a readable .keras archive "
                                         r"\(a truncated or corrupted zip"):
        load_keras(path)


@pytest.mark.parametrize(
    ("suffix", "message"),
    [
        (".keras", r"junk.keras' is not a readable .keras archive"),
        (".h5", r"junk.h5' is not a readable HDF5 file"),
        (".bin", r"junk.bin' is not a Keras file: expected a .keras zip archive or an HDF5"),
    ],
)
def test_random_bytes(tmp_path, suffix, message):
    path = tmp_path / f"junk{suffix}"
    path.write_bytes(np.random.default_rng(0).bytes(700))
    with pytest.raises(ValueError, match=message):
        load_keras(path)


def test_archive_without_config(tmp_path):
    path = rewrite_archive(FIXTURES / "stack.keras", tmp_path / "bare.keras", drop=["config.json"])
    with pytest.raises(ValueError, match=r"bare.keras' has no config.json; a Keras 3 .keras "
                                         r"archive holds config.json"):
        load_keras(path)


def test_archive_without_weights(tmp_path):
    path = rewrite_archive(FIXTURES / "stack.keras", tmp_path / "empty.keras",
                           drop=["model.weights.h5"])
    with pytest.raises(ValueError, match=r"empty.keras' has no model.weights.h5; missing weights"):
        load_keras(path)


def test_archive_with_bad_json_or_weights(tmp_path):
    path = rewrite_archive(FIXTURES / "stack.keras", tmp_path / "json.keras",
                           {"config.json": b"{not json"})
    with pytest.raises(ValueError, match=r"json.keras': config.json is not valid JSON"):
        load_keras(path)
    path = rewrite_archive(FIXTURES / "stack.keras", tmp_path / "h5.keras",
                           {"model.weights.h5": b"\x00" * 300})
    with pytest.raises(ValueError, match=r"h5.keras' \(model.weights.h5\) is not a readable HDF5"):
        load_keras(path)


def test_missing_layer_weights(tmp_path):
    def drop_layer(h5):
        del h5["layers/conv_lstm2d_1"]

    path = edit_weights(FIXTURES / "stack.keras", tmp_path / "missing.keras", drop_layer)
    with pytest.raises(ValueError, match=r"missing.keras': the file has no weights for layer "
                                         r"'decoder' \(ConvLSTM2D\): expected the group "
                                         r"'layers/conv_lstm2d_1'; missing weights"):
        load_keras(path)


def test_missing_one_weight(tmp_path):
    def drop_bias(h5):
        del h5["layers/conv_lstm2d/cell/vars/2"]

    path = edit_weights(FIXTURES / "stack.keras", tmp_path / "bias.keras", drop_bias)
    with pytest.raises(ValueError, match=r"layer 'encoder' \(ConvLSTM2D\) has 2 weights in "
                                         r"the file .*; the layer here has 3 \(kernel, "
                                         r"recurrent_kernel, bias\)"):
        load_keras(path)


def test_wrong_shape_names_the_weight_and_both_shapes(tmp_path):
    def reshape_kernel(h5):
        del h5["layers/conv_lstm2d/cell/vars/0"]
        h5["layers/conv_lstm2d/cell/vars"].create_dataset("0", data=np.zeros((3, 3, 1, 8)))

    path = edit_weights(FIXTURES / "stack.keras", tmp_path / "shape.keras", reshape_kernel)
    with pytest.raises(ValueError, match=r"shape.keras': layer 'encoder' \(ConvLSTM2D\): "
                                         r"weight 'layers/conv_lstm2d/cell/vars/0' has shape "
                                         r"\(3, 3, 1, 8\) in the file; the layer's kernel has "
                                         r"shape \(3, 3, 1, 12\)"):
        load_keras(path)


def test_wrong_shape_in_a_legacy_file(tmp_path):
    path = tmp_path / "legacy.h5"
    path.write_bytes((FIXTURES / "tf_keras2.h5").read_bytes())
    with h5py.File(path, "a") as h5:
        del h5["model_weights/dense/dense/bias:0"]
        h5["model_weights/dense/dense"].create_dataset("bias:0", data=np.zeros(5, "float32"))
    with pytest.raises(ValueError, match=r"legacy.h5': layer 'dense' \(Dense\): weight "
                                         r"'dense/bias:0' has shape \(5,\) in the file; the "
                                         r"layer's bias has shape \(2,\)"):
        load_keras(path)


def test_failed_load_leaves_the_model_unchanged(tmp_path):
    def reshape_last(h5):
        del h5["layers/conv_lstm2d_1/cell/vars/2"]
        h5["layers/conv_lstm2d_1/cell/vars"].create_dataset("2", data=np.zeros(3))

    path = edit_weights(FIXTURES / "stack.keras", tmp_path / "late.keras", reshape_last)
    model = stack_built_here()
    before = model.get_weights()
    with pytest.raises(ValueError, match="weight 'layers/conv_lstm2d_1/cell/vars/2' has shape"):
        load_keras(path, model=model)
    for now, then in zip(model.get_weights(), before):
        np.testing.assert_array_equal(now, then)


def test_model_that_does_not_fit_the_file():
    with pytest.raises(ValueError, match=r"the file has weights for 4 layers \(conv_lstm2d, "
                                         r"batch_normalization, conv_lstm2d_1, dense\); the model "
                                         r"has 3 layers with weights \(conv_lstm2d, "
                                         r"batch_normalization, conv_lstm2d_1\)"):
        load_keras(FIXTURES / "legacy_keras3.h5", model=Sequential(
            [ConvLSTM2D(1, 3, 3), BatchNormalization(), ConvLSTM2D(3, 2, 3)],
            input_shape=(3, 5, 5, 1)))
    with pytest.raises(ValueError, match=r"stack.weights.h5': layer 'conv_lstm2d' "
                                         r"\(ConvLSTM2D\): weight "
                                         r"'layers/conv_lstm2d/cell/vars/0' has shape "
                                         r"\(3, 3, 1, 12\) in the file; the layer's kernel has "
                                         r"shape \(3, 3, 1, 8\)"):
        load_keras(FIXTURES / "stack.weights.h5", model=Sequential(
            [ConvLSTM2D(1, 2, 3)], input_shape=(4, 6, 6, 1)))


def test_weights_only_files_need_a_model():
    for name in ("stack.weights.h5", "tf_keras2_weights.h5"):
        with pytest.raises(ValueError, match=rf"{name}' holds weights only, no model config; "
                                             r"pass model="):
            load_keras(FIXTURES / name)


def test_hdf5_file_that_is_not_keras(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("data", data=np.zeros(3))
    with pytest.raises(ValueError, match=r"other.h5' is an HDF5 file but not a Keras one"):
        load_keras(path)


def test_argument_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"load_keras: no such file .*nothing.keras"):
        load_keras(tmp_path / "nothing.keras")
    with pytest.raises(ValueError, match="pass model= or config=, not both"):
        load_keras(FIXTURES / "stack.weights.h5", model=stack_built_here(), config={})
    with pytest.raises(TypeError, match="expected model to be a convlstm Sequential; got Dense"):
        load_keras(FIXTURES / "stack.weights.h5", model=Dense(2))


def test_without_h5py(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r"load_keras: .*needs h5py.*pip install h5py "
                                          r"\(from a clone: pip install -e '\.\[keras\]'\)"):
        load_keras(FIXTURES / "stack.keras")
    with pytest.raises(ImportError, match=r"save_keras: .*pip install h5py"):
        save_keras(stack_built_here(), tmp_path / "x.keras")


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: Sequential([ConvLSTM2D(1, 2, stateful=True)], input_shape=(2, 4, 4, 1)),
         ValueError, r"save_keras: ConvLSTM2D with stateful=True does not export"),
        (lambda: Sequential([ConvLSTM2D(1, 2, recurrent_activation=HARD_SIGMOID_KERAS2)],
                            input_shape=(2, 4, 4, 1)),
         ValueError, r"save_keras: ConvLSTM2D uses Keras 2's hard_sigmoid"),
        (lambda: Sequential([Dense(2)]), ValueError,
         r"save_keras: the model's input shape is unknown"),
        (lambda: Sequential([Sequential([Dense(2)])], input_shape=(3,)), ValueError,
         r"save_keras: Sequential has no Keras counterpart here; the layers that export are "
         r"Activation, BatchNormalization"),
        (lambda: Sequential([Dense(2, activation=np.tanh)], input_shape=(3,)), ValueError,
         r"save_keras: Dense.get_config: activation is the callable"),
        (lambda: Dense(2), TypeError, r"save_keras: expected a convlstm Sequential; got Dense"),
    ],
)
def test_export_refusals(make, error, message, tmp_path):
    with pytest.raises(error, match=message):
        save_keras(make(), tmp_path / "model.keras")


def test_export_path_must_name_a_keras_format(tmp_path):
    with pytest.raises(ValueError, match=r"expected a path ending in .keras or .weights.h5; got "
                                         r".*model.h5"):
        save_keras(stack_built_here(), tmp_path / "model.h5")

"""Keras files with ConvLSTM1D/3D and Bidirectional load here to Keras' outputs (``.keras`` and
legacy ``.h5``), and our exports of them are what Keras 3 loaded (fixtures made by
``scripts/make_keras_convrnn_file_fixtures.py``); export refusals for what Keras lacks."""

import json
from pathlib import Path

import numpy as np
import pytest
from test_keras_io import archive_members, check_outputs, h5_tree

from convlstm import (
    Bidirectional,
    ConvLSTM1D,
    ConvLSTM2D,
    ConvLSTM3D,
    MaxPooling1D,
    Sequential,
)
from convlstm.keras import load_keras, save_keras, to_keras_config

FIXTURES = Path(__file__).parent / "fixtures" / "convrnn_files"
KERAS_MODELS = ["conv_lstm1d", "conv_lstm3d", "conv_lstm3d_channels_first", "bidirectional",
                "bidirectional_backward_layer"]
ROUNDTRIPS = ["roundtrip_conv_lstm1d", "roundtrip_conv_lstm3d", "roundtrip_bidirectional"]


@pytest.fixture(scope="module")
def expected():
    with np.load(FIXTURES / "expected.npz", allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
@pytest.mark.parametrize("name", KERAS_MODELS)
def test_keras_files_give_keras_outputs(name, suffix, expected):
    check_outputs(load_keras(FIXTURES / f"{name}{suffix}"), expected, name)


def test_imported_layers_and_options():
    model = load_keras(FIXTURES / "conv_lstm1d.keras")
    first, pooling, second = model.layers[:3]
    assert type(first) is ConvLSTM1D and first.go_backwards and first.kernel_size == (3,)
    assert type(pooling.layer) is MaxPooling1D and pooling.layer.pool_size == (2,)
    assert (second.stride, second.padding, second.return_sequences) == ((2,), "valid", False)
    volume = load_keras(FIXTURES / "conv_lstm3d.h5").layers
    assert type(volume[0]) is ConvLSTM3D and volume[0].kernel_size == (1, 3, 3)
    assert volume[1].dilation == (1, 1, 2) and not volume[1].use_bias


def test_imported_bidirectional_keeps_its_directions_apart():
    # A .keras file stores backward_layer before forward_layer; a legacy .h5 the other way.
    first, second = load_keras(FIXTURES / "bidirectional.keras").layers[:2]
    assert type(first) is Bidirectional and first.merge_mode == "concat"
    assert second.merge_mode == "sum" and second.forward_layer.padding == "valid"
    given = load_keras(FIXTURES / "bidirectional_backward_layer.h5").layers[0]
    assert given.merge_mode == "mul" and "backward_layer" in given.get_config()
    assert given.backward_layer.kernel_size == (2,) and given.forward_layer.kernel_size == (3,)


@pytest.mark.parametrize("name", ROUNDTRIPS)
def test_our_export_loaded_by_keras_gave_our_outputs(name, expected):
    check_outputs(load_keras(FIXTURES / f"{name}.keras"), expected, name)


@pytest.mark.parametrize("name", ROUNDTRIPS + KERAS_MODELS)
def test_save_keras_still_writes_what_keras_loaded(name, tmp_path):
    committed = archive_members(FIXTURES / f"{name}.keras")
    written = archive_members(save_keras(load_keras(FIXTURES / f"{name}.keras"),
                                         tmp_path / "again.keras"))
    ours = json.loads(written["config.json"])
    if name in ROUNDTRIPS:  # ours, byte for byte in meaning
        assert ours == json.loads(committed["config.json"])
        assert h5_tree(written["model.weights.h5"]) == h5_tree(committed["model.weights.h5"])
    classes = [layer["class_name"] for layer in ours["config"]["layers"]]
    theirs = [layer["class_name"]
              for layer in json.loads(committed["config.json"])["config"]["layers"]]
    assert classes == theirs


def test_export_refuses_what_keras_lacks():
    with pytest.raises(ValueError, match=r"^save_keras: ConvLSTM2D with peephole=True has no "
                                         r"Keras counterpart"):
        to_keras_config(Sequential([ConvLSTM2D(1, 2, peephole=True)],
                                   input_shape=(3, 4, 4, 1)))
    with pytest.raises(ValueError, match=r"^save_keras: ConvLSTM1D with padding=\(1,\) does "
                                         r"not export"):
        to_keras_config(Sequential([ConvLSTM1D(1, 2, padding=1)], input_shape=(3, 4, 1)))
    with pytest.raises(ValueError, match=r"^save_keras: a Bidirectional around a ConvLSTM "
                                         r"stack .*num_layers=2"):
        to_keras_config(Sequential([Bidirectional(ConvLSTM1D(1, 2, num_layers=2))],
                                   input_shape=(3, 4, 1)))
    config = to_keras_config(Sequential([ConvLSTM3D(1, 2, padding=0)],
                                        input_shape=(3, 4, 4, 4, 1)))
    layers = config["config"]["layers"]
    assert layers[1]["class_name"] == "ConvLSTM3D" and layers[1]["config"]["padding"] == "valid"

"""Hostile files and configs: each is refused by name (the file, what is wrong, the limit or the
value expected and the one given), quickly, before any large allocation, and a killed save
never leaves a half-written file under the final name."""

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

import convlstm
from convlstm import ConvLSTM2D, Dense, Flatten, Sequential, limits, load
from convlstm.layers.wrappers import TimeDistributed
from convlstm.losses import MeanSquaredError
from convlstm.optimizers import Adam
from convlstm.registry import deserialize

SOURCE = Path(__file__).resolve().parents[1] / "src"


def _small_model():
    return Sequential([ConvLSTM2D(1, 2, 3, "same", seed=0), Flatten(), Dense(1, seed=1)],
                      input_shape=(2, 4, 4, 1))


def _native(tmp_path, name, config=None, **entries):
    """A native file whose entries are the format tag, version 1 and ``config`` (as JSON),
    with ``entries`` laid over them (None removes one)."""
    base = {"format": np.array("numpy-convlstm"), "version": np.array(1)}
    if config is not None:
        base["config"] = np.array(config if isinstance(config, str) else json.dumps(config))
    base.update(entries)
    path = tmp_path / f"{name}.npz"
    np.savez(path, **{key: value for key, value in base.items() if value is not None})
    return path


def _sequential(layers, input_shape=None):
    return {"class_name": "Sequential", "config": {"layers": layers, "input_shape": input_shape}}


def _nested(depth):
    """The JSON text of ``depth`` TimeDistributed wrappers around a Dense (too deep to dump)."""
    return ('{"class_name": "TimeDistributed", "config": {"layer": ' * depth
            + '{"class_name": "Dense", "config": {"units": 1}}' + "}}" * depth)


def _crafted_weight(tmp_path, shape, descr="<f4"):
    """A native file whose one weight's .npy header declares ``shape`` over 16 bytes of data."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for key, value in {"format": np.array("numpy-convlstm"), "version": np.array(1),
                           "config": np.array(json.dumps(_sequential([])))}.items():
            member = io.BytesIO()
            np.save(member, value)
            archive.writestr(f"{key}.npy", member.getvalue())
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, {"descr": descr, "fortran_order": False, "shape": shape})
        archive.writestr("weight_0000.npy", header.getvalue() + bytes(16))
    path = tmp_path / "crafted.npz"
    path.write_bytes(buffer.getvalue())
    return path


LAYER = {"class_name": "Dense", "config": {"units": 1}}
CONVLSTM = {"class_name": "ConvLSTM2D", "config": {"in_channels": 1, "out_channels": 1}}


def _convlstm(**config):
    return {"class_name": "ConvLSTM2D", "config": {**CONVLSTM["config"], **config}}


NATIVE_FILES = [
    # (name, make the file, regex after the file's name)
    ("a list", lambda t: _native(t, "list", [1, 2]), r"expected a dict with keys 'class_name'"),
    ("no layers key", lambda t: _native(t, "td", {"class_name": "TimeDistributed", "config": {}}),
     r"TimeDistributed.from_config: the config lacks the required \['layer'\]"),
    ("an unknown key", lambda t: _native(t, "key", _sequential([{"class_name": "Dense",
                                                                 "config": {"units": 1, "x": 2}}])),
     r"Dense.from_config: unknown config keys \['x'\]; expected some of \['units'"),
    ("layers of the wrong type", lambda t: _native(t, "int", _sequential(5)),
     r"Sequential.from_config: expected layers to be a list of layer configs; got 5"),
    ("a config that is a list", lambda t: _native(
        t, "bi", {"class_name": "Bidirectional", "config": [1]}),
     r"Bidirectional.from_config: expected config to be a dict with string keys; got list"),
    ("an input shape of text", lambda t: _native(t, "shape", _sequential([LAYER], "abc")),
     r"expected input_shape to be a list of positive ints \(or None\); got 'abc'"),
    ("an unknown class", lambda t: _native(t, "class", _sequential([{"class_name": "GRU",
                                                                     "config": {}}])),
     r"unknown layer class 'GRU'; expected one of \["),
    ("nesting 5000 deep", lambda t: _native(t, "deep", _nested(5000)),
     r"the model config nests 10002 levels deep; expected at most MAX_CONFIG_DEPTH = 100"),
    ("20,000 layers", lambda t: _native(t, "many", _sequential([{"class_name": "Flatten",
                                                                 "config": {}}] * 20_000)),
     r"describes more than MAX_CONFIG_OBJECTS = 10,000 layers"),
    ("a million stacked cells", lambda t: _native(t, "cells", _sequential(
        [_convlstm(num_layers=10**6)])),
     r"layer 'ConvLSTM2D' has num_layers = 1000000; expected at most MAX_STACKED_CELLS = 1,000"),
    ("a key given twice", lambda t: _native(
        t, "twice", json.dumps(_sequential([LAYER]))[:-1] + ', "class_name": "Dense"}'),
     r"the model config is refused: it repeats the key 'class_name' in one object"),
    ("an integer of 5,000 digits", lambda t: _native(
        t, "digits", json.dumps(_sequential([LAYER]))[:-1] + ', "x": ' + "9" * 5000 + "}"),
     r"the model config is refused: Exceeds the limit \(4300 digits\)"),
    ("an integer beyond 256 bits", lambda t: _native(t, "bits", _sequential(
        [_convlstm(kernel_size=[10**2000, 10**2000])])),
     r"the model config holds an integer of 6,644 bits; expected at most MAX_INTEGER_BITS = "
     r"256"),
    ("terabytes of filters", lambda t: _native(t, "filters", _sequential(
        [_convlstm(in_channels=1000, out_channels=100_000, kernel_size=9)])),
     r"a weight of shape \(9, 9, 1000, 400000\) has 32,400,000,000 elements; expected at most "
     r"MAX_WEIGHT_ELEMENTS = 268,435,456"),
    ("a terabyte input shape", lambda t: _native(t, "input", _sequential([LAYER], [10**12]))
     , r"a weight of shape \(1000000000000, 1\) has 1,000,000,000,000 elements"),
    ("a weight header of 10^12 elements", lambda t: _crafted_weight(t, (10**6, 10**6)),
     r"weight_0000 of shape \(1000000, 1000000\) has 1,000,000,000,000 elements; expected at "
     r"most MAX_WEIGHT_ELEMENTS"),
    ("a header promising more data", lambda t: _crafted_weight(t, (100,)),
     r"weight_0000 is truncated or corrupted \(its header does not match its size\)"),
    ("an object array", lambda t: _crafted_weight(t, (2,), "|O"),
     r"weight_0000 is an object array, which is never unpickled"),
    ("no version", lambda t: _native(t, "noversion", _sequential([]), version=None),
     r"has no integer format version; expected an integer 1 to 1; got none"),
    ("a text version", lambda t: _native(t, "text", _sequential([]), version=np.array("1")),
     r"has no integer format version; expected an integer 1 to 1; got <U1"),
    ("a float version", lambda t: _native(t, "float", _sequential([]), version=np.array(1.0)),
     r"has no integer format version; expected an integer 1 to 1; got float64"),
    ("a future version", lambda t: _native(t, "future", _sequential([]), version=np.array(7)),
     r"has format version 7; this library reads 1 to 1; upgrade numpy-convlstm"),
    ("no config", lambda t: _native(t, "noconfig"), r"has no config text"),
    ("invalid JSON", lambda t: _native(t, "json", "{"), r"the model config is not valid JSON"),
    ("weights that do not fit", lambda t: _native(t, "weights", _sequential([]),
                                                  weight_0000=np.zeros(3)),
     r"has weights that do not fit its config: Sequential.set_weights: expected 0 weights"),
    ("a folder", lambda t: t, r" is a folder; expected a model file"),
    ("two configs", lambda t: _twice(_native(t, "twice", _sequential([LAYER])), "config.npy"),
     r" holds two arrays named 'config'"),
    ("a device", lambda t: _link(t / "zero.npz", "/dev/zero"), r" is not a regular file"),
    ("a pipe", lambda t: _fifo(t / "pipe.npz"), r" is not a regular file"),
    ("random bytes", lambda t: _write(t / "junk.npz", np.random.default_rng(0).bytes(400)),
     r"is not a readable numpy-convlstm model file"),
    ("a bare array", lambda t: _save_array(t / "bare.npy"), r"a bare array"),
]


def _write(path, data):
    path.write_bytes(data)
    return path


def _twice(path, member):
    """``path`` with a second ``member`` (a native model config) after the first."""
    buffer = io.BytesIO()
    np.save(buffer, np.array(json.dumps(_sequential([]))))
    with zipfile.ZipFile(path, "a") as archive, pytest.warns(UserWarning, match="Duplicate"):
        archive.writestr(member, buffer.getvalue())
    return path


def _link(path, target):
    """A symbolic link at ``path`` to ``target`` (a device: reading it never ends)."""
    path.symlink_to(target)
    return path


def _fifo(path):
    """A named pipe at ``path`` (opening it to read blocks until a writer comes)."""
    os.mkfifo(path)
    return path


def _save_array(path):
    np.save(path, np.zeros(3))
    return path


@pytest.mark.parametrize(("make", "message"), [case[1:] for case in NATIVE_FILES],
                         ids=[case[0] for case in NATIVE_FILES])
def test_native_files_are_refused_by_name_quickly_and_without_allocating(tmp_path, make,
                                                                          message):
    path = make(tmp_path)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ValueError) as raised:
            load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 5
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MiB allocated before refusing"
    text = str(raised.value)
    assert text.startswith(f"load: {str(path)!r}"), text
    assert re.search(message, text), text


def test_a_truncated_model_file_is_refused_at_every_length(tmp_path):
    data = Path(_small_model().save(tmp_path / "model.npz")).read_bytes()
    for end in range(0, len(data), max(1, len(data) // 40)):
        cut = _write(tmp_path / "cut.npz", data[:end])
        with pytest.raises(ValueError, match=r"cut.npz' is (not a readable|not a numpy|truncat)"):
            load(cut)


def test_the_limits_are_names_a_program_can_raise(tmp_path, monkeypatch):
    path = _small_model().save(tmp_path / "model.npz")
    monkeypatch.setattr(limits, "MAX_WEIGHT_ELEMENTS", 10)
    with pytest.raises(ValueError, match=r"has 72 elements; expected at most "
                                         r"MAX_WEIGHT_ELEMENTS = 10"):
        load(path)
    monkeypatch.setattr(limits, "MAX_WEIGHT_ELEMENTS", 2**28)
    monkeypatch.setattr(limits, "MAX_CONFIG_BYTES", 100)
    with pytest.raises(ValueError, match=r"the model config is [\d,]+ bytes; expected at most "
                                         r"MAX_CONFIG_BYTES = 100"):
        load(path)
    monkeypatch.setattr(limits, "MAX_CONFIG_BYTES", 2**24)
    assert load(path).get_config() == _small_model().get_config()


FROM_CONFIG = [
    (lambda: Sequential.from_config([1]), TypeError,
     r"Sequential.from_config: expected config to be a dict with string keys; got list"),
    (lambda: Sequential.from_config(None), TypeError, r"got NoneType None"),
    (lambda: Dense.from_config({"units": 1, "bogus": 2}), ValueError,
     r"Dense.from_config: unknown config keys \['bogus'\]"),
    (lambda: Dense.from_config({}), ValueError,
     r"Dense.from_config: the config lacks the required \['units'\]"),
    (lambda: Dense.from_config({1: 2}), TypeError, r"a dict with string keys"),
    (lambda: ConvLSTM2D.from_config("abc"), TypeError, r"ConvLSTM2D.from_config: expected config"),
    (lambda: TimeDistributed.from_config({}), ValueError, r"lacks the required \['layer'\]"),
    (lambda: Adam.from_config([]), TypeError, r"Adam.from_config: expected config to be a dict"),
    (lambda: Adam.from_config({"bogus": 1}), ValueError,
     r"Adam.from_config: unknown config keys \['bogus'\]; expected some of \['learning_rate'"),
    (lambda: Adam.from_config({"learning_rate": {"class_name": "ExponentialDecay"}}),
     ValueError, r"Adam.from_config: the config has no 'config'; got keys \['class_name'\]"),
    (lambda: Adam.from_config({"learning_rate": {"class_name": ["x"]}}), ValueError,
     r"expected a learning_rate schedule of class ExponentialDecay; got \['x'\]"),
    (lambda: Adam.from_config({"learning_rate": {"class_name": "ExponentialDecay",
                                                 "config": 5}}), TypeError,
     r"ExponentialDecay.from_config: expected config to be a dict with string keys; got int"),
    (lambda: MeanSquaredError.from_config([]), TypeError, r"MeanSquaredError.from_config"),
    (lambda: MeanSquaredError.from_config({"x": 1}), ValueError, r"unknown config keys \['x'\]"),
    (lambda: ConvLSTM2D.from_config({**CONVLSTM["config"], "num_layers": 10**6}), ValueError,
     r"^ConvLSTM2D.from_config: layer 'ConvLSTM2D' has num_layers = 1000000; expected at most "
     r"MAX_STACKED_CELLS"),
    (lambda: Dense.from_config({"units": 10**4000}), ValueError,
     r"^Dense.from_config: the config holds an integer of 13,288 bits; expected at most "
     r"MAX_INTEGER_BITS"),
    (lambda: deserialize({"class_name": ["Dense"], "config": {}}), TypeError,
     r"deserialize: expected class_name to be a str; got \['Dense'\]"),
    (lambda: deserialize({"class_name": "Dense", "config": [1]}), TypeError,
     r"Dense.from_config: expected config to be a dict"),
]


@pytest.mark.parametrize(("call", "kind", "message"), FROM_CONFIG)
def test_from_config_names_the_class_and_what_is_wrong(call, kind, message):
    with pytest.raises(kind, match=message):
        call()


def test_from_config_round_trips_still_work():
    optimizer = Adam.from_config(Adam(0.01, clipnorm=1.0).get_config())
    assert optimizer.learning_rate == 0.01 and optimizer.clipnorm == 1.0
    model = _small_model()
    assert Sequential.from_config(model.get_config()).get_config() == model.get_config()
    assert ConvLSTM2D.from_config({"filters": 3}).out_channels == 3  # Keras' name


@pytest.mark.parametrize("name", ["m" * 251 + ".npz", "ü" * 125 + ".npz"])
def test_a_file_name_of_255_bytes_is_written_whole(tmp_path, name):
    model = _small_model()
    assert load(model.save(tmp_path / name)).get_config() == model.get_config()
    assert [path.name for path in tmp_path.iterdir()] == [name]


def test_a_model_with_a_large_seed_round_trips(tmp_path):
    model = Sequential([ConvLSTM2D(1, 2, 3, seed=2**200)], input_shape=(2, 4, 4, 1))
    assert load(model.save(tmp_path / "model.npz")).get_config() == model.get_config()


# ------------------------------------------------------------------------------- Keras files

h5py = pytest.importorskip("h5py")


def _keras_members(tmp_path):
    path = _small_model().save_keras(tmp_path / "good.keras")
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _keras(tmp_path, name, **changes):
    members = {**_keras_members(tmp_path), **changes}
    path = tmp_path / f"{name}.keras"
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in members.items():
            if data is not None:
                archive.writestr(member, data)
    return path


def _keras_config(tmp_path, name, change):
    config = json.loads(_keras_members(tmp_path)["config.json"])
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "ConvLSTM2D":
            change(layer)
    return _keras(tmp_path, name, **{"config.json": json.dumps(config).encode()})


def _keras_weight(tmp_path, name, dataset):
    """A .keras file whose first weight is replaced by ``dataset(group, key)``."""
    buffer = io.BytesIO(_keras_members(tmp_path)["model.weights.h5"])
    with h5py.File(buffer, "a") as h5:
        group = h5["layers/conv_lstm2d/cell/vars"]
        del group["0"]
        dataset(group, "0")
    return _keras(tmp_path, name, **{"model.weights.h5": buffer.getvalue()})


def _huge(layer):
    layer["config"].update(filters=10**6, kernel_size=[99, 99])


def _unknown(layer):
    layer["class_name"] = "Mystery"


KERAS_FILES = [
    ("a list", lambda t: _keras(t, "list", **{"config.json": b"[1]"}),
     r"expected a Keras config with a 'class_name'"),
    ("wrong JSON", lambda t: _keras(t, "json", **{"config.json": b"{"}),
     r"config.json is not valid JSON"),
    ("nesting 50,000 deep", lambda t: _keras(t, "deep", **{"config.json": b"[" * 50_000}),
     r"config.json nests 50000 levels deep; expected at most MAX_CONFIG_DEPTH = 100"),
    ("an unknown class", lambda t: _keras_config(t, "unknown", _unknown),
     r"\(Mystery\) is not supported by this library"),
    ("terabytes of filters", lambda t: _keras_config(t, "huge", _huge),
     r"layer 'conv_lstm2d' \(ConvLSTM2D\): a weight of shape \(99, 99, 1, 4000000\) has "
     r"39,204,000,000 elements; expected at most MAX_WEIGHT_ELEMENTS"),
    ("no weights", lambda t: _keras(t, "noweights", **{"model.weights.h5": None}),
     r"has no model.weights.h5"),
    ("weights that are not HDF5", lambda t: _keras(t, "junk", **{"model.weights.h5": b"junk"}),
     r"\(model.weights.h5\) is not a readable HDF5 file"),
    ("a weight of the wrong shape", lambda t: _keras_weight(
        t, "shape", lambda g, k: g.create_dataset(k, data=np.zeros((7, 7)))),
     r"weight 'layers/conv_lstm2d/cell/vars/0' has shape \(7, 7\) in the file; the layer's "
     r"kernel has shape \(3, 3, 1, 8\)"),
    ("a weight of 10^12 elements", lambda t: _keras_weight(
        t, "big", lambda g, k: g.create_dataset(k, shape=(10**6, 10**6), dtype="f4")),
     r"has shape \(1000000, 1000000\) in the file"),
    ("a weight of text", lambda t: _keras_weight(
        t, "text", lambda g, k: g.create_dataset(k, data=np.array([b"a"]))),
     r"has dtype \|S1; expected floats"),
    ("a weight that is a group", lambda t: _keras_weight(
        t, "group", lambda g, k: g.create_group(k)),
     r"expected floats"),
    ("a folder", lambda t: t, r" is a folder; expected a Keras .keras or .h5 file"),
    ("two configs", lambda t: _twice(_keras(t, "twice"), "config.json"),
     r" holds config.json twice"),
    ("a device", lambda t: _link(t / "zero.keras", "/dev/zero"), r" is not a regular file"),
    ("a pipe", lambda t: _fifo(t / "pipe.h5"), r" is not a regular file"),
]


@pytest.mark.parametrize(("make", "message"), [case[1:] for case in KERAS_FILES],
                         ids=[case[0] for case in KERAS_FILES])
def test_keras_files_are_refused_by_name(tmp_path, make, message):
    path = make(tmp_path)
    started = time.perf_counter()
    with pytest.raises(ValueError) as raised:
        convlstm.load_keras(path)
    assert time.perf_counter() - started < 5
    text = str(raised.value)
    assert text.startswith(f"load_keras: {str(path)!r}"), text
    assert re.search(message, text), text


def test_an_oversized_keras_member_is_refused_before_it_is_read(tmp_path, monkeypatch):
    path = _keras(tmp_path, "model")
    monkeypatch.setattr(limits, "MAX_CONFIG_BYTES", 10)
    with pytest.raises(ValueError, match=r"config.json is [\d,]+ bytes; expected at most 10 "):
        convlstm.load_keras(path)


# ---------------------------------------------------------------------- paths and names


def _export_onnx(path, **options):
    pytest.importorskip("onnx")
    return convlstm.onnx.export(_small_model(), path, **options)


PATHS = [
    (lambda t: load(3), TypeError, r"load: expected path to be a str or os.PathLike; got int"),
    (lambda t: load(t / "none.npz"), FileNotFoundError, r"load: no such file '.*none.npz'"),
    (lambda t: convlstm.load_keras(b"x.keras"), TypeError,
     r"load_keras: expected path to be a str or os.PathLike; got bytes"),
    (lambda t: convlstm.load_keras(_small_model().save_keras(t / "w.weights.h5"),
                                   config=t / "none.json"),
     FileNotFoundError, r"load_keras: no such config file '.*none.json'"),
    (lambda t: _small_model().save(t), ValueError, r"save: cannot write '.*': it is a folder"),
    (lambda t: _small_model().save(str(t) + os.sep), ValueError, r"it is a folder"),
    (lambda t: _small_model().save(t / "no" / "m.npz"), ValueError,
     r"save: cannot write '.*m.npz': the folder '.*no' does not exist"),
    (lambda t: _small_model().save_keras(t / "no" / "m.keras"), ValueError,
     r"save_keras: cannot write '.*m.keras': the folder '.*no' does not exist"),
    (lambda t: _export_onnx(t), ValueError, r"convlstm.onnx.export: cannot write '.*': it is "
                                            r"a folder"),
    (lambda t: _export_onnx(_write(t / "file", b"") / "m.onnx"), ValueError,
     r"the folder '.*file' does not exist"),
    (lambda t: _export_onnx(t / "m.onnx", opset="17"), TypeError,
     r"convlstm.onnx.export: expected opset to be an int; got '17'"),
    (lambda t: _export_onnx(t / "m.onnx", opset=17.0), TypeError, r"got 17.0"),
    (lambda t: _export_onnx(t / "m.onnx", opset=5), ValueError, r"expected opset between 13"),
    (lambda t: convlstm.pretrained("nope"), ValueError,
     r"pretrained: expected name to be one of 'moving-mnist'; got 'nope'"),
    (lambda t: convlstm.pretrained(3), ValueError, r"got 3"),
    (lambda t: convlstm.datasets.load_moving_mnist(t), ValueError,
     r"load_moving_mnist: '.*' is a folder; expected a .npy file"),
    (lambda t: convlstm.datasets.load_moving_mnist(_write(t / "e.npy", b"")), ValueError,
     r"load_moving_mnist: expected '.*e.npy' to be a .npy file .* could not read it"),
]


@pytest.mark.parametrize(("call", "kind", "message"), PATHS)
def test_paths_and_names_are_checked(tmp_path, call, kind, message):
    with pytest.raises(kind, match=message):
        call(tmp_path)
    assert not list(tmp_path.glob("*.partial*"))


# ---------------------------------------------------------------------------- nothing lost

SAVER = """
import sys
from pathlib import Path
import numpy as np
from convlstm import ConvLSTM2D, Sequential, demo, runs
from convlstm.optimizers import Adam

out = Path(sys.argv[1])
model = Sequential([ConvLSTM2D(1, 64, 3, num_layers=2)], input_shape=(2, 8, 8, 1))
optimizer = Adam()
optimizer.apply(*model.trainable_weights())
for step in range(10**6):
    model.metadata["step"] = step
    model.save(out / "model.npz")
    runs.save_optimizer(optimizer, out / "optimizer.npz")
    demo.write_json(out / "training.json", {"steps_done": step, "loss": [0.5] * 1000})
    print(step, flush=True)
"""


def test_a_killed_save_always_leaves_the_previous_checkpoint_whole(tmp_path):
    rng = np.random.default_rng(0)
    environment = {**os.environ, "PYTHONPATH": str(SOURCE)}
    for attempt in range(4):
        with subprocess.Popen([sys.executable, "-c", SAVER, str(tmp_path)], env=environment,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as child:
            try:
                assert child.stdout.readline(), child.stderr.read()
                time.sleep(rng.uniform(0.0, 0.3))
            finally:
                child.send_signal(signal.SIGKILL)
        state = json.loads((tmp_path / "training.json").read_text())
        model = load(tmp_path / "model.npz")
        assert model.metadata["step"] >= state["steps_done"] - 1 >= -1
        with np.load(tmp_path / "optimizer.npz", allow_pickle=False) as optimizer:
            assert int(optimizer["iterations"]) == 1
        finals = {path.name for path in tmp_path.iterdir() if "partial" not in path.name}
        assert finals == {"model.npz", "optimizer.npz", "training.json"}, attempt

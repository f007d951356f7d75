"""Property-based checks of everything that reads untrusted input: random and mutated files,
random configs and random values of every numeric flag. Whatever the input, the answer is the
model (when the input happens to be valid) or one of the documented exceptions whose message
names the file, the owner or the flag; the command exits 2 with one line; nothing hangs.

Reproducible: examples are derived from the test names (``derandomize``), with no database.
"""

import atexit
import json
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convlstm import ConvLSTM2D, Dense, Flatten, Sequential, load
from convlstm.cli import main
from convlstm.registry import LAYER_CLASSES, deserialize

PROPERTIES = settings(derandomize=True, database=None, deadline=2000, max_examples=150,
                      suppress_health_check=[HealthCheck.too_slow,
                                             HealthCheck.function_scoped_fixture])
FOLDER = Path(tempfile.mkdtemp(prefix="convlstm-properties-"))
atexit.register(shutil.rmtree, FOLDER, True)
OWNER = re.compile(r"^[A-Za-z_][\w.]*: ")  # "Dense.from_config: ...", "deserialize: ..."


def _model():
    return Sequential([ConvLSTM2D(1, 2, 3, "same", seed=0), Flatten(), Dense(1, seed=1)],
                      input_shape=(2, 4, 4, 1))


NATIVE = Path(_model().save(FOLDER / "model.npz")).read_bytes()


def _load_bytes(data: bytes, name: str = "case.npz"):
    path = FOLDER / name
    path.write_bytes(data)
    try:
        return load(path), None
    except ValueError as error:
        assert str(error).startswith(f"load: {str(path)!r}"), error
        return None, error


def _mutated(data: bytes, draw) -> bytes:
    """``data`` truncated, or with a few bytes overwritten."""
    if draw(st.booleans()):
        return data[: draw(st.integers(0, len(data) - 1))]
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


@PROPERTIES
@given(st.binary(max_size=2000))
def test_random_bytes_are_never_a_model(data):
    model, error = _load_bytes(data)
    assert model is None and error is not None


@PROPERTIES
@given(st.data())
def test_a_mutated_native_file_loads_or_is_refused_by_name(data):
    model, _ = _load_bytes(_mutated(NATIVE, data.draw))
    if model is not None:  # a change the format cannot see (in a name's padding, say)
        assert model.predict(np.zeros((1, 2, 4, 4, 1))).shape == (1, 1)


@PROPERTIES
@given(st.data())
def test_a_mutated_keras_file_loads_or_is_refused_by_name(data):
    pytest.importorskip("h5py")
    from convlstm import load_keras

    keras = FOLDER / "model.keras"
    if not keras.exists():
        _model().save_keras(keras)
    path = FOLDER / "case.keras"
    path.write_bytes(_mutated(keras.read_bytes(), data.draw))
    try:
        load_keras(path)
    except ValueError as error:
        assert str(error).startswith(f"load_keras: {str(path)!r}"), error


# ------------------------------------------------------------------------ random configs

NAMES = st.sampled_from([*sorted(LAYER_CLASSES), "Nope"])
KEYS = st.sampled_from(["units", "in_channels", "out_channels", "filters", "kernel_size",
                        "num_layers", "layer", "layers", "input_shape", "padding", "rate",
                        "activation", "merge_mode", "pool_size", "block_size", "x"])
NUMBERS = st.one_of(st.integers(-3, 6), st.integers(10**9, 10**30),
                    st.floats(allow_nan=True, allow_infinity=True))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=6),
                    st.sampled_from(["same", "valid", "relu", "concat"]))


def _values(children):
    return st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(KEYS, children, max_size=4),
        st.builds(lambda name, config: {"class_name": name, "config": config}, NAMES,
                  st.dictionaries(KEYS, children, max_size=4)),
    )


CONFIGS = st.recursive(SCALARS, _values, max_leaves=20)


def _nested(depth):
    """``depth`` TimeDistributed wrappers around a Dense (JSON nests twice as deep)."""
    spec = {"class_name": "Dense", "config": {"units": 1}}
    for _ in range(depth):
        spec = {"class_name": "TimeDistributed", "config": {"layer": spec}}
    return spec


DEEP = st.integers(40, 400).map(_nested)  # 40 is within MAX_CONFIG_DEPTH, 60 is past it
SPECS = st.one_of(
    st.builds(lambda name, config: {"class_name": name, "config": config}, NAMES, CONFIGS),
    st.builds(lambda layers, shape: {"class_name": "Sequential",
                                     "config": {"layers": layers, "input_shape": shape}},
              st.lists(st.builds(lambda name, config: {"class_name": name, "config": config},
                                 NAMES, st.dictionaries(KEYS, CONFIGS, max_size=4)),
                       max_size=3),
              st.one_of(st.none(), st.lists(NUMBERS, max_size=4))),
    DEEP, CONFIGS)


@PROPERTIES
@given(SPECS)
def test_a_random_config_builds_or_is_refused_by_its_owner(spec):
    try:
        deserialize(spec)
    except (ValueError, TypeError) as error:
        assert OWNER.match(str(error)), error


@PROPERTIES
@given(st.integers(60, 400), st.booleans())
def test_a_config_nested_too_deep_is_refused_before_building(depth, from_file):
    spec = _nested(depth)
    if from_file:
        path = FOLDER / "deep.npz"
        np.savez(path, format=np.array("numpy-convlstm"), version=np.array(1),
                 config=np.array(json.dumps(spec)))
        with pytest.raises(ValueError, match=rf"load: {re.escape(repr(str(path)))}: the model "
                                             r"config nests \d+ levels deep; expected at most "
                                             r"MAX_CONFIG_DEPTH = 100"):
            load(path)
    else:
        with pytest.raises(ValueError, match=r"^TimeDistributed.from_config: the config nests "
                                             r"more than MAX_CONFIG_DEPTH = 100 levels deep"):
            deserialize(spec)


@PROPERTIES
@given(SPECS)
def test_a_random_config_in_a_file_loads_or_is_refused_by_name(spec):
    path = FOLDER / "config.npz"
    np.savez(path, format=np.array("numpy-convlstm"), version=np.array(1),
             config=np.array(json.dumps(spec)))
    try:
        load(path)
    except ValueError as error:
        assert str(error).startswith(f"load: {str(path)!r}"), error


# ------------------------------------------------------------------------- numeric flags

MISSING = str(FOLDER / "missing")
COMMANDS = {"train": ["train", "--data", MISSING + ".npy"],
            "predict": ["predict", "--model", MISSING + ".npz", "--input", MISSING + ".npy",
                        "--output", str(FOLDER / "y.npy")],
            "demo": ["demo", "--out", str(FOLDER / "model.npz")],  # a file: refused first
            "export": ["export", "--model", MISSING + ".npz", "--onnx", str(FOLDER / "m.onnx")]}
FLAGS = [("train", flag) for flag in (
    "--batch-size", "--filters", "--layers", "--kernel", "--epochs", "--steps", "--seed",
    "--learning-rate", "--learning-rate-decay", "--minutes", "--validation-split",
    "--time-axis", "--workers")] + [("predict", "--frames"), ("predict", "--batch-size"),
                                    ("export", "--opset")] + [("demo", flag) for flag in (
    "--speed", "--size", "--frames", "--objects", "--sequences", "--test-sequences",
    "--examples", "--minutes", "--steps", "--filters", "--learning-rate", "--seed")]
VALUES = st.one_of(st.integers(-10**12, 10**12).map(str),
                   st.floats(allow_nan=True, allow_infinity=True).map(repr),
                   st.text(max_size=8))


@pytest.mark.parametrize(("command", "flag"), FLAGS)
@settings(PROPERTIES, max_examples=30)
@given(value=VALUES)
def test_any_value_of_a_numeric_flag_is_one_line_and_exit_2(capsys, command, flag, value):
    arguments = [*COMMANDS[command], f"{flag}={value}"]
    try:
        status = main(arguments)
    except SystemExit as exit_:
        status = exit_.code
    stderr = capsys.readouterr().err
    assert status == 2, stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    assert flag in stderr or MISSING in stderr or "--out" in stderr, stderr
    if not _plausible(value):  # every numeric flag takes finite numbers >= 0 only
        assert f"argument {flag}: " in stderr, stderr


def _plausible(text: str) -> bool:
    try:
        number = float(text)
    except ValueError:
        return False
    return np.isfinite(number) and number >= 0

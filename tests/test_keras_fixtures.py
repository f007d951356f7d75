"""Outputs equal those Keras 3 computed for the same weights (fixtures made by
``scripts/make_keras_fixtures.py``)."""

import json
from pathlib import Path

import numpy as np
import pytest

from convlstm import ConvLSTM2D, MaxPooling3D

FIXTURES = Path(__file__).parent / "fixtures" / "keras"
ATOL = {np.float32: 1e-5, np.float64: 1e-10}


def _cases(prefix):
    paths = sorted(FIXTURES.glob(f"{prefix}_*.npz"))
    assert paths, f"no {prefix} fixtures in {FIXTURES}"
    return [pytest.param(path, id=path.stem.removeprefix(prefix + "_")) for path in paths]


def _load(path):
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    return json.loads(str(arrays.pop("config"))), arrays


def _assert_close(actual, expected):
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype
    np.testing.assert_allclose(actual, expected, rtol=0, atol=ATOL[expected.dtype.type])


@pytest.mark.parametrize("path", _cases("convlstm"))
def test_convlstm2d_matches_keras(path):
    config, data = _load(path)
    layer = ConvLSTM2D(**config)
    layer.set_weights([data[f"w{k}"] for k in range(len(layer.get_weights()))])
    assert f"w{len(layer.get_weights())}" not in data
    kwargs = {"mask": data.get("mask")}
    if "h0" in data:
        kwargs["initial_state"] = [data["h0"], data["c0"]]
    result = layer.forward(data["x"], **kwargs)
    if config.get("return_state"):
        output, h, c = result
        _assert_close(h, data["h"])
        _assert_close(c, data["c"])
    else:
        output = result
    _assert_close(output, data["output"])
    if "x2" in data:
        second = layer.forward(data["x2"])
        _assert_close(second[0] if config.get("return_state") else second, data["output2"])


@pytest.mark.parametrize("path", _cases("maxpool3d"))
def test_maxpooling3d_matches_keras(path):
    config, data = _load(path)
    _assert_close(MaxPooling3D(**config).forward(data["x"]), data["output"])

"""ConvLSTM1D, ConvLSTM3D and MaxPooling1D compute what Keras 3 computed for the same weights
(fixtures made by ``scripts/make_keras_convrnn_fixtures.py``)."""

import json
from pathlib import Path

import numpy as np
import pytest

from convlstm.registry import layer_class

FIXTURES = Path(__file__).parent / "fixtures" / "convrnn"


def _cases(*prefixes):
    paths = sorted(path for prefix in prefixes for path in FIXTURES.glob(f"{prefix}_*.npz"))
    assert paths, f"no {prefixes} fixtures in {FIXTURES}"
    return [pytest.param(path, id=path.stem) for path in paths]


def _load(path):
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    spec = json.loads(str(arrays.pop("config")))
    return layer_class(spec["class"]).from_config(spec["config"]), arrays


def _assert_close(actual, expected):
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("path", _cases("convlstm1d", "convlstm3d"))
def test_conv_lstm_1d_3d_match_keras(path):
    layer, data = _load(path)
    count = len(layer.get_weights())
    assert f"w{count}" not in data
    layer.set_weights([data[f"w{k}"] for k in range(count)])
    kwargs = {"mask": data.get("mask")}
    if "h0" in data:
        kwargs["initial_state"] = [data["h0"], data["c0"]]
    result = layer(data["x"], **kwargs)
    results = result if layer.return_state else (result,)
    for name, value in zip(("output", "h", "c"), results):
        _assert_close(value, data[name])
    if "x2" in data:
        second = layer(data["x2"])
        _assert_close(second[0] if layer.return_state else second, data["output2"])


@pytest.mark.parametrize("path", _cases("maxpool1d"))
def test_max_pooling_1d_matches_keras(path):
    layer, data = _load(path)
    _assert_close(layer(data["x"]), data["output"])


@pytest.mark.parametrize("path", _cases("bidirectional"))
def test_bidirectional_matches_keras(path):
    layer, data = _load(path)
    count = len(layer.get_weights())
    assert f"w{count}" not in data
    layer.set_weights([data[f"w{k}"] for k in range(count)])
    states = [data[f"s{k}"] for k in range(4) if f"s{k}" in data]
    result = layer(data["x"], initial_state=states or None, mask=data.get("mask"))
    results = result if isinstance(result, list) else [result]
    assert len(results) == sum(name.startswith("y") for name in data)
    for k, value in enumerate(results):
        _assert_close(value, data[f"y{k}"])

"""Helpers shared by the ``test_layers_*`` files: the Keras fixture runner, the float32/float64
comparison, the ``TrainingMode`` adapter for gradient checks of layers whose training output
differs, and the config round trip."""

import json
from pathlib import Path

import numpy as np
import pytest

from convlstm.registry import deserialize

FIXTURES = Path(__file__).parent / "fixtures" / "layers"
TOLERANCE = {np.float32: 2e-5, np.float64: 1e-10}


def fixture_cases(*prefixes):
    """pytest params for the committed Keras fixtures whose names start with ``prefixes``."""
    paths = sorted(p for p in FIXTURES.glob("*.npz") if p.stem.startswith(prefixes))
    assert paths, f"no fixtures {prefixes} in {FIXTURES}"
    return [pytest.param(path, id=path.stem) for path in paths]


def assert_close(actual, expected):
    """Same shape and dtype, and equal within the dtype's ``TOLERANCE``."""
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype
    tolerance = TOLERANCE[expected.dtype.type]
    np.testing.assert_allclose(actual, expected, rtol=tolerance, atol=tolerance)


def check_keras_fixture(path):
    """Inference output, training output, input and weight gradients and weights after the
    training call all equal what Keras 3 (torch backend) computed."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    spec = {"class_name": str(arrays["class_name"]), "config": json.loads(str(arrays["config"]))}
    layer = deserialize(spec)
    x = arrays["x"]
    layer.build(x.shape)
    count = len(layer.get_weights())
    assert f"w{count}" not in arrays
    layer.set_weights([arrays[f"w{i}"] for i in range(count)])
    assert_close(layer.forward(x), arrays["output"])
    assert_close(layer.forward(x, training=True), arrays["output_train"])
    assert_close(layer.backward(arrays["d_output"]), arrays["d_x"])
    for i, (_, owner, key) in enumerate(layer.named_params()):
        assert_close(owner.grads[key], arrays[f"g{i}"])
        assert_close(owner.params[key], arrays[f"after{i}"])


class TrainingMode:
    """Runs every forward with ``training=True``, so ``check_gradients`` differentiates the
    training-mode function (Dropout, BatchNormalization). ``before`` runs before each forward
    (e.g. to reseed a dropout mask)."""

    def __init__(self, layer, before=None):
        self.layer, self.before = layer, before

    def forward(self, x, training=False):
        if self.before is not None:
            self.before()
        return self.layer.forward(x, training=True)

    def backward(self, d_output):
        return self.layer.backward(d_output)

    def named_params(self, prefix=""):
        return self.layer.named_params(prefix)


def round_trip(layer):
    """Check that ``layer``'s config survives JSON and rebuilds an equal layer; return it."""
    config = layer.get_config()
    assert json.loads(json.dumps(config)) == config
    rebuilt = type(layer).from_config(config)
    assert rebuilt.get_config() == config
    assert repr(rebuilt) == repr(layer)
    return rebuilt

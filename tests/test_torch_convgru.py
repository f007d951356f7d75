"""ConvGRU2D's forward and backward equal PyTorch autograd on the same weights, for both
reset_after values (fixtures made by ``scripts/make_torch_convgru_fixtures.py``, float64)."""

import json
from pathlib import Path

import numpy as np
import pytest

from convlstm import ConvGRU2D

FIXTURES = Path(__file__).parent / "fixtures" / "torch_convgru"
CASES = sorted(FIXTURES.glob("convgru_grad_*.npz"))


def test_fixtures_cover_both_reset_after_values():
    resets = set()
    for path in CASES:
        with np.load(path, allow_pickle=False) as archive:
            resets.add(json.loads(str(archive["config"]))["reset_after"])
    assert len(CASES) == 5 and resets == {True, False}


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem.removeprefix("convgru_grad_"))
def test_gradients_match_torch_autograd(path):
    with np.load(path, allow_pickle=False) as archive:
        data = {key: archive[key] for key in archive.files}
    config = json.loads(str(data["config"]))
    layer = ConvGRU2D(**config, return_state=True, dtype="float64")
    layer.set_weights([data["kernel"], data["recurrent_kernel"], data["bias"]])
    output, h = layer.forward(data["x"], initial_state=[data["h0"]], mask=data.get("mask"),
                              training=True)
    np.testing.assert_allclose(output, data["output"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(h, data["h"], rtol=0, atol=1e-12)
    d_x = layer.backward(data["d_output"], data["d_h"])
    (d_h0,), = layer.state_grads
    grads = layer.cells[0].grads
    for actual, name in [(d_x, "x"), (grads["kernel"], "kernel"),
                         (grads["recurrent_kernel"], "recurrent_kernel"),
                         (grads["bias"], "bias"), (d_h0, "h0")]:
        np.testing.assert_allclose(actual, data[f"grad_{name}"], rtol=0, atol=1e-11,
                                   err_msg=name)

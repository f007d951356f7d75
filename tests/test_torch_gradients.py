"""ConvLSTM2D's backward, peepholes included, equals PyTorch autograd on the same weights
(fixtures made by ``scripts/make_torch_gradient_fixtures.py``, float64)."""

import json
from pathlib import Path

import numpy as np
import pytest

from convlstm import ConvLSTM2D

FIXTURES = Path(__file__).parent / "fixtures" / "torch"
CASES = sorted(FIXTURES.glob("convlstm_grad_*.npz"))


def test_fixtures_exist():
    assert len(CASES) >= 12
    assert sum("peephole" in path.stem for path in CASES) == 3


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem.removeprefix("convlstm_grad_"))
def test_gradients_match_torch_autograd(path):
    with np.load(path, allow_pickle=False) as archive:
        data = {key: archive[key] for key in archive.files}
    config = json.loads(str(data["config"]))
    layer = ConvLSTM2D(
        config["in_channels"], config["out_channels"], config["kernel_size"], config["padding"],
        config["stride"], config["leaky_relu_slope"], dilation=config["dilation"],
        activation=config["activation"], recurrent_activation=config["recurrent_activation"],
        go_backwards=config["go_backwards"], peephole=config.get("peephole", False),
        return_state=True, dtype="float64",
    )
    weights = ["kernel", "recurrent_kernel", "bias", *(["peephole"] if layer.peephole else [])]
    layer.set_weights([data[name] for name in weights])
    output, h, c = layer.forward(data["x"], initial_state=[data["h0"], data["c0"]],
                                 mask=data.get("mask"), training=True)
    for actual, name in [(output, "output"), (h, "h"), (c, "c")]:
        np.testing.assert_allclose(actual, data[name], rtol=0, atol=1e-12)
    d_x = layer.backward(data["d_output"], data["d_h"], data["d_c"])
    (d_h0, d_c0), = layer.state_grads
    grads = layer.cells[0].grads
    for actual, name in [(d_x, "grad_x"), (grads["kernel"], "grad_kernel"),
                         (grads["recurrent_kernel"], "grad_recurrent_kernel"),
                         (grads["bias"], "grad_bias"), (d_h0, "grad_h0"), (d_c0, "grad_c0"),
                         *([(grads["peephole"], "grad_peephole")] if layer.peephole else [])]:
        np.testing.assert_allclose(actual, data[name], rtol=0, atol=1e-11, err_msg=name)

"""The ConvLSTM kernel's geometry is written for any number of spatial axes (the base for
ConvLSTM1D/3D): with 1 or 3 spatial axes it computes what it computes with 2 on the same data,
seen with a unit height (1-D) or without a unit depth (3-D)."""

import numpy as np
import pytest

from convlstm.functional.activations import ACTIVATIONS
from convlstm.functional.convlstm import convlstm_backward, convlstm_forward
from convlstm.functional.windows import output_size

ACTIVATIONS_USED = {"activation": ACTIVATIONS["tanh"],
                    "recurrent_activation": ACTIVATIONS["sigmoid"]}


def run(x, kernel, recurrent_kernel, bias, stride, pads, dilation, mask):
    """Forward (training) and backward from fixed output gradients; every result by name."""
    out_spatial = output_size(x.shape[2:-1], kernel.shape[:-2], stride, pads, dilation)
    state = np.zeros((x.shape[0], *out_spatial, kernel.shape[-1] // 4))
    outputs, h, c, cache = convlstm_forward(
        x, kernel, recurrent_kernel, bias, state, state.copy(), stride=stride, pads=pads,
        dilation=dilation, mask=mask, training=True, **ACTIVATIONS_USED)
    d_outputs = np.random.default_rng(5).normal(size=outputs.shape)
    d_x, d_h0, d_c0, grads = convlstm_backward(d_outputs, None, None, cache, kernel,
                                               recurrent_kernel, use_bias=True, **ACTIVATIONS_USED)
    return {"outputs": outputs, "h": h, "c": c, "d_x": d_x, "d_h0": d_h0, "d_c0": d_c0,
            **{f"d_{name}": value for name, value in grads.items()}}


# Where each result has its spatial axes: the unit axis is added (1-D) or removed (3-D) there.
UNIT_AXIS = {"outputs": 2, "h": 1, "c": 1, "d_x": 2, "d_h0": 1, "d_c0": 1, "d_kernel": 0,
             "d_recurrent_kernel": 0}


@pytest.mark.parametrize("rank", [1, 3])
def test_one_and_three_spatial_axes_match_two(rank):
    rng = np.random.default_rng(0)
    B, T, W, C, F = 2, 3, 7, 2, 3
    x = rng.normal(size=(B, T, 1, W, C))  # 2-D frames of height 1
    kernel = rng.uniform(-0.5, 0.5, (1, 3, C, 4 * F))
    recurrent_kernel = rng.uniform(-0.5, 0.5, (1, 3, F, 4 * F))
    bias = rng.uniform(-0.5, 0.5, 4 * F)
    mask = np.array([[True, False, True], [True, True, True]])
    geometry = ((1, 2), ((0, 0), (1, 1)), (1, 1))  # stride, pads, dilation
    expected = run(x, kernel, recurrent_kernel, bias, *geometry, mask)

    if rank == 1:  # drop the unit height
        arrays = (x[:, :, 0], kernel[0], recurrent_kernel[0])
        geometry = tuple(values[1:] for values in geometry)
        to_2d = np.expand_dims
    else:  # add a unit depth
        arrays = (x[:, :, None], kernel[None], recurrent_kernel[None])
        geometry = ((1, *geometry[0]), ((0, 0), *geometry[1]), (1, *geometry[2]))
        to_2d = np.squeeze
    actual = run(*arrays, bias, *geometry, mask)
    assert set(actual) == set(expected)
    for name, value in actual.items():
        if name in UNIT_AXIS:
            value = to_2d(value, UNIT_AXIS[name])
        np.testing.assert_allclose(value, expected[name], rtol=0, atol=1e-12, err_msg=name)

"""Peephole connections (Shi et al. 2015, eq. 3) on the ConvLSTM family: gradients (layer and
kernel, dropout included), the zero default, weights, configs, errors and files."""

import numpy as np
import pytest
from gradcheck import TOLERANCE, check_gradients, numerical_gradient, relative_error

from convlstm import ConvLSTM1D, ConvLSTM2D, ConvLSTM2DCell, ConvLSTM3D, Sequential, load
from convlstm.functional.activations import ACTIVATIONS
from convlstm.functional.convlstm import convlstm_backward, convlstm_forward
from convlstm.functional.recurrence import dropout_masks

MASK = np.array([[True, False, True], [True, True, True]])


def _layer(cls=ConvLSTM2D, scale=0.5, **options):
    rng = np.random.default_rng(11)
    layer = cls(2, 2, dtype="float64", seed=0, peephole=True, **options)
    layer.set_weights([rng.uniform(-scale, scale, w.shape) for w in layer.get_weights()])
    return layer


CASES = {
    "2d": (ConvLSTM2D, (2, 3, 4, 5, 2), {}),
    "2d_stack_state_backwards": (ConvLSTM2D, (2, 3, 4, 4, 2),
                                 {"num_layers": 2, "return_state": True, "go_backwards": True}),
    "2d_relu_hard_sigmoid": (ConvLSTM2D, (2, 3, 4, 4, 2),
                             {"activation": "softsign", "recurrent_activation": "hard_sigmoid"}),
    "2d_no_bias_last": (ConvLSTM2D, (2, 3, 4, 4, 2),
                        {"use_bias": False, "return_sequences": False}),
    "1d_valid_stride": (ConvLSTM1D, (2, 3, 7, 2), {"padding": "valid", "stride": 2}),
    "3d_channels_first": (ConvLSTM3D, (2, 3, 2, 2, 3, 3),
                          {"data_format": "channels_first", "kernel_size": (1, 2, 2)}),
}


@pytest.mark.parametrize(("cls", "shape", "options"), CASES.values(), ids=CASES.keys())
def test_peephole_gradients(cls, shape, options):
    x = np.random.default_rng(3).normal(size=shape)
    errors = check_gradients(_layer(cls, **options), x, mask=MASK)
    assert "0/peephole" in errors


def test_peephole_with_dropout_masks_through_the_kernel():
    rng = np.random.default_rng(8)
    B, T, W, C, F = 2, 3, 5, 2, 2
    x = rng.normal(size=(B, T, W, C))
    kernel, recurrent_kernel = (rng.uniform(-0.5, 0.5, (3, n, 4 * F)) for n in (C, F))
    bias, peephole = rng.uniform(-0.5, 0.5, 4 * F), rng.uniform(-0.8, 0.8, (3, F))
    h0, c0 = rng.normal(size=(2, B, W, F))
    dtype = np.dtype("float64")
    options = {"activation": ACTIVATIONS["tanh"], "recurrent_activation": ACTIVATIONS["sigmoid"],
               "peephole": peephole}
    masks = {"input_masks": dropout_masks(rng, 0.3, (B, W, C), dtype),
             "recurrent_masks": dropout_masks(rng, 0.4, (B, W, F), dtype)}
    geometry = {"stride": (1,), "pads": ((1, 1),), "dilation": (1,)}
    upstream, d_h, d_c = rng.normal(size=(B, T, W, F)), *rng.normal(size=(2, B, W, F))

    def scalar():
        outputs, h, c, _ = convlstm_forward(x, kernel, recurrent_kernel, bias, h0, c0,
                                            **geometry, **options, **masks)
        return float(np.sum(outputs * upstream) + np.sum(h * d_h) + np.sum(c * d_c))

    *_, cache = convlstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, **geometry,
                                 **options, **masks, training=True)
    d_x, d_h0, d_c0, grads = convlstm_backward(upstream, d_h, d_c, cache, kernel,
                                               recurrent_kernel, use_bias=True, **options)
    for analytic, array in [(d_x, x), (d_h0, h0), (d_c0, c0), (grads["peephole"], peephole),
                            (grads["kernel"], kernel), (grads["bias"], bias)]:
        assert relative_error(analytic, numerical_gradient(scalar, array)) < TOLERANCE


def test_zero_peepholes_compute_the_plain_layer():
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 5, 2)).astype(np.float32)
    plain = ConvLSTM2D(2, 3, num_layers=2, seed=4, return_state=True)
    peephole = ConvLSTM2D(2, 3, num_layers=2, seed=4, return_state=True, peephole=True)
    weights = peephole.get_weights()
    assert [w.shape for w in weights] == [(3, 3, 2, 12), (3, 3, 3, 12), (12,), (3, 3),
                                          (3, 3, 3, 12), (3, 3, 3, 12), (12,), (3, 3)]
    assert not weights[3].any()  # "zeros" by default
    for name in ("kernel", "recurrent_kernel", "bias"):  # same draws: the peephole comes last
        np.testing.assert_array_equal(peephole.cells[0].params[name],
                                      plain.cells[0].params[name])
    plain.set_weights([w for w in weights if w.shape != (3, 3)])
    for a, b in zip(plain(x), peephole(x)):
        np.testing.assert_array_equal(a, b)


def test_a_peephole_changes_exactly_its_gate():
    # p_o only: i, f and c are those of the plain layer, so c_t is unchanged and h_t differs.
    x = np.random.default_rng(0).normal(size=(1, 2, 4, 4, 2))
    layer = ConvLSTM2D(2, 2, seed=1, return_state=True, peephole=True, dtype="float64")
    plain = ConvLSTM2D(2, 2, seed=1, return_state=True, dtype="float64")
    layer.cells[0].params["peephole"][2] = 0.7
    _, h, c = layer(x[:, :1])
    _, h_plain, c_plain = plain(x[:, :1])
    np.testing.assert_allclose(c, c_plain, rtol=0, atol=1e-15)
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    o_plain = h_plain / np.tanh(c_plain)
    expected_o = sigmoid(np.log(o_plain / (1 - o_plain)) + 0.7 * c)
    np.testing.assert_allclose(h, expected_o * np.tanh(c), rtol=1e-9)


def test_initializer_config_and_errors():
    layer = ConvLSTM2D(1, 2, peephole=True, peephole_initializer="ones", seed=0)
    np.testing.assert_array_equal(layer.get_weights()[3], np.ones((3, 2)))
    config = layer.get_config()
    assert (config["peephole"], config["peephole_initializer"]) == (True, "ones")
    assert ConvLSTM2D.from_config(config).get_config() == config
    assert ConvLSTM2DCell(1, 2, peephole=True).weight_shapes["peephole"] == (3, 2)
    with pytest.raises(TypeError, match=r"^ConvLSTM2D: expected peephole to be True or False"):
        ConvLSTM2D(1, 2, peephole=1)
    with pytest.raises(ValueError, match=r"^ConvLSTM3D: .*peephole_initializer"):
        ConvLSTM3D(1, 2, peephole=True, peephole_initializer="nope")


def test_native_file_keeps_the_peepholes(tmp_path):
    model = Sequential([ConvLSTM1D(1, 2, peephole=True, peephole_initializer="ones", seed=3)],
                       input_shape=(3, 6, 1))
    restored = load(model.save(tmp_path / "peephole.npz"))
    x = np.random.default_rng(0).random((2, 3, 6, 1)).astype(np.float32)
    assert restored.layers[0].peephole
    np.testing.assert_array_equal(restored.predict(x), model.predict(x))

"""ConvLSTM1D, ConvLSTM3D and MaxPooling1D: gradients, the 2-D layer on a unit axis, configs,
weights, errors and the native file."""

import inspect

import numpy as np
import pytest
from gradcheck import check_gradients

from convlstm import (
    ConvLSTM1D,
    ConvLSTM1DCell,
    ConvLSTM2D,
    ConvLSTM3D,
    ConvLSTM3DCell,
    Flatten,
    MaxPooling1D,
    Sequential,
    load,
)
from convlstm.registry import deserialize, serialize


def _layer(cls, in_channels=2, filters=2, scale=0.5, **options):
    rng = np.random.default_rng(11)
    layer = cls(in_channels, filters, dtype="float64", seed=0, **options)
    layer.set_weights([rng.uniform(-scale, scale, w.shape) for w in layer.get_weights()])
    return layer


def _x(shape, seed=3):
    return np.random.default_rng(seed).normal(size=shape)


MASK = np.array([[True, False, True], [True, True, True]])

OPTIONS_1D = {
    "default": {},
    "valid_stride2": {"padding": "valid", "stride": 2, "kernel_size": 2},
    "dilation2": {"dilation": 2},
    "int_padding": {"padding": 1, "kernel_size": 2},
    "stack_leaky_state": {"num_layers": 2, "leaky_relu_slope": 0.2, "return_state": True},
    "last_backwards_no_bias": {"return_sequences": False, "go_backwards": True,
                               "use_bias": False},
    "channels_first_hard_sigmoid": {"data_format": "channels_first",
                                    "recurrent_activation": "hard_sigmoid"},
}


@pytest.mark.parametrize("options", OPTIONS_1D.values(), ids=OPTIONS_1D.keys())
def test_conv_lstm_1d_gradients(options):
    layer = _layer(ConvLSTM1D, **options)
    shape = (2, 3, 2, 7) if options.get("data_format") == "channels_first" else (2, 3, 7, 2)
    check_gradients(layer, _x(shape), mask=MASK)


OPTIONS_3D = {
    "default": {"kernel_size": (1, 2, 3)},
    "valid_stride": {"padding": "valid", "stride": (1, 2, 1), "kernel_size": 2},
    "dilation_return_state": {"dilation": (1, 1, 2), "kernel_size": (1, 3, 2),
                              "return_state": True},
    "explicit_padding_stack": {"padding": (0, 1, 0), "kernel_size": (1, 3, 1),
                               "num_layers": 2},
    "channels_first_backwards": {"data_format": "channels_first", "go_backwards": True,
                                 "kernel_size": (2, 1, 2)},
}


@pytest.mark.parametrize("options", OPTIONS_3D.values(), ids=OPTIONS_3D.keys())
def test_conv_lstm_3d_gradients(options):
    layer = _layer(ConvLSTM3D, **options)
    shape = (2, 3, 2, 2, 3, 3) if options.get("data_format") == "channels_first" else (
        2, 3, 2, 3, 3, 2)
    check_gradients(layer, _x(shape), mask=MASK)


def test_1d_and_3d_compute_the_2d_layer_on_a_unit_axis():
    x = _x((2, 3, 1, 6, 2))  # frames of height 1
    flat = _layer(ConvLSTM2D, kernel_size=(1, 3), stride=(1, 2), num_layers=2,
                  return_state=True)
    one = ConvLSTM1D(2, 2, 3, stride=2, num_layers=2, return_state=True, dtype="float64")
    three = ConvLSTM3D(2, 2, (1, 1, 3), stride=(1, 1, 2), num_layers=2, return_state=True,
                       dtype="float64")
    weights = flat.get_weights()
    one.set_weights([w[0] for w in weights[:2]] + [weights[2]] + [w[0] for w in weights[3:5]]
                    + [weights[5]])
    three.set_weights([w[None] if w.ndim > 1 else w for w in weights])
    expected = flat(x, mask=MASK)
    for actual in (one(x[:, :, 0], mask=MASK), three(x[:, :, None], mask=MASK)):
        for a, e in zip(actual, expected):
            np.testing.assert_allclose(a.reshape(e.shape), e, rtol=0, atol=1e-12)


def test_weights_in_keras_layout_and_config_round_trip():
    layer = ConvLSTM3D(2, 4, (1, 2, 3), num_layers=2, seed=1)
    assert [w.shape for w in layer.get_weights()] == [
        (1, 2, 3, 2, 16), (1, 2, 3, 4, 16), (16,), (1, 2, 3, 4, 16), (1, 2, 3, 4, 16), (16,)]
    config = layer.get_config()
    assert config["kernel_size"] == [1, 2, 3] and config["stride"] == [1, 1, 1]
    assert list(config) == list(inspect.signature(ConvLSTM3D).parameters)
    rebuilt = deserialize(serialize(layer))
    assert type(rebuilt) is ConvLSTM3D and rebuilt.get_config() == config
    one = ConvLSTM1D(2, 3, 5, "valid", 2, seed=1)
    assert [w.shape for w in one.get_weights()] == [(5, 2, 12), (5, 3, 12), (12,)]
    assert ConvLSTM1D.from_config(one.get_config()).get_config() == one.get_config()
    assert [type(cell) for cell in layer.cells] == [ConvLSTM3DCell] * 2
    assert type(one.cells[0]) is ConvLSTM1DCell


def test_cells_step_like_the_layer():
    layer = _layer(ConvLSTM1D, return_state=True)
    x = _x((2, 1, 5, 2))
    output, _, c = layer(x)
    step, (h_step, c_step) = layer.cells[0](x[:, 0])
    np.testing.assert_allclose(step, output[:, 0], atol=1e-12)
    np.testing.assert_array_equal(h_step, step)
    np.testing.assert_allclose(c_step, c, atol=1e-12)


def test_compute_output_shape_is_the_real_shape():
    layer = ConvLSTM3D(1, 2, 2, "valid", (1, 2, 2), return_state=True)
    x = np.zeros((2, 3, 4, 5, 6, 1), np.float32)
    assert layer.compute_output_shape(x.shape) == tuple(a.shape for a in layer(x))
    layer = ConvLSTM1D(1, 2, data_format="channels_first", return_sequences=False)
    assert layer.compute_output_shape((2, 3, 1, 9)) == layer(np.zeros((2, 3, 1, 9))).shape


def test_errors_name_the_layer_the_argument_and_the_rank():
    with pytest.raises(TypeError, match=r"^ConvLSTM1D: expected kernel_size to be an int >= 1 "
                                        r"or a tuple of 1 such ints; got \(3, 3\)"):
        ConvLSTM1D(1, 2, (3, 3))
    with pytest.raises(TypeError, match=r"^ConvLSTM3D: expected stride .* tuple of 3"):
        ConvLSTM3D(1, 2, stride=(1, 2))
    with pytest.raises(ValueError, match=r"^ConvLSTM1D.forward: expected x of shape "
                                         r"\(batch, time, width, 1\); got \(2, 3, 4, 5, 1\)"):
        ConvLSTM1D(1, 2)(np.zeros((2, 3, 4, 5, 1)))
    with pytest.raises(ValueError, match=r"^ConvLSTM3D.forward: expected x of shape \(batch, "
                                         r"time, 1, depth, height, width\)"):
        ConvLSTM3D(1, 2, data_format="channels_first")(np.zeros((2, 3, 4, 5, 1)))
    with pytest.raises(ValueError, match=r"^ConvLSTM3D.compute_output_shape: expected an "
                                         r"input_shape of \(batch, time, depth, height, width, "
                                         r"1\); got \(None, 3, 4, 4, 1\)"):
        ConvLSTM3D(1, 2).compute_output_shape((None, 3, 4, 4, 1))
    with pytest.raises(TypeError, match=r"^ConvLSTM1DCell: expected dilation"):
        ConvLSTM1DCell(1, 2, dilation=(1, 1))
    with pytest.raises(TypeError, match=r"^MaxPooling1D: expected pool_size"):
        MaxPooling1D((2, 2))


def test_max_pooling_1d_values_gradients_and_config():
    layer = MaxPooling1D(3, 2, "same")
    x = np.array([[[1.0], [5.0], [2.0], [0.0], [7.0]]])
    np.testing.assert_array_equal(layer(x)[0, :, 0], [5.0, 5.0, 7.0])
    tie_free = np.random.default_rng(0).permutation(42).reshape(2, 7, 3) * 0.01
    check_gradients(MaxPooling1D(2, 1, "valid", "channels_first"), tie_free)
    check_gradients(layer, tie_free)
    assert layer.get_config() == {"pool_size": [3], "stride": [2], "padding": "same",
                                  "data_format": "channels_last"}
    assert MaxPooling1D().compute_output_shape((None, 9, 4)) == (None, 4, 4)


def test_native_file_round_trip(tmp_path):
    model = Sequential([ConvLSTM1D(2, 3, num_layers=2, seed=1, return_sequences=False),
                        MaxPooling1D(2), Flatten()], input_shape=(4, 8, 2))
    x = _x((2, 4, 8, 2)).astype(np.float32)
    restored = load(model.save(tmp_path / "model.npz"))
    assert restored.get_config() == model.get_config()
    np.testing.assert_array_equal(restored.predict(x), model.predict(x))
    volume = Sequential([ConvLSTM3D(1, 2, (1, 2, 2), seed=2)], input_shape=(2, 3, 4, 4, 1))
    again = load(volume.save(tmp_path / "volume.npz"))
    x = _x((1, 2, 3, 4, 4, 1)).astype(np.float32)
    np.testing.assert_array_equal(again.predict(x), volume.predict(x))

"""Contracts every user relies on: the seed API, configs, shapes, states, and untouched inputs."""

import json

import numpy as np
import pytest

from convlstm import ConvLSTM2D, ConvLSTM2DCell, MaxPooling3D


def _rng():
    return np.random.default_rng(7)


def test_seed_example_shapes():
    conv_lstm = ConvLSTM2D(1, 32, 3, 1, 1, 0.2, 1)
    output = conv_lstm.forward(np.random.default_rng(0).random((1, 10, 32, 32, 1)))
    assert output.shape == (1, 10, 32, 32, 32)
    assert output.dtype == np.float32
    pooled = MaxPooling3D((2, 2, 2), (2, 2, 2)).forward(output)
    assert pooled.shape == (1, 5, 16, 16, 32)
    np.testing.assert_array_equal(pooled[0, 0, 0, 0], output[0, :2, :2, :2].max(axis=(0, 1, 2)))


def test_seed_positional_order_and_defaults():
    layer = ConvLSTM2D(1, 32, 3, 1, 1, 0.2, 1)
    assert (layer.in_channels, layer.out_channels, layer.kernel_size) == (1, 32, (3, 3))
    assert (layer.padding, layer.stride, layer.leaky_relu_slope, layer.num_layers) == (
        (1, 1),
        (1, 1),
        0.2,
        1,
    )
    default = ConvLSTM2D(2, 4)
    assert (default.kernel_size, default.padding, default.stride) == ((3, 3), "same", (1, 1))
    assert default.leaky_relu_slope is None and default.num_layers == 1
    assert default.return_sequences and not default.return_state


def test_call_is_forward():
    layer = ConvLSTM2D(2, 3, seed=1)
    x = _rng().normal(size=(2, 3, 5, 5, 2))
    np.testing.assert_array_equal(layer(x), layer.forward(x))


CONFIGS = [
    {},
    {"kernel_size": (3, 2), "padding": "VALID", "stride": 2},
    {"padding": (2, 0), "dilation": 2, "leaky_relu_slope": 0.1, "num_layers": 2},
    {"activation": "relu", "recurrent_activation": "hard_sigmoid", "use_bias": False},
    {"return_sequences": False, "return_state": True, "go_backwards": True},
    {"stateful": True, "data_format": "channels_first", "dtype": "float64", "seed": 3},
    {
        "kernel_initializer": "he_normal",
        "recurrent_initializer": "glorot_uniform",
        "bias_initializer": "ones",
        "unit_forget_bias": False,
    },
]


@pytest.mark.parametrize("options", CONFIGS)
def test_config_round_trip(options):
    layer = ConvLSTM2D(2, 3, **options)
    config = layer.get_config()
    assert json.loads(json.dumps(config)) == config
    rebuilt = ConvLSTM2D.from_config(config)
    assert rebuilt.get_config() == config
    assert repr(rebuilt) == repr(layer)


def test_cell_and_pooling_config_round_trip():
    cell = ConvLSTM2DCell(2, 3, (1, 3), "valid", 2, activation="softsign", seed=4)
    assert ConvLSTM2DCell.from_config(json.loads(json.dumps(cell.get_config()))).get_config() == (
        cell.get_config()
    )
    pool = MaxPooling3D(3, (1, 2, 2), "same", "channels_first")
    assert MaxPooling3D.from_config(json.loads(json.dumps(pool.get_config()))).get_config() == (
        pool.get_config()
    )


def test_same_seed_same_weights_and_forget_bias():
    first, second = ConvLSTM2D(2, 3, num_layers=2, seed=5), ConvLSTM2D(2, 3, num_layers=2, seed=5)
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)
    other = ConvLSTM2D(2, 3, num_layers=2, seed=6)
    assert not np.array_equal(first.get_weights()[0], other.get_weights()[0])
    assert not np.array_equal(first.get_weights()[0][:, :, :, :], first.get_weights()[3][:, :, :2])
    bias = first.get_weights()[2]
    np.testing.assert_array_equal(bias, np.r_[np.zeros(3), np.ones(3), np.zeros(6)])


def test_initializer_statistics():
    layer = ConvLSTM2D(4, 8, seed=0)
    kernel, recurrent_kernel, _ = layer.get_weights()
    limit = np.sqrt(6 / (9 * 4 + 9 * 32))
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.9 * limit
    flat = recurrent_kernel.reshape(-1, 32).astype(np.float64)
    np.testing.assert_allclose(flat.T @ flat, np.eye(32), atol=1e-5)


@pytest.mark.parametrize("options", CONFIGS)
def test_declared_output_shape_is_real_shape(options):
    options = {**options, "stateful": False}
    layer = ConvLSTM2D(2, 3, **options)
    shape = (2, 3, 2, 9, 12) if options.get("data_format") == "channels_first" else (2, 3, 9, 12, 2)
    result = layer.forward(_rng().normal(size=shape))
    declared = layer.compute_output_shape(shape)
    actual = tuple(r.shape for r in result) if isinstance(result, tuple) else result.shape
    assert declared == actual


@pytest.mark.parametrize(
    ("pool", "stride", "padding"), [(2, None, "valid"), (3, 2, "same"), ((1, 2, 3), 1, "valid")]
)
def test_pooling_declared_output_shape(pool, stride, padding):
    layer = MaxPooling3D(pool, stride, padding)
    x = _rng().normal(size=(2, 5, 7, 6, 3))
    assert layer.compute_output_shape(x.shape) == layer.forward(x).shape


def test_inputs_are_never_modified():
    rng = _rng()
    x = rng.normal(size=(2, 4, 5, 5, 2)).astype(np.float32)
    h0, c0 = rng.normal(size=(2, 2, 5, 5, 3)).astype(np.float32)
    mask = np.array([[True, False, True, True], [False, True, True, False]])
    copies = [a.copy() for a in (x, h0, c0, mask)]
    for array in (x, h0, c0, mask):
        array.setflags(write=False)
    layer = ConvLSTM2D(2, 3, leaky_relu_slope=0.2, return_state=True, seed=0)
    layer.forward(x, initial_state=[h0, c0], mask=mask)
    MaxPooling3D(2).forward(x)
    for array, copy in zip((x, h0, c0, mask), copies):
        np.testing.assert_array_equal(array, copy)


def test_cell_step_loop_equals_layer():
    rng = _rng()
    layer = ConvLSTM2D(
        2, 3, kernel_size=(3, 2), padding="valid", stride=(1, 2), return_state=True, seed=2
    )
    cell = ConvLSTM2DCell(2, 3, (3, 2), "valid", (1, 2))
    cell.set_weights(layer.get_weights())
    x = rng.normal(size=(2, 4, 6, 7, 2)).astype(np.float32)
    states = None
    outputs = []
    for t in range(x.shape[1]):
        h, states = cell(x[:, t], states)
        outputs.append(h)
    expected, expected_h, expected_c = layer.forward(x)
    np.testing.assert_allclose(np.stack(outputs, axis=1), expected, atol=1e-6)
    np.testing.assert_allclose(states[0], expected_h, atol=1e-6)
    np.testing.assert_allclose(states[1], expected_c, atol=1e-6)


def test_stateful_calls_continue_the_sequence():
    rng = _rng()
    x = rng.normal(size=(2, 6, 5, 5, 2))
    whole = ConvLSTM2D(2, 3, num_layers=2, dtype="float64", seed=3)
    stateful = ConvLSTM2D(2, 3, num_layers=2, dtype="float64", stateful=True, seed=3)
    expected = whole.forward(x)
    np.testing.assert_allclose(
        np.concatenate([stateful.forward(x[:, :4]), stateful.forward(x[:, 4:])], axis=1),
        expected,
        atol=1e-12,
    )
    assert len(stateful.states) == 2
    stateful.reset_states()
    assert stateful.states is None
    np.testing.assert_allclose(stateful.forward(x[:, :4]), expected[:, :4], atol=1e-12)


def test_reset_states_sets_states_like_initial_state():
    rng = _rng()
    x = rng.normal(size=(2, 3, 5, 5, 2))
    h0, c0 = rng.normal(size=(2, 2, 5, 5, 3))
    layer = ConvLSTM2D(2, 3, dtype="float64", stateful=True, seed=3)
    expected = layer.forward(x, initial_state=[h0, c0])
    layer.reset_states([[h0, c0]])
    np.testing.assert_allclose(layer.forward(x), expected, atol=1e-12)


def test_final_states_of_every_layer():
    layer = ConvLSTM2D(2, 3, num_layers=3, return_state=True, seed=1)
    assert layer.final_states is None
    _, h, c = layer.forward(_rng().normal(size=(2, 3, 5, 5, 2)))
    finals = layer.final_states
    assert len(finals) == 3
    np.testing.assert_array_equal(finals[-1][0], h)
    np.testing.assert_array_equal(finals[-1][1], c)
    assert not np.allclose(finals[0][0], finals[2][0])


def test_go_backwards_is_reversed_input():
    x = _rng().normal(size=(2, 4, 5, 5, 2))
    forwards = ConvLSTM2D(2, 3, num_layers=2, seed=1)
    backwards = ConvLSTM2D(2, 3, num_layers=2, go_backwards=True, seed=1)
    np.testing.assert_allclose(backwards.forward(x), forwards.forward(x[:, ::-1]), atol=1e-6)


def test_return_sequences_false_is_last_step():
    x = _rng().normal(size=(2, 4, 5, 5, 2))
    full = ConvLSTM2D(2, 3, seed=1).forward(x)
    np.testing.assert_array_equal(
        ConvLSTM2D(2, 3, return_sequences=False, seed=1).forward(x), full[:, -1]
    )


def test_channels_first_equals_channels_last():
    x = _rng().normal(size=(2, 3, 6, 5, 2))
    last = ConvLSTM2D(2, 3, stride=2, return_state=True, seed=1)
    first = ConvLSTM2D(2, 3, stride=2, return_state=True, data_format="channels_first", seed=1)
    out_last, h_last, _ = last.forward(x)
    out_first, h_first, _ = first.forward(np.moveaxis(x, -1, 2))
    np.testing.assert_allclose(np.moveaxis(out_first, 2, -1), out_last, atol=1e-6)
    np.testing.assert_allclose(np.moveaxis(h_first, 1, -1), h_last, atol=1e-6)


def test_integer_input_is_cast_and_nan_propagates():
    layer = ConvLSTM2D(1, 2, seed=1)
    ints = np.arange(2 * 2 * 4 * 4).reshape(2, 2, 4, 4, 1) % 3
    np.testing.assert_array_equal(layer.forward(ints), layer.forward(ints.astype(np.float32)))
    x = np.zeros((1, 2, 4, 4, 1))
    x[0, 0, 1, 1, 0] = np.nan
    output = layer.forward(x)
    assert np.isnan(output[0, 0, 1, 1]).all() and not np.isnan(output[0, 0, 3, 3]).any()


def test_float64_layer_keeps_float64():
    layer = ConvLSTM2D(1, 2, dtype="float64", return_state=True)
    output, h, c = layer.forward(np.ones((1, 2, 4, 4, 1), dtype=np.float32))
    assert output.dtype == h.dtype == c.dtype == np.float64
    assert all(w.dtype == np.float64 for w in layer.get_weights())


def test_callable_activation():
    x = _rng().normal(size=(1, 2, 4, 4, 1))
    named = ConvLSTM2D(1, 2, activation="softsign", seed=1)
    custom = ConvLSTM2D(1, 2, activation=lambda v: v / (1 + np.abs(v)), seed=1)
    np.testing.assert_allclose(custom.forward(x), named.forward(x), atol=1e-7)
    with pytest.raises(TypeError, match="cannot be serialised"):
        custom.get_config()


def test_pooling_ties_and_padding_never_win():
    x = -np.ones((1, 3, 3, 3, 1))
    pooled = MaxPooling3D(2, 2, "same").forward(x)
    assert pooled.shape == (1, 2, 2, 2, 1)
    np.testing.assert_array_equal(pooled, -1.0)


def test_a_stack_holds_params_and_grads_like_every_layer():
    # README: backward fills layer.grads, same names and shapes as layer.params; a ConvLSTM2D's
    # own dicts are empty and its cells hold the weights.
    layer = ConvLSTM2D(1, 2, num_layers=2, seed=0)
    assert layer.params == {} and layer.grads == {}
    x = _rng().normal(size=(2, 3, 4, 4, 1))
    layer.backward(np.ones_like(layer.forward(x, training=True)))
    for cell in layer.sublayers():
        assert set(cell.grads) == set(cell.params) == {"kernel", "recurrent_kernel", "bias"}
        assert all(cell.grads[k].shape == cell.params[k].shape for k in cell.params)
    assert [name for name, _, _ in layer.named_params()] == [
        f"{k}/{w}" for k in range(2) for w in ("kernel", "recurrent_kernel", "bias")
    ]

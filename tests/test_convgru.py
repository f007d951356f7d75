"""ConvGRU1D/2D/3D: the kernel against the loop oracle (forward and BPTT), finite differences
for every option, the cells, configs, weights, errors and files."""

import inspect

import numpy as np
import pytest
from gradcheck import TOLERANCE, check_gradients, numerical_gradient, relative_error

from convlstm import (
    Bidirectional,
    ConvGRU1D,
    ConvGRU1DCell,
    ConvGRU2D,
    ConvGRU2DCell,
    ConvGRU3D,
    Sequential,
    load,
)
from convlstm.functional.activations import ACTIVATIONS
from convlstm.functional.convgru import convgru_backward, convgru_forward
from convlstm.functional.recurrence import dropout_masks
from convlstm.keras import to_keras_config

from reference import ConvGRUTape, convgru_reference, convgru_reference_backward, hard_sigmoid

MASK = np.array([[True, False, True, True], [True, True, False, True], [False, True, True, True]])
CLASSES = {1: ConvGRU1D, 2: ConvGRU2D, 3: ConvGRU3D}


def _layer(rank=2, in_channels=2, filters=2, seed=0, **options):
    layer = CLASSES[rank](in_channels, filters, dtype="float64", **options)
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.uniform(-0.6, 0.6, w.shape) for w in layer.get_weights()])
    return layer


def _x(shape, seed=3):
    return np.random.default_rng(seed).normal(size=shape)


REFERENCE_CASES = {
    "2d_same": ((5, 4), {}),
    "2d_reset_before_valid_stride": ((6, 5), {"reset_after": False, "padding": "valid",
                                              "stride": 2, "kernel_size": (2, 3)}),
    "2d_hard_sigmoid_dilation_backwards": ((6, 6), {"recurrent_activation": "hard_sigmoid",
                                                    "dilation": 2, "go_backwards": True}),
    "2d_no_bias_pad": ((4, 5), {"use_bias": False, "padding": (1, 0), "reset_after": False}),
    "1d_stride": ((7,), {"stride": 2}),
    "1d_reset_before_backwards": ((6,), {"reset_after": False, "go_backwards": True}),
    "3d": ((3, 4, 3), {"kernel_size": (1, 3, 2)}),
}


@pytest.mark.parametrize(("size", "options"), REFERENCE_CASES.values(),
                         ids=REFERENCE_CASES.keys())
def test_against_the_loop_oracle(size, options):
    """Forward and BPTT (from nonzero initial states and final-state gradients, masked)."""
    rng = np.random.default_rng(1234)
    layer = _layer(len(size), return_state=True, **options)
    x = rng.normal(size=(3, 4, *size, 2))
    out_size = layer.cells[0].options.output_spatial(size)
    h0 = rng.normal(size=(3, *out_size, 2))
    output, h = layer.forward(x, initial_state=[h0], mask=MASK, training=True)
    d_output, d_h = rng.normal(size=output.shape), rng.normal(size=h.shape)
    d_x = layer.backward(d_output, d_h)
    (d_h0,), = layer.state_grads

    weights = layer.get_weights()
    tape = ConvGRUTape(x, weights[0], weights[1])
    cell = layer.cells[0].options
    expected_output, expected_h = convgru_reference(
        x, weights[0], weights[1], weights[2] if layer.use_bias else None,
        reset_after=layer.reset_after, stride=cell.stride, pads=cell.pads(size),
        dilation=cell.dilation, h0=h0, mask=MASK, go_backwards=layer.go_backwards, tape=tape,
        **({"recurrent_activation": hard_sigmoid}
           if options.get("recurrent_activation") == "hard_sigmoid" else {}))
    np.testing.assert_allclose(output, expected_output, rtol=0, atol=1e-10)
    np.testing.assert_allclose(h, expected_h, rtol=0, atol=1e-10)
    expected = convgru_reference_backward(tape, d_output, d_h)
    actual = {"x": d_x, "h0": d_h0, **layer.cells[0].grads}
    assert set(actual) == set(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(actual[name], value, rtol=0, atol=1e-10, err_msg=name)


GRADIENT_CASES = {
    "2d_stack_leaky_state": (2, (2, 4, 4, 3, 2), {"num_layers": 2, "leaky_relu_slope": 0.2,
                                                  "return_state": True}),
    "2d_reset_before_last": (2, (2, 4, 3, 3, 2), {"reset_after": False,
                                                  "return_sequences": False}),
    "2d_channels_first_stride": (2, (2, 4, 2, 5, 4), {"data_format": "channels_first",
                                                      "stride": 2}),
    "2d_activations": (2, (2, 4, 3, 3, 2), {"activation": "softsign",
                                            "recurrent_activation": "hard_sigmoid"}),
    "1d_stack_backwards": (1, (2, 4, 5, 2), {"num_layers": 2, "go_backwards": True}),
    "3d_reset_before_state": (3, (2, 4, 2, 3, 2, 2), {"reset_after": False,
                                                      "return_state": True}),
}


@pytest.mark.parametrize(("rank", "shape", "options"), GRADIENT_CASES.values(),
                         ids=GRADIENT_CASES.keys())
def test_finite_differences(rank, shape, options):
    check_gradients(_layer(rank, **options), _x(shape), mask=MASK[:2])


@pytest.mark.parametrize("reset_after", [True, False])
def test_dropout_masks_through_the_kernel(reset_after):
    rng = np.random.default_rng(8)
    B, T, W, C, F = 2, 3, 5, 2, 2
    x = rng.normal(size=(B, T, W, C))
    kernel, recurrent_kernel = (rng.uniform(-0.5, 0.5, (3, n, 3 * F)) for n in (C, F))
    bias = rng.uniform(-0.5, 0.5, (2, 3 * F) if reset_after else 3 * F)
    h0 = rng.normal(size=(B, W, F))
    dtype = np.dtype("float64")
    options = {"activation": ACTIVATIONS["tanh"], "recurrent_activation": ACTIVATIONS["sigmoid"]}
    run = {"stride": (1,), "pads": ((1, 1),), "dilation": (1,), "reset_after": reset_after,
           "input_masks": dropout_masks(rng, 0.3, (B, W, C), dtype, 3),
           "recurrent_masks": dropout_masks(rng, 0.4, (B, W, F), dtype, 3), **options}
    upstream, d_h = rng.normal(size=(B, T, W, F)), rng.normal(size=(B, W, F))

    def scalar():
        outputs, h, _ = convgru_forward(x, kernel, recurrent_kernel, bias, h0, **run)
        return float(np.sum(outputs * upstream) + np.sum(h * d_h))

    *_, cache = convgru_forward(x, kernel, recurrent_kernel, bias, h0, training=True, **run)
    d_x, d_h0, grads = convgru_backward(upstream, d_h, cache, kernel, recurrent_kernel,
                                        use_bias=True, **options)
    for analytic, array in [(d_x, x), (d_h0, h0), (grads["kernel"], kernel),
                            (grads["recurrent_kernel"], recurrent_kernel), (grads["bias"], bias)]:
        assert relative_error(analytic, numerical_gradient(scalar, array)) < TOLERANCE


def test_layer_dropout_is_per_call_and_training_only():
    layer = _layer(dropout=0.3, recurrent_dropout=0.2, seed=1)
    x = _x((2, 3, 4, 4, 2))
    first, second = layer(x, training=True), layer(x, training=True)
    assert not np.allclose(first, second)
    plain = _layer(seed=1)
    np.testing.assert_array_equal(layer(x), plain(x))


def test_weights_config_signature_and_cells():
    layer = ConvGRU2D(2, 4, (1, 3), num_layers=2, seed=3)
    assert [w.shape for w in layer.get_weights()] == [
        (1, 3, 2, 12), (1, 3, 4, 12), (2, 12), (1, 3, 4, 12), (1, 3, 4, 12), (2, 12)]
    assert [w.shape for w in ConvGRU1D(2, 4, reset_after=False).get_weights()] == [
        (3, 2, 12), (3, 4, 12), (12,)]
    config = layer.get_config()
    assert list(config) == list(inspect.signature(ConvGRU2D).parameters)
    assert config["reset_after"] is True and "unit_forget_bias" not in config
    assert ConvGRU2D.from_config(config).get_config() == config
    for name in ("kernel", "recurrent_kernel", "bias"):  # cell 0 continues no other draws
        np.testing.assert_array_equal(layer.cells[0].params[name],
                                      ConvGRU2DCell(2, 4, (1, 3), seed=3).params[name])
    assert not layer.cells[0].params["bias"].any()  # zeros: a GRU has no forget bias


def test_the_cell_steps_like_the_layer():
    layer = _layer(1, return_state=True)
    x = _x((2, 1, 5, 2))
    output, h = layer(x)
    step, (h_step,) = layer.cells[0](x[:, 0])
    np.testing.assert_allclose(step, output[:, 0], atol=1e-12)
    np.testing.assert_allclose(h_step, h, atol=1e-12)
    assert isinstance(layer.cells[0], ConvGRU1DCell)


def test_state_gradients_and_stateful():
    layer = _layer(return_state=True, num_layers=2)
    x = _x((2, 3, 3, 3, 2))
    states = [[_x((2, 3, 3, 2), seed=5)], [_x((2, 3, 3, 2), seed=6)]]
    outputs = layer(x, initial_state=states)
    upstream = [np.random.default_rng(2).normal(size=o.shape) for o in outputs]
    layer.forward(x, initial_state=states, training=True)
    layer.backward(*upstream)

    def scalar():
        return sum(float(np.sum(o * u)) for o, u in zip(layer(x, initial_state=states),
                                                         upstream))

    for (state,), (d_state,) in zip(states, layer.state_grads):
        assert relative_error(d_state, numerical_gradient(scalar, state)) < TOLERANCE
    stateful = _layer(stateful=True)
    first = stateful(x)
    continued = stateful(x)
    np.testing.assert_allclose(continued, _layer()(x, initial_state=[first[:, -1]]),
                               rtol=0, atol=1e-12)


def test_errors():
    with pytest.raises(TypeError, match=r"^ConvGRU2D: expected reset_after to be True or False"):
        ConvGRU2D(1, 2, reset_after="yes")
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'peephole'"):
        ConvGRU2D(1, 2, peephole=True)
    with pytest.raises(TypeError, match=r"^ConvGRU3D: expected kernel_size .* tuple of 3"):
        ConvGRU3D(1, 2, (3, 3))
    layer = ConvGRU2D(1, 2)
    with pytest.raises(ValueError, match=r"^ConvGRU2D.forward: expected initial_state to be "
                                         r"\[h\]; got 2 items"):
        layer(np.zeros((1, 2, 3, 3, 1)), initial_state=[np.zeros((1, 3, 3, 2))] * 2)
    layer.forward(np.zeros((1, 2, 3, 3, 1)), training=True)
    with pytest.raises(ValueError, match=r"^ConvGRU2D.backward: expected at most 1 state "
                                         r"gradients \(d_h\); got 2"):
        layer.backward(np.zeros((1, 2, 3, 3, 2)), None, None)
    with pytest.raises(ValueError, match=r"save_keras: ConvGRU2D has no Keras counterpart"):
        to_keras_config(Sequential([ConvGRU2D(1, 2)], input_shape=(3, 4, 4, 1)))


def test_bidirectional_and_native_file(tmp_path):
    wrapper = Bidirectional(_layer(1, return_state=True, reset_after=False), "ave")
    check_gradients(wrapper, _x((2, 4, 5, 2)), mask=MASK[:2])
    model = Sequential([ConvGRU3D(1, 2, (1, 2, 2), seed=4, num_layers=2),
                        Bidirectional(ConvGRU3D(2, 2, seed=5, return_sequences=False))],
                       input_shape=(3, 2, 4, 4, 1))
    x = _x((2, 3, 2, 4, 4, 1)).astype(np.float32)
    restored = load(model.save(tmp_path / "gru.npz"))
    assert restored.get_config() == model.get_config()
    np.testing.assert_array_equal(restored.predict(x), model.predict(x))


def test_carried_states_of_gru_and_bidirectional_are_saved(tmp_path):
    model = Sequential([ConvGRU1D(1, 2, stateful=True, seed=1),
                        Bidirectional(ConvGRU1D(2, 2, stateful=True, seed=2))],
                       input_shape=(3, 5, 1))
    x = _x((2, 3, 5, 1)).astype(np.float32)
    model.predict(x)
    restored = load(model.save(tmp_path / "stateful.npz", include_states=True))
    np.testing.assert_array_equal(restored.predict(x), model.predict(x))  # continues both
    without = load(model.save(tmp_path / "plain.npz"))  # starts from zeros instead
    assert not np.allclose(without.predict(x), restored.predict(x))
    carried = restored.layers[1].backward_layer.states
    assert carried is not None and len(carried[0]) == 1

"""ConvLSTM2D backpropagation through time against float64 central finite differences."""

import numpy as np
import pytest
from gradcheck import TOLERANCE, check_gradients, numerical_gradient, relative_error

from convlstm import ConvLSTM2D
from convlstm.functional.activations import ACTIVATIONS
from convlstm.functional.convlstm import convlstm_backward, convlstm_forward
from convlstm.functional.recurrence import dropout_masks


def _layer(in_channels=2, filters=2, scale=0.5, seed=0, **options):
    rng = np.random.default_rng(11)
    layer = ConvLSTM2D(in_channels, filters, dtype="float64", seed=seed, **options)
    layer.set_weights([rng.uniform(-scale, scale, w.shape) for w in layer.get_weights()])
    return layer


def _x(shape=(2, 3, 4, 5, 2), seed=3):
    return np.random.default_rng(seed).normal(size=shape)


OPTIONS = {
    "default": {},
    "valid_stride2_rect_kernel": {"padding": "valid", "stride": 2, "kernel_size": (2, 3)},
    "same_stride2": {"stride": (2, 1)},
    "dilation2": {"dilation": 2, "padding": "same"},
    "dilation_valid": {"dilation": (1, 2), "padding": "valid"},
    "int_padding": {"padding": 2},
    "pair_padding": {"padding": (1, 0)},
    "kernel1": {"kernel_size": 1},
    "no_bias": {"use_bias": False},
    "last_output_only": {"return_sequences": False},
    "return_state": {"return_state": True},
    "last_output_and_state": {"return_sequences": False, "return_state": True},
    "go_backwards": {"go_backwards": True},
    "stack_leaky": {"num_layers": 2, "leaky_relu_slope": 0.2},
    "stack3_backwards_state": {"num_layers": 3, "go_backwards": True, "return_state": True},
    "leaky_zero_slope": {"leaky_relu_slope": 0.0},
}


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
def test_layer_options(options):
    x = _x((2, 3, 6, 5, 2)) if options.get("padding") == "valid" else _x()
    check_gradients(_layer(**options), x)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_activation(name):
    # As the cell activation, "exponential" feeds exp(c) back into c: tiny weights keep it finite.
    scale = 0.02 if name == "exponential" else 0.3
    check_gradients(_layer(activation=name, scale=scale), _x())
    check_gradients(_layer(recurrent_activation=name, scale=0.3), _x())


def test_channels_first():
    check_gradients(_layer(data_format="channels_first", stride=2), _x((2, 3, 2, 5, 4)))


def test_masks_with_and_without_go_backwards():
    mask = np.array([[False, True, False, True], [True, True, False, False]])
    for options in ({}, {"go_backwards": True}, {"num_layers": 2, "return_state": True}):
        check_gradients(_layer(**options), _x((2, 4, 3, 4, 2)), mask=mask)


def test_stateful_second_call():
    """A stateful call starts from the carried states; gradients reach them via state_grads."""
    layer = _layer(stateful=True, num_layers=2)
    layer.forward(_x())
    carried = layer.states
    x = _x(seed=4)
    upstream = np.random.default_rng(2).normal(size=(2, 3, 4, 5, 2))

    def scalar():
        layer.reset_states(carried)
        return float(np.sum(layer.forward(x) * upstream))

    layer.reset_states(carried)
    layer.forward(x, training=True)
    d_x = layer.backward(upstream)
    assert relative_error(d_x, numerical_gradient(scalar, x)) < TOLERANCE
    for name, owner, key in layer.named_params():
        numeric = numerical_gradient(scalar, owner.params[key])
        assert relative_error(owner.grads[key], numeric) < TOLERANCE, name
    for pair, analytic in zip(carried, layer.state_grads):
        for state, d_state in zip(pair, analytic):
            assert relative_error(d_state, numerical_gradient(scalar, state)) < TOLERANCE


@pytest.mark.parametrize("num_layers", [1, 2])
def test_gradients_for_initial_states(num_layers):
    layer = _layer(num_layers=num_layers, return_state=True, leaky_relu_slope=0.1)
    x = _x()
    rng = np.random.default_rng(5)
    pairs = [[rng.normal(size=(2, 4, 5, 2)), rng.normal(size=(2, 4, 5, 2))]
             for _ in range(num_layers)]
    upstream = [rng.normal(size=s.shape) for s in (
        layer.forward(x, initial_state=pairs)[0], pairs[-1][0], pairs[-1][1])]
    layer.forward(x, initial_state=pairs, training=True)
    layer.backward(*upstream)
    grads = layer.state_grads

    def scalar():
        outputs = layer.forward(x, initial_state=pairs)
        return sum(float(np.sum(out * up)) for out, up in zip(outputs, upstream))

    for pair, analytic in zip(pairs, grads):
        for state, d_state in zip(pair, analytic):
            assert relative_error(d_state, numerical_gradient(scalar, state)) < TOLERANCE


def test_dropout_masks_through_the_kernel():
    """Fixed per-gate dropout masks on the frames and the state, differentiated exactly."""
    rng = np.random.default_rng(8)
    B, T, H, W, C, F = 2, 3, 4, 4, 2, 2
    x = rng.normal(size=(B, T, H, W, C))
    kernel = rng.uniform(-0.5, 0.5, (3, 3, C, 4 * F))
    recurrent_kernel = rng.uniform(-0.5, 0.5, (3, 3, F, 4 * F))
    bias = rng.uniform(-0.5, 0.5, 4 * F)
    h0, c0 = rng.normal(size=(2, B, H, W, F))
    dtype = np.dtype("float64")
    masks = {"input_masks": dropout_masks(rng, 0.3, (B, H, W, C), dtype),
             "recurrent_masks": dropout_masks(rng, 0.4, (B, H, W, F), dtype)}
    functions = {"activation": ACTIVATIONS["tanh"],
                 "recurrent_activation": ACTIVATIONS["sigmoid"]}
    geometry = {"stride": (1, 1), "pads": ((1, 1), (1, 1)), "dilation": (1, 1)}
    upstream = rng.normal(size=(B, T, H, W, F))

    def scalar():
        outputs = convlstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, **geometry,
                                   **functions, **masks)[0]
        return float(np.sum(outputs * upstream))

    *_, cache = convlstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, **geometry,
                                 **functions, **masks, training=True)
    d_x, d_h0, d_c0, grads = convlstm_backward(upstream, None, None, cache, kernel,
                                               recurrent_kernel, **functions, use_bias=True)
    for analytic, array in [(d_x, x), (d_h0, h0), (d_c0, c0), (grads["kernel"], kernel),
                            (grads["recurrent_kernel"], recurrent_kernel), (grads["bias"], bias)]:
        assert relative_error(analytic, numerical_gradient(scalar, array)) < TOLERANCE


def test_float32_backward_agrees_with_float64():
    x = _x()
    upstream = np.random.default_rng(1).normal(size=(2, 3, 4, 5, 2))
    results = []
    for dtype in ("float32", "float64"):
        layer = ConvLSTM2D(2, 2, dtype=dtype, num_layers=2, seed=4)
        layer.forward(x, training=True)
        d_x = layer.backward(upstream)
        assert d_x.dtype == np.dtype(dtype)
        assert all(layer.cells[0].grads[k].dtype == np.dtype(dtype) for k in layer.cells[0].grads)
        results.append((d_x, layer.cells[0].grads["recurrent_kernel"]))
    for low, high in zip(*results):
        np.testing.assert_allclose(low, high, rtol=1e-4, atol=1e-5)


def test_backward_needs_a_training_forward():
    layer = _layer()
    with pytest.raises(RuntimeError, match=r"call forward\(x, training=True\) before backward"):
        layer.backward(np.zeros((2, 3, 4, 5, 2)))
    layer.forward(_x(), training=True)
    layer.forward(_x())  # an inference call drops the cache
    with pytest.raises(RuntimeError, match="no training forward"):
        layer.backward(np.zeros((2, 3, 4, 5, 2)))
    layer.forward(_x(), training=True)
    with pytest.raises(ValueError, match=r"expected d_output of shape \(2, 3, 4, 5, 2\); got"):
        layer.backward(np.zeros((2, 3, 4, 5, 3)))


def test_inference_keeps_no_cache():
    layer = _layer()
    layer.forward(_x())
    assert layer._cache is None


def test_plain_callable_activation_refuses_backward():
    layer = ConvLSTM2D(1, 2, activation=np.tanh)
    layer.forward(np.ones((1, 2, 3, 3, 1)), training=True)
    with pytest.raises(TypeError, match="plain callable with no derivative"):
        layer.backward(np.ones((1, 2, 3, 3, 2)))


def test_dropout_masks_are_per_call_seeded_and_training_only():
    x = _x()
    outputs = []
    for _ in range(2):
        layer = _layer(dropout=0.3, recurrent_dropout=0.2, seed=7)
        first = layer.forward(x, training=True)
        second = layer.forward(x, training=True)
        outputs.append((first, second))
        assert not np.allclose(first, second)  # fresh masks every call
        inference = layer.forward(x)
        np.testing.assert_array_equal(inference, _layer(seed=7).forward(x))  # none at inference
    np.testing.assert_array_equal(outputs[0][0], outputs[1][0])  # reproducible from the seed
    np.testing.assert_array_equal(outputs[0][1], outputs[1][1])


@pytest.mark.parametrize(
    ("options", "pixels"),
    [({}, 20), ({"dropout": 0.3, "recurrent_dropout": 0.2}, 20),
     ({"stride": 2, "padding": "valid"}, 2)],
    ids=["default", "dropout", "strided"],
)
def test_backward_in_sample_chunks_matches_whole_batch(monkeypatch, options, pixels):
    # Chunks of 2 samples (6 = 2+2+2) against the whole batch at once: same gradients.
    import convlstm.functional.recurrence as kernel

    def gradients():
        layer = _layer(seed=4, **options)
        x = _x((6, 3, 5, 4, 2))
        mask = np.ones((6, 3), bool)
        mask[1, 1] = mask[4, 0] = False
        output = layer.forward(x, mask=mask, training=True)
        d_x = layer.backward(np.random.default_rng(5).normal(size=output.shape))
        return [d_x, *(owner.grads[key] for _, owner, key in layer.named_params())]

    whole = gradients()
    monkeypatch.setattr(kernel, "SAMPLES_PIXELS", 2 * pixels)  # pixels of one output frame
    assert kernel._samples_per_chunk(6, pixels) == 2
    for chunked, expected in zip(gradients(), whole):
        np.testing.assert_allclose(chunked, expected, rtol=1e-12, atol=1e-13)

"""Dense, Flatten, Dropout and the activation layers: gradients, Keras values, contracts, errors."""

import numpy as np
import pytest
from gradcheck import check_gradients
from layer_helpers import TrainingMode, check_keras_fixture, fixture_cases, round_trip

from convlstm.functional import activations
from convlstm.layers.activation import Activation, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from convlstm.layers.core import Dense, Dropout, Flatten

# -------------------------------------------------------------------------------- helpers


def tie_free(rng, shape, low=0.1, high=1.0):
    """float64 values with |x| in [low, high) and random signs: no zeros, no kinks hit."""
    return rng.uniform(low, high, shape) * rng.choice([-1.0, 1.0], shape)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# ----------------------------------------------------------------------------- Keras values


@pytest.mark.parametrize(
    "path",
    fixture_cases(
        "dense_", "flatten_", "relu_", "leaky_", "sigmoid", "tanh", "activation_", "softmax_"
    ),
)
def test_matches_keras(path):
    check_keras_fixture(path)


# ------------------------------------------------------------------------------------ Dense


@pytest.mark.parametrize("activation", [None, "softmax", *sorted(activations.ACTIVATIONS)])
def test_dense_gradients_every_activation(rng, activation):
    layer = Dense(4, activation=activation, dtype="float64", seed=3)
    check_gradients(layer, rng.normal(size=(3, 5)))


@pytest.mark.parametrize("use_bias", [True, False])
def test_dense_gradients_rank4_input(rng, use_bias):
    layer = Dense(3, activation="tanh", use_bias=use_bias, dtype="float64", seed=4)
    errors = check_gradients(layer, rng.normal(size=(2, 3, 2, 4)))
    assert set(errors) == ({"x", "kernel", "bias"} if use_bias else {"x", "kernel"})


def test_dense_values_against_numpy(rng):
    layer = Dense(3, activation="relu", seed=0)
    x = rng.normal(size=(2, 4, 5)).astype(np.float32)
    y = layer(x)
    kernel, bias = layer.get_weights()
    np.testing.assert_allclose(y, np.maximum(x @ kernel + bias, 0), rtol=1e-6, atol=1e-6)


def test_dense_lazy_and_explicit_build():
    layer = Dense(10)
    assert not layer.built and layer.get_weights() == [] and layer.in_features is None
    assert layer.compute_output_shape((None, 7, 3)) == (None, 7, 10)
    y = layer(np.ones((2, 3)))
    assert y.shape == (2, 10) and y.dtype == np.float32
    assert [w.shape for w in layer.get_weights()] == [(3, 10), (10,)]
    assert set(layer.grads) == set(layer.params) == {"kernel", "bias"}
    built = Dense(10, use_bias=False)
    built.build((None, 6))
    assert [w.shape for w in built.get_weights()] == [(6, 10)]
    built.build((4, 6))  # same size again: nothing changes
    with pytest.raises(ValueError, match=r"Dense.build: expected input_shape \(batch, \.\.\., 6\)"):
        built.build((4, 5))


def test_dense_seed_reproducible_and_initializers():
    a, b = Dense(5, seed=9), Dense(5, seed=9)
    a.build((1, 4))
    b.build((1, 4))
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    limit = np.sqrt(6 / (4 + 5))  # glorot_uniform
    assert np.abs(a.params["kernel"]).max() <= limit
    ones = Dense(2, bias_initializer="ones", kernel_initializer="zeros")
    np.testing.assert_array_equal(ones(np.ones((1, 3))), np.ones((1, 2)))


def test_dense_dtypes_and_integer_input():
    layer = Dense(2, dtype="float64", seed=0)
    assert layer(np.ones((1, 3), dtype=np.int32)).dtype == np.float64
    assert layer.get_weights()[0].dtype == np.float64
    assert Dense(2, seed=0)(np.ones((1, 3), dtype=bool)).dtype == np.float32


def test_dense_softmax_rows_sum_to_one(rng):
    y = Dense(4, activation="softmax", seed=0)(rng.normal(size=(3, 2, 5)))
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-6)


def test_dense_callable_activation_is_inference_only(rng):
    layer = Dense(2, activation=lambda z: 2 * z, seed=0)
    x = rng.normal(size=(2, 3))
    linear = Dense(2, seed=0)
    np.testing.assert_allclose(layer(x), 2 * linear(x), rtol=1e-6)
    with pytest.raises(TypeError, match=r"^Dense.forward: the callable activation '<lambda>' has"):
        layer(x, training=True)
    with pytest.raises(TypeError, match=r"Dense.get_config: activation is the callable"):
        layer.get_config()


def test_dense_trains_through_an_activation_with_a_derivative(rng):
    cube = activations.Activation(
        "cube", lambda x, out=None: np.power(x, 3, out=out), lambda y: 3 * np.cbrt(y) ** 2
    )
    layer = Dense(2, activation=cube, dtype="float64", seed=1)
    check_gradients(layer, rng.normal(size=(3, 4)))
    with pytest.raises(TypeError, match=r"^Dense.get_config: activation is the callable 'cube'"):
        layer.get_config()


# -------------------------------------------------------------------------------- Flatten


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_flatten_values_and_gradients(rng, data_format):
    layer = Flatten(data_format)
    x = rng.normal(size=(2, 3, 4, 2))
    y = layer(x)
    moved = np.moveaxis(x, 1, -1) if data_format == "channels_first" else x
    np.testing.assert_array_equal(y, moved.reshape(2, -1))
    assert layer.compute_output_shape(x.shape) == y.shape
    assert layer.compute_output_shape((None, 3, None)) == (None, None)
    check_gradients(layer, x)


def test_flatten_rank1_and_copy(rng):
    x = rng.normal(size=(4,))
    y = Flatten()(x)
    assert y.shape == (4, 1) and not np.shares_memory(x, y)


# -------------------------------------------------------------------------------- Dropout


def test_dropout_mask_reproducible_scaled_and_reused(rng):
    x = tie_free(rng, (50, 40))
    first, second = Dropout(0.3, seed=11), Dropout(0.3, seed=11)
    y = first(x, training=True)
    np.testing.assert_array_equal(y, second(x, training=True))
    kept = y != 0
    assert 0.6 < kept.mean() < 0.8
    np.testing.assert_allclose(y[kept], x[kept] / 0.7, rtol=1e-15)
    d_output = rng.normal(size=x.shape)
    np.testing.assert_allclose(first.backward(d_output), np.where(kept, d_output / 0.7, 0))
    # Each training call draws the next mask; a fresh layer with the seed starts over.
    assert not np.array_equal(first(x, training=True) != 0, kept)
    assert np.array_equal(Dropout(0.3, seed=11)(x, training=True) != 0, kept)


def test_dropout_identity_at_inference(rng):
    x = rng.normal(size=(3, 4)).astype(np.float32)
    layer = Dropout(0.5, seed=0)
    y = layer(x)
    np.testing.assert_array_equal(y, x)
    assert y.dtype == np.float32 and not np.shares_memory(x, y)
    with pytest.raises(RuntimeError, match=r"^Dropout.backward: no training forward"):
        layer.backward(y)


def test_dropout_rate_zero_is_identity_in_training(rng):
    x = rng.normal(size=(3, 4))
    zero = Dropout(0.0)
    np.testing.assert_array_equal(zero(x, training=True), x)
    np.testing.assert_array_equal(zero.backward(x), x)


def test_dropout_gradients_with_a_fixed_mask(rng):
    layer = Dropout(0.4, seed=5)

    def reseed():
        layer.rng = np.random.default_rng(5)

    check_gradients(TrainingMode(layer, reseed), tie_free(rng, (4, 6)))


# ---------------------------------------------------------------------- activation layers

ELEMENTWISE = [
    (ReLU(), lambda x: np.maximum(x, 0)),
    (ReLU(max_value=0.5), lambda x: np.clip(x, 0, 0.5)),
    (
        ReLU(max_value=0.6, negative_slope=0.1, threshold=0.25),
        lambda x: np.where(x > 0.25, np.minimum(x, 0.6), 0.1 * (x - 0.25)),
    ),
    (ReLU(negative_slope=0.2), lambda x: np.where(x >= 0, x, 0.2 * x)),
    (LeakyReLU(), lambda x: np.where(x >= 0, x, 0.3 * x)),
    (LeakyReLU(0.05), lambda x: np.where(x >= 0, x, 0.05 * x)),
    (Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
    (Tanh(), np.tanh),
    (Softmax(), lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True)),
    (Softmax(axis=1), lambda x: np.exp(x) / np.exp(x).sum(1, keepdims=True)),
    (Softmax(axis=(1, 2)), lambda x: np.exp(x) / np.exp(x).sum((1, 2), keepdims=True)),
    (Activation("elu"), lambda x: np.where(x > 0, x, np.expm1(x))),
    (Activation("softmax"), lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True)),
    (Activation(None), lambda x: x),
]


@pytest.mark.parametrize(("layer", "reference"), ELEMENTWISE, ids=repr)
def test_elementwise_values_and_gradients(rng, layer, reference):
    x = tie_free(rng, (2, 3, 4), low=0.05, high=1.5)
    x[np.abs(np.abs(x) - 0.25) < 0.02] = 0.9  # keep away from ReLU's threshold 0.25
    x[np.abs(x - 0.6) < 0.02] = 0.9
    x[np.abs(x - 0.5) < 0.02] = 0.9
    y = layer(x)
    assert y.dtype == np.float64 and y.shape == layer.compute_output_shape(x.shape)
    np.testing.assert_allclose(y, reference(x), rtol=1e-12, atol=1e-15)
    check_gradients(layer, x)
    assert round_trip(layer).get_config() == layer.get_config()


def test_relu_kink_derivatives_follow_keras_backends():
    x = np.array([[-1.0, 0.0, 0.25, 0.6, 1.0]])
    relu = ReLU(max_value=0.6, negative_slope=0.1, threshold=0.25)
    relu(x, training=True)
    np.testing.assert_array_equal(relu.backward(np.ones_like(x)), [[0.1, 0.1, 0.0, 1.0, 0.0]])
    leaky = LeakyReLU(0.2)
    leaky(x, training=True)
    np.testing.assert_array_equal(leaky.backward(np.ones_like(x)), [[0.2, 0.2, 1, 1, 1]])


def test_weightless_layers_keep_float64_and_cast_the_rest():
    for layer in (ReLU(), Sigmoid(), Softmax(), Flatten(), Dropout(0.5), LeakyReLU()):
        assert layer(np.ones((2, 3))).dtype == np.float64
        assert layer(np.ones((2, 3), dtype=np.float32)).dtype == np.float32
        assert layer(np.ones((2, 3), dtype=np.int64)).dtype == np.float32
        assert layer.get_weights() == [] and layer.params == layer.grads == {}


# ------------------------------------------------------------------------------ contracts

LAYERS = [
    lambda: Dense(3, activation="sigmoid", seed=0),
    lambda: Flatten(),
    lambda: Dropout(0.5, seed=1),
    lambda: ReLU(),
    lambda: LeakyReLU(),
    lambda: Sigmoid(),
    lambda: Tanh(),
    lambda: Softmax(),
    lambda: Activation("relu"),
]


@pytest.mark.parametrize("make", LAYERS)
def test_backward_needs_a_training_forward(rng, make):
    layer = make()
    name = type(layer).__name__
    x = rng.normal(size=(2, 4))
    with pytest.raises(RuntimeError, match=rf"^{name}.backward: no training forward to diff"):
        layer.backward(np.ones((2, 4)))
    y = layer(x, training=True)
    layer(x)  # an inference forward drops the training cache
    with pytest.raises(RuntimeError, match=rf"^{name}.backward: no training forward"):
        layer.backward(np.ones_like(y))
    y = layer(x, training=True)
    with pytest.raises(ValueError, match=rf"^{name}.backward: expected d_output of shape"):
        layer.backward(np.ones((5, 5)))
    layer.backward(np.ones_like(y))  # the cache survived the bad call
    with pytest.raises(RuntimeError, match=r"no training forward"):  # and the good one used it
        layer.backward(np.ones_like(y))


@pytest.mark.parametrize("make", LAYERS)
def test_inputs_untouched_and_never_aliased(rng, make):
    layer = make()
    x = rng.normal(size=(2, 4))
    x.setflags(write=False)
    before = x.copy()
    y = layer(x, training=True)
    d_output = np.ones_like(y)
    d_output.setflags(write=False)
    d_x = layer.backward(d_output)
    np.testing.assert_array_equal(x, before)
    assert not np.shares_memory(y, x) and not np.shares_memory(d_x, d_output)
    assert d_x.shape == x.shape


@pytest.mark.parametrize("make", LAYERS)
def test_config_round_trip(make):
    round_trip(make())


def test_config_contents():
    assert Dense(4).get_config() == {
        "units": 4,
        "activation": "linear",
        "use_bias": True,
        "kernel_initializer": "glorot_uniform",
        "bias_initializer": "zeros",
        "dtype": "float32",
        "seed": None,
    }
    assert ReLU(6).get_config() == {"max_value": 6.0, "negative_slope": 0.0, "threshold": 0.0}
    assert Softmax((1, 2)).get_config() == {"axis": [1, 2]}
    assert Softmax.from_config({"axis": [1, 2]}).axis == (1, 2)
    assert Flatten(None).get_config() == {"data_format": "channels_last"}
    assert Dropout(0.25, seed=3).get_config() == {"rate": 0.25, "seed": 3}
    assert Sigmoid().get_config() == {} and Tanh().get_config() == {}


# ---------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: Dense(0), ValueError, r"^Dense: expected units to be a positive int; got 0\."),
        (lambda: Dense(2.0), TypeError, r"^Dense: expected units to be a positive int"),
        (lambda: Dense(2, "swishy"), ValueError, r"^Dense: unknown activation 'swishy'"),
        (lambda: Dense(2, use_bias=1), TypeError, r"expected use_bias to be True or False"),
        (lambda: Dense(2, kernel_initializer="he"), ValueError, r"unknown kernel_initializer"),
        (lambda: Dense(2, dtype="float16"), ValueError, r"expected dtype to be 'float32'"),
        (lambda: Dense(2, seed=-1), ValueError, r"expected seed to be None or a non-negative"),
        (lambda: Flatten("NHWC"), ValueError, r"^Flatten: expected data_format to be one of"),
        (lambda: Dropout(1), ValueError, r"^Dropout: expected rate to be a float in \[0, 1\)"),
        (lambda: Dropout(-0.1), ValueError, r"^Dropout: expected rate to be a float in \[0, 1\)"),
        (lambda: Dropout("0.5"), TypeError, r"^Dropout: expected rate to be a float in \[0, 1\)"),
        (lambda: ReLU(max_value=-1), ValueError, r"^ReLU: expected max_value to be a float >= 0"),
        (lambda: ReLU(threshold=None), TypeError, r"^ReLU: expected threshold to be a float"),
        (lambda: LeakyReLU(-0.1), ValueError, r"^LeakyReLU: expected negative_slope to be a"),
        (lambda: Softmax(1.5), TypeError, r"^Softmax: expected axis to be an int or a tuple"),
        (lambda: Activation(3), TypeError, r"^Activation: expected activation to be a name"),
    ],
)
def test_constructor_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_forward_errors():
    dense = Dense(3)
    with pytest.raises(ValueError, match=r"^Dense.forward: expected x of shape \(batch, \.\.\., "):
        dense(np.ones(4))
    dense(np.ones((2, 4)))
    wrong = r"^Dense.forward: expected x of shape \(batch, \.\.\., 4\); got \(2, 5\)\.$"
    with pytest.raises(ValueError, match=wrong):
        dense(np.ones((2, 5)))
    with pytest.raises(TypeError, match=r"^Dense.forward: expected x to be a real numeric array"):
        dense(np.array([["a", "b", "c", "d"]]))
    with pytest.raises(TypeError, match=r"^Dense.forward: expected training to be True or False"):
        dense(np.ones((2, 4)), training="yes")
    with pytest.raises(TypeError, match=r"^ReLU.forward: expected x to be a real numeric array"):
        ReLU()(np.ones(3, dtype=complex))
    with pytest.raises(ValueError, match=r"^Flatten.forward: expected x of shape \(batch, "):
        Flatten()(np.float32(1.0))
    with pytest.raises(ValueError, match=r"^Softmax.forward: expected x with an axis 2; got"):
        Softmax(2)(np.ones((2, 3)))
    with pytest.raises(TypeError, match=r"^Dense.build: expected input_shape to be a tuple"):
        Dense(2).build("(2, 3)")

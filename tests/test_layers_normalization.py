"""BatchNormalization: training and inference values, moving statistics, gradients, contracts."""

import numpy as np
import pytest
from gradcheck import check_gradients
from layer_helpers import TrainingMode, check_keras_fixture, fixture_cases, round_trip

from convlstm.layers.normalization import BatchNormalization


@pytest.fixture
def rng():
    return np.random.default_rng(77)


def _randomised(layer, rng):
    """Non-trivial gamma, beta and moving statistics (moving variance > 0)."""
    layer.set_weights(
        [
            rng.uniform(0.5, 1.5, w.shape)
            if name.endswith(("gamma", "variance"))
            else rng.normal(size=w.shape)
            for (name, _, _), w in zip(layer.named_params(), layer.get_weights())
        ]
    )
    return layer


# ----------------------------------------------------------------------------- Keras values


@pytest.mark.parametrize("path", fixture_cases("bn_"))
def test_matches_keras(path):
    check_keras_fixture(path)


# ----------------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("axis", "shape"), [(-1, (6, 3)), (-1, (3, 4, 5, 2)), (1, (3, 2, 4, 5)), (2, (2, 3, 4, 2))]
)
def test_training_and_inference_values(rng, axis, shape):
    layer = BatchNormalization(axis=axis, momentum=0.8, dtype="float64")
    layer.build(shape)
    _randomised(layer, rng)
    gamma, beta, moving_mean, moving_variance = layer.get_weights()
    x = rng.normal(2.0, 3.0, size=shape)
    reduce = tuple(i for i in range(len(shape)) if i != axis % len(shape))
    along = [1] * len(shape)
    along[axis] = -1

    mean, variance = x.mean(axis=reduce), x.var(axis=reduce)  # biased, as Keras
    expected = (x - mean.reshape(along)) / np.sqrt(variance.reshape(along) + 1e-3)
    expected = expected * gamma.reshape(along) + beta.reshape(along)
    np.testing.assert_allclose(layer(x, training=True), expected, rtol=1e-12, atol=1e-12)
    new_mean, new_variance = layer.get_weights()[2:]
    np.testing.assert_allclose(new_mean, 0.8 * moving_mean + 0.2 * mean, rtol=1e-12)
    np.testing.assert_allclose(new_variance, 0.8 * moving_variance + 0.2 * variance, rtol=1e-12)

    inference = (x - new_mean.reshape(along)) / np.sqrt(new_variance.reshape(along) + 1e-3)
    inference = inference * gamma.reshape(along) + beta.reshape(along)
    np.testing.assert_allclose(layer(x), inference, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(layer.get_weights()[2], new_mean)  # inference changes nothing


def test_training_output_is_normalized_per_feature(rng):
    layer = BatchNormalization(epsilon=1e-9, dtype="float64")
    y = layer(rng.normal(5.0, 4.0, size=(50, 3, 2)), training=True)
    np.testing.assert_allclose(y.mean(axis=(0, 1)), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 1)), 1.0, rtol=1e-6)


def test_center_and_scale_off(rng):
    layer = BatchNormalization(center=False, scale=False, dtype="float64")
    x = rng.normal(size=(4, 3))
    y = layer(x, training=True)
    np.testing.assert_allclose(y, (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-3), rtol=1e-12)
    assert list(layer.params) == ["moving_mean", "moving_variance"]
    assert layer.trainable_params == ()
    assert [w.shape for w in layer.get_weights()] == [(3,), (3,)]


def test_moving_statistics_converge(rng):
    layer = BatchNormalization(momentum=0.5)
    for _ in range(40):
        layer(rng.normal(3.0, 2.0, size=(400, 2)), training=True)
    mean, variance = layer.get_weights()[2:]
    np.testing.assert_allclose(mean, 3.0, atol=0.3)
    np.testing.assert_allclose(variance, 4.0, atol=0.8)


# -------------------------------------------------------------------------------- gradients


@pytest.mark.parametrize(
    ("options", "shape"),
    [
        ({}, (5, 3)),
        ({}, (2, 3, 2, 2)),
        ({"axis": 1}, (3, 2, 3, 2)),
        ({"axis": 2}, (2, 2, 3, 2, 2)),
        ({"center": False}, (4, 3)),
        ({"scale": False}, (4, 3)),
        ({"center": False, "scale": False, "epsilon": 0.1}, (4, 2, 2)),
    ],
)
def test_training_gradients(rng, options, shape):
    layer = BatchNormalization(**options, dtype="float64")
    layer.build(shape)
    _randomised(layer, rng)
    errors = check_gradients(TrainingMode(layer), rng.normal(size=shape))
    assert set(errors) == {"x", *layer.params}
    np.testing.assert_array_equal(layer.grads["moving_mean"], 0.0)
    np.testing.assert_array_equal(layer.grads["moving_variance"], 0.0)


def test_gradients_match_the_textbook_formula(rng):
    layer = BatchNormalization(dtype="float64")
    x = rng.normal(size=(6, 2))
    layer(x, training=True)
    d_y = rng.normal(size=x.shape)
    d_x = layer.backward(d_y)
    x_hat = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-3)
    np.testing.assert_allclose(layer.grads["beta"], d_y.sum(0), rtol=1e-12)
    np.testing.assert_allclose(layer.grads["gamma"], (d_y * x_hat).sum(0), rtol=1e-12)
    np.testing.assert_allclose(d_x.sum(0), 0.0, atol=1e-12)  # the mean is subtracted out


# ------------------------------------------------------------------------------ contracts


def test_weights_in_keras_order_and_trainable_params():
    layer = BatchNormalization()
    assert layer.get_weights() == [] and not layer.built
    layer.build((None, 4, 4, 3))
    assert list(layer.params) == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert list(layer.grads) == list(layer.params)
    assert layer.trainable_params == ("gamma", "beta")
    gamma, beta, mean, variance = layer.get_weights()
    assert gamma.dtype == np.float32 and gamma.shape == (3,)
    np.testing.assert_array_equal(
        np.stack([gamma, beta, mean, variance]), [[1] * 3, [0] * 3, [0] * 3, [1] * 3]
    )
    assert BatchNormalization(center=False).trainable_params == ()  # nothing built yet
    scale_only = BatchNormalization(center=False)
    scale_only.build((2, 3))
    assert scale_only.trainable_params == ("gamma",)


def test_inference_keeps_no_cache_and_training_does(rng):
    layer = BatchNormalization()
    x = rng.normal(size=(4, 3)).astype(np.float32)
    with pytest.raises(RuntimeError, match=r"^BatchNormalization.backward: no training forward"):
        layer.backward(np.ones((4, 3)))
    layer(x)
    with pytest.raises(RuntimeError, match=r"^BatchNormalization.backward: no training forward"):
        layer.backward(np.ones((4, 3)))
    x.setflags(write=False)
    y = layer(x, training=True)
    assert y.dtype == np.float32 and not np.shares_memory(x, y)
    with pytest.raises(ValueError, match=r"^BatchNormalization.backward: expected d_output of"):
        layer.backward(np.ones((4, 2)))
    assert layer.backward(np.ones_like(y)).shape == x.shape


def test_compute_output_shape_and_integer_input():
    layer = BatchNormalization(axis=1)
    assert layer.compute_output_shape((None, 3, 5)) == (None, 3, 5)
    assert layer(np.arange(12).reshape(2, 3, 2)).dtype == np.float32


@pytest.mark.parametrize(
    "layer",
    [
        BatchNormalization(),
        BatchNormalization(axis=1, momentum=0.9, epsilon=1e-5, center=False, dtype="float64"),
        BatchNormalization(
            scale=False, gamma_initializer="random_normal", moving_variance_initializer="zeros"
        ),
    ],
    ids=repr,
)
def test_config_round_trip(layer):
    round_trip(layer)


def test_config_contents():
    assert BatchNormalization().get_config() == {
        "axis": -1,
        "momentum": 0.99,
        "epsilon": 0.001,
        "center": True,
        "scale": True,
        "beta_initializer": "zeros",
        "gamma_initializer": "ones",
        "moving_mean_initializer": "zeros",
        "moving_variance_initializer": "ones",
        "dtype": "float32",
        "seed": None,
    }


# ---------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"axis": 1.0}, TypeError, r"^BatchNormalization: expected axis to be an int; got 1.0"),
        ({"momentum": "0.9"}, TypeError, r"expected momentum to be a float"),
        ({"momentum": 1.5}, ValueError, r"expected momentum to be in \[0, 1\]; got 1.5"),
        ({"epsilon": 0}, ValueError, r"expected epsilon to be a float > 0; got 0"),
        ({"center": "yes"}, TypeError, r"expected center to be True or False"),
        ({"gamma_initializer": "one"}, ValueError, r"unknown gamma_initializer 'one'"),
        ({"dtype": "float16"}, ValueError, r"expected dtype to be 'float32' or 'float64'"),
    ],
)
def test_constructor_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        BatchNormalization(**kwargs)


def test_forward_errors():
    layer = BatchNormalization(axis=3)
    with pytest.raises(
        ValueError,
        match=r"^BatchNormalization.forward: expected x of shape \(batch, d1, d2, features\) "
        r"\(axis=3\); got \(2, 3, 4\)\.$",
    ):
        layer(np.ones((2, 3, 4)))
    layer(np.ones((2, 3, 4, 5)))
    with pytest.raises(
        ValueError,
        match=r"^BatchNormalization.forward: expected x of shape \(batch, d1, d2, 5\) "
        r"\(axis=3\); got \(2, 3, 4, 6\)\.$",
    ):
        layer(np.ones((2, 3, 4, 6)))
    with pytest.raises(ValueError, match=r"got \(2, 3, 4, 5, 1\)\.$"):
        layer(np.ones((2, 3, 4, 5, 1)))
    with pytest.raises(TypeError, match=r"^BatchNormalization.forward: expected x to be a real"):
        layer(np.array(["a"]))
    with pytest.raises(TypeError, match=r"expected training to be True or False; got None"):
        layer(np.ones((2, 3, 4, 5)), training=None)

"""TimeDistributed and the layer registry: per-step values, gradients, Keras values, configs."""

import json

import numpy as np
import pytest
from gradcheck import check_gradients
from layer_helpers import TrainingMode, check_keras_fixture, fixture_cases, round_trip

from convlstm.layers.activation import ReLU
from convlstm.layers.base import Layer
from convlstm.layers.conv import Conv2D, Conv3D
from convlstm.layers.convlstm import ConvLSTM2D
from convlstm.layers.core import Dense, Dropout, Flatten
from convlstm.layers.normalization import BatchNormalization
from convlstm.layers.pooling import MaxPooling2D
from convlstm.layers.wrappers import TimeDistributed
from convlstm.registry import LAYER_CLASSES, deserialize, serialize


@pytest.fixture
def rng():
    return np.random.default_rng(31)


@pytest.mark.parametrize("path", fixture_cases("time_distributed_"))
def test_matches_keras(path):
    check_keras_fixture(path)


WRAPPED = [
    (lambda: Conv2D(2, 3, padding="same", activation="tanh", dtype="float64", seed=1), (4, 5, 2)),
    (lambda: Dense(3, activation="sigmoid", dtype="float64", seed=2), (4,)),
    (lambda: Dense(2, dtype="float64", seed=3), (3, 4)),
    (lambda: Flatten(), (2, 3, 2)),
    (lambda: MaxPooling2D((2, 2)), (4, 4, 2)),
    (lambda: ReLU(), (5,)),
]


@pytest.mark.parametrize(("make", "step_shape"), WRAPPED)
def test_every_step_equals_the_wrapped_layer(rng, make, step_shape):
    inner = make()
    wrapped = TimeDistributed(inner)
    x = rng.normal(size=(2, 3, *step_shape))
    y = wrapped(x)
    assert y.shape == wrapped.compute_output_shape(x.shape)
    for t in range(3):
        np.testing.assert_allclose(y[:, t], inner(x[:, t]), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(("make", "step_shape"), WRAPPED)
def test_gradients(rng, make, step_shape):
    x = rng.normal(size=(2, 3, *step_shape))
    check_gradients(TimeDistributed(make()), x)


def test_gradients_through_batch_normalization(rng):
    # Keras' TimeDistributed(BatchNormalization) takes its statistics over batch and time.
    inner = BatchNormalization(dtype="float64")
    wrapped = TimeDistributed(inner)
    x = rng.normal(size=(2, 3, 4, 2))
    errors = check_gradients(TrainingMode(wrapped), x)
    assert set(errors) == {"x", "0/gamma", "0/beta", "0/moving_mean", "0/moving_variance"}
    y = wrapped(x, training=True)
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), inner.params["beta"], atol=1e-12)


def test_training_flag_reaches_the_wrapped_layer(rng):
    wrapped = TimeDistributed(Dropout(0.5, seed=0))
    x = rng.uniform(1, 2, size=(2, 3, 10))
    np.testing.assert_array_equal(wrapped(x), x)
    y = wrapped(x, training=True)
    assert (y == 0).any()
    np.testing.assert_array_equal(wrapped.backward(np.ones_like(y)) == 0, y == 0)


def test_weights_belong_to_the_wrapped_layer(rng):
    inner = Conv2D(3, 2, seed=4)
    wrapped = TimeDistributed(inner)
    assert wrapped.sublayers() == [inner] and wrapped.params == wrapped.grads == {}
    wrapped.build((None, 5, 6, 6, 2))
    assert [name for name, _, _ in wrapped.named_params()] == ["0/kernel", "0/bias"]
    for a, b in zip(wrapped.get_weights(), inner.get_weights()):
        np.testing.assert_array_equal(a, b)
    new = [np.full_like(w, 0.5) for w in wrapped.get_weights()]
    wrapped.set_weights(new)
    np.testing.assert_array_equal(inner.params["kernel"], new[0])
    y = wrapped(rng.normal(size=(2, 3, 6, 6, 2)), training=True)
    wrapped.backward(np.ones_like(y))
    assert inner.grads["bias"].shape == (3,)
    np.testing.assert_allclose(inner.grads["bias"], np.prod(y.shape[:-1]), rtol=1e-6)


def test_compute_output_shape_with_unknown_batch_and_time():
    wrapped = TimeDistributed(Conv2D(4, 3, padding="same", strides=2))
    assert wrapped.compute_output_shape((None, None, 7, 8, 1)) == (None, None, 4, 4, 4)
    assert wrapped.compute_output_shape((2, 5, 7, 8, 1)) == (2, 5, 4, 4, 4)


def test_backward_contract(rng):
    wrapped = TimeDistributed(Dense(2, seed=0))
    with pytest.raises(RuntimeError, match=r"^TimeDistributed.backward: no training forward"):
        wrapped.backward(np.ones((2, 3, 2)))
    x = rng.normal(size=(2, 3, 4))
    x.setflags(write=False)
    y = wrapped(x, training=True)
    with pytest.raises(ValueError, match=r"^TimeDistributed.backward: expected d_output of"):
        wrapped.backward(np.ones((6, 2)))
    d_x = wrapped.backward(np.ones_like(y))
    assert d_x.shape == x.shape and d_x.dtype == np.float32


# ----------------------------------------------------------------------- configs and registry


@pytest.mark.parametrize(
    "layer",
    [
        TimeDistributed(Conv2D(2, 3, padding="same", seed=1)),
        TimeDistributed(Dense(4, activation="softmax", dtype="float64")),
        TimeDistributed(TimeDistributed(Flatten("channels_first"))),
        TimeDistributed(MaxPooling2D((2, 2))),
    ],
    ids=repr,
)
def test_config_round_trip(layer):
    rebuilt = round_trip(layer)
    assert type(rebuilt.layer) is type(layer.layer)


def test_config_nests_class_name_and_config():
    config = TimeDistributed(Dense(3)).get_config()
    assert config == {"layer": {"class_name": "Dense", "config": Dense(3).get_config()}}
    assert repr(TimeDistributed(ReLU())) == (
        "TimeDistributed(ReLU(max_value=None, negative_slope=0.0, threshold=0.0))"
    )


@pytest.mark.parametrize("name", sorted(LAYER_CLASSES))
def test_registry_names_every_class_once(name):
    assert LAYER_CLASSES[name].__name__ == name


@pytest.mark.parametrize(
    "layer",
    [Conv3D(1, 3, padding="same"), BatchNormalization(axis=1), ConvLSTM2D(1, 2), Dropout(0.2)],
    ids=repr,
)
def test_serialize_and_deserialize(layer):
    spec = json.loads(json.dumps(serialize(layer)))
    assert deserialize(spec).get_config() == layer.get_config()


def test_registry_errors():
    class Custom(Dense):
        pass

    with pytest.raises(TypeError, match=r"^serialize: Custom is not a registered layer class"):
        serialize(Custom(2))
    with pytest.raises(ValueError, match=r"^deserialize: unknown layer class 'Conv4D'"):
        deserialize({"class_name": "Conv4D", "config": {}})
    with pytest.raises(TypeError, match=r"^deserialize: expected a dict with keys 'class_name'"):
        deserialize(["Dense", {}])


# ---------------------------------------------------------------------------------- errors


class _Doubler(Layer):
    """A layer with neither ``training`` nor a backward pass."""

    params, grads = {}, {}

    def forward(self, x):
        return 2 * x

    def get_config(self):
        return {}


def test_wrapped_layer_without_training_or_backward(rng):
    wrapped = TimeDistributed(_Doubler())
    x = rng.normal(size=(2, 3, 4))
    y = wrapped(x, training=True)
    np.testing.assert_array_equal(y, 2 * x)
    with pytest.raises(TypeError, match=r"^TimeDistributed.backward: the wrapped _Doubler has no"):
        wrapped.backward(np.ones_like(y))


def test_errors(rng):
    with pytest.raises(TypeError, match=r"^TimeDistributed: expected layer to be a Layer; got int"):
        TimeDistributed(3)
    wrapped = TimeDistributed(Dense(2))
    with pytest.raises(
        ValueError,
        match=r"^TimeDistributed.forward: expected x of shape \(batch, time, \.\.\.\) with at "
        r"least 3 axes; got \(2, 3\)\.$",
    ):
        wrapped(np.ones((2, 3)))
    with pytest.raises(TypeError, match=r"^TimeDistributed.forward: expected x to be a real"):
        wrapped(np.array([[["a"]]]))
    with pytest.raises(TypeError, match=r"^TimeDistributed.forward: expected training to be"):
        wrapped(np.ones((2, 3, 4)), training=1)
    stateful = TimeDistributed(ConvLSTM2D(1, 2, return_state=True))
    with pytest.raises(TypeError, match=r"the wrapped ConvLSTM2D returned tuple"):
        stateful(np.ones((1, 2, 3, 4, 4, 1)))

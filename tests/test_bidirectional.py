"""Bidirectional: gradients through every merge mode, states and masks; the merge by hand;
configs, weights, errors and the native file (Keras' numbers: test_keras_convrnn_fixtures)."""

import numpy as np
import pytest
from gradcheck import TOLERANCE, check_gradients, numerical_gradient, relative_error

from convlstm import (
    Bidirectional,
    ConvLSTM1D,
    ConvLSTM2D,
    ConvLSTM3D,
    Dense,
    Flatten,
    Sequential,
    load,
)
from convlstm.registry import deserialize, serialize

MASK = np.array([[True, False, True, True], [True, True, False, True]])


def _wrapped(layer, merge_mode="concat", seed=0, **kwargs):
    wrapper = Bidirectional(layer, merge_mode, **kwargs)
    rng = np.random.default_rng(seed)
    wrapper.set_weights([rng.uniform(-0.5, 0.5, w.shape) for w in wrapper.get_weights()])
    return wrapper


def _x(shape, seed=3):
    return np.random.default_rng(seed).normal(size=shape)


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("options", [{}, {"return_sequences": False},
                                     {"return_state": True}], ids=["sequences", "last", "state"])
def test_gradients_every_merge_mode(merge_mode, options):
    layer = ConvLSTM1D(2, 2, dtype="float64", **options)
    check_gradients(_wrapped(layer, merge_mode), _x((2, 4, 5, 2)), mask=MASK)


@pytest.mark.parametrize(("layer", "shape"), [
    (ConvLSTM2D(2, 2, num_layers=2, leaky_relu_slope=0.1, dtype="float64"), (2, 3, 3, 4, 2)),
    (ConvLSTM3D(1, 2, (1, 2, 2), stride=(1, 2, 1), data_format="channels_first",
                return_state=True, dtype="float64"), (2, 3, 1, 2, 3, 3)),
    (ConvLSTM2D(2, 2, peephole=True, go_backwards=True, dtype="float64"), (2, 3, 3, 3, 2)),
], ids=["stack_leaky", "3d_channels_first_state", "peephole_go_backwards"])
def test_gradients_of_stacks_ranks_and_peepholes(layer, shape):
    check_gradients(_wrapped(layer), _x(shape))


def test_initial_state_gradients_and_split():
    wrapper = _wrapped(ConvLSTM1D(2, 2, return_state=True, dtype="float64"))
    x = _x((2, 3, 4, 2))
    states = [_x((2, 4, 2), seed=k) for k in range(4)]
    outputs = wrapper(x, initial_state=states)
    forward = wrapper.forward_layer(x, initial_state=states[:2])
    np.testing.assert_array_equal(outputs[1], forward[1])  # forward's states come first
    upstream = [np.random.default_rng(7).normal(size=o.shape) for o in outputs]
    wrapper.forward(x, initial_state=states, training=True)
    wrapper.backward(*upstream)
    analytic = [g for pair in wrapper.state_grads for g in pair]

    def scalar():
        return sum(float(np.sum(o * u)) for o, u in zip(wrapper(x, initial_state=states),
                                                         upstream))

    for state, d_state in zip(states, analytic):
        assert relative_error(d_state, numerical_gradient(scalar, state)) < TOLERANCE


def test_the_merge_and_the_reversal_by_hand():
    layer = ConvLSTM1D(1, 2, seed=1, dtype="float64")
    x = _x((2, 4, 3, 1))
    forward = layer(x)
    backward = ConvLSTM1D.from_config({**layer.get_config(), "go_backwards": True})
    wrapper = Bidirectional(layer, "concat", backward_layer=backward)
    y_reversed = backward(x)[:, ::-1]  # processing order back to time order
    np.testing.assert_array_equal(wrapper(x), np.concatenate([forward, y_reversed], -1))
    for mode, expected in (("sum", forward + y_reversed), ("mul", forward * y_reversed),
                           ("ave", (forward + y_reversed) / 2)):
        merged = Bidirectional(layer, mode, backward_layer=backward)(x)
        np.testing.assert_allclose(merged, expected, rtol=0, atol=1e-15)
    y, y_rev = Bidirectional(layer, None, backward_layer=backward)(x, mask=MASK)
    np.testing.assert_array_equal(y[~MASK], 0.0)  # Keras' zero output for masked steps
    np.testing.assert_array_equal(y_rev[~MASK], 0.0)
    np.testing.assert_array_equal(y[MASK], layer(x, mask=MASK)[MASK])


def test_weights_config_and_copies():
    layer = ConvLSTM2D(1, 3, seed=2)
    wrapper = Bidirectional(layer)
    assert wrapper.backward_layer.go_backwards and not wrapper.forward_layer.go_backwards
    assert wrapper.forward_layer is not layer
    weights = wrapper.get_weights()
    assert [w.shape for w in weights] == [(3, 3, 1, 12), (3, 3, 3, 12), (12,)] * 2
    for own, copied in zip(layer.get_weights(), weights[:3]):
        np.testing.assert_array_equal(own, copied)
    config = wrapper.get_config()
    assert config["merge_mode"] == "concat" and "backward_layer" not in config
    assert config["layer"]["class_name"] == "ConvLSTM2D"
    rebuilt = deserialize(serialize(wrapper))
    assert rebuilt.get_config() == config
    given = Bidirectional(layer, "sum", ConvLSTM2D(1, 3, go_backwards=True, padding="valid"))
    assert Bidirectional.from_config(given.get_config()).get_config() == given.get_config()


def test_output_shapes_are_the_real_shapes():
    x = np.zeros((2, 4, 5, 6, 1), np.float32)
    for merge_mode in ("concat", "sum", None):
        for options in ({}, {"return_state": True, "return_sequences": False}):
            wrapper = Bidirectional(ConvLSTM2D(1, 3, stride=2, **options), merge_mode)
            result = wrapper(x)
            actual = tuple(a.shape for a in result) if isinstance(result, list) else result.shape
            assert wrapper.compute_output_shape(x.shape) == actual


def test_errors():
    with pytest.raises(TypeError, match=r"^Bidirectional: expected layer to be a recurrent "
                                        r"layer of the family .*; got Dense"):
        Bidirectional(Dense(2))
    with pytest.raises(ValueError, match=r"^Bidirectional: expected merge_mode to be one of "
                                         r"\['concat', 'sum', 'mul', 'ave', None\]; got 'max'"):
        Bidirectional(ConvLSTM2D(1, 2), "max")
    with pytest.raises(ValueError, match=r"backward_layer.go_backwards to differ"):
        Bidirectional(ConvLSTM2D(1, 2), backward_layer=ConvLSTM2D(1, 2))
    with pytest.raises(ValueError, match=r"expected backward_layer.return_state to equal "
                                         r"layer.return_state \(False\); got True"):
        Bidirectional(ConvLSTM2D(1, 2), backward_layer=ConvLSTM2D(1, 2, go_backwards=True,
                                                                  return_state=True))
    with pytest.raises(ValueError, match=r"merge_mode='sum' needs outputs of one shape"):
        Bidirectional(ConvLSTM2D(1, 2), "sum", ConvLSTM2D(1, 3, go_backwards=True))
    wrapper = Bidirectional(ConvLSTM2D(1, 2))
    with pytest.raises(ValueError, match=r"^Bidirectional.forward: expected initial_state"):
        wrapper(np.zeros((1, 2, 3, 3, 1)), initial_state=[np.zeros((1, 3, 3, 2))] * 3)
    with pytest.raises(RuntimeError, match=r"^Bidirectional.backward: no training forward"):
        wrapper.backward(np.zeros((1, 2, 3, 3, 4)))
    wrapper.forward(np.zeros((1, 2, 3, 3, 1)), training=True)
    with pytest.raises(ValueError, match=r"^Bidirectional.backward: expected 1 gradients"):
        wrapper.backward(np.zeros((1, 2, 3, 3, 4)), None)
    with pytest.raises(ValueError, match=r"expected d_output of shape \(1, 2, 3, 3, 4\)"):
        wrapper.backward(np.zeros((1, 2, 3, 3, 2)))


def test_in_a_model_trains_and_saves(tmp_path):
    model = Sequential([Bidirectional(ConvLSTM1D(1, 2, seed=1, return_sequences=False)),
                        Flatten(), Dense(1, seed=2)], input_shape=(3, 4, 1))
    model.compile(optimizer="adam", loss="mse")
    x = _x((4, 3, 4, 1)).astype(np.float32)
    y = np.ones((4, 1), np.float32)
    losses = model.fit(x, y, epochs=3, batch_size=4, verbose=0).history["loss"]
    assert losses[-1] < losses[0]
    restored = load(model.save(tmp_path / "bidirectional.npz"))
    assert restored.get_config() == model.get_config()
    np.testing.assert_array_equal(restored.predict(x), model.predict(x))


def test_a_layer_with_a_callable_activation_is_copied_too():
    layer = ConvLSTM1D(1, 2, activation=np.tanh, seed=4)
    wrapper = Bidirectional(layer)
    x = _x((1, 3, 4, 1))
    assert wrapper.backward_layer.activation is layer.activation  # the same callable
    np.testing.assert_array_equal(wrapper(x)[..., :2], layer(x))

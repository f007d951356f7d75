"""Training skips the input's gradient when the input is data: same weight gradients."""

import numpy as np
import pytest

from convlstm import ConvGRU2D, ConvLSTM2D, MaxPooling3D, Sequential
from convlstm.forecasting import forecaster


def _gradients(model):
    return [grad.copy() for grad in model.trainable_weights()[1].values()]


@pytest.mark.parametrize("layer_class", [ConvLSTM2D, ConvGRU2D])
@pytest.mark.parametrize("options", [{}, {"dropout": 0.3, "recurrent_dropout": 0.2},
                                     {"num_layers": 2}, {"go_backwards": True}],
                         ids=["plain", "dropout", "stack", "backwards"])
def test_layer_without_input_gradient_has_the_same_weight_gradients(layer_class, options):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 6, 5, 2))
    d_output = rng.normal(size=(2, 3, 6, 5, 4))
    grads = []
    for input_gradient in (True, False):
        layer = layer_class(2, 4, 3, "same", seed=1, dtype="float64", **options)
        layer.forward(x, training=True)  # same seed: the same dropout masks
        d_x = layer.backward(d_output, input_gradient=input_gradient)
        assert (d_x is None) == (not input_gradient)
        grads.append([owner.grads[key].copy() for _, owner, key in layer.named_params()])
        grads.append(layer.state_grads)
    (full, full_states), (skipped, skipped_states) = grads[:2], grads[2:]
    for ours, expected in zip(skipped, full):
        np.testing.assert_array_equal(ours, expected)
    for ours, expected in zip(skipped_states, full_states):
        for state, expected_state in zip(ours, expected):
            np.testing.assert_array_equal(state, expected_state)


def test_model_training_skips_the_input_gradient_with_the_same_weight_gradients():
    # The forecaster starts with space-to-depth (no weights): skipped, as is the first
    # ConvLSTM2D's input gradient; the weight gradients are those of a full backward.
    model = forecaster((16, 16, 1), filters=4, layers=2, kernel_size=3, block_size=4, seed=0)
    model.compile("adam", "binary_crossentropy")
    rng = np.random.default_rng(3)
    x = rng.random((2, 3, 16, 16, 1), dtype=np.float32)
    y = rng.random((2, 3, 16, 16, 1), dtype=np.float32)
    model.compute_gradients(x, y)
    skipped = _gradients(model)
    _, d_prediction = model.loss.value_and_gradient(y, model.forward(x, training=True))
    d_x = model.backward(d_prediction)
    assert d_x.shape == x.shape
    for ours, expected in zip(skipped, _gradients(model)):
        np.testing.assert_array_equal(ours, expected)


def test_model_without_weights_returns_no_input_gradient():
    model = Sequential([MaxPooling3D((1, 2, 2))])
    x = np.random.default_rng(0).normal(size=(1, 2, 4, 4, 1))
    output = model.forward(x, training=True)
    assert model.backward(np.ones_like(output), input_gradient=False) is None

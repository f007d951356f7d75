"""A stateful ConvLSTM fed one frame per call keeps its kernel's plan (fused weights, buffers)
across calls: it must compute what one sequence call computes, and honour every change of
weights, shape and dtype between calls."""

import numpy as np
import pytest

from convlstm import ConvLSTM2D, Sequential
from convlstm.functional import activations
from convlstm.optimizers import Adam

B, T, H, W, C, F = 2, 5, 6, 7, 3, 4


def _frames(seed: int = 0, batch: int = B) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(batch, T, H, W, C)).astype(np.float32)


def _stream(layer: ConvLSTM2D, x: np.ndarray) -> np.ndarray:
    return np.concatenate([layer.forward(x[:, t : t + 1]) for t in range(x.shape[1])], axis=1)


def _pair(**kwargs):
    """A stateful layer and a plain one with the same weights."""
    stateful = ConvLSTM2D(C, F, 3, "same", stateful=True, seed=1, **kwargs)
    plain = ConvLSTM2D(C, F, 3, "same", seed=1, **kwargs)
    plain.set_weights(stateful.get_weights())
    return stateful, plain


@pytest.mark.parametrize("kwargs", [{}, {"num_layers": 2}, {"peephole": True,
                                                            "peephole_initializer": "ones"}])
def test_streaming_equals_one_sequence_call(kwargs):
    stateful, plain = _pair(**kwargs)
    x = _frames()
    np.testing.assert_allclose(_stream(stateful, x), plain.forward(x), rtol=1e-6, atol=1e-6)
    assert stateful.cells[0]._plan is not None  # the plan was kept


def _new_weights(layer):
    rng = np.random.default_rng(5)
    layer.set_weights([rng.normal(size=w.shape).astype(w.dtype) * 0.3
                       for w in layer.get_weights()])


def _in_place(layer):
    for cell in layer.cells:
        cell.params["kernel"] *= -0.5  # as an optimizer updates: the same array, new values
        cell.params["bias"] += 0.25


@pytest.mark.parametrize("change", [_new_weights, _in_place], ids=["set_weights", "in_place"])
def test_a_weight_change_after_a_streaming_call_is_honoured(change):
    stateful, plain = _pair()
    x = _frames()
    _stream(stateful, x[:, :2])
    states = stateful.states
    change(stateful)
    change(plain)
    rest = _stream(stateful, x[:, 2:])
    expected = plain.forward(x[:, 2:], initial_state=list(states[0]))
    np.testing.assert_allclose(rest, expected, rtol=1e-6, atol=1e-6)


def test_an_optimizer_step_after_a_streaming_call_is_honoured():
    model = Sequential([ConvLSTM2D(C, F, 3, "same", stateful=True, seed=2)])
    model.compile(Adam(0.05), "mse")
    x = _frames()
    y = np.random.default_rng(3).normal(size=(B, 1, H, W, F)).astype(np.float32)
    layer = model.layers[0]
    before = layer.forward(x[:, :1])
    layer.reset_states()
    model.train_on_batch(x[:, :1], y)  # the update changes every weight in place
    layer.reset_states()
    after = layer.forward(x[:, :1])
    plain = ConvLSTM2D(C, F, 3, "same")
    plain.set_weights(layer.get_weights())
    np.testing.assert_allclose(after, plain.forward(x[:, :1]), rtol=1e-6, atol=1e-6)
    assert not np.allclose(before, after)


def test_a_new_batch_size_and_the_sigmoid_form_rebuild_the_plan(monkeypatch):
    stateful, plain = _pair()
    x = _frames(batch=3)
    _stream(stateful, x[:2])
    stateful.reset_states()
    np.testing.assert_allclose(_stream(stateful, x), plain.forward(x), rtol=1e-6, atol=1e-6)
    for form in ("exp", "tanh"):
        monkeypatch.setattr(activations, "sigmoid_form", lambda form=form: form)
        monkeypatch.setattr("convlstm.functional.convlstm.sigmoid_form", lambda form=form: form)
        stateful.reset_states()
        np.testing.assert_allclose(_stream(stateful, x), plain.forward(x), rtol=1e-6, atol=1e-6)


def test_float64_streaming():
    stateful, plain = _pair(dtype="float64")
    x = _frames().astype(np.float64)
    np.testing.assert_allclose(_stream(stateful, x), plain.forward(x), rtol=1e-12, atol=1e-12)


def test_training_calls_do_not_use_or_keep_a_plan():
    stateful, plain = _pair()
    x = _frames()
    out = stateful.forward(x, training=True)
    assert stateful.cells[0]._plan is None
    np.testing.assert_allclose(out, plain.forward(x), rtol=1e-6, atol=1e-6)

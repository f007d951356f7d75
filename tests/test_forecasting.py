"""Multi-step forecasting: training pairs, roll-outs, baselines, scores and the model pieces
that support them (metadata in files, stopping within an epoch, resetting states)."""

import numpy as np
import pytest

from convlstm import ConvLSTM2D, Sequential, forecasting, metrics, saving
from convlstm.callbacks import Callback, StepLimit, TimeLimit
from convlstm.layers.space_to_depth import DepthToSpace, SpaceToDepth


def sequences(n=3, frames=6, size=8, seed=0):
    return np.random.default_rng(seed).random((n, frames, size, size, 1)).astype(np.float32)


def test_direct_pairs_show_the_context_then_blanks_and_target_each_successor():
    data = sequences()
    x, y = forecasting.direct_pairs(data, context=2)
    np.testing.assert_array_equal(x[:, :2], data[:, :2])
    assert not x[:, 2:].any()
    np.testing.assert_array_equal(y, data[:, 1:])
    assert data[:, 2:].all()  # the caller's array is untouched


@pytest.mark.parametrize(("context", "message"), [
    (6, r"expected context < the 6 frames"), (0, "expected context to be a positive int"),
])
def test_direct_pairs_errors(context, message):
    with pytest.raises(ValueError, match=message):
        forecasting.direct_pairs(sequences(), context)


def test_forecaster_is_space_to_depth_convlstm_stack_and_a_sigmoid_head():
    model = forecasting.forecaster((16, 16, 1), filters=4, layers=2, block_size=4, seed=3)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["SpaceToDepth", "ConvLSTM2D", "ConvLSTM2D", "Conv3D", "DepthToSpace"]
    assert model.layers[1].in_channels == 16
    np.testing.assert_array_equal(model.layers[3].params["bias"], np.full(16, -3.0, np.float32))
    assert model.metadata == {"forecast": "direct"}
    out = model.predict(sequences(2, 5, 16))
    assert out.shape == (2, 5, 16, 16, 1) and out.min() > 0 and out.max() < 1


def test_direct_forecast_is_one_pass_over_context_and_blanks():
    model = forecasting.forecaster((8, 8, 1), filters=3, layers=1, block_size=2, seed=1)
    context = sequences(2, 4)
    expected = model.predict(np.concatenate([context, np.zeros((2, 2, 8, 8, 1))], axis=1))
    np.testing.assert_array_equal(forecasting.forecast(model, context, 3), expected[:, 3:])


def test_autoregressive_forecast_feeds_each_prediction_back():
    model = forecasting.next_frame_model((None, 8, 8, 1), filters=2, layers=1, seed=0)
    context = sequences(2, 3)
    first = model.predict(context)[:, -1:]
    second = model.predict(np.concatenate([context, first], axis=1))[:, -1:]
    np.testing.assert_allclose(forecasting.forecast(model, context, 2),
                               np.concatenate([first, second], axis=1), rtol=1e-6)
    # the method can be chosen against the model's own
    direct = forecasting.forecast(model, context, 2, method="direct")
    assert not np.allclose(direct, forecasting.forecast(model, context, 2))


@pytest.mark.parametrize(("arguments", "error", "message"), [
    ({"steps": 0}, ValueError, "expected steps to be a positive int"),
    ({"steps": 2, "method": "teacher"}, ValueError, "expected method to be one of"),
    ({"steps": 2, "context": np.zeros((2, 8, 8, 1))}, ValueError, r"expected context of shape"),
])
def test_forecast_errors(arguments, error, message):
    model = forecasting.next_frame_model((None, 8, 8, 1), filters=2, layers=1)
    arguments.setdefault("context", sequences(1, 2))
    with pytest.raises(error, match=message):
        forecasting.forecast(model, **arguments)


def test_baselines_repeat_the_last_frame_and_the_mean_frame():
    context, mean = sequences(2, 3), np.full((8, 8, 1), 0.25, np.float32)
    result = forecasting.baselines(context, 4, mean)
    for t in range(4):
        np.testing.assert_array_equal(result["repeat_last_frame"][:, t], context[:, -1])
    assert (result["mean_frame"] == 0.25).all() and result["mean_frame"].shape == (2, 4, 8, 8, 1)


def test_evaluate_reports_each_metric_per_horizon():
    truth, guess = sequences(4, 3, 8, seed=1), sequences(4, 3, 8, seed=2)
    scores = forecasting.evaluate(truth, {"guess": guess})["guess"]
    np.testing.assert_allclose(scores["mse_frame"], metrics.mse(truth, guess))
    np.testing.assert_allclose(scores["mse_pixel"], metrics.mse(truth, guess) / 64)
    np.testing.assert_allclose(scores["mae_frame"], metrics.mae(truth, guess))
    np.testing.assert_allclose(scores["ssim"], metrics.ssim(truth, guess))
    np.testing.assert_allclose(scores["psnr"], metrics.psnr(truth, guess))
    assert all(len(values) == 3 for values in scores.values())


def test_train_direct_draws_fresh_rounds_and_stops_on_a_step_limit():
    model = forecasting.forecaster((8, 8, 1), filters=2, layers=1, block_size=2)
    model.compile("adam", "binary_crossentropy")
    drawn = []

    def sample(count, round_number):
        drawn.append(round_number)
        return sequences(count, 5, seed=round_number)

    limit = StepLimit(5)
    results = list(forecasting.train_direct(model, sample, context=3, rounds=range(7, 20),
                                            round_size=4, batch_size=2, callbacks=[limit]))
    assert drawn == [7, 8, 9] and [r for r, _ in results] == [7, 8, 9]
    assert limit.done == 5 and model.optimizer.iterations == 5


def test_time_limit_stops_within_an_epoch_and_the_loss_averages_the_steps_taken():
    model = Sequential([ConvLSTM2D(1, 2, 3, seed=0)], input_shape=(3, 4, 4, 1))
    model.compile("sgd", "mse")
    x, y = sequences(6, 3, 4), sequences(6, 3, 4, seed=1)[..., :1].repeat(2, axis=-1)
    losses = []

    class Record(Callback):
        def on_batch_end(self, batch, logs):
            losses.append(logs["loss"])

    history = model.fit(x, y, batch_size=2, callbacks=[Record(), TimeLimit(1e-9)], verbose=0,
                        shuffle=False)
    assert len(losses) == 1 and model.optimizer.iterations == 1
    assert history.history["loss"] == [pytest.approx(losses[0])]


@pytest.mark.parametrize("limit", [lambda: TimeLimit(0), lambda: TimeLimit(float("inf")),
                                   lambda: StepLimit(0), lambda: StepLimit(2.5)])
def test_limits_refuse_nonsense(limit):
    with pytest.raises(ValueError, match="expected"):
        limit()


def test_model_metadata_survives_the_native_file_and_saving_is_atomic(tmp_path):
    model = forecasting.forecaster((8, 8, 1), filters=2, layers=1, block_size=2)
    model.metadata.update(command="convlstm train --dataset moving-mnist", steps=12)
    path = saving.save(model, tmp_path / "m.npz")
    loaded = saving.load(path)
    assert loaded.metadata == {"forecast": "direct", "command":
                               "convlstm train --dataset moving-mnist", "steps": 12}
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]
    x = sequences(1, 3)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_sequential_reset_states_clears_every_stateful_layer():
    model = Sequential([SpaceToDepth(2), ConvLSTM2D(4, 4, 3, stateful=True, seed=0),
                        DepthToSpace(2)], input_shape=(2, 8, 8, 1))
    x = sequences(1, 2)
    first = model.predict(x)
    assert not np.allclose(model.predict(x), first)  # carried on from the first call
    model.reset_states()
    np.testing.assert_array_equal(model.predict(x), first)


def test_the_pretrained_forecaster_carries_its_recipe_and_forecasts_digits():
    from convlstm import datasets, pretrained

    model = pretrained("moving-mnist")
    assert model.metadata["forecast"] == "direct"
    assert model.metadata["command"].startswith("convlstm train --dataset moving-mnist")
    test = datasets.moving_mnist(8, split="test", seed=7)
    future = forecasting.forecast(model, test[:, :10], 10)
    repeat = np.repeat(test[:, 9:10], 10, axis=1)
    assert metrics.mse(test[:, 10:], future)[0] < metrics.mse(test[:, 10:], repeat)[0] / 2
    with pytest.raises(ValueError, match="expected name to be one of 'moving-mnist'"):
        pretrained("kth")

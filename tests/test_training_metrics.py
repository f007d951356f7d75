"""compile(metrics=[...]): Keras' metric values in fit, evaluate, train_on_batch and History."""

import numpy as np
import pytest

from convlstm import ConvLSTM2D, Dense, Flatten, Sequential
from convlstm import training_metrics as tm
from convlstm.callbacks import Callback


def _data(seed=0, n=6):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 3, 4, 4, 1)).astype(np.float32)
    y = (rng.random((n, 2)) > 0.5).astype(np.float32)
    return x, y


def _model(metrics, loss="binary_crossentropy"):
    model = Sequential([ConvLSTM2D(1, 2, 3, return_sequences=False, seed=0), Flatten(),
                        Dense(2, activation="sigmoid", seed=1)], input_shape=(3, 4, 4, 1))
    model.compile("sgd", loss, metrics=metrics)
    return model


def test_each_metric_is_the_keras_formula():
    y_true = np.array([[0.0, 1.0], [1.0, 0.0]])
    y_pred = np.array([[0.2, 0.7], [0.4, 0.5]])
    expected = {
        "mae": np.mean(np.abs(y_pred - y_true)),
        "mse": np.mean((y_pred - y_true) ** 2),
        "rmse": np.sqrt(np.mean((y_pred - y_true) ** 2)),
        "binary_accuracy": np.mean([1, 1, 0, 1]),  # 0.5 is not above the threshold
        "categorical_accuracy": 0.5,
    }
    for name, value in expected.items():
        metric = tm.get(name)
        metric.update(y_true, y_pred)
        assert metric.name == name and metric.result() == pytest.approx(value)


@pytest.mark.parametrize(("loss", "kind"), [
    ("binary_crossentropy", tm.BinaryAccuracy),
    ("categorical_crossentropy", tm.CategoricalAccuracy),
    ("mse", tm.Accuracy),
])
def test_accuracy_means_what_keras_makes_of_it_for_the_loss(loss, kind):
    model = _model(["accuracy"], loss)
    assert type(model.metrics[0]) is kind and model.metrics[0].name == "accuracy"


def test_fit_reports_each_epochs_running_metrics_and_validation_metrics():
    x, y = _data()
    model = _model(["mae", tm.RootMeanSquaredError(name="rmse")])
    twin = _model(["mae", "rmse"])
    seen = []

    class Record(Callback):
        def on_batch_end(self, batch, logs):
            seen.append(dict(logs))

    history = model.fit(x[:4], y[:4], epochs=1, batch_size=2, shuffle=False, verbose=0,
                        validation_data=(x[4:], y[4:]), callbacks=[Record()])
    assert set(history.history) == {"loss", "mae", "rmse", "val_loss", "val_mae", "val_rmse"}
    # The twin takes the same steps one at a time; train_on_batch reports each batch alone.
    steps = [twin.train_on_batch(x[i : i + 2], y[i : i + 2], return_dict=True) for i in (0, 2)]
    assert history.history["mae"][0] == pytest.approx(np.mean([s["mae"] for s in steps]))
    assert history.history["rmse"][0] == pytest.approx(
        np.sqrt(np.mean([s["rmse"] ** 2 for s in steps])))
    assert seen[0]["mae"] == pytest.approx(steps[0]["mae"])  # running mean after one batch
    assert seen[1]["mae"] == pytest.approx(history.history["mae"][0])
    validation = model.evaluate(x[4:], y[4:], return_dict=True)
    assert history.history["val_mae"][0] == pytest.approx(validation["mae"])
    np.testing.assert_allclose(validation["mae"], np.mean(np.abs(model.predict(x[4:]) - y[4:])),
                               rtol=1e-6)


def test_evaluate_and_train_on_batch_return_what_keras_returns():
    x, y = _data()
    plain = _model(None)
    assert isinstance(plain.evaluate(x, y), float)
    assert isinstance(plain.train_on_batch(x, y), float)
    with_metrics = _model(["mae"])
    loss, mae = with_metrics.evaluate(x, y)
    assert with_metrics.evaluate(x, y, return_dict=True) == {"loss": loss, "mae": mae}
    assert list(with_metrics.train_on_batch(x, y, return_dict=True)) == ["loss", "mae"]


@pytest.mark.parametrize(("metrics", "error", "message"), [
    ("mae", TypeError, "expected metrics to be a list"),
    (["f1"], ValueError, "unknown metric 'f1'"),
    ([3], TypeError, "expected each metric to be a name or a Metric; got 3"),
    (["mae", "mae"], ValueError, "expected distinct metric names"),
    (["loss"], ValueError, "unknown metric 'loss'"),
])
def test_bad_metrics_are_refused_at_compile(metrics, error, message):
    with pytest.raises(error, match=message):
        _model(metrics)

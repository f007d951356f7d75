"""Sequential training: Keras 3 trajectories reproduced, a learning test, and the fit API."""

import json
from pathlib import Path

import numpy as np
import pytest

from convlstm import (
    BatchNormalization,
    Conv3D,
    ConvLSTM2D,
    Dense,
    Flatten,
    MaxPooling3D,
    Sequential,
    load,
)
from convlstm.callbacks import Callback, EarlyStopping, ModelCheckpoint
from convlstm.optimizers import SGD

FIXTURES = Path(__file__).parent / "fixtures" / "training"


def _fixture(name):
    with np.load(FIXTURES / f"{name}.npz", allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def _weights(data, prefix):
    return [data[f"{prefix}_w{k}"] for k in range(sum(key.startswith(prefix) for key in data))]


@pytest.mark.parametrize("name", ["convlstm_dense", "next_frame", "seed003"])
def test_keras_training_trajectory_is_reproduced(name):
    data = _fixture(name)
    fit = json.loads(str(data["fit"]))
    model = Sequential.from_config(json.loads(str(data["model"])))
    model.set_weights(_weights(data, "initial"))
    model.compile(SGD(fit["learning_rate"], momentum=fit["momentum"]), fit["loss"])
    validation = (data["x_val"], data["y_val"]) if "x_val" in data else None
    history = model.fit(data["x"], data["y"], epochs=fit["epochs"], batch_size=fit["batch_size"],
                        validation_data=validation, shuffle=False, verbose=0)
    np.testing.assert_allclose(history.history["loss"], data["loss"], rtol=0, atol=1e-5)
    if validation is not None:
        np.testing.assert_allclose(history.history["val_loss"], data["val_loss"], atol=1e-5)
    for ours, keras in zip(model.get_weights(), _weights(data, "final")):
        np.testing.assert_allclose(ours, keras, rtol=0, atol=1e-5)


def _moving_squares(rng, samples, frames=6, size=12):
    """A bright 3x3 square moving one pixel per frame in a random direction."""
    x = np.zeros((samples, frames + 1, size, size, 1), np.float32)
    for n in range(samples):
        row, col = rng.integers(2, size - 5, 2)
        d_row, d_col = rng.choice([-1, 1], 2)
        for t in range(frames + 1):
            r, c = np.clip([row + d_row * t, col + d_col * t], 0, size - 3)
            x[n, t, r : r + 3, c : c + 3] = 1.0
    return x[:, :-1], x[:, 1:]


def _next_frame_model(seed):
    return Sequential([
        ConvLSTM2D(1, 8, 3, "same", return_sequences=True, seed=seed),
        BatchNormalization(momentum=0.8),  # moving statistics that keep up with 40 steps
        Conv3D(1, 3, padding="same", activation="sigmoid", seed=seed),
    ])


def test_a_small_next_frame_model_learns():
    """Deterministic from its seeds: 40 Adam steps cut the loss by more than 3x."""
    x, y = _moving_squares(np.random.default_rng(0), 16)
    model = _next_frame_model(seed=1)
    model.compile("adam", "binary_crossentropy")
    model.optimizer.learning_rate = 0.01
    before = model.evaluate(x, y)
    history = model.fit(x, y, epochs=10, batch_size=4, verbose=0, seed=2)
    after = model.evaluate(x, y)
    assert after < before / 3, (before, after, history.history["loss"])
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_training_is_deterministic_from_seeds():
    x, y = _moving_squares(np.random.default_rng(0), 8)
    losses = []
    for _ in range(2):
        model = _next_frame_model(seed=5)
        model.compile(SGD(0.1), "mse")
        losses.append(model.fit(x, y, epochs=2, batch_size=4, verbose=0, seed=3).history["loss"])
    assert losses[0] == losses[1]


def test_summary_lists_layers_shapes_and_counts():
    model = Sequential(
        [ConvLSTM2D(1, 4, 3), MaxPooling3D((1, 2, 2)), Flatten(), Dense(2)],
        input_shape=(5, 8, 8, 1),
    )
    lines = []
    assert model.summary(print_fn=lines.append) is None
    text = "\n".join(lines)
    assert "ConvLSTM2D" in text and "(None, 5, 8, 8, 4)" in text
    assert "(None, 5, 4, 4, 4)" in text and "(None, 320)" in text
    convlstm_count = 3 * 3 * 1 * 16 + 3 * 3 * 4 * 16 + 16
    assert f"{convlstm_count:,}" in text
    assert f"Total params: {convlstm_count + 320 * 2 + 2:,}" in lines
    assert f"Trainable params: {convlstm_count + 320 * 2 + 2:,}" in lines
    assert "Non-trainable params: 0" in lines


def test_summary_prints_by_default_and_counts_moving_statistics_as_non_trainable(capsys):
    model = Sequential([ConvLSTM2D(1, 2, 3), BatchNormalization()], input_shape=(2, 4, 4, 1))
    model.summary()
    printed = capsys.readouterr().out.splitlines()
    convlstm_count = 9 * 1 * 8 + 9 * 2 * 8 + 8
    assert f"Total params: {convlstm_count + 4 * 2:,}" in printed
    assert f"Trainable params: {convlstm_count + 2 * 2:,}" in printed
    assert "Non-trainable params: 4" in printed


def test_batch_norm_moving_statistics_are_not_trained():
    model = _next_frame_model(seed=0)
    x, _ = _moving_squares(np.random.default_rng(1), 4)
    model.forward(x)
    params, _ = model.trainable_weights()
    assert "1/gamma" in params and "1/moving_mean" not in params


def test_predict_batches_and_evaluate_weights_batches_by_size():
    x, y = _moving_squares(np.random.default_rng(0), 5)
    model = _next_frame_model(seed=0)
    model.compile(SGD(0.1), "mse")
    np.testing.assert_allclose(model.predict(x, batch_size=2), model.forward(x), atol=1e-6)
    whole = float(np.mean((model.forward(x) - y) ** 2))
    assert model.evaluate(x, y, batch_size=2) == pytest.approx(whole, rel=1e-5)


def test_validation_split_holds_out_the_last_samples():
    x, y = _moving_squares(np.random.default_rng(0), 10)
    model = _next_frame_model(seed=0)
    model.compile(SGD(0.01), "mse")
    seen = []

    class Record(Callback):
        def on_batch_end(self, batch, logs):
            seen.append(batch)

    history = model.fit(x, y, epochs=1, batch_size=4, validation_split=0.2, verbose=0,
                        callbacks=[Record()])
    assert seen == [0, 1]  # 8 training samples in batches of 4
    assert "val_loss" in history.history


def test_early_stopping_restores_the_best_weights():
    x, y = _moving_squares(np.random.default_rng(0), 4)
    model = _next_frame_model(seed=0)
    model.compile(SGD(5.0), "mse")  # a step size that makes the validation loss get worse
    stopper = EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    history = model.fit(x, y, epochs=20, batch_size=4, validation_data=(x, y), verbose=0,
                        callbacks=[stopper])
    assert len(history.history["loss"]) < 20
    best = min(history.history["val_loss"])
    assert model.evaluate(x, y) == pytest.approx(best, rel=1e-4)


def test_checkpoints_and_native_round_trip(tmp_path):
    x, y = _moving_squares(np.random.default_rng(0), 4)
    model = _next_frame_model(seed=0)
    model.compile(SGD(0.1), "mse")
    model.fit(x, y, epochs=2, batch_size=2, verbose=0,
              callbacks=[ModelCheckpoint(str(tmp_path / "epoch{epoch}"), monitor="loss")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch1.npz", "epoch2.npz"]
    restored = load(tmp_path / "epoch2.npz")
    np.testing.assert_array_equal(restored.predict(x), model.predict(x))
    assert restored.get_config() == model.get_config()


def test_progress_lines_and_silence(capsys):
    x, y = _moving_squares(np.random.default_rng(0), 4)
    model = _next_frame_model(seed=0)
    model.compile(SGD(0.1), "mse")
    model.fit(x, y, epochs=2, batch_size=4, validation_data=(x, y))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].startswith("epoch 2/2  loss ") and "val_loss" in lines[1]
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert capsys.readouterr().out == ""


def test_fit_errors():
    model = _next_frame_model(seed=0)
    x, y = _moving_squares(np.random.default_rng(0), 4)
    with pytest.raises(RuntimeError, match=r"call compile\(optimizer=..., loss=...\) first"):
        model.fit(x, y)
    model.compile(SGD(0.1), "mse")
    with pytest.raises(ValueError, match=r"same number of samples; got shapes \(4, 6"):
        model.fit(x, y[:3])
    with pytest.raises(ValueError, match="expected validation_split in"):
        model.fit(x, y, validation_split=1.5)
    with pytest.raises(ValueError, match="return_state=True has three outputs"):
        Sequential([ConvLSTM2D(1, 2, return_state=True)])

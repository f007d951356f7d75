"""The native format: exact round trips, and a clear error for every kind of bad file."""

import zipfile
from pathlib import Path

import numpy as np
import pytest

from convlstm import ConvLSTM2D, Dense, Flatten, MaxPooling3D, Sequential, load


def _model():
    model = Sequential([ConvLSTM2D(1, 3, num_layers=2, leaky_relu_slope=0.1, seed=1),
                        MaxPooling3D((1, 2, 2)), Flatten(), Dense(2, seed=2)],
                       input_shape=(3, 6, 6, 1))
    return model


def test_round_trip_is_exact(tmp_path):
    model = _model()
    x = np.random.default_rng(0).random((2, 3, 6, 6, 1))
    path = model.save(tmp_path / "model")
    assert path.endswith("model.npz")
    restored = load(path)
    assert restored.get_config() == model.get_config()
    for a, b in zip(restored.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(restored.predict(x), model.predict(x))


def _entries(path):
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


@pytest.fixture
def saved(tmp_path):
    return _model().save(tmp_path / "model.npz")


def test_truncated_file(saved, tmp_path):
    data = Path(saved).read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"truncated.npz' is (not a readable|truncated)"):
        load(truncated)


def test_random_bytes(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(np.random.default_rng(0).bytes(500))
    with pytest.raises(ValueError, match=r"junk.npz' is not a readable numpy-convlstm model"):
        load(junk)


def test_missing_weight(saved, tmp_path):
    entries = _entries(saved)
    del entries["weight_0003"]
    np.savez(tmp_path / "missing.npz", **entries)
    with pytest.raises(ValueError, match=r"missing.npz' has weights that do not fit its config: "
                                         r".*expected 8 weights"):
        load(tmp_path / "missing.npz")


def test_wrong_weight_shape(saved, tmp_path):
    entries = _entries(saved)
    entries["weight_0000"] = entries["weight_0000"][:2]
    np.savez(tmp_path / "shape.npz", **entries)
    with pytest.raises(ValueError, match=r"weights\[0\] \(0/0/kernel\) of shape \(3, 3, 1, 12\)"):
        load(tmp_path / "shape.npz")


def test_foreign_npz_and_bare_array(tmp_path):
    np.savez(tmp_path / "foreign.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match=r"foreign\.npz' is not a numpy-convlstm model file"):
        load(tmp_path / "foreign.npz")
    np.save(tmp_path / "bare.npy", np.zeros(3))
    with pytest.raises(ValueError, match="a bare array"):
        load(tmp_path / "bare.npy")


def test_unknown_layer_class_in_config(saved, tmp_path):
    entries = _entries(saved)
    entries["config"] = np.array(str(entries["config"]).replace('"Flatten"', '"os.system"'))
    np.savez(tmp_path / "evil.npz", **entries)
    with pytest.raises(ValueError, match=r"unknown layer class 'os\.system'"):
        load(tmp_path / "evil.npz")


def test_pickled_objects_are_refused(saved, tmp_path):
    entries = _entries(saved)
    entries["weight_0000"] = np.array([object()], dtype=object)
    np.savez(tmp_path / "pickle.npz", **entries)
    with pytest.raises(ValueError, match=r"pickle\.npz"):
        load(tmp_path / "pickle.npz")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load(tmp_path / "nothing.npz")


def test_the_file_is_a_plain_npz_archive(saved):
    with zipfile.ZipFile(saved) as archive:
        assert "config.npy" in archive.namelist()


def test_stateful_states_are_saved_when_asked(tmp_path):
    model = Sequential([ConvLSTM2D(1, 2, num_layers=2, stateful=True, seed=0)])
    first, second = np.random.default_rng(1).random((2, 2, 3, 5, 5, 1))
    model.forward(first)
    expected = model.forward(second)
    model.layers[0].reset_states()
    model.forward(first)
    with_states = load(model.save(tmp_path / "with", include_states=True))
    without = load(model.save(tmp_path / "without"))
    np.testing.assert_allclose(with_states.forward(second), expected, atol=1e-6)
    assert without.layers[0].states is None
    assert not np.allclose(without.forward(second), expected, atol=1e-3)

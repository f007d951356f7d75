"""Keras 3's keywords on the seed's layers: filters, strides, dilation_rate; in_channels
omitted (built on the first call or by Sequential(input_shape=...)); Keras' positional form."""

from __future__ import annotations

import numpy as np
import pytest

from convlstm import (
    ConvGRU1D,
    ConvGRU2D,
    ConvGRU2DCell,
    ConvGRU3D,
    ConvLSTM1D,
    ConvLSTM1DCell,
    ConvLSTM2D,
    ConvLSTM2DCell,
    ConvLSTM3D,
    ConvLSTM3DCell,
    MaxPooling1D,
    MaxPooling2D,
    MaxPooling3D,
    Sequential,
    saving,
)

RNN_LAYERS = [(ConvLSTM1D, 1), (ConvLSTM2D, 2), (ConvLSTM3D, 3), (ConvGRU1D, 1),
              (ConvGRU2D, 2), (ConvGRU3D, 3)]
CELLS = [(ConvLSTM1DCell, 1), (ConvLSTM2DCell, 2), (ConvLSTM3DCell, 3), (ConvGRU2DCell, 2)]


def sequence(rank: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((2, 3, *[5] * rank, channels)).astype(np.float32)


def assert_same_weights(a, b) -> None:
    wa, wb = a.get_weights(), b.get_weights()
    assert [w.shape for w in wa] == [w.shape for w in wb]
    for x, y in zip(wa, wb):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("cls, rank", RNN_LAYERS)
def test_keras_keywords_equal_the_seed_names(cls, rank):
    seed_layer = cls(3, 4, 3, "same", 1, dilation=2, num_layers=2, seed=5)
    keras_layer = cls(in_channels=3, filters=4, kernel_size=3, padding="same", strides=1,
                      dilation_rate=2, num_layers=2, seed=5)
    assert keras_layer.get_config() == seed_layer.get_config()
    assert_same_weights(keras_layer, seed_layer)
    x = sequence(rank)
    np.testing.assert_array_equal(keras_layer(x), seed_layer(x))


@pytest.mark.parametrize("cls, rank", CELLS)
def test_cells_take_keras_keywords_and_build_lazily(cls, rank):
    eager = cls(3, 4, strides=2, seed=1)
    lazy = cls(filters=4, strides=2, seed=1)
    assert not lazy.built and lazy.in_channels is None
    frame = sequence(rank)[:, 0]
    h, _ = lazy(frame)
    assert lazy.built and lazy.in_channels == 3
    assert_same_weights(lazy, eager)
    np.testing.assert_array_equal(h, eager(frame)[0])


@pytest.mark.parametrize("cls, rank", RNN_LAYERS)
def test_a_lazy_layer_builds_on_its_first_call_with_the_eager_weights(cls, rank):
    eager = cls(3, 4, 3, num_layers=2, seed=7)
    lazy = cls(filters=4, kernel_size=3, num_layers=2, seed=7)
    assert not lazy.built and lazy.in_channels is None and lazy.sublayers() == []
    x = sequence(rank)
    np.testing.assert_array_equal(lazy(x), eager(x))
    assert lazy.built and lazy.in_channels == 3
    assert_same_weights(lazy, eager)
    assert lazy.get_config() == eager.get_config()


def test_keras_positional_form():
    layer = ConvLSTM2D(16, (3, 3), seed=0)
    assert (layer.in_channels, layer.out_channels, layer.kernel_size) == (None, 16, (3, 3))
    full = ConvLSTM2D(8, [3, 3], (1, 1), "valid", "channels_first", (2, 2))
    assert (full.out_channels, full.stride, full.padding, full.data_format, full.dilation) == (
        8, (1, 1), "valid", "channels_first", (2, 2))
    one = ConvGRU2D(16, kernel_size=3)
    assert (one.in_channels, one.out_channels) == (None, 16)
    x = sequence(2, channels=2)
    np.testing.assert_array_equal(layer(x), ConvLSTM2D(2, 16, (3, 3), seed=0)(x))


def test_the_seed_call_is_unchanged():
    layer = ConvLSTM2D(1, 32, 3, 1, 1, 0.2, 1)
    assert (layer.in_channels, layer.out_channels, layer.kernel_size, layer.padding,
            layer.stride, layer.leaky_relu_slope, layer.num_layers) == (
        1, 32, (3, 3), (1, 1), (1, 1), 0.2, 1)
    assert layer.built
    seed_form = ConvLSTM2D(1, out_channels=8)
    assert (seed_form.in_channels, seed_form.out_channels) == (1, 8)


@pytest.mark.parametrize("arguments, keywords, message", [
    ((), {"out_channels": 4, "filters": 4}, "got both out_channels and filters"),
    ((1, 4), {"filters": 4}, "got both out_channels and filters"),
    ((1, 4), {"strides": 2}, None),
    ((1, 4, 3, "same", 1), {"strides": 2}, "got both stride and strides"),
    ((), {"filters": 4, "dilation": 2, "dilation_rate": 2},
     "got both dilation and dilation_rate"),
    ((16, (3, 3)), {"filters": 8}, "got filters both by position and by keyword"),
    ((16, (3, 3)), {"out_channels": 8}, "got both out_channels and filters"),
    ((), {"kernel_size": 3}, r"missing out_channels \(Keras' filters\)"),
    ((1, 2, 3, 4, 5, 6, 7, 8), {}, "expected at most 7 positional arguments"),
])
def test_argument_conflicts_are_type_errors(arguments, keywords, message):
    if message is None:
        assert ConvLSTM2D(*arguments, **keywords).stride == (2, 2)
        return
    with pytest.raises(TypeError, match=rf"^ConvLSTM2D: {message}"):
        ConvLSTM2D(*arguments, **keywords)


def test_cells_and_gru_name_themselves_in_conflicts():
    with pytest.raises(TypeError, match=r"^ConvGRU3D: got both stride and strides"):
        ConvGRU3D(filters=2, stride=1, strides=1)
    with pytest.raises(TypeError, match=r"^ConvLSTM2DCell: got both out_channels and filters"):
        ConvLSTM2DCell(1, 2, filters=2)


@pytest.mark.parametrize("cls, rank", [(MaxPooling1D, 1), (MaxPooling2D, 2), (MaxPooling3D, 3)])
def test_pooling_takes_strides(cls, rank):
    assert cls(2, strides=1).stride == (1,) * rank
    assert cls(2, strides=1).get_config() == cls(2, 1).get_config()
    assert cls(3).stride == (3,) * rank
    with pytest.raises(TypeError, match=rf"^{cls.__name__}: got both stride and strides"):
        cls(2, 1, strides=1)


def test_sequential_input_shape_builds_lazy_layers_up_front():
    model = Sequential([ConvLSTM2D(filters=4, kernel_size=3, seed=2),
                        MaxPooling3D(pool_size=(1, 2, 2), strides=(1, 2, 2))],
                       input_shape=(3, 6, 6, 2))
    eager = ConvLSTM2D(2, 4, 3, seed=2)
    assert model.layers[0].built and model.layers[0].in_channels == 2
    assert_same_weights(model.layers[0], eager)
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    assert "Total params: 880" in lines
    assert model.compute_output_shape((None, 3, 6, 6, 2)) == (None, 3, 3, 3, 4)


def test_sequential_builds_a_layer_added_after_its_input_shape_for_the_summary():
    model = Sequential(input_shape=(3, 6, 6, 2))
    model.add(ConvLSTM2D(filters=4, kernel_size=3))
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    assert "Total params: 880" in lines


def test_an_unbuilt_layer_refuses_weights_with_a_clear_error():
    layer = ConvLSTM2D(filters=4, kernel_size=3)
    message = (r"^ConvLSTM2D.get_weights: the layer has no weights yet \(no in_channels "
               r"given\); it is built on its first call, or by Sequential\(\.\.\., "
               r"input_shape=\.\.\.\)\.$")
    with pytest.raises(RuntimeError, match=message):
        layer.get_weights()
    with pytest.raises(RuntimeError, match=r"^ConvLSTM2D.set_weights: the layer has no weights"):
        layer.set_weights([])
    with pytest.raises(RuntimeError, match=r"^ConvGRU2DCell.get_weights: the layer has no"):
        ConvGRU2DCell(filters=2).get_weights()
    with pytest.raises(RuntimeError, match=r"^Sequential.summary: the input shape is unknown"):
        Sequential([layer]).summary()


def test_build_checks_the_input_shape():
    with pytest.raises(ValueError, match=r"^ConvLSTM2D.build: expected an input_shape of "
                                         r"\(batch, time, height, width, channels\); got "
                                         r"\(None, 4, 4, 2\)\."):
        ConvLSTM2D(filters=2).build((None, 4, 4, 2))
    built = ConvLSTM2D(3, 2)
    with pytest.raises(ValueError, match=r"^ConvLSTM2D.build: expected an input_shape of "
                                         r"\(batch, time, height, width, 3\)"):
        built.build((None, None, 4, 4, 2))
    built.build((None, None, 4, 4, 3))  # a built layer that fits: nothing changes
    with pytest.raises(ValueError, match=r"^ConvLSTM2D.build: expected an input_shape of "
                                         r"\(batch, time, height, width, channels\); got "
                                         r"\(1, 2, 4, 4, 0\)\."):
        ConvLSTM2D(filters=2)(np.zeros((1, 2, 4, 4, 0), np.float32))


def test_an_unbuilt_config_round_trips(tmp_path):
    layer = ConvLSTM2D(filters=4, kernel_size=(3, 3), strides=1, seed=3)
    config = layer.get_config()
    assert config["in_channels"] is None and config["out_channels"] == 4
    again = ConvLSTM2D.from_config(config)
    assert again.get_config() == config and not again.built
    loaded = saving.load(saving.save(layer, tmp_path / "lazy"))
    assert loaded.get_config() == config and not loaded.built
    model = Sequential([ConvGRU2D(filters=2, seed=1)])
    reloaded = saving.load(saving.save(model, tmp_path / "model"))
    assert reloaded.layers[0].get_config() == model.layers[0].get_config()
    x = sequence(2)
    np.testing.assert_array_equal(loaded(x), ConvLSTM2D(3, 4, (3, 3), seed=3)(x))


def test_a_built_lazy_layer_saves_and_loads_its_weights(tmp_path):
    layer = ConvLSTM2D(filters=4, seed=3)
    x = sequence(2)
    expected = layer(x)
    loaded = saving.load(saving.save(layer, tmp_path / "built"))
    assert loaded.in_channels == 3
    np.testing.assert_array_equal(loaded(x), expected)


def test_bidirectional_wraps_a_lazy_layer():
    from convlstm import Bidirectional

    lazy = Bidirectional(ConvLSTM2D(filters=2, seed=4))
    eager = Bidirectional(ConvLSTM2D(3, 2, seed=4))
    model = Sequential([lazy], input_shape=(None, 5, 5, 3))
    assert_same_weights(model.layers[0], eager)
    x = sequence(2)
    np.testing.assert_array_equal(lazy(x), eager(x))

"""The ConvLSTM options object: one frozen dataclass, validated once, whose fields are the config
and the layer's read-only attributes."""

import dataclasses
import inspect

import numpy as np
import pytest

from convlstm import ConvLSTM2D, ConvLSTM2DCell
from convlstm.layers.convlstm_options import ConvLSTMCellOptions, ConvLSTMOptions


def test_the_config_is_the_options_fields_in_signature_order():
    layer = ConvLSTM2D(2, 3, (3, 1), num_layers=2, dropout=0.1, seed=5)
    assert list(layer.get_config()) == list(inspect.signature(ConvLSTM2D).parameters)
    assert {item.name for item in dataclasses.fields(ConvLSTMOptions)} == set(layer.get_config())
    cell = ConvLSTM2DCell(2, 3)
    assert list(cell.get_config()) == list(inspect.signature(ConvLSTM2DCell).parameters)


def test_options_are_frozen_and_attributes_read_only():
    layer = ConvLSTM2D(2, 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        layer.options.kernel_size = (1, 1)
    with pytest.raises(AttributeError):
        layer.kernel_size = (1, 1)
    assert layer.kernel_size is layer.options.kernel_size == (3, 3)
    assert not hasattr(ConvLSTM2D, "__getattr__")


def test_cells_share_the_layers_values_with_their_own_channels_and_seed():
    layer = ConvLSTM2D(2, 3, 1, "valid", num_layers=3, activation="relu", seed=7)
    first, *others = (cell.options for cell in layer.cells)
    assert type(first) is ConvLSTMCellOptions
    assert (first.in_channels, first.seed) == (2, 7)
    assert all((o.in_channels, o.seed) == (3, None) for o in others)
    assert all(o.activation is layer.activation and o.padding == "valid" for o in others)


def test_stack_weights_are_drawn_once_from_one_generator():
    # cell k's weights continue the draws of cells 0..k-1: a lone cell with the same seed
    # gives the first cell's weights.
    layer = ConvLSTM2D(2, 3, num_layers=2, seed=11)
    lone = ConvLSTM2DCell(2, 3, seed=11)
    for name in lone.params:
        np.testing.assert_array_equal(layer.cells[0].params[name], lone.params[name])


def test_options_validate_once_with_the_owners_name():
    with pytest.raises(ValueError, match=r"^ConvLSTM2D: expected num_layers"):
        ConvLSTMOptions(1, 2, num_layers=0)
    with pytest.raises(ValueError, match=r"^ConvLSTM2DCell: expected out_channels"):
        ConvLSTMCellOptions(1, 0)
    assert ConvLSTMOptions(1, 2, 3).config()["kernel_size"] == [3, 3]

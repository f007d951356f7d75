"""Every bad input gets a clear ValueError/TypeError naming the argument; nothing else happens."""

import numpy as np
import pytest

from convlstm import ConvLSTM2D, ConvLSTM2DCell, MaxPooling3D

X = np.zeros((2, 3, 5, 5, 1), dtype=np.float32)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"in_channels": 0},
            ValueError,
            r"ConvLSTM2D: expected in_channels to be a positive int; got 0",
        ),
        ({"out_channels": 2.5}, TypeError, r"expected out_channels to be a positive int; got 2.5"),
        ({"kernel_size": 0}, ValueError, r"expected kernel_size to be an int >= 1 .* got 0"),
        ({"kernel_size": (3, 3, 3)}, TypeError, r"kernel_size to be an int >= 1 or a tuple of 2"),
        ({"padding": "full"}, ValueError, r"expected padding to be 'same' or 'valid'; got 'full'"),
        ({"padding": -1}, ValueError, r"expected padding to be an int >= 0"),
        ({"stride": (1, 0)}, ValueError, r"expected stride to be an int >= 1"),
        (
            {"leaky_relu_slope": "0.2"},
            TypeError,
            r"expected leaky_relu_slope to be None or a float >= 0",
        ),
        ({"num_layers": 0}, ValueError, r"expected num_layers to be a positive int; got 0"),
        (
            {"stride": 2, "dilation": 2},
            ValueError,
            r"stride > 1 is not compatible with dilation > 1",
        ),
        ({"activation": "swishy"}, ValueError, r"unknown activation 'swishy'; expected one of"),
        (
            {"recurrent_activation": 3},
            TypeError,
            r"recurrent_activation to be a name or a callable",
        ),
        ({"kernel_initializer": "glorot"}, ValueError, r"unknown kernel_initializer 'glorot'"),
        ({"use_bias": 1}, TypeError, r"expected use_bias to be True or False; got 1"),
        ({"data_format": "NHWC"}, ValueError, r"data_format to be one of 'channels_last'"),
        ({"dtype": "float16"}, ValueError, r"expected dtype to be 'float32' or 'float64'"),
        ({"seed": -3}, TypeError, r"expected seed to be None or a non-negative int"),
    ],
)
def test_constructor_errors(kwargs, error, match):
    arguments = {"in_channels": 1, "out_channels": 2, **kwargs}
    with pytest.raises(error, match=match):
        ConvLSTM2D(**arguments)


def test_cell_errors_name_the_cell():
    with pytest.raises(ValueError, match=r"^ConvLSTM2DCell: expected out_channels"):
        ConvLSTM2DCell(1, -2)


@pytest.mark.parametrize(
    ("x", "error", "match"),
    [
        (
            np.zeros((2, 3, 5, 5)),
            ValueError,
            r"ConvLSTM2D.forward: expected x of shape \(batch, time, height, width, 1\); "
            r"got \(2, 3, 5, 5\)\.",
        ),
        (np.zeros((2, 3, 5, 5, 4)), ValueError, r"expected x of shape .*; got \(2, 3, 5, 5, 4\)"),
        (np.zeros((2, 0, 5, 5, 1)), ValueError, r"expected x with at least one time step"),
        (np.zeros((2, 3, 5, 5, 1), dtype=complex), TypeError, r"real numeric array .* complex128"),
        (np.array([[["a"]]]), TypeError, r"expected x to be a real numeric array"),
        (np.empty((2, 3, 5, 5, 1), dtype=object), TypeError, r"got dtype object"),
    ],
)
def test_forward_input_errors(x, error, match):
    with pytest.raises(error, match=match):
        ConvLSTM2D(1, 2).forward(x)


def test_frames_smaller_than_kernel_under_valid():
    with pytest.raises(ValueError, match=r"frames of 2x5 are too small for kernel_size=\(3, 3\)"):
        ConvLSTM2D(1, 2, padding="valid").forward(np.zeros((1, 2, 2, 5, 1)))


@pytest.mark.parametrize(
    ("initial_state", "error", "match"),
    [
        ([np.zeros((2, 5, 5, 2))], ValueError, r"expected initial_state to be \[h, c\]; got 1"),
        (
            [np.zeros((2, 5, 5, 2)), np.zeros((2, 5, 5, 3))],
            ValueError,
            r"expected initial_state c of shape \(2, 5, 5, 2\); got \(2, 5, 5, 3\)",
        ),
        (
            [np.zeros((3, 5, 5, 2)), np.zeros((2, 5, 5, 2))],
            ValueError,
            r"expected initial_state h of shape \(2, 5, 5, 2\); got \(3, 5, 5, 2\)",
        ),
        ("state", TypeError, r"expected initial_state to be a list \[h, c\]; got str"),
    ],
)
def test_initial_state_errors(initial_state, error, match):
    with pytest.raises(error, match=match):
        ConvLSTM2D(1, 2).forward(X, initial_state=initial_state)


def test_stack_needs_one_state_pair_per_layer():
    pair = [np.zeros((2, 5, 5, 2)), np.zeros((2, 5, 5, 2))]
    with pytest.raises(ValueError, match=r"expected initial_state to be 2 \[h, c\] pairs"):
        ConvLSTM2D(1, 2, num_layers=2).forward(X, initial_state=pair)


@pytest.mark.parametrize(
    ("mask", "error", "match"),
    [
        (np.ones((2, 4), dtype=bool), ValueError, r"expected mask of shape \(2, 3\); got \(2, 4\)"),
        (np.ones(3, dtype=bool), ValueError, r"expected mask of shape \(2, 3\); got \(3,\)"),
        (np.ones((2, 3)) * 0.5, TypeError, r"expected mask to be a bool array; got dtype float64"),
    ],
)
def test_mask_errors(mask, error, match):
    with pytest.raises(error, match=match):
        ConvLSTM2D(1, 2).forward(X, mask=mask)


def test_set_weights_errors():
    layer = ConvLSTM2D(1, 2, num_layers=2)
    weights = layer.get_weights()
    with pytest.raises(ValueError, match=r"expected 6 weights \(0/kernel, .*1/bias\); got 5"):
        layer.set_weights(weights[:5])
    weights[4] = np.zeros((3, 3, 2, 4))
    with pytest.raises(
        ValueError,
        match=r"weights\[4\] \(1/recurrent_kernel\) of shape "
        r"\(3, 3, 2, 8\); got \(3, 3, 2, 4\)",
    ):
        layer.set_weights(weights)
    with pytest.raises(TypeError, match=r"expected a list of 6 arrays; got ndarray"):
        layer.set_weights(np.zeros(3))
    before = layer.get_weights()
    for old, new in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_stateful_batch_change_is_explained():
    layer = ConvLSTM2D(1, 2, stateful=True)
    layer.forward(X)
    with pytest.raises(ValueError, match=r"call reset_states\(\) to start a new batch"):
        layer.forward(X[:1])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"pool_size": 0}, ValueError, r"MaxPooling3D: expected pool_size to be an int >= 1"),
        ({"pool_size": (2, 2)}, TypeError, r"expected pool_size to be an int >= 1 or a tuple of 3"),
        ({"stride": (1, 1, 0)}, ValueError, r"expected stride to be an int >= 1"),
        ({"padding": 1}, TypeError, r"expected padding to be 'same' or 'valid'; got 1"),
        ({"data_format": "NDHWC"}, ValueError, r"expected data_format to be one of"),
    ],
)
def test_pooling_constructor_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        MaxPooling3D(**kwargs)


def test_pooling_forward_errors():
    with pytest.raises(
        ValueError,
        match=r"MaxPooling3D.forward: expected x of shape "
        r"\(batch, depth, height, width, channels\); got \(2, 4\)",
    ):
        MaxPooling3D().forward(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"pool_size=\(2, 2, 2\) does not fit .* \(1, 4, 4\)"):
        MaxPooling3D().forward(np.zeros((1, 1, 4, 4, 2)))
    with pytest.raises(TypeError, match=r"real numeric array; got dtype complex"):
        MaxPooling3D().forward(np.zeros((1, 2, 4, 4, 2), dtype=complex))

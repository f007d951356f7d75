"""The fast kernels against the slow loop oracle in ``reference.py``, on a grid of geometries."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convlstm import ConvLSTM2D, MaxPooling3D

from reference import (
    ConvLSTMTape,
    convlstm_reference,
    convlstm_reference_backward,
    hard_sigmoid,
    maxpool3d_reference,
    same_pads,
)

RNG_SEED = 1234


def _reference_pads(padding, size, kernel, stride, dilation):
    if padding == "same":
        return tuple(map(same_pads, size, kernel, stride, dilation))
    if padding == "valid":
        return ((0, 0), (0, 0))
    return tuple((p, p) for p in padding)


def _random_layer(rng, in_channels, filters, **kwargs):
    layer = ConvLSTM2D(in_channels, filters, dtype="float64", **kwargs)
    layer.set_weights([rng.uniform(-0.6, 0.6, w.shape) for w in layer.get_weights()])
    return layer


def _check_single_layer(
    rng,
    batch,
    time,
    size,
    in_channels,
    filters,
    kernel,
    padding,
    stride,
    dilation,
    mask=None,
    go_backwards=False,
):
    layer = _random_layer(
        rng,
        in_channels,
        filters,
        kernel_size=kernel,
        padding=padding,
        stride=stride,
        dilation=dilation,
        go_backwards=go_backwards,
        return_state=True,
    )
    x = rng.normal(size=(batch, time, *size, in_channels))
    output, h, c = layer.forward(x, mask=mask)
    kernel_w, recurrent_w, *bias = layer.get_weights()
    pads = _reference_pads(layer.padding, size, layer.kernel_size, layer.stride, layer.dilation)
    expected, expected_h, expected_c = convlstm_reference(
        x,
        kernel_w,
        recurrent_w,
        bias[0] if bias else None,
        stride=layer.stride,
        pads=pads,
        dilation=layer.dilation,
        mask=mask,
        go_backwards=go_backwards,
    )
    np.testing.assert_allclose(output, expected, rtol=0, atol=1e-10)
    np.testing.assert_allclose(h, expected_h, rtol=0, atol=1e-10)
    np.testing.assert_allclose(c, expected_c, rtol=0, atol=1e-10)


GRID = [
    (kernel, padding, stride, dilation)
    for kernel, padding, stride, dilation in itertools.product(
        [1, 2, 3, (3, 2)], ["same", "valid", 1, (2, 0)], [1, 2, (1, 3)], [1, 2]
    )
    if stride == 1 or dilation == 1
]


@pytest.mark.parametrize(("kernel", "padding", "stride", "dilation"), GRID)
def test_geometry_grid(kernel, padding, stride, dilation):
    rng = np.random.default_rng(RNG_SEED)
    _check_single_layer(rng, 2, 3, (7, 6), 2, 3, kernel, padding, stride, dilation)


def _check_single_layer_backward(
    rng, size, kernel, padding, stride, dilation, mask=None, go_backwards=False, **options
):
    """The fast BPTT against the reference loop backward: d_x, every weight's gradient and the
    initial states' gradients, from nonzero initial states and final-state gradients."""
    batch, time, in_channels, filters = 3, 4, 2, 3
    layer = _random_layer(rng, in_channels, filters, kernel_size=kernel, padding=padding,
                          stride=stride, dilation=dilation, go_backwards=go_backwards,
                          return_state=True, **options)
    x = rng.normal(size=(batch, time, *size, in_channels))
    out_size = layer.cells[0].output_hw(*size)
    h0, c0 = (rng.normal(size=(batch, *out_size, filters)) for _ in range(2))
    output, h, c = layer.forward(x, initial_state=[h0, c0], mask=mask, training=True)
    d_output, d_h, d_c = (rng.normal(size=a.shape) for a in (output, h, c))
    d_x = layer.backward(d_output, d_h, d_c)
    (d_h0, d_c0), = layer.state_grads

    kernel_w, recurrent_w, bias = layer.get_weights()
    tape = ConvLSTMTape(x, kernel_w, recurrent_w, [])
    pads = _reference_pads(layer.padding, size, layer.kernel_size, layer.stride, layer.dilation)
    convlstm_reference(x, kernel_w, recurrent_w, bias, stride=layer.stride, pads=pads,
                       dilation=layer.dilation, h0=h0, c0=c0, mask=mask,
                       go_backwards=go_backwards, tape=tape, **_reference_activations(options))
    expected = convlstm_reference_backward(tape, d_output, d_h, d_c)
    actual = {"x": d_x, "h0": d_h0, "c0": d_c0, **layer.cells[0].grads}
    assert set(actual) == set(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(actual[name], value, rtol=0, atol=1e-10, err_msg=name)


def _reference_activations(options):
    names = {"hard_sigmoid": hard_sigmoid}
    if "recurrent_activation" in options:
        return {"recurrent_activation": names[options["recurrent_activation"]]}
    return {}


@pytest.mark.parametrize(("kernel", "padding", "stride", "dilation"), GRID)
def test_backward_geometry_grid(kernel, padding, stride, dilation):
    rng = np.random.default_rng(RNG_SEED)
    _check_single_layer_backward(rng, (6, 5), kernel, padding, stride, dilation)


MASK = np.array(
    [
        [False, True, False, True],
        [True, True, False, False],
        [False, False, False, False],
    ]
)


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("mask", [None, MASK], ids=["unmasked", "masked"])
@pytest.mark.parametrize(
    ("kernel", "padding", "stride", "dilation"),
    [(3, "same", 1, 1), ((3, 2), "valid", 2, 1), (2, 1, 1, 2), (3, (2, 0), (1, 3), 1)],
)
def test_backward_masks_and_direction(kernel, padding, stride, dilation, mask, go_backwards):
    rng = np.random.default_rng(RNG_SEED)
    _check_single_layer_backward(rng, (6, 5), kernel, padding, stride, dilation, mask=mask,
                                 go_backwards=go_backwards)


def test_backward_hard_sigmoid_against_reference():
    # Another recurrent activation: the kernel's general path (not the negated-sigmoid rows).
    rng = np.random.default_rng(RNG_SEED)
    _check_single_layer_backward(rng, (5, 5), 3, "same", 1, 1, mask=MASK,
                                 recurrent_activation="hard_sigmoid")


@pytest.mark.parametrize(("batch", "time"), [(1, 1), (1, 5), (3, 2), (4, 1)])
def test_batch_and_time_lengths(batch, time):
    rng = np.random.default_rng(RNG_SEED)
    _check_single_layer(rng, batch, time, (5, 5), 1, 2, 3, "same", 1, 1)


@pytest.mark.parametrize("go_backwards", [False, True])
def test_mask_against_reference(go_backwards):
    rng = np.random.default_rng(RNG_SEED)
    mask = np.array(
        [
            [False, True, False, True, True],
            [True, True, False, False, True],
            [False, False, False, False, False],
        ]
    )
    _check_single_layer(
        rng, 3, 5, (4, 5), 2, 2, 3, "same", 1, 1, mask=mask, go_backwards=go_backwards
    )


def test_hard_sigmoid_against_reference():
    rng = np.random.default_rng(RNG_SEED)
    layer = _random_layer(rng, 2, 3, recurrent_activation="hard_sigmoid")
    x = rng.normal(size=(2, 3, 5, 5, 2)) * 3
    kernel_w, recurrent_w, bias = layer.get_weights()
    expected, _, _ = convlstm_reference(
        x, kernel_w, recurrent_w, bias, pads=((1, 1), (1, 1)), recurrent_activation=hard_sigmoid
    )
    np.testing.assert_allclose(layer.forward(x), expected, rtol=0, atol=1e-10)


def test_stack_is_layers_in_sequence():
    rng = np.random.default_rng(RNG_SEED)
    stack = _random_layer(rng, 2, 3, num_layers=3, padding="valid", leaky_relu_slope=0.2)
    x = rng.normal(size=(2, 3, 9, 8, 2))
    weights = stack.get_weights()
    sequence = x
    for k in range(3):
        kernel_w, recurrent_w, bias = weights[3 * k : 3 * k + 3]
        sequence, _, _ = convlstm_reference(sequence, kernel_w, recurrent_w, bias)
        sequence = np.where(sequence >= 0, sequence, 0.2 * sequence)
    np.testing.assert_allclose(stack.forward(x), sequence, rtol=0, atol=1e-10)


@settings(max_examples=25, deadline=None)
@given(
    kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    padding=st.sampled_from(["same", "valid", 0, 1, 2]),
    size=st.tuples(st.integers(3, 7), st.integers(3, 7)),
    seed=st.integers(0, 2**16),
)
def test_random_geometries(kernel, stride, padding, size, seed):
    rng = np.random.default_rng(seed)
    _check_single_layer(rng, 1, 2, size, 1, 2, kernel, padding, stride, 1)


@pytest.mark.parametrize(
    ("pool_size", "stride", "padding"),
    [
        ((2, 2, 2), None, "valid"),
        ((3, 3, 3), (1, 2, 2), "valid"),
        ((2, 3, 2), (2, 2, 1), "same"),
        ((3, 1, 2), (2, 1, 3), "same"),
        (1, 1, "valid"),
        ((3, 3, 3), (3, 3, 3), "same"),
    ],
)
def test_max_pooling_against_reference(pool_size, stride, padding):
    rng = np.random.default_rng(RNG_SEED)
    layer = MaxPooling3D(pool_size, stride, padding)
    x = rng.normal(size=(2, 5, 7, 6, 3))
    spatial = x.shape[1:4]
    if padding == "same":
        pads = tuple(map(same_pads, spatial, layer.pool_size, layer.stride, (1, 1, 1)))
    else:
        pads = ((0, 0),) * 3
    expected = maxpool3d_reference(x, layer.pool_size, layer.stride, pads)
    np.testing.assert_array_equal(layer.forward(x), expected)


@pytest.mark.parametrize("form", ["exp", "tanh"])
def test_both_sigmoid_forms_against_reference(monkeypatch, form):
    # The machine picks the faster sigmoid form once (activations.sigmoid_form); both must
    # match the reference loop forward and backward (exp: the kernel negates the gate rows).
    monkeypatch.setenv("CONVLSTM_SIGMOID", form)
    rng = np.random.default_rng(RNG_SEED)
    _check_single_layer(rng, 2, 3, (7, 6), 2, 3, 3, "same", 1, 1)
    _check_single_layer_backward(rng, (5, 4), 3, "same", 1, 1)

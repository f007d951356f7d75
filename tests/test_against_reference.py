"""The fast kernels against the slow loop oracle in ``reference.py``, on a grid of geometries."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convlstm import ConvLSTM1D, ConvLSTM2D, ConvLSTM3D, MaxPooling1D, MaxPooling3D

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
        return ((0, 0),) * len(size)
    return tuple((p, p) for p in padding)


CLASSES = {1: ConvLSTM1D, 2: ConvLSTM2D, 3: ConvLSTM3D}


def _random_layer(rng, in_channels, filters, rank=2, **kwargs):
    layer = CLASSES[rank](in_channels, filters, dtype="float64", **kwargs)
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
        len(size),
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
    layer = _random_layer(rng, in_channels, filters, len(size), kernel_size=kernel,
                          padding=padding,
                          stride=stride, dilation=dilation, go_backwards=go_backwards,
                          return_state=True, **options)
    x = rng.normal(size=(batch, time, *size, in_channels))
    out_size = layer.cells[0].options.output_spatial(size)
    h0, c0 = (rng.normal(size=(batch, *out_size, filters)) for _ in range(2))
    output, h, c = layer.forward(x, initial_state=[h0, c0], mask=mask, training=True)
    d_output, d_h, d_c = (rng.normal(size=a.shape) for a in (output, h, c))
    d_x = layer.backward(d_output, d_h, d_c)
    (d_h0, d_c0), = layer.state_grads

    kernel_w, recurrent_w, bias, *peephole = layer.get_weights()
    tape = ConvLSTMTape(x, kernel_w, recurrent_w, [])
    pads = _reference_pads(layer.padding, size, layer.kernel_size, layer.stride, layer.dilation)
    forward = convlstm_reference(
        x, kernel_w, recurrent_w, bias, stride=layer.stride, pads=pads, dilation=layer.dilation,
        h0=h0, c0=c0, mask=mask, go_backwards=go_backwards,
        peephole=peephole[0] if peephole else None, tape=tape, **_reference_activations(options))
    for actual, expected in zip((output, h, c), forward):
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-10)
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
    # Another recurrent activation: the kernel's general path (not the scaled sigmoid rows).
    rng = np.random.default_rng(RNG_SEED)
    _check_single_layer_backward(rng, (5, 5), 3, "same", 1, 1, mask=MASK,
                                 recurrent_activation="hard_sigmoid")


RANKED = [  # (size, kernel, padding, stride, dilation) over one and three spatial axes
    ((7,), 3, "same", 1, 1),
    ((7,), 2, "valid", 2, 1),
    ((8,), 3, "same", 1, 2),
    ((6,), 3, 2, 3, 1),
    ((3, 4, 5), 3, "same", 1, 1),
    ((4, 5, 3), (2, 3, 1), "valid", (1, 2, 1), 1),
    ((3, 5, 4), (1, 2, 3), (0, 1, 1), 1, (1, 2, 1)),
    ((5, 4, 4), 2, "same", 2, 1),
]


@pytest.mark.parametrize(("size", "kernel", "padding", "stride", "dilation"), RANKED)
def test_one_and_three_spatial_axes_forward(size, kernel, padding, stride, dilation):
    rng = np.random.default_rng(RNG_SEED)
    _check_single_layer(rng, 2, 3, size, 2, 3, kernel, padding, stride, dilation, mask=MASK[:2, :3],
                        go_backwards=True)


@pytest.mark.parametrize(("size", "kernel", "padding", "stride", "dilation"), RANKED)
def test_one_and_three_spatial_axes_backward(size, kernel, padding, stride, dilation):
    rng = np.random.default_rng(RNG_SEED)
    _check_single_layer_backward(rng, size, kernel, padding, stride, dilation, mask=MASK)


PEEPHOLE_CASES = {
    "2d": ((5, 4), {}),
    "2d_masked_backwards": ((5, 4), {"mask": MASK, "go_backwards": True}),
    "2d_hard_sigmoid": ((4, 4), {"recurrent_activation": "hard_sigmoid"}),
    "1d_masked": ((7,), {"mask": MASK}),
    "3d": ((3, 4, 3), {}),
}


@pytest.mark.parametrize(("size", "options"), PEEPHOLE_CASES.values(), ids=PEEPHOLE_CASES.keys())
def test_peephole_against_reference(size, options):
    # Random (nonzero) peepholes: forward through the states, backward through every path.
    rng = np.random.default_rng(RNG_SEED)
    _check_single_layer_backward(rng, size, 3, "same", 1, 1, peephole=True, **options)


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


@pytest.mark.parametrize(("pool_size", "stride", "padding"),
                         [(2, None, "valid"), (3, 2, "same"), (3, 1, "valid"), (2, 3, "same")])
def test_max_pooling_1d_against_reference(pool_size, stride, padding):
    # A 1-D window is a 3-D one of depth and height 1.
    rng = np.random.default_rng(RNG_SEED)
    layer = MaxPooling1D(pool_size, stride, padding)
    x = rng.normal(size=(2, 7, 3))
    pads = ((0, 0),) * 3
    if padding == "same":
        pads = ((0, 0), (0, 0), same_pads(7, pool_size, layer.stride[0], 1))
    expected = maxpool3d_reference(x[:, None, None], (1, 1, pool_size), (1, 1, *layer.stride),
                                   pads)
    np.testing.assert_array_equal(layer.forward(x), expected[:, 0, 0])


@pytest.mark.parametrize("form", ["exp", "tanh"])
def test_both_sigmoid_forms_against_reference(monkeypatch, form):
    # The machine picks the faster sigmoid form once (activations.sigmoid_form); both must
    # match the reference loop forward and backward (exp: the kernel negates the gate rows).
    monkeypatch.setenv("CONVLSTM_SIGMOID", form)
    rng = np.random.default_rng(RNG_SEED)
    _check_single_layer(rng, 2, 3, (7, 6), 2, 3, 3, "same", 1, 1)
    _check_single_layer_backward(rng, (5, 4), 3, "same", 1, 1)

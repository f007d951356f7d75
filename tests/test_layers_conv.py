"""Conv2D and Conv3D: gradients for every option, loop references, Keras values, contracts."""

import itertools
import json

import numpy as np
import pytest
from gradcheck import check_gradients
from layer_helpers import assert_close, check_keras_fixture, fixture_cases, round_trip

from convlstm.functional.conv import GATHER_RATIO
from convlstm.functional.windows import col2im, im2col
from convlstm.layers.conv import Conv2D, Conv3D

from reference import conv2d_reference, same_pads


@pytest.fixture
def rng():
    return np.random.default_rng(2024)


def conv3d_reference(x, kernel, bias, stride, pads, dilation):
    """Plain loops over batch, output voxels and kernel taps, float64; channels-last."""
    x = np.asarray(x, dtype=np.float64)
    (kd, kh, kw, C, F), B = kernel.shape, x.shape[0]
    padded = np.zeros((B, *(n + a + b for n, (a, b) in zip(x.shape[1:4], pads)), C))
    (front, _), (top, _), (left, _) = pads
    D, H, W = x.shape[1:4]
    padded[:, front : front + D, top : top + H, left : left + W] = x
    sizes = [
        (n + a + b - d * (k - 1) - 1) // s + 1
        for n, (a, b), k, s, d in zip(x.shape[1:4], pads, (kd, kh, kw), stride, dilation)
    ]
    out = np.zeros((B, *sizes, F))
    for b, i, j, k in itertools.product(range(B), *map(range, sizes)):
        total = np.zeros(F) if bias is None else np.array(bias, dtype=np.float64)
        for p, q, r in itertools.product(range(kd), range(kh), range(kw)):
            voxel = padded[
                b,
                i * stride[0] + p * dilation[0],
                j * stride[1] + q * dilation[1],
                k * stride[2] + r * dilation[2],
            ]
            total += voxel @ kernel[p, q, r]
        out[b, i, j, k] = total
    return out


def _pads(padding, spatial, kernel_size, strides, dilation):
    if padding == "valid":
        return tuple((0, 0) for _ in spatial)
    return tuple(map(same_pads, spatial, kernel_size, strides, dilation))


# --------------------------------------------------------------------------- option matrix

CONV2D_OPTIONS = [
    {},
    {"padding": "same"},
    {"padding": "same", "strides": 2},
    {"strides": (1, 2)},
    {"strides": (2, 3), "kernel_size": (2, 2)},
    {"padding": "same", "kernel_size": (2, 3)},
    {"padding": "same", "dilation_rate": 2},
    {"dilation_rate": (2, 1)},
    {"use_bias": False},
    {"data_format": "channels_first", "padding": "same", "strides": 2},
    {"activation": "relu"},
    {"activation": "sigmoid"},
    {"activation": "tanh"},
    {"activation": "softmax"},
    {"activation": "elu", "kernel_size": 1},
]

CONV3D_OPTIONS = [
    {},
    {"padding": "same"},
    {"padding": "same", "strides": 2},
    {"strides": (1, 2, 1), "kernel_size": (2, 2, 3)},
    {"padding": "same", "kernel_size": (2, 3, 2)},
    {"padding": "same", "dilation_rate": (1, 2, 2)},
    {"use_bias": False},
    {"data_format": "channels_first"},
    {"data_format": "channels_first", "padding": "same", "strides": (2, 1, 2)},
    {"activation": "sigmoid", "padding": "same", "filters": 1},
    {"activation": "relu"},
    {"activation": "tanh"},
    {"activation": "softmax"},
]


def _make(cls, options, dtype="float64"):
    arguments = {"filters": 2, "kernel_size": 3, "dtype": dtype, "seed": 5, **options}
    return cls(**arguments)


def _input(rng, layer, spatial, channels=2, batch=2):
    shape = (
        (batch, channels, *spatial)
        if layer.data_format == "channels_first"
        else (batch, *spatial, channels)
    )
    return rng.normal(size=shape)


@pytest.mark.parametrize("options", CONV2D_OPTIONS, ids=json.dumps)
def test_conv2d_gradients(rng, options):
    layer = _make(Conv2D, options)
    check_gradients(layer, _input(rng, layer, (5, 6)))


@pytest.mark.parametrize("options", CONV3D_OPTIONS, ids=json.dumps)
def test_conv3d_gradients(rng, options):
    layer = _make(Conv3D, options)
    check_gradients(layer, _input(rng, layer, (4, 5, 4), batch=1))


def _expected(layer, x):
    """The layer's output for x by the loop reference of its rank (no activation)."""
    reference = conv2d_reference if layer.rank == 2 else conv3d_reference
    channels_first = layer.data_format == "channels_first"
    frames = np.moveaxis(x, 1, -1) if channels_first else x
    pads = _pads(
        layer.padding, frames.shape[1:-1], layer.kernel_size, layer.strides, layer.dilation_rate
    )
    kernel, *bias = layer.get_weights()
    expected = reference(
        frames, kernel, bias[0] if bias else None, layer.strides, pads, layer.dilation_rate
    )
    return np.moveaxis(expected, -1, 1) if channels_first else expected


@pytest.mark.parametrize("options", [o for o in CONV2D_OPTIONS if "activation" not in o])
def test_conv2d_matches_loop_reference(rng, options):
    layer = _make(Conv2D, options)
    x = _input(rng, layer, (7, 6), channels=3)
    y = layer(x)
    assert y.shape == layer.compute_output_shape(x.shape)
    np.testing.assert_allclose(y, _expected(layer, x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("options", [o for o in CONV3D_OPTIONS if "activation" not in o])
def test_conv3d_matches_loop_reference(rng, options):
    layer = _make(Conv3D, options)
    x = _input(rng, layer, (5, 4, 6), channels=3)
    y = layer(x)
    assert y.shape == layer.compute_output_shape(x.shape)
    np.testing.assert_allclose(y, _expected(layer, x), rtol=1e-12, atol=1e-12)


# Channel counts for which a pass gathers its windows (im2col) instead of one product per tap:
# the forward pass when filters > GATHER_RATIO * channels, the input gradient when
# channels > GATHER_RATIO * filters.
GATHERED = [
    (Conv2D, 1, {"filters": 5}),
    (Conv2D, 1, {"filters": 5, "padding": "same", "strides": 2}),
    (Conv2D, 9, {"filters": 2, "padding": "same"}),
    (Conv2D, 9, {"filters": 1, "strides": (2, 3)}),
    (Conv2D, 9, {"filters": 2, "padding": "same", "dilation_rate": (2, 1)}),
    (Conv3D, 1, {"filters": 5, "padding": "same", "kernel_size": (2, 3, 2)}),
    (Conv3D, 9, {"filters": 1, "padding": "same"}),  # the next-frame head
    (Conv3D, 9, {"filters": 2, "strides": (1, 2, 2), "data_format": "channels_first"}),
]


@pytest.mark.parametrize(("cls", "channels", "options"), GATHERED, ids=str)
def test_gathered_passes_match_loop_reference_and_gradients(rng, cls, channels, options):
    assert max(options["filters"], channels) > GATHER_RATIO * min(options["filters"], channels)
    layer = _make(cls, options)
    spatial = (5, 6) if cls is Conv2D else (4, 5, 4)
    x = _input(rng, layer, spatial, channels=channels, batch=1)
    np.testing.assert_allclose(layer(x), _expected(layer, x), rtol=1e-12, atol=1e-12)
    check_gradients(layer, x)


def test_conv3d_same_split_puts_the_odd_cell_after():
    # One 1 at the last voxel; a 2x2x2 all-ones kernel with "same" padding (total 1 per axis,
    # all of it after) sees it only from the last output voxel.
    layer = Conv3D(1, 2, padding="same", use_bias=False, kernel_initializer="ones", dtype="float64")
    x = np.zeros((1, 3, 3, 3, 1))
    x[0, -1, -1, -1, 0] = 1.0
    y = layer(x)[0, ..., 0]
    assert y.shape == (3, 3, 3)
    assert y[-1, -1, -1] == 1.0 and y[-2, -2, -2] == 1.0 and y.sum() == 8.0


# ------------------------------------------------------------------------ N-d window kernels


def gather_loop(padded, window, stride, dilation, out_sizes):
    """im2col by plain loops over output positions and kernel taps; the spatial axes are the
    ``len(window)`` axes before the channels."""
    rank = len(window)
    cols = np.zeros((*padded.shape[: -1 - rank], *out_sizes, *window, padded.shape[-1]))
    for position in itertools.product(*map(range, out_sizes)):
        for tap in itertools.product(*map(range, window)):
            source = tuple(p * s + t * d for p, t, s, d in zip(position, tap, stride, dilation))
            cols[(..., *position, *tap, slice(None))] = padded[(..., *source, slice(None))]
    return cols


def scatter_loop(cols, padded_shape, stride, dilation):
    """col2im by plain loops: add every window value back where :func:`gather_loop` read it."""
    rank = len(stride)
    out_sizes, window = cols.shape[-1 - 2 * rank : -1 - rank], cols.shape[-1 - rank : -1]
    padded = np.zeros(padded_shape)
    for position in itertools.product(*map(range, out_sizes)):
        for tap in itertools.product(*map(range, window)):
            target = tuple(p * s + t * d for p, t, s, d in zip(position, tap, stride, dilation))
            padded[(..., *target, slice(None))] += cols[(..., *position, *tap, slice(None))]
    return padded


WINDOW_CASES = [
    # padded shape, window, stride, dilation, out_sizes
    ((2, 7, 8, 3), (3, 2), (2, 1), (1, 3), (3, 5)),
    ((3, 2, 7, 8, 3), (3, 2), (2, 1), (1, 3), (3, 5)),  # leading (time, batch) axes
    ((2, 6, 7, 5, 2), (2, 3, 2), (2, 1, 2), (1, 2, 1), (3, 3, 2)),
]


@pytest.mark.parametrize(("shape", "window", "stride", "dilation", "out"), WINDOW_CASES)
def test_im2col_and_col2im_match_loops(rng, shape, window, stride, dilation, out):
    padded = rng.normal(size=shape)
    cols = im2col(padded, window, stride, dilation, out)
    np.testing.assert_array_equal(cols, gather_loop(padded, window, stride, dilation, out))
    np.testing.assert_allclose(
        col2im(cols, padded.shape, stride, dilation),
        scatter_loop(cols, padded.shape, stride, dilation),
        rtol=1e-12,
        atol=1e-12,
    )


@pytest.mark.parametrize(("shape", "window", "stride", "dilation", "out"), WINDOW_CASES)
def test_col2im_is_the_adjoint_of_im2col(rng, shape, window, stride, dilation, out):
    # <im2col(x), c> == <x, col2im(c)> for every x and c: the scatter is the gather's transpose.
    padded = rng.normal(size=shape)
    cols = im2col(padded, window, stride, dilation, out)
    other = rng.normal(size=cols.shape)
    lhs = np.sum(cols * other)
    rhs = np.sum(padded * col2im(other, padded.shape, stride, dilation))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12)


# ----------------------------------------------------------------------------- Keras values


@pytest.mark.parametrize("path", fixture_cases("conv2d_", "conv3d_"))
def test_matches_keras(path):
    check_keras_fixture(path)


def test_next_frame_head_shapes_and_dtype(rng):
    head = Conv3D(1, (3, 3, 3), activation="sigmoid", padding="same")
    y = head(rng.normal(size=(2, 5, 8, 8, 4)))
    assert y.shape == (2, 5, 8, 8, 1) and y.dtype == np.float32
    assert [w.shape for w in head.get_weights()] == [(3, 3, 3, 4, 1), (1,)]
    assert head.trainable_params == ("kernel", "bias")


# ------------------------------------------------------------------------------ contracts


@pytest.mark.parametrize("cls", [Conv2D, Conv3D])
def test_lazy_build_and_explicit_build(cls):
    rank = 2 if cls is Conv2D else 3
    layer = cls(4, 3, seed=1)
    assert not layer.built and layer.in_channels is None and layer.get_weights() == []
    shape = (None, *(9,) * rank, 2)
    assert layer.compute_output_shape(shape) == (None, *(7,) * rank, 4)
    layer.build(shape)
    assert [w.shape for w in layer.get_weights()] == [(*(3,) * rank, 2, 4), (4,)]
    assert set(layer.grads) == {"kernel", "bias"}
    again = cls(4, 3, seed=1)
    again(np.ones((1, *(5,) * rank, 2)))
    for a, b in zip(layer.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert layer.compute_output_shape((3, *(None,) * rank, 2)) == (3, *(None,) * rank, 4)


@pytest.mark.parametrize(
    "layer",
    [
        Conv2D(3, (2, 3), strides=(1, 2), padding="same", activation="relu", seed=2),
        Conv2D(3, 3, dilation_rate=2, data_format="channels_first", use_bias=False),
        Conv3D(1, (3, 3, 3), activation="sigmoid", padding="same", dtype="float64"),
        Conv3D(2, 2, kernel_initializer="he_normal", bias_initializer="ones", seed=0),
    ],
    ids=repr,
)
def test_config_round_trip(layer):
    round_trip(layer)


def test_config_contents():
    assert Conv2D(8, 3).get_config() == {
        "filters": 8,
        "kernel_size": [3, 3],
        "strides": [1, 1],
        "padding": "valid",
        "data_format": "channels_last",
        "dilation_rate": [1, 1],
        "activation": "linear",
        "use_bias": True,
        "kernel_initializer": "glorot_uniform",
        "bias_initializer": "zeros",
        "dtype": "float32",
        "seed": None,
    }
    assert Conv3D(1, 3, padding="SAME").get_config()["padding"] == "same"


@pytest.mark.parametrize("cls", [Conv2D, Conv3D])
def test_backward_contract_and_untouched_inputs(rng, cls):
    rank = 2 if cls is Conv2D else 3
    layer = cls(2, 2, padding="same", activation="tanh", seed=0)
    name = cls.__name__
    x = rng.normal(size=(2, *(4,) * rank, 3)).astype(np.float32)
    with pytest.raises(RuntimeError, match=rf"^{name}.backward: no training forward"):
        layer.backward(np.ones((2, *(4,) * rank, 2)))
    x.setflags(write=False)
    before = x.copy()
    y = layer(x, training=True)
    assert y.dtype == np.float32 and not np.shares_memory(x, y)
    d_y = np.ones_like(y)
    d_y.setflags(write=False)
    with pytest.raises(ValueError, match=rf"^{name}.backward: expected d_output of shape"):
        layer.backward(np.ones((1, 2)))
    d_x = layer.backward(d_y)
    assert d_x.shape == x.shape and d_x.dtype == np.float32
    np.testing.assert_array_equal(x, before)
    with pytest.raises(RuntimeError, match=r"no training forward"):
        layer.backward(d_y)


def test_integer_input_is_cast(rng):
    layer = Conv2D(2, 3, seed=0, dtype="float64")
    x = rng.integers(-3, 3, size=(1, 5, 5, 2))
    assert_close(layer(x), layer(x.astype(np.float64)))


# ---------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: Conv2D(0, 3), ValueError, r"^Conv2D: expected filters to be a positive int"),
        (lambda: Conv2D(2, (3, 3, 3)), TypeError, r"^Conv2D: expected kernel_size to be an int"),
        (lambda: Conv3D(2, (3, 3)), TypeError, r"^Conv3D: expected kernel_size to be an int"),
        (lambda: Conv2D(2, 3, 0), ValueError, r"^Conv2D: expected strides to be an int >= 1"),
        (lambda: Conv2D(2, 3, padding="full"), ValueError, r"expected padding to be 'same' or"),
        (lambda: Conv2D(2, 3, padding=1), TypeError, r"expected padding to be 'same' or 'valid'"),
        (
            lambda: Conv2D(2, 3, strides=2, dilation_rate=2),
            ValueError,
            r"^Conv2D: strides > 1 is not compatible with dilation_rate > 1",
        ),
        (lambda: Conv3D(2, 3, data_format="NDHWC"), ValueError, r"data_format to be one of"),
        (lambda: Conv2D(2, 3, activation="gelu"), ValueError, r"unknown activation 'gelu'"),
        (lambda: Conv2D(2, 3, use_bias=None), TypeError, r"use_bias to be True or False"),
        (lambda: Conv2D(2, 3, dtype="int32"), ValueError, r"dtype to be 'float32' or 'float64'"),
        (lambda: Conv2D(2, 3, 1, "same", None), TypeError, r"positional argument"),
    ],
)
def test_constructor_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_forward_errors():
    layer = Conv2D(4, 3)
    with pytest.raises(
        ValueError, match=r"^Conv2D.forward: expected x of shape \(batch, height, width, channels\)"
    ):
        layer(np.zeros((4, 32, 32)))
    layer(np.zeros((1, 5, 5, 3)))
    with pytest.raises(
        ValueError,
        match=r"^Conv2D.forward: expected x of shape \(batch, height, width, 3\); "
        r"got \(4, 32, 32\)\.$",
    ):
        layer(np.zeros((4, 32, 32)))
    with pytest.raises(ValueError, match=r"got \(4, 32, 32, 2\)\.$"):
        layer(np.zeros((4, 32, 32, 2)))
    with pytest.raises(
        ValueError,
        match=r"^Conv2D.forward: the heightxwidth = \(2, 5\) of x is too small for kernel_size",
    ):
        layer(np.zeros((1, 2, 5, 3)))
    first = Conv3D(1, 3, data_format="channels_first")
    with pytest.raises(
        ValueError,
        match=r"^Conv3D.forward: expected x of shape \(batch, channels, depth, height, width\)",
    ):
        first(np.zeros((2, 3, 4, 4)))
    with pytest.raises(TypeError, match=r"^Conv3D.forward: expected x to be a real numeric"):
        first(np.zeros((1, 1, 3, 3, 3), dtype=complex))
    with pytest.raises(ValueError, match=r"^Conv3D.build: expected input_shape of shape"):
        Conv3D(1, 3).build((1, 4, 4, 4))

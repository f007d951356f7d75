"""SpaceToDepth and DepthToSpace: values against a loop reference and TensorFlow's documented
examples, exact inverses, adjoint gradients, shapes, configs, saving, untouched inputs, errors."""

import json

import numpy as np
import pytest
from gradcheck import check_gradients
from layer_helpers import round_trip

import convlstm
from convlstm import ConvLSTM2D, DepthToSpace, Sequential, SpaceToDepth, load
from convlstm.registry import LAYER_CLASSES, deserialize, serialize


@pytest.fixture
def rng():
    return np.random.default_rng(2024)


# ------------------------------------------------------------------------- loop reference


def space_to_depth_loop(x, bh, bw):
    """out[..., i, j, (dy*bw + dx)*C + c] = x[..., i*bh + dy, j*bw + dx, c], one element at a
    time (channels_last, any leading axes)."""
    *lead, H, W, C = x.shape
    out = np.zeros((*lead, H // bh, W // bw, C * bh * bw), x.dtype)
    for i in range(H // bh):
        for j in range(W // bw):
            for dy in range(bh):
                for dx in range(bw):
                    for c in range(C):
                        out[..., i, j, (dy * bw + dx) * C + c] = x[..., i * bh + dy, j * bw + dx, c]
    return out


def depth_to_space_loop(x, bh, bw):
    """out[..., i*bh + dy, j*bw + dx, c] = x[..., i, j, (dy*bw + dx)*D + c], D = C/(bh*bw)."""
    *lead, H, W, C = x.shape
    D = C // (bh * bw)
    out = np.zeros((*lead, H * bh, W * bw, D), x.dtype)
    for i in range(H):
        for j in range(W):
            for dy in range(bh):
                for dx in range(bw):
                    for c in range(D):
                        out[..., i * bh + dy, j * bw + dx, c] = x[..., i, j, (dy * bw + dx) * D + c]
    return out


PAIR = r"expected block_size to be a positive int or a pair of positive ints"
BLOCKS = [(1, 1), (2, 2), (3, 3), (2, 3), (4, 1)]


def _block_arg(bh, bw):
    return bh if bh == bw else (bh, bw)


# ------------------------------------------------------------------------------------ values


@pytest.mark.parametrize(("bh", "bw"), BLOCKS)
def test_space_to_depth_equals_loop(rng, bh, bw):
    x = rng.normal(size=(2, 3, 2 * bh, 3 * bw, 3))
    y = SpaceToDepth(_block_arg(bh, bw))(x)
    assert y.shape == (2, 3, 2, 3, 3 * bh * bw)
    np.testing.assert_array_equal(y, space_to_depth_loop(x, bh, bw))


@pytest.mark.parametrize(("bh", "bw"), BLOCKS)
def test_depth_to_space_equals_loop(rng, bh, bw):
    x = rng.normal(size=(2, 3, 2, 3, 2 * bh * bw))
    y = DepthToSpace(_block_arg(bh, bw))(x)
    assert y.shape == (2, 3, 2 * bh, 3 * bw, 2)
    np.testing.assert_array_equal(y, depth_to_space_loop(x, bh, bw))


def test_tensorflow_documented_examples():
    # tf.nn.space_to_depth docs, block 2; our layers take sequences, so T = 1 is added.
    one = np.array([[[[1], [2]], [[3], [4]]]], np.float32)  # (1, 2, 2, 1)
    np.testing.assert_array_equal(SpaceToDepth(2)(one[:, None])[:, 0], [[[[1, 2, 3, 4]]]])
    three = np.array([[[[1, 2, 3], [4, 5, 6]], [[7, 8, 9], [10, 11, 12]]]], np.float32)
    np.testing.assert_array_equal(
        SpaceToDepth(2)(three[:, None])[:, 0], [[[np.arange(1, 13, dtype=np.float32)]]]
    )
    four = np.array(
        [
            [
                [[1], [2], [5], [6]],
                [[3], [4], [7], [8]],
                [[9], [10], [13], [14]],
                [[11], [12], [15], [16]],
            ]
        ],
        np.float32,
    )  # (1, 4, 4, 1)
    packed = np.array([[[[1, 2, 3, 4], [5, 6, 7, 8]], [[9, 10, 11, 12], [13, 14, 15, 16]]]])
    np.testing.assert_array_equal(SpaceToDepth(2)(four[:, None])[:, 0], packed)
    # tf.nn.depth_to_space runs the same examples backwards.
    np.testing.assert_array_equal(DepthToSpace(2)(packed[:, None].astype(np.float32))[:, 0], four)
    np.testing.assert_array_equal(
        DepthToSpace(2)(np.arange(1, 13, dtype=np.float32).reshape(1, 1, 1, 1, 12))[:, 0], three
    )


@pytest.mark.parametrize(("bh", "bw"), BLOCKS)
def test_exact_inverses(rng, bh, bw):
    block = _block_arg(bh, bw)
    x = rng.normal(size=(2, 2, 2 * bh, 2 * bw, 3)).astype(np.float32)
    np.testing.assert_array_equal(DepthToSpace(block)(SpaceToDepth(block)(x)), x)
    z = rng.normal(size=(2, 2, 3, 2, 2 * bh * bw))
    np.testing.assert_array_equal(SpaceToDepth(block)(DepthToSpace(block)(z)), z)


@pytest.mark.parametrize("block", [2, (2, 3)])
def test_channels_first_equals_channels_last(rng, block):
    x = rng.normal(size=(2, 3, 4, 6, 3))  # channels_last; 4 and 6 divide by 2 and 3
    last = SpaceToDepth(block)(x)
    first = SpaceToDepth(block, data_format="channels_first")(np.moveaxis(x, -1, 2))
    np.testing.assert_array_equal(first, np.moveaxis(last, -1, 2))
    back = DepthToSpace(block, data_format="channels_first")(first)
    np.testing.assert_array_equal(back, np.moveaxis(x, -1, 2))


def test_dtypes_kept_or_cast_to_float32():
    x = np.arange(2 * 1 * 4 * 4 * 1).reshape(2, 1, 4, 4, 1)
    for dtype in (np.float32, np.float64):
        assert SpaceToDepth(2)(x.astype(dtype)).dtype == dtype
    y = SpaceToDepth(2)(x)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, space_to_depth_loop(x.astype(np.float32), 2, 2))
    assert DepthToSpace(2)(np.ones((1, 1, 1, 1, 4), bool)).dtype == np.float32


# --------------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("layer_class", [SpaceToDepth, DepthToSpace])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("block", [2, (1, 3)])
def test_backward_is_the_adjoint(rng, layer_class, data_format, block):
    layer = layer_class(block, data_format=data_format)
    shape = {
        (SpaceToDepth, "channels_last"): (2, 3, 4, 6, 2),
        (SpaceToDepth, "channels_first"): (2, 3, 2, 4, 6),
        (DepthToSpace, "channels_last"): (2, 3, 2, 3, 12),
        (DepthToSpace, "channels_first"): (2, 3, 12, 2, 3),
    }[layer_class, data_format]
    x = rng.normal(size=shape)
    y = layer(x, training=True)
    g = rng.normal(size=y.shape)
    d_x = layer.backward(g)
    assert d_x.shape == x.shape and d_x.dtype == np.float64
    # <f(x), g> == <x, f^T(g)>, and a permutation's adjoint is its inverse.
    np.testing.assert_allclose(np.vdot(y, g), np.vdot(x, d_x), rtol=1e-12)
    inverse = DepthToSpace if layer_class is SpaceToDepth else SpaceToDepth
    np.testing.assert_array_equal(d_x, inverse(block, data_format)(g))
    check_gradients(layer_class(block, data_format=data_format), x[:1, :1].copy())


def test_gradients_through_a_model(rng):
    model = Sequential(
        [SpaceToDepth(2), ConvLSTM2D(4, 4, 3, dtype="float64", seed=3), DepthToSpace(2)]
    )
    x = rng.normal(size=(1, 2, 4, 4, 1))
    assert model(x).shape == x.shape
    check_gradients(model, x)


# ------------------------------------------------------------------------------------ shapes


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("block", [1, 2, (2, 3)])
def test_declared_output_shape_is_real_shape(rng, data_format, block):
    space = SpaceToDepth(block, data_format=data_format)
    depth = DepthToSpace(block, data_format=data_format)
    shape = (2, 3, 6, 12, 2) if data_format == "channels_last" else (2, 3, 2, 6, 12)
    x = rng.normal(size=shape)
    y = space(x)
    assert space.compute_output_shape(shape) == y.shape
    assert depth.compute_output_shape(y.shape) == depth(y).shape == shape


def test_output_shape_keeps_unknown_dimensions():
    assert SpaceToDepth(4).compute_output_shape((None, 10, 32, None, 1)) == (None, 10, 8, None, 16)
    assert SpaceToDepth((2, 4), "channels_first").compute_output_shape(
        (None, None, None, 8, 8)
    ) == (None, None, None, 4, 2)
    assert DepthToSpace(4).compute_output_shape((None, None, None, 2, 32)) == (
        None,
        None,
        None,
        8,
        2,
    )
    assert DepthToSpace(4, "channels_first").compute_output_shape([3, 2, 16, 5, None]) == (
        3,
        2,
        1,
        20,
        None,
    )


def test_sequential_build_and_summary():
    model = Sequential(
        [SpaceToDepth(4), ConvLSTM2D(16, 16, 3, seed=0), DepthToSpace(4)],
        input_shape=(3, 8, 8, 1),
    )
    assert model.compute_output_shape((None, 3, 8, 8, 1)) == (None, 3, 8, 8, 1)
    lines = []
    model.summary(print_fn=lines.append)
    summary = "\n".join(lines)
    assert "SpaceToDepth" in summary and "(None, 3, 2, 2, 16)" in summary
    assert "DepthToSpace" in summary and "(None, 3, 8, 8, 1)" in summary


# ---------------------------------------------------------------------- configs and saving


@pytest.mark.parametrize(
    "layer",
    [
        SpaceToDepth(2),
        SpaceToDepth((2, 3), data_format="channels_first"),
        DepthToSpace(4),
        DepthToSpace([1, 2], None),
    ],
    ids=repr,
)
def test_config_round_trip(layer):
    rebuilt = round_trip(layer)
    assert rebuilt.block == layer.block and rebuilt.data_format == layer.data_format
    spec = json.loads(json.dumps(serialize(layer)))
    assert deserialize(spec).get_config() == layer.get_config()


def test_config_contents_and_repr():
    assert SpaceToDepth(4).get_config() == {"block_size": 4, "data_format": "channels_last"}
    assert SpaceToDepth((4, 4)).get_config() == {"block_size": 4, "data_format": "channels_last"}
    assert DepthToSpace((2, 3), "channels_first").get_config() == {
        "block_size": [2, 3],
        "data_format": "channels_first",
    }
    assert repr(SpaceToDepth(4)) == "SpaceToDepth(block_size=4, data_format='channels_last')"
    assert repr(DepthToSpace((2, 3))) == (
        "DepthToSpace(block_size=[2, 3], data_format='channels_last')"
    )
    assert SpaceToDepth(3).params == {} and SpaceToDepth(3).grads == {}
    assert SpaceToDepth(3).get_weights() == []


def test_registered_and_exported():
    assert LAYER_CLASSES["SpaceToDepth"] is SpaceToDepth
    assert LAYER_CLASSES["DepthToSpace"] is DepthToSpace
    assert {"SpaceToDepth", "DepthToSpace"} <= set(convlstm.__all__)


def test_saved_model_predicts_the_same(rng, tmp_path):
    model = Sequential(
        [SpaceToDepth(4), ConvLSTM2D(16, 16, 3, seed=1), DepthToSpace(4)],
        input_shape=(3, 8, 8, 1),
    )
    x = rng.random((2, 3, 8, 8, 1)).astype(np.float32)
    path = convlstm.saving.save(model, tmp_path / "s2d")
    restored = load(path)
    assert [type(layer) for layer in restored.layers] == [SpaceToDepth, ConvLSTM2D, DepthToSpace]
    assert restored.get_config() == model.get_config()
    expected = model.predict(x)
    assert expected.shape == x.shape
    np.testing.assert_array_equal(restored.predict(x), expected)


# ------------------------------------------------------------------------ untouched inputs


@pytest.mark.parametrize(
    ("make", "shape"),
    [
        (lambda: SpaceToDepth(2), (2, 2, 4, 4, 3)),
        (lambda: SpaceToDepth(1), (2, 2, 4, 4, 3)),
        (lambda: SpaceToDepth((1, 2), "channels_first"), (2, 2, 3, 4, 4)),
        (lambda: DepthToSpace(2), (2, 2, 4, 4, 8)),
        (lambda: DepthToSpace(1, "channels_first"), (2, 2, 3, 4, 4)),
    ],
)
def test_inputs_untouched_and_never_aliased(rng, make, shape):
    layer = make()
    x = rng.normal(size=shape)
    x.setflags(write=False)
    before = x.copy()
    y = layer(x, training=True)
    assert y.flags.c_contiguous and y.flags.writeable and not np.shares_memory(y, x)
    y[...] = 0.0  # the caller's array cannot be reached through the output
    d_output = np.ones_like(y)
    d_output.setflags(write=False)
    d_x = layer.backward(d_output)
    assert not np.shares_memory(d_x, d_output) and d_x.shape == x.shape
    np.testing.assert_array_equal(x, before)


# ------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("layer_class", [SpaceToDepth, DepthToSpace])
@pytest.mark.parametrize(
    ("block_size", "error", "match"),
    [
        (0, ValueError, r"expected block_size to be a positive int; got 0\.$"),
        (-2, ValueError, r"expected block_size to be a positive int; got -2\.$"),
        (
            2.0,
            TypeError,
            r"expected block_size to be a positive int or a pair of positive ints; "
            r"got 2\.0\.$",
        ),
        (True, TypeError, r"expected block_size to be a positive int or a pair .*; got True\.$"),
        ("2", TypeError, r"expected block_size to be a positive int or a pair .*; got '2'\.$"),
        ((2, 2, 2), TypeError, PAIR + r"; got \(2, 2, 2\)\.$"),
        ((2, 0), ValueError, PAIR + r"; got \(2, 0\)\.$"),
        ([2, 1.5], TypeError, PAIR + r"; got \[2, 1\.5\]\.$"),
    ],
)
def test_block_size_errors(layer_class, block_size, error, match):
    with pytest.raises(error, match=rf"^{layer_class.__name__}: {match}"):
        layer_class(block_size)


def test_data_format_error():
    with pytest.raises(
        ValueError,
        match=r"^DepthToSpace: expected data_format to be one of "
        r"'channels_last', 'channels_first'; got 'NHWC'\.$",
    ):
        DepthToSpace(2, "NHWC")


def test_forward_errors():
    with pytest.raises(
        ValueError,
        match=r"^SpaceToDepth\.forward: expected height and width "
        r"divisible by block_size 4; got \(30, 32\)\.$",
    ):
        SpaceToDepth(4)(np.ones((1, 2, 30, 32, 1)))
    with pytest.raises(
        ValueError,
        match=r"^SpaceToDepth\.forward: expected height and width "
        r"divisible by block_size \(2, 3\); got \(4, 4\)\.$",
    ):
        SpaceToDepth((2, 3), "channels_first")(np.ones((1, 2, 1, 4, 4)))
    with pytest.raises(
        ValueError,
        match=r"^DepthToSpace\.forward: expected channels divisible "
        r"by 16 \(block_size 4\); got 8\.$",
    ):
        DepthToSpace(4)(np.ones((1, 2, 3, 3, 8)))
    with pytest.raises(
        ValueError,
        match=r"^SpaceToDepth\.forward: expected x of shape \(batch, "
        r"time, height, width, channels\); got \(2, 8, 8, 1\)\.$",
    ):
        SpaceToDepth(2)(np.ones((2, 8, 8, 1)))
    with pytest.raises(
        ValueError,
        match=r"^DepthToSpace\.forward: expected x of shape \(batch, "
        r"time, channels, height, width\); got \(4,\)\.$",
    ):
        DepthToSpace(2, "channels_first")(np.ones(4))
    with pytest.raises(
        TypeError,
        match=r"^SpaceToDepth\.forward: expected x to be a real numeric "
        r"array \(bool, int or float\); got dtype complex128\.$",
    ):
        SpaceToDepth(1)(np.ones((1, 1, 1, 1, 1), complex))
    with pytest.raises(
        TypeError,
        match=r"^DepthToSpace\.forward: expected training to be True or "
        r"False; got 'yes'\.$",
    ):
        DepthToSpace(1)(np.ones((1, 1, 1, 1, 1)), training="yes")


def test_compute_output_shape_errors():
    with pytest.raises(
        ValueError,
        match=r"^SpaceToDepth\.compute_output_shape: expected height "
        r"and width divisible by block_size 4; got \(30, None\)",
    ):
        SpaceToDepth(4).compute_output_shape((None, 2, 30, None, 1))
    with pytest.raises(
        ValueError,
        match=r"^DepthToSpace\.compute_output_shape: expected channels "
        r"divisible by 6 \(block_size \(2, 3\)\); got 4\.$",
    ):
        DepthToSpace((2, 3), "channels_first").compute_output_shape((1, 2, 4, 3, 3))
    with pytest.raises(
        ValueError,
        match=r"^DepthToSpace\.compute_output_shape: expected "
        r"input_shape \(batch, time, height, width, channels\); "
        r"got \(1, 2, 3, 4\)\.$",
    ):
        DepthToSpace(2).compute_output_shape((1, 2, 3, 4))
    with pytest.raises(
        TypeError,
        match=r"^SpaceToDepth\.compute_output_shape: expected "
        r"input_shape to be a tuple of ints",
    ):
        SpaceToDepth(2).compute_output_shape("(1, 2, 4, 4, 1)")
    with pytest.raises(ValueError, match=r"^SpaceToDepth\.compute_output_shape: expected height"):
        SpaceToDepth(3).build((None, 2, 4, 6, 1))


@pytest.mark.parametrize("layer_class", [SpaceToDepth, DepthToSpace])
def test_backward_needs_a_training_forward(rng, layer_class):
    name = layer_class.__name__
    layer = layer_class(2)
    x = rng.normal(size=(1, 2, 4, 4, 4))
    with pytest.raises(RuntimeError, match=rf"^{name}\.backward: no training forward to diff"):
        layer.backward(np.ones((1, 2, 2, 2, 16)))
    y = layer(x, training=True)
    layer(x)  # an inference forward drops the training cache
    with pytest.raises(RuntimeError, match=rf"^{name}\.backward: no training forward"):
        layer.backward(np.ones_like(y))
    y = layer(x, training=True)
    with pytest.raises(
        ValueError,
        match=rf"^{name}\.backward: expected d_output of shape "
        rf"\({', '.join(map(str, y.shape))}\); got \(1, 2\)\.$",
    ):
        layer.backward(np.ones((1, 2)))
    layer.backward(np.ones_like(y))  # the cache survived the bad call
    with pytest.raises(RuntimeError, match=r"no training forward"):  # and the good one used it
        layer.backward(np.ones_like(y))

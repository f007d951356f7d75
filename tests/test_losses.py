"""Losses: Keras 3 values, float64 formulas, finite-difference gradients, stability and errors."""

from pathlib import Path

import numpy as np
import pytest
from gradcheck import TOLERANCE, numerical_gradient, relative_error

from convlstm import losses
from convlstm.losses import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    MeanAbsoluteError,
    MeanSquaredError,
)

REG_TRUE = [[0.0, 1.0, 2.0], [-1.0, 0.5, 3.0]]
REG_PRED = [[0.5, 0.8, 2.5], [-0.2, 0.1, 2.0]]
BIN_TRUE = [[0, 1, 1], [1, 0, 0]]
BIN_PRED = [[0.1, 0.8, 0.6], [0.35, 0.2, 0.9]]
CLIP_TRUE = [[1, 1, 0], [0, 1, 0]]
CLIP_PRED = [[0.0, 1.0, 0.5], [1.0, 0.3, 0.0]]
LOGITS = [[-2.0, 0.5, 3.0], [1.5, -0.3, 0.0]]
HUGE = [[1e4, -1e4, 50.0], [-1e4, 1e4, -50.0]]
CAT_TRUE = [[0, 1, 0], [0.2, 0.3, 0.5]]
CAT_PRED = [[0.2, 0.5, 0.3], [0.1, 0.1, 0.6]]  # the second row sums to 0.8
CAT_LOGITS = [[1.0, 2.0, 0.5], [-1.0, 0.0, 3.0]]

# Golden values from Keras 3.15.1 (torch backend, float32 inputs), keras.losses.X(...)(y_true,
# y_pred), made by scripts/make_golden_fixtures.py (GOLDEN[case], with the inputs beside it as
# case_true and case_pred). Keras' float64 results are only float32-accurate on that backend (its
# ops.mean computes in float32), so float64 is checked against formulas below instead.
GOLDEN = np.load(Path(__file__).parent / "fixtures" / "golden" / "losses.npz")
LOSS_CASES = {  # case: (ours, y_true, y_pred)
    "mse": (MeanSquaredError(), REG_TRUE, REG_PRED),
    "mae": (MeanAbsoluteError(), REG_TRUE, REG_PRED),
    "bce": (BinaryCrossentropy(), BIN_TRUE, BIN_PRED),
    "bce_clipped": (BinaryCrossentropy(), CLIP_TRUE, CLIP_PRED),
    "bce_logits": (BinaryCrossentropy(from_logits=True), BIN_TRUE, LOGITS),
    "bce_logits_huge": (BinaryCrossentropy(from_logits=True), BIN_TRUE, HUGE),
    "cce": (CategoricalCrossentropy(), CAT_TRUE, CAT_PRED),
    "cce_logits": (CategoricalCrossentropy(from_logits=True), CAT_TRUE, CAT_LOGITS),
    "cce_axis_0": (CategoricalCrossentropy(axis=0), np.transpose(CAT_TRUE), np.transpose(CAT_PRED)),
    "cce_logits_huge": (CategoricalCrossentropy(from_logits=True), CAT_TRUE, HUGE),
}
KERAS_FLOAT32 = [
    (loss, y_true, y_pred, float(GOLDEN[name]))
    for name, (loss, y_true, y_pred) in LOSS_CASES.items()
]


def test_golden_fixture_inputs_are_these():
    assert set(GOLDEN.files) == {f"{name}{part}" for name in LOSS_CASES
                                 for part in ("", "_true", "_pred")}
    for name, (_, y_true, y_pred) in LOSS_CASES.items():
        np.testing.assert_array_equal(GOLDEN[f"{name}_true"], np.asarray(y_true, "float32"))
        np.testing.assert_array_equal(GOLDEN[f"{name}_pred"], np.asarray(y_pred, "float32"))


@pytest.mark.parametrize(("loss", "y_true", "y_pred", "expected"), KERAS_FLOAT32, ids=repr)
def test_matches_keras_in_float32(loss, y_true, y_pred, expected):
    y_true, y_pred = np.asarray(y_true, "float32"), np.asarray(y_pred, "float32")
    assert loss(y_true, y_pred) == pytest.approx(expected, rel=1e-6)


def _bce(t, p):
    return np.mean(-(t * np.log(p) + (1 - t) * np.log(1 - p)))


def _cce(t, p, axis=-1):
    return np.mean(-np.sum(t * np.log(p / np.sum(p, axis=axis, keepdims=True)), axis=axis))


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _log_softmax(z):
    return z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))


def test_float64_values_by_formula():
    t, p = np.array(REG_TRUE), np.array(REG_PRED)
    # (0.25 + 0.04 + 0.25 + 0.64 + 0.16 + 1.0) / 6 and (0.5 + 0.2 + 0.5 + 0.8 + 0.4 + 1.0) / 6
    assert MeanSquaredError()(t, p) == pytest.approx(0.39, rel=1e-14)
    assert MeanAbsoluteError()(t, p) == pytest.approx(3.4 / 6, rel=1e-14)
    t, p, z = np.array(BIN_TRUE), np.array(BIN_PRED), np.array(LOGITS)
    assert BinaryCrossentropy()(t, p) == pytest.approx(_bce(t, p), rel=1e-14)
    assert BinaryCrossentropy(from_logits=True)(t, z) == pytest.approx(
        _bce(t, _sigmoid(z)), rel=1e-14
    )
    t, p, z = np.array(CAT_TRUE), np.array(CAT_PRED), np.array(CAT_LOGITS)
    assert CategoricalCrossentropy()(t, p) == pytest.approx(_cce(t, p), rel=1e-14)
    assert CategoricalCrossentropy(axis=0)(t.T, p.T) == pytest.approx(_cce(t, p), rel=1e-14)
    assert CategoricalCrossentropy(from_logits=True)(t, z) == pytest.approx(
        np.mean(-np.sum(t * _log_softmax(z), axis=-1)), rel=1e-14
    )


def test_reduction_is_the_mean_of_per_sample_losses():
    rng = np.random.default_rng(0)
    t, p = rng.random((2, 3, 4)), rng.random((2, 3, 4))
    per_sample = np.mean(np.square(p - t), axis=-1)  # (2, 3)
    assert MeanSquaredError()(t, p) == pytest.approx(np.mean(per_sample), rel=1e-14)
    per_sample = -np.sum(t * np.log(p / np.sum(p, axis=1, keepdims=True)), axis=1)  # (2, 4)
    assert CategoricalCrossentropy(axis=1)(t, p) == pytest.approx(np.mean(per_sample), rel=1e-14)


def test_probabilities_are_clipped_as_keras_does():
    eps = 1e-7
    t, p = np.array(CLIP_TRUE, float), np.array(CLIP_PRED)
    assert BinaryCrossentropy()(t, p) == pytest.approx(_bce(t, np.clip(p, eps, 1 - eps)), rel=1e-14)
    t, p = np.array([[1.0, 0.0, 0.0]]), np.array([[0.0, 0.5, 0.5]])
    assert CategoricalCrossentropy()(t, p) == pytest.approx(-np.log(eps), rel=1e-14)


GRADIENT_CASES = [
    (MeanSquaredError(), lambda rng: rng.normal(size=(2, 3, 4))),
    (MeanAbsoluteError(), lambda rng: rng.normal(size=(2, 3, 4))),
    (BinaryCrossentropy(), lambda rng: rng.uniform(0.05, 0.95, (2, 3, 4))),
    (BinaryCrossentropy(from_logits=True), lambda rng: rng.normal(0, 4, (2, 3, 4))),
    (CategoricalCrossentropy(), lambda rng: rng.uniform(0.05, 1.0, (2, 3, 4))),
    (CategoricalCrossentropy(axis=1), lambda rng: rng.uniform(0.05, 1.0, (2, 3, 4))),
    (CategoricalCrossentropy(from_logits=True), lambda rng: rng.normal(0, 3, (2, 3, 4))),
    (CategoricalCrossentropy(from_logits=True, axis=0), lambda rng: rng.normal(0, 3, (2, 3, 4))),
]


@pytest.mark.parametrize(("loss", "draw"), GRADIENT_CASES, ids=[repr(c[0]) for c in GRADIENT_CASES])
def test_gradient_matches_finite_differences(loss, draw):
    rng = np.random.default_rng(1)
    y_true, y_pred = rng.random((2, 3, 4)), draw(rng)
    numeric = numerical_gradient(lambda: loss(y_true, y_pred), y_pred)
    assert relative_error(loss.gradient(y_true, y_pred), numeric) < TOLERANCE


def test_gradients_where_clipping_is_active():
    # Values outside [0, 1] stay clipped under the finite-difference step, so both sides agree.
    y_true = np.array([[1.0, 0.0, 1.0, 0.0], [0.3, 0.7, 0.5, 1.0]])
    y_pred = np.array([[1.5, -0.3, 0.4, 0.6], [0.2, 1.2, -0.1, 0.7]])
    loss = BinaryCrossentropy()
    gradient = loss.gradient(y_true, y_pred)
    assert np.all(gradient[np.abs(y_pred - 0.5) > 0.5] == 0)
    numeric = numerical_gradient(lambda: loss(y_true, y_pred), y_pred)
    assert relative_error(gradient, numeric) < TOLERANCE
    # Normalised rows [1.11, -0.28, 0.17] clip at both ends; the sum still carries a gradient.
    y_true = np.array([[0.2, 0.3, 0.5], [0.0, 1.0, 0.0]])
    y_pred = np.array([[2.0, -0.5, 0.3], [0.2, 0.5, 0.3]])
    loss = CategoricalCrossentropy()
    numeric = numerical_gradient(lambda: loss(y_true, y_pred), y_pred)
    assert relative_error(loss.gradient(y_true, y_pred), numeric) < TOLERANCE


def test_mae_subgradient_at_a_tie_is_zero():
    y = np.array([[0.5, -1.0, 2.0]])
    np.testing.assert_array_equal(MeanAbsoluteError().gradient(y, y), np.zeros((1, 3)))


@pytest.mark.parametrize(
    "loss", [BinaryCrossentropy(True), CategoricalCrossentropy(True)], ids=repr
)
def test_huge_logits_are_stable(loss):
    y_true, y_pred = np.array(BIN_TRUE, float), np.array(HUGE)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = loss(y_true, y_pred)
        gradient = loss.gradient(y_true, y_pred)
    assert np.isfinite(value)
    assert np.all(np.isfinite(gradient))


def test_huge_binary_logits_by_hand():
    loss = BinaryCrossentropy(from_logits=True)
    y_true, y_pred = np.array([0.0, 1.0, 1.0, 0.0]), np.array([1e4, -1e4, 1e4, -1e4])
    assert loss(y_true, y_pred) == pytest.approx((1e4 + 1e4 + 0 + 0) / 4)
    np.testing.assert_allclose(loss.gradient(y_true, y_pred), np.array([1, -1, 0, 0]) / 4)


@pytest.mark.parametrize("loss", [c[0] for c in GRADIENT_CASES], ids=repr)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gradient_has_the_shape_and_dtype_of_y_pred(loss, dtype):
    rng = np.random.default_rng(2)
    y_true, y_pred = rng.random((3, 5)), rng.uniform(0.1, 0.9, (3, 5)).astype(dtype)
    gradient = loss.gradient(y_true, y_pred)
    assert gradient.shape == y_pred.shape
    assert gradient.dtype == np.dtype(dtype)
    assert isinstance(loss(y_true, y_pred), float)


def test_integer_predictions_compute_in_float64():
    gradient = MeanSquaredError().gradient([[1, 2]], [[2, 2]])
    assert gradient.dtype == np.float64
    np.testing.assert_array_equal(gradient, [[1.0, 0.0]])


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("mse", MeanSquaredError),
        ("mean_squared_error", MeanSquaredError),
        ("MSE", MeanSquaredError),
        ("mae", MeanAbsoluteError),
        ("mean_absolute_error", MeanAbsoluteError),
        ("binary_crossentropy", BinaryCrossentropy),
        ("categorical_crossentropy", CategoricalCrossentropy),
    ],
)
def test_get_by_name(name, cls):
    loss = losses.get(name)
    assert type(loss) is cls
    assert loss.get_config() == cls().get_config()


def test_get_passes_instances_through_and_rejects_others():
    loss = BinaryCrossentropy(from_logits=True)
    assert losses.get(loss) is loss
    with pytest.raises(ValueError, match=r"unknown loss 'hinge'; expected one of 'mean_squared_"):
        losses.get("hinge")
    with pytest.raises(TypeError, match=r"losses.get: expected a loss name or a Loss; got 3\."):
        losses.get(3)


@pytest.mark.parametrize(
    ("loss", "config"),
    [
        (MeanSquaredError(), {"name": "mean_squared_error"}),
        (MeanAbsoluteError(), {"name": "mean_absolute_error"}),
        (BinaryCrossentropy(True), {"name": "binary_crossentropy", "from_logits": True}),
        (
            CategoricalCrossentropy(axis=1),
            {"name": "categorical_crossentropy", "from_logits": False, "axis": 1},
        ),
    ],
    ids=repr,
)
def test_config_and_name(loss, config):
    assert loss.get_config() == config
    assert loss.name == config["name"]
    rebuilt = type(loss).from_config(config)
    assert rebuilt.get_config() == config
    assert repr(rebuilt) == repr(loss)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: MeanSquaredError()(np.zeros((2, 3)), np.zeros((3, 2))),
            ValueError,
            r"MeanSquaredError: expected y_true and y_pred of the same shape; "
            r"got y_true \(2, 3\) and y_pred \(3, 2\)\.",
        ),
        (
            lambda: CategoricalCrossentropy().gradient(np.zeros(4), np.zeros((4, 1))),
            ValueError,
            r"CategoricalCrossentropy.gradient: expected y_true and y_pred of the same shape; "
            r"got y_true \(4,\) and y_pred \(4, 1\)\.",
        ),
        (
            lambda: MeanAbsoluteError()(1.0, 2.0),
            ValueError,
            r"MeanAbsoluteError: expected y_true and y_pred with at least one dimension and one "
            r"element; got shape \(\)\.",
        ),
        (
            lambda: BinaryCrossentropy()(["a", "b"], [0.1, 0.2]),
            TypeError,
            r"BinaryCrossentropy: expected y_true to be a real numeric array",
        ),
        (
            lambda: MeanSquaredError().gradient([1.0], np.array([1j])),
            TypeError,
            r"MeanSquaredError.gradient: expected y_pred to be a real numeric array",
        ),
        (
            lambda: CategoricalCrossentropy(axis=2)(np.zeros((2, 3)), np.ones((2, 3))),
            ValueError,
            r"CategoricalCrossentropy: expected axis in \[-2, 2\) for y_pred of shape \(2, 3\); "
            r"got 2\.",
        ),
        (
            lambda: CategoricalCrossentropy(axis=1.0),
            TypeError,
            r"CategoricalCrossentropy: expected axis to be an int; got 1\.0\.",
        ),
        (
            lambda: BinaryCrossentropy(from_logits="yes"),
            TypeError,
            r"BinaryCrossentropy: expected from_logits to be True or False; got 'yes'\.",
        ),
    ],
)
def test_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize(("loss", "draw"), GRADIENT_CASES, ids=[repr(c[0]) for c in GRADIENT_CASES])
def test_value_and_gradient_is_both_calls_in_one(loss, draw):
    rng = np.random.default_rng(2)
    y_true, y_pred = rng.random((2, 3, 4)), draw(rng)
    value, gradient = loss.value_and_gradient(y_true, y_pred)
    assert value == loss(y_true, y_pred)
    np.testing.assert_array_equal(gradient, loss.gradient(y_true, y_pred))
    with pytest.raises(ValueError, match=r"value_and_gradient: expected y_true and y_pred of"):
        loss.value_and_gradient(y_true, y_pred[:1])

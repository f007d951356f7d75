"""Property tests of the public API under hostile input (issue 10).

Random shapes (0 and mismatched included), dtypes (bool, int, float16/32/64, complex, object,
str), values (NaN, inf, huge) and arguments of every kind are thrown at the layers'
constructors, forward and backward, at the model's compile/fit/predict/train_on_batch, at the
optimizers and at the metrics. Every call must either succeed or raise a documented error
(``ValueError``/``TypeError``; ``RuntimeError`` for a wrong call order) raised by this package
(not from inside NumPy) whose message names the argument, and must leave the caller's arrays
as they were. NaN and inf inputs may propagate (as in Keras), so NumPy's overflow warnings are
not errors here.
"""

from __future__ import annotations

import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convlstm
from convlstm import (
    callbacks,
    datasets,
    forecasting,
    losses,
    metrics,
    optimizers,
    training_metrics,
)
from convlstm.layers.base import Layer

PACKAGE = Path(convlstm.__file__).resolve().parent

# Reproducible (derandomize, no database) and small: the whole file runs in seconds.
FAST = settings(max_examples=30, deadline=2000, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

DTYPES = ["bool", "int32", "int64", "float16", "float32", "float64", "complex64", "object", "<U1"]
VALUES = st.sampled_from([0.0, 1.0, -2.5, np.nan, np.inf, -np.inf, 1e300, 3.0])
HOSTILE = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 6), st.sampled_from([10**12, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=3),
    st.lists(st.integers(-1, 3), max_size=4), st.dictionaries(st.text(max_size=2),
                                                              st.integers(), max_size=2),
)


@st.composite
def arrays(draw, near: Sequence[int] | None = None, max_dims: int = 6) -> np.ndarray:
    """A small array of any dtype: a random shape, or ``near`` with one size changed."""
    if near is not None and draw(st.booleans()):
        shape = list(near)
        axis = draw(st.integers(0, len(shape) - 1))
        shape[axis] = draw(st.sampled_from([0, 1, shape[axis], shape[axis] + 1]))
    else:
        shape = draw(st.lists(st.integers(0, 4), max_size=max_dims))
    dtype = draw(st.sampled_from(DTYPES))
    values = np.array(draw(st.lists(VALUES, min_size=1, max_size=4)))
    filled = np.resize(values, shape) if np.prod(shape) else np.zeros(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NaN or 1e300 cast to an int or float16
        return filled.astype(dtype)


def answered_well(call: Callable[[], object], names: Sequence[str],
                  inputs: Sequence[object] = (), call_order: bool = False) -> object:
    """Run ``call``: it succeeds (its result is returned), or raises a documented error from
    this package naming one of ``names`` (None is returned). The arrays among ``inputs`` are
    made read-only first, so any write into them fails, and must be unchanged after."""
    given_arrays = [a for a in inputs if isinstance(a, np.ndarray)]
    copies = [np.array(a, copy=True) for a in given_arrays]
    for array in given_arrays:
        array.flags.writeable = False
    documented = (ValueError, TypeError, RuntimeError) if call_order else (ValueError, TypeError)
    result = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # NaN/inf propagate, as in Keras
            result = call()
    except documented as error:
        origin = Path(traceback.extract_tb(error.__traceback__)[-1].filename).resolve()
        assert PACKAGE in origin.parents, f"raised from {origin}: {error}"
        message = str(error)
        assert any(name in message for name in names), f"{names} not in: {message}"
    for given_array, copy in zip(given_arrays, copies):
        assert given_array.shape == copy.shape and given_array.dtype == copy.dtype
        assert given_array.tobytes() == copy.tobytes() or np.array_equal(
            given_array, copy, equal_nan=given_array.dtype.kind in "fc"), "caller array changed"
    return result


# Every layer: how to make a small one, the input it takes, and its constructor's arguments.
LAYERS: dict[str, tuple[Callable[..., Layer], dict, tuple[int, ...]]] = {
    "ConvLSTM1D": (convlstm.ConvLSTM1D, {"in_channels": 1, "out_channels": 2}, (2, 3, 4, 1)),
    "ConvLSTM2D": (convlstm.ConvLSTM2D, {"in_channels": 1, "out_channels": 2}, (2, 2, 4, 4, 1)),
    "ConvLSTM3D": (convlstm.ConvLSTM3D, {"in_channels": 1, "out_channels": 2},
                   (1, 2, 3, 3, 3, 1)),
    "ConvGRU1D": (convlstm.ConvGRU1D, {"in_channels": 1, "out_channels": 2}, (2, 3, 4, 1)),
    "ConvGRU2D": (convlstm.ConvGRU2D, {"in_channels": 1, "out_channels": 2}, (2, 2, 4, 4, 1)),
    "ConvGRU3D": (convlstm.ConvGRU3D, {"in_channels": 1, "out_channels": 2}, (1, 2, 3, 3, 3, 1)),
    "Conv2D": (convlstm.Conv2D, {"filters": 2, "kernel_size": 3}, (2, 4, 4, 1)),
    "Conv3D": (convlstm.Conv3D, {"filters": 2, "kernel_size": 3}, (2, 3, 4, 4, 1)),
    "Dense": (convlstm.Dense, {"units": 3}, (2, 4)),
    "Dropout": (convlstm.Dropout, {"rate": 0.5}, (2, 4)),
    "Flatten": (convlstm.Flatten, {}, (2, 2, 3)),
    "BatchNormalization": (convlstm.BatchNormalization, {}, (2, 3, 4)),
    "MaxPooling1D": (convlstm.MaxPooling1D, {}, (2, 4, 1)),
    "MaxPooling2D": (convlstm.MaxPooling2D, {}, (2, 4, 4, 1)),
    "MaxPooling3D": (convlstm.MaxPooling3D, {}, (2, 2, 4, 4, 1)),
    "SpaceToDepth": (convlstm.SpaceToDepth, {"block_size": 2}, (2, 2, 4, 4, 1)),
    "DepthToSpace": (convlstm.DepthToSpace, {"block_size": 2}, (2, 2, 2, 2, 4)),
    "Activation": (convlstm.Activation, {"activation": "tanh"}, (2, 4)),
    "ReLU": (convlstm.ReLU, {}, (2, 4)),
    "LeakyReLU": (convlstm.LeakyReLU, {}, (2, 4)),
    "Softmax": (convlstm.Softmax, {}, (2, 4)),
}
# An argument's name in messages, where it differs (Keras names, weights sized by it).
ALIASES = {"out_channels": ("filters", "weight"), "in_channels": ("weight",),
           "filters": ("weight",), "units": ("weight",), "kernel_size": ("weight",),
           "strides": ("stride",), "dilation_rate": ("dilation",)}


def _constructor_arguments(name: str) -> list[str]:
    make, required, _ = LAYERS[name]
    layer = make(**required)
    return sorted(set(layer.get_config()) | set(required))


CONSTRUCTOR_CASES = [(name, argument) for name in LAYERS
                     for argument in _constructor_arguments(name)]


@pytest.mark.parametrize(("name", "argument"), CONSTRUCTOR_CASES)
@FAST
@given(value=HOSTILE)
def test_layer_constructors_answer_every_argument(name, argument, value):
    make, required, _ = LAYERS[name]
    names = (argument, *ALIASES.get(argument, ()))
    answered_well(lambda: make(**{**required, argument: value}), names, [value])


@pytest.mark.parametrize("name", LAYERS)
@FAST
@given(data=st.data())
def test_forward_and_backward_answer_any_array(name, data):
    make, required, shape = LAYERS[name]
    x = data.draw(arrays(near=shape))
    training = data.draw(st.sampled_from([True, False, 1, None]))
    layer = make(**required)
    output = answered_well(lambda: layer.forward(x, training=training),
                           ["x", "training", "axis"], [x])
    assert not isinstance(output, np.ndarray) or not np.shares_memory(output, x)
    d_output = data.draw(arrays(near=shape))
    answered_well(lambda: layer.backward(d_output), ["d_output", "forward"], [d_output],
                  call_order=True)


@pytest.mark.parametrize("name", LAYERS)
@FAST
@given(data=st.data())
def test_backward_after_a_good_forward_answers_any_gradient(name, data):
    make, required, shape = LAYERS[name]
    layer = make(**required)
    x = np.random.default_rng(0).random(shape)
    output = layer.forward(x, training=True)
    d_output = data.draw(arrays(near=output.shape))
    answered_well(lambda: layer.backward(d_output), ["d_output"], [x, d_output])


def _model() -> convlstm.Sequential:
    model = convlstm.Sequential([convlstm.ConvLSTM2D(1, 2, 3, "same", seed=0),
                                 convlstm.Conv3D(1, 3, padding="same", seed=1)],
                                input_shape=(2, 3, 3, 1))
    model.compile("sgd", "mse")
    return model


SAMPLE = (2, 2, 3, 3, 1)
SEQUENCES = np.random.default_rng(1).random(SAMPLE)
FIT_ARGUMENTS = ["epochs", "batch_size", "validation_split", "validation_data", "shuffle",
                 "callbacks", "verbose", "seed"]


@pytest.mark.parametrize("argument", FIT_ARGUMENTS)
@FAST
@given(value=HOSTILE)
def test_fit_answers_every_argument(argument, value):
    x = np.random.default_rng(0).random(SAMPLE)
    # One step at most: a huge epochs is valid, and would train for ever.
    arguments = {"verbose": 0, "callbacks": [callbacks.StepLimit(1)], argument: value}
    answered_well(lambda: _model().fit(x, x, **arguments), [argument], [x, value])


@FAST
@given(data=st.data())
def test_fit_predict_and_train_on_batch_answer_any_arrays(data):
    x = data.draw(arrays(near=SAMPLE))
    y = data.draw(arrays(near=SAMPLE))
    batch_size = data.draw(st.one_of(st.integers(-1, 3), HOSTILE))
    names = ["x", "y", "batch_size", "sample"]
    answered_well(lambda: _model().fit(x, y, batch_size=batch_size, verbose=0), names, [x, y])
    answered_well(lambda: _model().predict(x, batch_size=batch_size), names, [x])
    answered_well(lambda: _model().train_on_batch(x, y), names, [x, y])


@FAST
@given(optimizer=HOSTILE, loss=HOSTILE, metric_list=st.one_of(HOSTILE, st.lists(HOSTILE,
                                                                                max_size=2)))
def test_compile_answers_any_argument(optimizer, loss, metric_list):
    model = _model()
    answered_well(lambda: model.compile(optimizer, loss, metric_list),
                  ["optimizer", "loss", "metric"])


OPTIMIZER_ARGUMENTS = {
    optimizers.SGD: ["learning_rate", "momentum", "nesterov", "clipnorm", "weight_decay"],
    optimizers.RMSprop: ["learning_rate", "rho", "momentum", "epsilon", "centered",
                         "global_clipnorm"],
    optimizers.Adam: ["learning_rate", "beta_1", "beta_2", "epsilon", "amsgrad", "clipvalue"],
    optimizers.AdamW: ["learning_rate", "weight_decay", "beta_1", "epsilon"],
}


@pytest.mark.parametrize(("kind", "argument"), [(kind, argument) for kind, arguments in
                                                OPTIMIZER_ARGUMENTS.items()
                                                for argument in arguments])
@FAST
@given(value=HOSTILE)
def test_optimizers_answer_every_hyperparameter(kind, argument, value):
    answered_well(lambda: kind(**{argument: value}), [argument])


@pytest.mark.parametrize("kind", list(OPTIMIZER_ARGUMENTS))
@FAST
@given(data=st.data())
def test_optimizer_apply_answers_any_gradient(kind, data):
    params = {"w": np.ones((2, 3))}
    grad = data.draw(arrays(near=(2, 3)))
    answered_well(lambda: kind().apply(params, {"w": grad}), ["grads", "params"], [grad])
    if not np.isfinite(params["w"]).all():  # only non-finite gradients may make them so
        assert grad.dtype.kind in "fc" and not np.isfinite(grad.astype(complex)).all()


@pytest.mark.parametrize("name", ["mse", "mae", "psnr", "ssim", "csi", "pod", "far"])
@FAST
@given(data=st.data())
def test_metrics_answer_any_arrays(name, data):
    frames = (1, 2, 7, 7, 1)
    y_true = data.draw(arrays(near=frames))
    y_pred = data.draw(arrays(near=frames))
    function = getattr(metrics, name)
    extra = {"threshold": data.draw(HOSTILE)} if name in ("csi", "pod", "far") else {}
    answered_well(lambda: function(y_true, y_pred, **extra),
                  ["y_true", "y_pred", "threshold"], [y_true, y_pred])


@pytest.mark.parametrize("name", ["mean_squared_error", "mean_absolute_error",
                                  "binary_crossentropy", "categorical_crossentropy"])
@FAST
@given(data=st.data())
def test_losses_answer_any_arrays(name, data):
    y_true = data.draw(arrays(near=(2, 3)))
    y_pred = data.draw(arrays(near=(2, 3)))
    loss = losses.get(name)
    answered_well(lambda: loss.value_and_gradient(y_true, y_pred), ["y_true", "y_pred"],
                  [y_true, y_pred])


@pytest.mark.parametrize("name", ["mae", "rmse", "binary_accuracy", "categorical_accuracy",
                                  "accuracy"])
@FAST
@given(data=st.data())
def test_training_metrics_answer_any_arrays(name, data):
    y_true = data.draw(arrays(near=(2, 3)))
    y_pred = data.draw(arrays(near=(2, 3)))
    metric = training_metrics.get(name)
    answered_well(lambda: metric.update(y_true, y_pred), ["y_true", "y_pred"], [y_true, y_pred])


RECURRENT = ["ConvLSTM1D", "ConvLSTM2D", "ConvGRU2D", "ConvGRU3D"]
HOSTILE_STATE = {"h": None}


@pytest.mark.parametrize("name", RECURRENT)
@FAST
@given(data=st.data())
def test_initial_state_answers_any_states(name, data):
    make, required, shape = LAYERS[name]
    layer = make(**required, kernel_size=3, padding="same")
    x = np.random.default_rng(0).random(shape)
    state_shape = (shape[0], *shape[2:-1], 2)
    states = data.draw(st.lists(arrays(near=state_shape), max_size=3))
    given_states = data.draw(st.sampled_from([states, tuple(states), [states], HOSTILE_STATE]))
    answered_well(lambda: layer.forward(x, initial_state=given_states), ["initial_state"],
                  [x, *states])
    answered_well(lambda: layer.reset_states(given_states), ["states"], states)



@pytest.mark.parametrize(("kind", "argument"), [
    (callbacks.EarlyStopping, "monitor"), (callbacks.EarlyStopping, "min_delta"),
    (callbacks.EarlyStopping, "patience"), (callbacks.EarlyStopping, "mode"),
    (callbacks.EarlyStopping, "restore_best_weights"), (callbacks.ModelCheckpoint, "filepath"),
    (callbacks.ModelCheckpoint, "save_best_only"), (callbacks.TimeLimit, "seconds"),
    (callbacks.StepLimit, "steps"), (callbacks.ProgressLogger, "print_fn"),
])
@FAST
@given(value=st.one_of(HOSTILE, st.text(alphabet="{}:.!x_epoch", max_size=8)))
def test_callbacks_answer_every_argument(kind, argument, value):
    required = {"filepath": "m.npz"} if kind is callbacks.ModelCheckpoint else {}
    if kind in (callbacks.TimeLimit, callbacks.StepLimit):
        required = {}
    answered_well(lambda: kind(**{**required, argument: value}), [argument])


@pytest.mark.parametrize(("function", "argument"), [
    (lambda **kw: datasets.moving_mnist(**{"n": 1, "frames": 1, "size": 28, **kw}), "n"),
    (lambda **kw: datasets.moving_mnist(**{"n": 1, "frames": 1, "size": 28, **kw}), "frames"),
    (lambda **kw: datasets.moving_mnist(**{"n": 1, "frames": 1, "size": 28, **kw}), "size"),
    (lambda **kw: datasets.moving_mnist(**{"n": 1, "frames": 1, "size": 28, **kw}), "digits"),
    (lambda **kw: datasets.moving_mnist(**{"n": 1, "frames": 1, "size": 28, **kw}), "seed"),
    (lambda **kw: forecasting.direct_pairs(**{"sequences": SEQUENCES, "context": 1, **kw}),
     "context"),
    (lambda **kw: forecasting.forecast(_model(), **{"context": SEQUENCES, "steps": 1, **kw}),
     "steps"),
    (lambda **kw: forecasting.forecast(_model(), **{"context": SEQUENCES, "steps": 1, **kw}),
     "batch_size"),
    (lambda **kw: forecasting.forecast(_model(), **{"context": SEQUENCES, "steps": 1, **kw}),
     "method"),
    (lambda **kw: forecasting.baselines(**{"context": SEQUENCES, "steps": 1,
                                           "mean_frame": SEQUENCES[0, 0], **kw}), "steps"),
])
@FAST
@given(value=HOSTILE)
def test_datasets_and_forecasting_answer_every_argument(function, argument, value):
    answered_well(lambda: function(**{argument: value}), [argument], [SEQUENCES])


@pytest.mark.parametrize("name", ["direct_pairs", "forecast", "baselines"])
@FAST
@given(data=st.data())
def test_forecasting_answers_any_sequences(name, data):
    sequences = data.draw(arrays(near=SAMPLE))
    call = {
        "direct_pairs": lambda: forecasting.direct_pairs(sequences, 1),
        "forecast": lambda: forecasting.forecast(_model(), sequences, 2),
        "baselines": lambda: forecasting.baselines(sequences, 2, np.zeros(SAMPLE[2:])),
    }[name]
    answered_well(call, ["sequences", "context", "mean_frame", "x"], [sequences])

"""Every bad input gets a clear ValueError/TypeError naming the argument; nothing else happens."""

import numpy as np
import pytest

from convlstm import (
    BatchNormalization,
    Bidirectional,
    Conv2D,
    Conv3D,
    ConvGRU1D,
    ConvGRU2D,
    ConvGRU3D,
    ConvLSTM1D,
    ConvLSTM2D,
    ConvLSTM2DCell,
    ConvLSTM3D,
    Dense,
    DepthToSpace,
    Dropout,
    Flatten,
    LeakyReLU,
    MaxPooling1D,
    MaxPooling2D,
    MaxPooling3D,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    SpaceToDepth,
    TimeDistributed,
    callbacks,
    datasets,
    forecasting,
    initializers,
    losses,
    metrics,
    optimizers,
    training_metrics,
)
from convlstm.models import run_epochs

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
        ({"seed": -3}, ValueError, r"expected seed to be None or a non-negative int"),
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


# --------------------------------------------------------------------------------------------
# Issue 10, the API half: every table below is one category of hostile input.


SEQUENCES = np.random.default_rng(0).random((2, 3, 4, 4, 1)).astype(np.float32)


def small_model(compiled: bool = True) -> Sequential:
    """A built two-layer next-frame model on (3, 4, 4, 1) samples."""
    model = Sequential([ConvLSTM2D(1, 2, 3, "same", seed=0), Conv3D(1, 3, padding="same", seed=1)],
                       input_shape=(3, 4, 4, 1))
    if compiled:
        model.compile("sgd", "mse")
    return model


def fit(**kwargs):
    return lambda: small_model().fit(SEQUENCES, SEQUENCES, **{"verbose": 0, **kwargs})


TRAINING_ARGUMENT_ERRORS = [
    (fit(batch_size=0), ValueError, r"^Sequential.fit: expected batch_size to be a positive int; "
                                    r"got 0\.$"),
    (fit(batch_size=-1), ValueError, r"expected batch_size to be a positive int; got -1"),
    (fit(batch_size=2.5), TypeError, r"expected batch_size to be a positive int; got 2.5"),
    (fit(batch_size=True), TypeError, r"expected batch_size to be a positive int; got True"),
    (fit(epochs=2.5), TypeError, r"expected epochs to be a positive int; got 2.5"),
    (fit(epochs=-1), ValueError, r"expected epochs to be a positive int; got -1"),
    (fit(seed=-1), ValueError, r"expected seed to be None or a non-negative int; got -1"),
    (fit(seed=2.5), TypeError, r"expected seed to be None or a non-negative int; got 2.5"),
    (fit(callbacks="x"), TypeError, r"expected callbacks to be a list of convlstm.callbacks "
                                    r"objects; got 'x'"),
    (fit(callbacks=callbacks.StepLimit(1)), TypeError, r"expected callbacks to be a list .*; "
                                                       r"got <convlstm.callbacks.StepLimit"),
    (fit(callbacks=[3]), TypeError, r"expected callbacks to be a list .*; got a list of 1 items "
                                    r"\(int\)"),
    (fit(verbose="1"), ValueError, r"expected verbose to be 0, 1 or 2; got '1'"),
    (fit(shuffle=1), TypeError, r"expected shuffle to be True or False; got 1"),
    (fit(validation_data=(SEQUENCES,)), ValueError,
     r"expected validation_data to be a pair \(x_val, y_val\); got 1 items"),
    (fit(validation_data=SEQUENCES), TypeError,
     r"expected validation_data to be a pair \(x_val, y_val\); got an array of shape"),
    (fit(validation_data=(SEQUENCES, SEQUENCES[:1])), ValueError,
     r"expected validation_data's x_val and y_val with the same number of samples; got "
     r"shapes \(2, 3, 4, 4, 1\) and \(1, 3, 4, 4, 1\)"),
    (fit(validation_data=(SEQUENCES[:0], SEQUENCES[:0])), ValueError,
     r"expected at least one sample in validation_data's x_val and y_val; got none"),
    (fit(validation_data=(SEQUENCES, SEQUENCES[..., :0])), ValueError, r"y_true and y_pred"),
    (fit(validation_split=1.0), ValueError, r"expected validation_split in \[0, 1\); got 1.0"),
    (fit(validation_split=-0.1), ValueError, r"expected validation_split in \[0, 1\); got -0.1"),
    (fit(validation_split=float("nan")), ValueError, r"expected validation_split in .*; got nan"),
    (fit(validation_split="0.5"), TypeError, r"expected validation_split in .*; got '0.5'"),
    (lambda: small_model().fit(SEQUENCES[:1], SEQUENCES[:1], validation_split=0.5, verbose=0),
     ValueError, r"expected validation_split to leave at least one training and one validation "
                 r"sample of the 1; got 0.5 \(1 held out\)"),
    (fit(validation_split=1e-17), ValueError, r"sample of the 2; got 1e-17 \(0 held out\)"),
    (lambda: small_model().fit([[1, 2], [3]], SEQUENCES, verbose=0), ValueError,
     r"expected x to be a rectangular numeric array; got a ragged list"),
    (lambda: small_model().fit(SEQUENCES, SEQUENCES[:1], verbose=0), ValueError,
     r"expected x and y with the same number of samples"),
    (lambda: small_model().fit(SEQUENCES, SEQUENCES.astype(complex), verbose=0), TypeError,
     r"expected y to be a real numeric array"),
    (lambda: small_model().predict(SEQUENCES, batch_size=0), ValueError,
     r"^Sequential.predict: expected batch_size to be a positive int; got 0"),
    (lambda: small_model().predict(3.0), ValueError,
     r"^Sequential.predict: expected x with a first \(samples\) axis; got a scalar"),
    (lambda: small_model().predict("abc"), TypeError, r"expected x to be a real numeric array"),
    (lambda: small_model().evaluate(SEQUENCES, SEQUENCES, batch_size=2.5), TypeError,
     r"^Sequential.evaluate: expected batch_size to be a positive int; got 2.5"),
    (lambda: small_model().train_on_batch(SEQUENCES, SEQUENCES[:1]), ValueError,
     r"^Sequential.train_on_batch: expected x and y with the same number of samples"),
    (lambda: small_model().train_on_batch(SEQUENCES, SEQUENCES, return_dict="yes"), TypeError,
     r"expected return_dict to be True or False; got 'yes'"),
    (lambda: run_epochs(small_model(), 2, lambda rows: 0.0, None, epochs=1, batch_size=0,
                        shuffle=True, callbacks=(), verbose=0, seed=None), ValueError,
     r"^run_epochs: expected batch_size to be a positive int; got 0"),
    (lambda: run_epochs(small_model(), 0, lambda rows: 0.0, None, epochs=1, batch_size=1,
                        shuffle=True, callbacks=(), verbose=0, seed=None), ValueError,
     r"^run_epochs: expected samples to be a positive int; got 0"),
    (lambda: small_model(False).compile("nadam"), ValueError, r"unknown optimizer 'nadam'"),
    (lambda: small_model(False).compile(3), TypeError, r"expected an optimizer name .*; got 3"),
    (lambda: small_model(False).compile("sgd", "msee"), ValueError, r"msee"),
    (lambda: small_model(False).compile("sgd", "mse", "mae"), TypeError,
     r"expected metrics to be a list of names or Metric objects; got 'mae'"),
    (lambda: small_model(False).compile("sgd", "mse", ["maee"]), ValueError,
     r"unknown metric 'maee'"),
    (lambda: small_model(False).compile("sgd", "mse", ["mae", "mae"]), ValueError,
     r"expected distinct metric names"),
]


@pytest.mark.parametrize(("call", "error", "match"), TRAINING_ARGUMENT_ERRORS)
def test_training_argument_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


OPTIMIZERS = [optimizers.SGD, optimizers.RMSprop, optimizers.Adam, optimizers.AdamW]
BAD_HYPERPARAMETERS = [
    ("learning_rate", float("inf"), ValueError),
    ("learning_rate", float("nan"), ValueError),
    ("learning_rate", -0.1, ValueError),
    ("learning_rate", 0, ValueError),
    ("learning_rate", "0.1", TypeError),
    ("learning_rate", True, TypeError),
    ("clipnorm", 0, ValueError),
    ("clipnorm", float("inf"), ValueError),
    ("global_clipnorm", float("nan"), ValueError),
    ("clipvalue", float("inf"), ValueError),
    ("weight_decay", -1, ValueError),
    ("weight_decay", float("inf"), ValueError),
]


@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=lambda kind: kind.__name__)
@pytest.mark.parametrize(("name", "value", "error"), BAD_HYPERPARAMETERS)
def test_optimizers_refuse_nonfinite_and_nonpositive_hyperparameters(optimizer, name, value,
                                                                     error):
    with pytest.raises(error, match=rf"^{optimizer.__name__}: expected {name} to be .*; got "
                                    rf"{value!r}\.$"):
        optimizer(**{name: value})


@pytest.mark.parametrize(
    ("optimizer", "name", "value", "error"),
    [
        (optimizers.SGD, "momentum", 1.0, ValueError),
        (optimizers.SGD, "momentum", float("nan"), ValueError),
        (optimizers.RMSprop, "rho", float("inf"), ValueError),
        (optimizers.RMSprop, "epsilon", float("inf"), ValueError),
        (optimizers.RMSprop, "epsilon", 0, ValueError),
        (optimizers.Adam, "beta_1", 1.0, ValueError),
        (optimizers.Adam, "beta_2", -0.1, ValueError),
        (optimizers.Adam, "beta_1", "0.9", TypeError),
        (optimizers.Adam, "epsilon", -1e-7, ValueError),
        (optimizers.Adam, "epsilon", float("nan"), ValueError),
        (optimizers.AdamW, "epsilon", float("inf"), ValueError),
    ],
)
def test_optimizer_specific_hyperparameters(optimizer, name, value, error):
    with pytest.raises(error, match=rf"expected {name} to be .*; got {value!r}"):
        optimizer(**{name: value})


def test_a_schedule_with_a_nonfinite_value_is_refused_before_any_update():
    weights = {"w": np.ones(3)}
    optimizer = optimizers.SGD(learning_rate=lambda step: float("nan"))
    with pytest.raises(ValueError, match=r"^SGD.apply: expected the learning_rate schedule's "
                                         r"value at step 0 to be a positive finite float; got nan"):
        optimizer.apply(weights, {"w": np.ones(3)})
    np.testing.assert_array_equal(weights["w"], np.ones(3))
    with pytest.raises(ValueError, match=r"initial_learning_rate to be a positive float; got inf"):
        optimizers.ExponentialDecay(float("inf"), 10, 0.9)


CALLBACK_ERRORS = [
    (lambda: callbacks.EarlyStopping(patience="2"), TypeError,
     r"^EarlyStopping: expected patience to be an int >= 0; got '2'"),
    (lambda: callbacks.EarlyStopping(patience=-1), ValueError,
     r"expected patience to be an int >= 0; got -1"),
    (lambda: callbacks.EarlyStopping(monitor=None), TypeError,
     r"expected monitor to be the name of a logged value .*; got None"),
    (lambda: callbacks.EarlyStopping(mode="auto"), ValueError,
     r"expected mode 'min' or 'max'; got 'auto'"),
    (lambda: callbacks.EarlyStopping(min_delta=float("nan")), ValueError,
     r"expected min_delta to be a finite float; got nan"),
    (lambda: callbacks.EarlyStopping(min_delta=None), TypeError,
     r"expected min_delta to be a finite float; got None"),
    (lambda: callbacks.EarlyStopping(restore_best_weights="yes"), TypeError,
     r"expected restore_best_weights to be True or False"),
    (lambda: callbacks.ModelCheckpoint("m_{epoc}.npz"), ValueError,
     r"^ModelCheckpoint: expected filepath to be a path whose .*; got 'm_\{epoc\}.npz' with "
     r"unknown field\(s\) epoc\."),
    (lambda: callbacks.ModelCheckpoint("m_{}.npz"), ValueError, r"unknown field\(s\) \{\}"),
    (lambda: callbacks.ModelCheckpoint("m_{epoch.real}.npz"), ValueError,
     r"unknown field\(s\) epoch.real"),
    (lambda: callbacks.ModelCheckpoint("m_{epoch:.2x}.npz"), ValueError,
     r"got 'm_\{epoch:.2x\}.npz' \(Precision not allowed in integer format specifier\)"),
    (lambda: callbacks.ModelCheckpoint("m_{epoch.npz"), ValueError, r"got 'm_\{epoch.npz' \("),
    (lambda: callbacks.ModelCheckpoint(3), TypeError,
     r"expected filepath to be a path \(str or os.PathLike\); got 3"),
    (lambda: callbacks.ModelCheckpoint("m.npz", save_best_only="x"), TypeError,
     r"expected save_best_only to be True or False"),
    (lambda: callbacks.TimeLimit(float("nan")), ValueError, r"expected seconds to be a positive"),
    (lambda: callbacks.TimeLimit(-1), ValueError, r"expected seconds to be a positive"),
    (lambda: callbacks.StepLimit(True), ValueError, r"expected steps to be a positive int"),
    (lambda: callbacks.ProgressLogger(3), TypeError, r"expected print_fn to be a callable"),
]


@pytest.mark.parametrize(("call", "error", "match"), CALLBACK_ERRORS)
def test_callback_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_checkpoint_fields_accept_keras_patterns_and_name_a_missing_value(tmp_path):
    assert callbacks.StepLimit(np.int64(2)).steps == 2
    pattern = str(tmp_path / "m_{epoch:02d}_{val_loss:.3f}_{mae}.npz")
    assert callbacks.ModelCheckpoint(pattern).filepath == pattern
    checkpoint = callbacks.ModelCheckpoint(tmp_path / "m_{val_loss:.3f}.npz", monitor="loss")
    with pytest.raises(ValueError, match=r"^ModelCheckpoint: expected every field of filepath .* "
                                         r"among the logged values .*; got val_loss without"):
        small_model().fit(SEQUENCES, SEQUENCES, verbose=0, callbacks=[checkpoint])


MODEL_ERRORS = [
    (lambda: Sequential([ConvLSTM2D(1, 2)], input_shape=(3, 4, 4)), ValueError,
     r"ConvLSTM2D.build: expected an input_shape of \(batch, time, height, width, 1\); got "
     r"\(None, 3, 4, 4\)"),
    (lambda: Sequential([ConvLSTM2D(1, 2)], input_shape=(3, 2.5, 4, 1)), TypeError,
     r"^Sequential: expected input_shape to be a tuple of ints >= 0 \(or None\); got"),
    (lambda: Sequential([ConvLSTM2D(1, 2)], input_shape="abc"), TypeError,
     r"expected input_shape to be a tuple of ints; got 'abc'"),
    (lambda: Sequential([ConvLSTM2D(1, 2)], input_shape=(3, -4, 4, 1)), TypeError,
     r"expected input_shape to be a tuple of ints >= 0"),
    (lambda: Sequential(ConvLSTM2D(1, 2)), TypeError,
     r"^Sequential: expected layers to be a list of layers; got ConvLSTM2D\("),
    (lambda: Sequential(["x"]), TypeError, r"Sequential.add: expected a layer; got str"),
    (lambda: Sequential([ConvLSTM2D(None, 2), Dense(2)]).set_weights([np.zeros(3)]),
     RuntimeError,
     r"^Sequential.set_weights: the model is not built \(no weights yet, input channels "
     r"unknown, in: ConvLSTM2D, Dense\); pass input_shape= to Sequential, call "
     r"model.build\(\(None, \*sample_shape\)\), or call the model on data first\."),
    (lambda: small_model().set_weights(small_model().get_weights()[:-1]), ValueError,
     r"expected 5 weights \(0/0/kernel, .*, 1/bias\); got 4"),
    (lambda: small_model().set_weights([np.array(["a"]), *small_model().get_weights()[1:]]),
     TypeError, r"expected weights\[0\] \(0/0/kernel\) to be a real numeric array"),
    (lambda: small_model().set_weights({"kernel": 1}), TypeError,
     r"expected a list of 5 arrays; got dict"),
    (lambda: small_model().build(3), TypeError,
     r"^Sequential.build: expected input_shape to be a tuple of ints; got 3"),
    (lambda: small_model().compute_output_shape("abc"), TypeError,
     r"^Sequential.compute_output_shape: expected input_shape to be a tuple of ints; got 'abc'"),
    (lambda: small_model().summary(print_fn=3), TypeError,
     r"^Sequential.summary: expected print_fn to be None or a callable; got 3"),
    (lambda: small_model().evaluate(SEQUENCES, SEQUENCES, return_dict="x"), TypeError,
     r"^Sequential.evaluate: expected return_dict to be True or False; got 'x'"),
    (lambda: losses.MeanSquaredError()([[1], [1, 2]], [[1], [1, 2]]), ValueError,
     r"^MeanSquaredError: expected y_pred to be a rectangular numeric array; got a ragged list"),
]


@pytest.mark.parametrize(("call", "error", "match"), MODEL_ERRORS)
def test_model_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_set_weights_builds_from_a_recorded_input_shape():
    lazy = Sequential([ConvLSTM2D(None, 2, seed=0)], input_shape=None)
    lazy.input_shape = (3, 4, 4, 1)
    built = Sequential([ConvLSTM2D(1, 2, seed=1)])
    lazy.set_weights(built.get_weights())
    for mine, theirs in zip(lazy.get_weights(), built.get_weights()):
        np.testing.assert_array_equal(mine, theirs)


RECURRENT = [
    (ConvLSTM1D, (4,)), (ConvLSTM2D, (4, 4)), (ConvLSTM3D, (2, 2, 2)),
    (ConvGRU1D, (4,)), (ConvGRU2D, (4, 4)), (ConvGRU3D, (2, 2, 2)),
]


def _states(kind, spatial, filters=2, batch=2):
    count = 2 if "LSTM" in kind.__name__ else 1
    return [np.zeros((batch, *spatial, filters), np.float32) for _ in range(count)]


STATE_CASES = [
    ("None inside", lambda good: [None] * len(good), TypeError,
     r"expected initial_state h to be a real numeric array"),
    ("one too many", lambda good: [*good, good[0]], ValueError,
     r"expected initial_state to be \[h.*\]; got \d items \(array of shape"),
    ("wrong shape", lambda good: [np.zeros((2, *good[0].shape[1:-1], 3))] * len(good),
     ValueError, r"expected initial_state h of shape \(2, .*2\); got \(2, .*3\)"),
    ("strings", lambda good: [np.full(good[0].shape, "a")] * len(good), TypeError,
     r"expected initial_state h to be a real numeric array .*; got dtype <U1"),
    ("complex", lambda good: [g.astype(complex) for g in good], TypeError,
     r"expected initial_state h to be a real numeric array .*complex128"),
    ("a dict", lambda good: {"h": good[0]}, TypeError,
     r"expected initial_state to be a list \[h.*\]; got dict"),
    ("an empty list", lambda good: [], ValueError, r"expected initial_state to be \[h.*\]; got 0 "
                                                   r"items \(\)"),
]


@pytest.mark.parametrize(("kind", "spatial"), RECURRENT, ids=lambda v: getattr(v, "__name__", ""))
@pytest.mark.parametrize(("case", "make", "error", "match"), STATE_CASES,
                         ids=[case[0] for case in STATE_CASES])
def test_initial_state_errors_of_every_recurrent_layer(kind, spatial, case, make, error, match):
    x = np.zeros((2, 3, *spatial, 1), np.float32)
    good = _states(kind, spatial)
    given = make(good)
    copies = [np.array(g, copy=True) for g in good]
    with pytest.raises(error, match=rf"^{kind.__name__}.forward: {match}"):
        kind(1, 2, 3, "same").forward(x, initial_state=given)
    for state, copy in zip(good, copies):
        np.testing.assert_array_equal(state, copy)


@pytest.mark.parametrize(("kind", "spatial"), RECURRENT, ids=lambda v: getattr(v, "__name__", ""))
def test_initial_state_as_nested_lists_is_accepted(kind, spatial):
    x = np.random.default_rng(0).random((2, 3, *spatial, 1))
    good = _states(kind, spatial)
    layer = kind(1, 2, 3, "same", seed=0)
    np.testing.assert_array_equal(layer.forward(x, initial_state=[g.tolist() for g in good]),
                                  layer.forward(x, initial_state=good))


@pytest.mark.parametrize(("kind", "spatial"), RECURRENT, ids=lambda v: getattr(v, "__name__", ""))
def test_reset_states_message_describes_what_was_given(kind, spatial):
    good = _states(kind, spatial)
    layer = kind(1, 2, 3, "same", num_layers=2, stateful=True)
    with pytest.raises(ValueError, match=r"one per layer; got 3 items \(list of length "
                                         rf"{len(good)}, list of length {len(good)}, list"):
        layer.reset_states([good] * 3)
    with pytest.raises(ValueError, match=rf"got 2 items \(list of length {len(good)}, list of "
                                         r"length 0\)"):
        layer.reset_states([good, []])


def test_bidirectional_initial_state_errors():
    layer = Bidirectional(ConvLSTM2D(1, 2, 3, "same"))
    state = np.zeros((2, 5, 5, 2))
    with pytest.raises(ValueError, match=r"^Bidirectional.forward: expected initial_state to be "
                                         r"the forward layer's states followed by the backward "
                                         r"layer's \(4 items\); got 2 items \(array of shape"):
        layer.forward(X, initial_state=[state, state])
    with pytest.raises(TypeError, match=r"expected initial_state to be a list .*; got 'abc'"):
        layer.forward(X, initial_state="abc")
    with pytest.raises(ValueError, match=r"initial_state .*of shape"):
        layer.forward(X, initial_state=[np.zeros((2, 5, 5, 3))] * 4)


# Empty data: a clear error where no answer exists, an empty result where Keras gives one.

EMPTY_ERRORS = [
    *[(lambda kind=kind, spatial=spatial: kind(1, 2, 3, "same").forward(
        np.zeros((0, 3, *spatial, 1))), rf"^{kind.__name__}.forward: expected x with at least one "
                                        r"sample \(batch >= 1\); got \(0, 3")
      for kind, spatial in RECURRENT],
    (lambda: ConvLSTM2DCell(1, 2, 3, "same").forward(np.zeros((0, 4, 4, 1))),
     r"^ConvLSTM2DCell.forward: expected x with at least one sample"),
    (lambda: Bidirectional(ConvGRU2D(1, 2, 3, "same")).forward(np.zeros((0, 3, 4, 4, 1))),
     r"ConvGRU2D.forward: expected x with at least one sample"),
    (lambda: small_model().forward(SEQUENCES[:0]), r"expected x with at least one sample"),
    (lambda: small_model().fit(SEQUENCES[:0], SEQUENCES[:0], verbose=0),
     r"^Sequential.fit: expected at least one sample in x and y; got none"),
    (lambda: small_model().train_on_batch(SEQUENCES[:0], SEQUENCES[:0]),
     r"^Sequential.train_on_batch: expected at least one sample in x and y; got none"),
    (lambda: small_model().evaluate(SEQUENCES[:0], SEQUENCES[:0]),
     r"^Sequential.evaluate: expected at least one sample in x and y; got none"),
    (lambda: small_model().fit(SEQUENCES[:, :0], SEQUENCES[:, :0], verbose=0),
     r"expected x with at least one time step"),
    (lambda: MaxPooling3D(padding="same").forward(np.zeros((2, 0, 4, 4, 1))),
     r"^MaxPooling3D.forward: expected x with every one of \(depth, height, width\) >= 1; got "
     r"\(0, 4, 4\)\.$"),
    (lambda: MaxPooling1D(padding="same").forward(np.zeros((2, 0, 1))),
     r"expected x with every one of \(width\) >= 1; got \(0,\)"),
    (lambda: BatchNormalization().forward(np.zeros((0, 4)), training=True),
     r"^BatchNormalization.forward: expected x with at least one value per feature to compute "
     r"batch statistics in training; got shape \(0, 4\)"),
    (lambda: metrics.mse(np.zeros((0, 2, 3, 3, 1)), np.zeros((0, 2, 3, 3, 1))),
     r"every dimension .* >= 1"),
]


@pytest.mark.parametrize(("call", "match"), EMPTY_ERRORS)
def test_empty_data_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_batchnorm_moving_statistics_stay_finite_after_an_empty_batch():
    layer = BatchNormalization()
    layer.forward(np.ones((2, 4), np.float32), training=True)
    before = {key: value.copy() for key, value in layer.params.items()}
    for empty in (np.zeros((0, 4)), np.zeros((2, 0, 4))):
        with pytest.raises(ValueError):
            layer.forward(empty, training=True)
    for key, value in layer.params.items():
        assert np.isfinite(value).all()
        np.testing.assert_array_equal(value, before[key])
    assert layer.forward(np.zeros((0, 4)), training=False).shape == (0, 4)


def test_predict_of_no_samples_is_an_empty_output_as_keras():
    model = small_model()
    empty = model.predict(SEQUENCES[:0])
    assert empty.shape == (0, 3, 4, 4, 1) and empty.dtype == np.float32
    lazy = Sequential([ConvLSTM2D(None, 2, 3, "same"), Conv3D(1, 3, padding="same")])
    assert lazy.predict(np.zeros((0, 5, 6, 6, 3))).shape == (0, 5, 6, 6, 1)
    assert forecasting.forecast(model, SEQUENCES[:0], 2).shape == (0, 2, 4, 4, 1)


FEED_FORWARD_EMPTY = [
    (lambda: Conv2D(2, 3), (0, 5, 5, 1), (0, 3, 3, 2)),
    (lambda: Conv3D(2, 3), (0, 4, 5, 5, 1), (0, 2, 3, 3, 2)),
    (lambda: Dense(3), (0, 4), (0, 3)),
    (lambda: Dropout(0.5), (0, 4), (0, 4)),
    (lambda: Flatten(), (0, 2, 2), (0, 4)),
    (lambda: MaxPooling2D(), (0, 4, 4, 1), (0, 2, 2, 1)),
    (lambda: MaxPooling3D(), (0, 4, 4, 4, 1), (0, 2, 2, 2, 1)),
    (lambda: SpaceToDepth(2), (0, 3, 4, 4, 1), (0, 3, 2, 2, 4)),
    (lambda: DepthToSpace(2), (0, 3, 2, 2, 4), (0, 3, 4, 4, 1)),
    (lambda: ReLU(), (0, 4), (0, 4)),
    (lambda: Softmax(), (0, 4), (0, 4)),
    (lambda: Sigmoid(), (0, 4), (0, 4)),
    (lambda: LeakyReLU(), (0, 4), (0, 4)),
    (lambda: TimeDistributed(Conv2D(2, 3)), (0, 3, 5, 5, 1), (0, 3, 3, 3, 2)),
]


@pytest.mark.parametrize(("make", "shape", "expected"), FEED_FORWARD_EMPTY)
def test_feed_forward_layers_map_no_samples_to_no_samples(make, shape, expected):
    layer = make()
    output = layer.forward(np.zeros(shape, np.float32), training=True)
    assert output.shape == expected
    assert layer.backward(np.zeros(expected, np.float32)).shape == shape
    assert all(np.isfinite(grad).all() for grad in layer.grads.values())


OTHER_FUNCTION_ERRORS = [
    (lambda: metrics.psnr(SEQUENCES, SEQUENCES, data_range=0), ValueError,
     r"^metrics.psnr: expected data_range to be a positive finite number; got 0"),
    (lambda: metrics.csi(SEQUENCES, SEQUENCES, float("nan")), ValueError,
     r"^metrics.csi: expected threshold to be a real number; got nan"),
    (lambda: metrics.ssim(SEQUENCES, SEQUENCES[:, :2]), ValueError,
     r"expected y_true and y_pred of the same shape"),
    (lambda: training_metrics.MeanAbsoluteError().update(np.zeros((2, 3)), np.zeros((2, 1))),
     ValueError, r"^MeanAbsoluteError.update: expected y_true and y_pred of the same shape; got "
                 r"\(2, 3\) and \(2, 1\)"),
    (lambda: training_metrics.BinaryAccuracy(threshold=float("nan")), ValueError,
     r"^BinaryAccuracy: expected threshold to be a finite float; got nan"),
    (lambda: training_metrics.BinaryAccuracy(threshold="0.5"), TypeError,
     r"expected threshold to be a finite float; got '0.5'"),
    (lambda: losses.MeanSquaredError()(SEQUENCES, SEQUENCES[:1]), ValueError,
     r"y_true and y_pred"),
    (lambda: initializers.initialize("glorot", (2, 2), np.random.default_rng(0), np.float32),
     ValueError, r"^initializers.initialize: unknown name 'glorot'; expected one of"),
    (lambda: initializers.initialize("zeros", (2, -2), np.random.default_rng(0), np.float32),
     ValueError, r"expected shape to be a tuple of ints >= 0; got \(2, -2\)"),
    (lambda: initializers.initialize("zeros", (2, 2), None, np.float32), TypeError,
     r"expected rng to be a np.random.Generator; got None"),
    (lambda: ConvLSTM2D(1, 10**12), ValueError,
     r"^initializers.initialize: expected the weight .* to fit in this machine's .* GiB of "
     r"memory; got \(3, 3, 1, 4000000000000\)"),
    (lambda: datasets.moving_mnist(10**12), ValueError,
     r"^moving_mnist: expected the sequences \(of n, frames and size\) to fit in this machine's"),
    (lambda: datasets.moving_mnist(1, digits=10**12), ValueError, r"of n, frames and digits"),
    (lambda: forecasting.direct_pairs([[1], [1, 2]], 1), ValueError,
     r"^direct_pairs: expected sequences to be a rectangular numeric array"),
    (lambda: forecasting.forecast("model", SEQUENCES, 1), TypeError,
     r"^forecast: expected model to be a convlstm Sequential; got str"),
    (lambda: forecasting.forecast(small_model(), SEQUENCES, 1, batch_size=0), ValueError,
     r"^forecast: expected batch_size to be a positive int; got 0"),
    (lambda: forecasting.forecast(small_model(), "abc", 1), TypeError,
     r"^forecast: expected context to be a real numeric array"),
    (lambda: forecasting.baselines(SEQUENCES, 0, SEQUENCES[0, 0]), ValueError,
     r"^baselines: expected steps to be a positive int; got 0"),
    (lambda: forecasting.baselines(SEQUENCES, 2, np.zeros((3, 3, 1))), ValueError,
     r"^baselines: expected mean_frame of shape \(4, 4, 1\); got \(3, 3, 1\)"),
    (lambda: forecasting.baselines(SEQUENCES[0], 2, SEQUENCES[0, 0]), ValueError,
     r"^baselines: expected context of shape \(N, T, H, W, C\) with T >= 1; got \(3, 4, 4, 1\)"),
    (lambda: forecasting.evaluate(SEQUENCES, SEQUENCES), TypeError,
     r"^evaluate: expected forecasts to be a dict of arrays by method name"),
    (lambda: forecasting.evaluate(SEQUENCES, {"a": SEQUENCES[:1]}), ValueError,
     r"^evaluate: expected forecasts\['a'\] of shape \(2, 3, 4, 4, 1\); got \(1, 3, 4, 4, 1\)"),
    (lambda: forecasting.train_direct(small_model(), lambda n, r: SEQUENCES, context=1, rounds=3,
                                      round_size=2, batch_size=1), TypeError,
     r"^train_direct: expected rounds to be an iterable of round numbers"),
    (lambda: forecasting.train_direct(small_model(), lambda n, r: SEQUENCES, context=1,
                                      rounds=range(1), round_size=0, batch_size=1), ValueError,
     r"^train_direct: expected round_size to be a positive int; got 0"),
    (lambda: list(forecasting.train_direct(small_model(), lambda n, r: SEQUENCES[:1], context=1,
                                           rounds=range(1), round_size=2, batch_size=1)),
     ValueError, r"^train_direct: expected sample\(round_size, round\) to return round_size=2 "
                 r"sequences; got 1"),
    (lambda: forecasting.forecaster((4, 4), filters=2), ValueError,
     r"^forecaster: expected frame_shape to be \(height, width, channels\) of positive ints"),
    (lambda: forecasting.next_frame_model((3, 4, 4, 1), layers=0), ValueError,
     r"^next_frame_model: expected layers to be a positive int; got 0"),
    (lambda: LeakyReLU(float("inf")), ValueError,
     r"^LeakyReLU: expected negative_slope to be a finite float; got inf"),
    (lambda: ReLU(threshold=float("inf")), ValueError, r"expected threshold to be a finite float"),
    (lambda: BatchNormalization(epsilon=float("inf")), ValueError,
     r"^BatchNormalization: expected epsilon to be a finite float; got inf"),
    (lambda: BatchNormalization(momentum=float("nan")), ValueError, r"expected momentum"),
    (lambda: Dropout(float("nan")), ValueError, r"expected rate to be a float in \[0, 1\); got "
                                                r"nan"),
    (lambda: ConvLSTM2D(1, 2, dropout=float("inf")), ValueError, r"expected dropout to be a float"),
    (lambda: Softmax((1, -1)).forward(np.zeros((2, 3))), ValueError,
     r"^Softmax.forward: expected axis \(1, -1\) to name distinct axes of x; got shape \(2, 3\)"),
    (lambda: ConvLSTM2D(1, 2).forward(X, mask=[[1, 0, 1], [1, 1]]), ValueError,
     r"^ConvLSTM2D.forward: expected mask to be a rectangular numeric array; got a ragged list"),
    (lambda: ConvLSTM2D(1, 2).backward(np.zeros((2, 5, 5, 2))), RuntimeError,
     r"no training forward to differentiate"),
]


@pytest.mark.parametrize(("call", "error", "match"), OTHER_FUNCTION_ERRORS)
def test_other_public_function_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_no_call_changes_the_callers_arrays():
    x, y = SEQUENCES.copy(), SEQUENCES[:, :, ::-1].copy()
    x_copy, y_copy = x.copy(), y.copy()
    model = small_model()
    model.compile("adam", "mse", ["mae"])
    model.fit(x, y, epochs=1, batch_size=1, validation_split=0.5, verbose=0, seed=0)
    model.train_on_batch(x, y)
    model.evaluate(x, y)
    model.predict(x)
    weights = model.get_weights()
    weight_copies = [w.copy() for w in weights]
    model.set_weights(weights)
    model.train_on_batch(x, y)
    forecasting.forecast(model, x, 2)
    forecasting.baselines(x, 2, x[0, 0])
    forecasting.direct_pairs(x, 1)
    for name in ("mse", "mae", "psnr"):
        getattr(metrics, name)(x, y)
    state = np.ones((2, 4, 4, 2), np.float32)
    layer = ConvLSTM2D(1, 2, 3, "same", stateful=True)
    layer.reset_states([[state, state]])
    layer.forward(x, initial_state=[state, state], training=True)
    gradient = np.ones((2, 3, 4, 4, 2), np.float32)
    layer.backward(gradient)
    for array, copy in [(x, x_copy), (y, y_copy), (state, np.ones_like(state)),
                        (gradient, np.ones_like(gradient)), *zip(weights, weight_copies)]:
        np.testing.assert_array_equal(array, copy)


UNREACHABLE = "tcp://127.0.0.1:9"  # nothing listens: connecting would fail, after a wait

DISTRIBUTED_ERRORS = [
    ({"epochs": 2.5}, TypeError, r"^distributed.fit: expected epochs to be a positive int"),
    ({"batch_size": 0}, ValueError, r"expected batch_size to be a positive int; got 0"),
    ({"seed": -1}, ValueError, r"expected seed to be None or a non-negative int; got -1"),
    ({"callbacks": "x"}, TypeError, r"expected callbacks to be a list"),
    ({"verbose": "1"}, ValueError, r"expected verbose to be 0, 1 or 2"),
    ({"shuffle": "yes"}, TypeError, r"expected shuffle to be True or False"),
    ({"validation_split": 1.0}, ValueError, r"expected validation_split in \[0, 1\); got 1.0"),
    ({"validation_split": "0.5"}, TypeError, r"expected validation_split in"),
    ({"validation_data": (SEQUENCES,)}, ValueError, r"expected validation_data to be a pair"),
    ({"validation_data": (SEQUENCES, SEQUENCES[:, :, :2])}, ValueError,
     r"^distributed.fit: expected y_val of shape \(samples, \*\(3, 4, 4, 1\)\), the model's "
     r"output for x_val of shape \(2, 3, 4, 4, 1\); got \(2, 3, 2, 4, 1\)"),
    ({"y": SEQUENCES[:, :, :2]}, ValueError, r"expected y of shape \(samples, \*\(3, 4, 4, 1\)\)"),
    ({"y": SEQUENCES[:1]}, ValueError, r"expected x and y with the same number of samples"),
    ({"x": SEQUENCES[:0], "y": SEQUENCES[:0]}, ValueError,
     r"expected at least one sample in x and y; got none"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), DISTRIBUTED_ERRORS)
def test_distributed_fit_checks_its_arguments_before_any_cluster_work(kwargs, error, match):
    distributed = pytest.importorskip("convlstm.distributed")
    arguments = {"x": SEQUENCES, "y": SEQUENCES, "client": UNREACHABLE, "verbose": 0, **kwargs}
    with pytest.raises(error, match=match):
        distributed.fit(small_model(), **arguments)


@pytest.mark.parametrize(("arrays", "message"), [
    ({}, r"Adam.load_state_arrays: expected iterations, an int >= 0; got None"),
    ({"iterations": np.array(1.5)}, r"expected iterations, an int >= 0; got array\(1\.5\)"),
    ({"iterations": np.array(2), "w::m": np.zeros(3, int)},
     r"expected float slots named '<weight>::<slot>' for the weights w \(3,\); "
     r"got 'w::m': int64 \(3,\)"),
    ({"iterations": np.array(2), "w::m": np.zeros(4)}, r"got 'w::m': float64 \(4,\)"),
    ({"iterations": np.array(2), "v::m": np.zeros(3)}, r"got 'v::m'"),
    ({"iterations": np.array(2), "w": np.zeros(3)}, r"got 'w': float64"),
])
def test_an_optimizer_state_that_does_not_fit_is_refused_and_changes_nothing(arrays, message):
    optimizer = optimizers.Adam()
    with pytest.raises(ValueError, match=message):
        optimizer.load_state_arrays(arrays, {"w": np.zeros(3)})
    assert optimizer.iterations == 0 and not optimizer.state


@pytest.mark.parametrize(("state", "given"), [
    ([None, None], r"got None\."), (["a", "b"], r"got 'a'\."), ([{}, 1], r"got \{\}\."),
])
def test_a_state_that_is_not_an_array_is_described_as_given(state, given):
    with pytest.raises(TypeError, match=r"expected initial_state h to be a real numeric array "
                                        r"\(bool, int or float\); " + given):
        ConvLSTM2D(1, 2, 3, "same").forward(X, initial_state=state)

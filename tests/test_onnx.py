"""ONNX export: every layer and option, run under ONNX Runtime and compared with our forward
(1e-5 in float32, 1e-10 in float64) for several time lengths from one export; the checker's
full check on every file; refusals and bad input; the command line."""

import os
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import convlstm  # noqa: E402
import convlstm.onnx  # noqa: E402
from convlstm import (  # noqa: E402
    Activation,
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
    Tanh,
    TimeDistributed,
    forecasting,
)
from convlstm.functional.activations import ACTIVATIONS  # noqa: E402
from convlstm.layers.base import Layer  # noqa: E402

ATOL = {np.dtype("float32"): 1e-5, np.dtype("float64"): 1e-10}
TIMES = (1, 4, 9)


def perturbed(model, seed=0, scale=0.3):
    """Random nudges to every weight (biases and statistics too), so no weight is trivial."""
    rng = np.random.default_rng(seed)
    weights = []
    for weight in model.get_weights():
        nudge = rng.standard_normal(weight.shape) * scale
        weights.append((np.abs(weight + nudge) + 0.1 if weight.ndim == 1 and np.all(weight > 0)
                        else weight + nudge).astype(weight.dtype))
    model.set_weights(weights)
    return model


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def export_and_check(model, tmp_path, inputs, dtype=np.float32, **options):
    """Export once, check the file, and compare ONNX Runtime with ``model.forward`` on every
    input; returns the session."""
    path = tmp_path / "model.onnx"
    assert convlstm.onnx.export(model, path, **options) == str(path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    run = session(path)
    for x in inputs:
        x = x.astype(dtype)
        if isinstance(model, Sequential):
            model.reset_states()  # a stateful layer's export starts from zeros (or given states)
        expected = model.forward(x)
        (got,) = run.run(["y"], {"x": x})
        assert got.shape == expected.shape
        assert got.dtype == expected.dtype
        np.testing.assert_allclose(got, expected, rtol=ATOL[np.dtype(dtype)],
                                   atol=ATOL[np.dtype(dtype)])
    assert os.listdir(tmp_path) == ["model.onnx"]  # no temporary file left behind
    return run


def sequences(frame, times=TIMES, batch=2, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((batch, t, *frame)) for t in times]


# ------------------------------------------------------------------------------- ConvLSTM2D

CONVLSTM_OPTIONS = {
    "same": dict(),
    "valid": dict(padding="valid"),
    "explicit-int": dict(padding=1),
    "explicit-pair": dict(padding=(2, 0)),
    "even-kernel": dict(kernel_size=(2, 3)),
    "stride-2-same": dict(stride=2),
    "stride-21-valid": dict(stride=(2, 1), padding="valid"),
    "stride-2-explicit": dict(stride=2, padding=1),
    "dilation": dict(dilation=2),
    "dilation-valid": dict(dilation=(2, 1), padding="valid"),
    "no-bias": dict(use_bias=False),
    "last-step": dict(return_sequences=False),
    "backwards": dict(go_backwards=True),
    "stack": dict(num_layers=3),
    "leaky": dict(leaky_relu_slope=0.2),
    "channels-first": dict(data_format="channels_first"),
    "stateful": dict(stateful=True),
    "dropout-ignored": dict(dropout=0.3, recurrent_dropout=0.2),
    "everything": dict(num_layers=2, stride=2, go_backwards=True, return_sequences=False,
                       leaky_relu_slope=0.1, data_format="channels_first", use_bias=False),
    "hard-sigmoid-keras3": dict(recurrent_activation="hard_sigmoid"),
    "hard-sigmoid-keras2": dict(recurrent_activation="hard_sigmoid_keras2"),
    "peephole": dict(peephole=True),
    "peephole-everything": dict(peephole=True, num_layers=2, go_backwards=True,
                                data_format="channels_first", use_bias=False,
                                recurrent_activation="hard_sigmoid"),
}


def convlstm_model(dtype="float32", in_channels=2, size=(7, 9), scale=0.3, **options):
    options = {"kernel_size": 3, "padding": "same", **options}
    layer = ConvLSTM2D(in_channels, 3, options.pop("kernel_size"), options.pop("padding"),
                       options.pop("stride", 1), options.pop("leaky_relu_slope", None),
                       options.pop("num_layers", 1), dtype=dtype, seed=0, **options)
    channels_first = layer.data_format == "channels_first"
    frame = (in_channels, *size) if channels_first else (*size, in_channels)
    return perturbed(Sequential([layer], input_shape=(None, *frame)), scale=scale), frame


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", sorted(CONVLSTM_OPTIONS))
def test_convlstm_options(case, dtype, tmp_path):
    model, frame = convlstm_model(dtype, **CONVLSTM_OPTIONS[case])
    export_and_check(model, tmp_path, sequences(frame), dtype)


# The other recurrent layers: name: (class, one frame's shape (channels last), options).
RECURRENT_CASES = {
    "lstm1d-same": (ConvLSTM1D, (9, 2), dict()),
    "lstm1d-valid-stride-2": (ConvLSTM1D, (9, 2), dict(padding="valid", stride=2)),
    "lstm1d-explicit-dilation": (ConvLSTM1D, (9, 2), dict(padding=2, dilation=2)),
    "lstm1d-channels-first-stack-backwards": (ConvLSTM1D, (9, 2), dict(
        data_format="channels_first", num_layers=2, go_backwards=True)),
    "lstm1d-last-step-peephole-leaky": (ConvLSTM1D, (9, 2), dict(
        return_sequences=False, peephole=True, leaky_relu_slope=0.1)),
    "lstm3d-same": (ConvLSTM3D, (3, 4, 5, 2), dict()),
    "lstm3d-valid-stride": (ConvLSTM3D, (3, 5, 5, 2), dict(padding="valid",
                                                           stride=(1, 2, 2))),
    "lstm3d-explicit-dilation-even": (ConvLSTM3D, (3, 5, 4, 2), dict(
        padding=(1, 2, 0), dilation=(1, 2, 1), kernel_size=(2, 3, 2))),
    "lstm3d-channels-first-stack-backwards-no-bias": (ConvLSTM3D, (3, 4, 5, 2), dict(
        data_format="channels_first", num_layers=2, go_backwards=True, use_bias=False)),
    "lstm3d-last-step-peephole-leaky-hard": (ConvLSTM3D, (3, 4, 5, 2), dict(
        return_sequences=False, peephole=True, leaky_relu_slope=0.1,
        recurrent_activation="hard_sigmoid")),
    **{f"gru{rank}d-{'after' if after else 'before'}-{name}": (
        (ConvGRU1D, ConvGRU2D, ConvGRU3D)[rank - 1], ((9, 2), (5, 6, 2), (3, 4, 5, 2))[rank - 1],
        dict(reset_after=after, **options))
       for rank in (1, 2, 3) for after in (True, False) for name, options in {
        "same": dict(),
        "valid-stride-2": dict(padding="valid", stride=2),
        "explicit-dilation": dict(padding=2, dilation=2),
        "channels-first-stack-backwards": dict(data_format="channels_first", num_layers=2,
                                               go_backwards=True),
        "last-step-leaky-no-bias": dict(return_sequences=False, leaky_relu_slope=0.1,
                                        use_bias=False),
        "stateful-hard-sigmoid": dict(stateful=True, recurrent_activation="hard_sigmoid"),
    }.items()},
}


def recurrent_model(case, dtype, wrapper=None, scale=0.3, **more):
    cls, frame, options = RECURRENT_CASES[case]
    layer = cls(frame[-1], 3, dtype=dtype, seed=0, **{**options, **more})
    if layer.data_format == "channels_first":
        frame = (frame[-1], *frame[:-1])
    layers = [layer if wrapper is None else Bidirectional(layer, wrapper)]
    return perturbed(Sequential(layers, input_shape=(None, *frame)), scale=scale), frame


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", sorted(RECURRENT_CASES))
def test_recurrent_layers(case, dtype, tmp_path):
    model, frame = recurrent_model(case, dtype)
    export_and_check(model, tmp_path, sequences(frame), dtype)
    wrapped, frame = recurrent_model(case, dtype, wrapper="sum")
    export_and_check(wrapped, tmp_path, sequences(frame), dtype)


BIDIRECTIONAL_OPTIONS = {
    "concat": ("concat", dict()),
    "sum-last-step": ("sum", dict(return_sequences=False, stride=2)),
    "ave-channels-first-stack": ("ave", dict(data_format="channels_first", num_layers=2)),
    "mul-peephole-leaky": ("mul", dict(peephole=True, leaky_relu_slope=0.2)),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", sorted(BIDIRECTIONAL_OPTIONS))
def test_bidirectional(case, dtype, tmp_path):
    merge_mode, options = BIDIRECTIONAL_OPTIONS[case]
    model, frame = convlstm_model(dtype, **options)
    wrapped = Sequential([Bidirectional(model.layers[0], merge_mode)],
                         input_shape=model.input_shape)
    export_and_check(perturbed(wrapped), tmp_path, sequences(frame), dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("option", ["activation", "recurrent_activation"])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_convlstm_activations(name, option, dtype, tmp_path):
    # exp(c) of a growing cell explodes: keep its weights and inputs small.
    small = 0.1 if name == "exponential" else 1.0
    model, frame = convlstm_model(dtype, scale=0.3 * small, **{option: name})
    if name == "exponential":
        model.set_weights([w * small for w in model.get_weights()])
    inputs = [0.5 * small * x for x in sequences(frame, times=(3, 1))]
    export_and_check(model, tmp_path, inputs, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("option", ["activation", "recurrent_activation"])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("reset_after", [True, False])
def test_convgru_activations(reset_after, name, option, dtype, tmp_path):
    # exp of a growing state explodes; selu's gates above 1 amplify float32 rounding.
    small = {"exponential": 0.1, "selu": 0.5}.get(name, 1.0)
    model, frame = recurrent_model("gru2d-after-same" if reset_after else "gru2d-before-same",
                                   dtype, scale=0.3 * small, **{option: name})
    if small < 1:
        model.set_weights([w * small for w in model.get_weights()])
    inputs = [0.5 * small * x for x in sequences(frame, times=(3, 1))]
    export_and_check(model, tmp_path, inputs, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", ["convlstm2d-channels_last", "convlstm2d-channels_first",
                                  "lstm1d-channels-first-stack-backwards", "lstm3d-same",
                                  "gru1d-after-valid-stride-2",
                                  "gru2d-before-channels-first-stack-backwards",
                                  "gru3d-after-same"])
def test_states_are_optional_inputs_and_final_states_outputs(case, dtype, tmp_path):
    if case.startswith("convlstm2d-"):
        model, frame = convlstm_model(dtype, num_layers=2, stride=2,
                                      data_format=case.removeprefix("convlstm2d-"))
    else:
        model, frame = recurrent_model(case, dtype, num_layers=2)
    layer = model.layers[0]
    kinds = ("h",) if "gru" in case else ("h", "c")
    path = tmp_path / "states.onnx"
    convlstm.onnx.export(model, path, states=True)
    run = session(path)
    outputs = [f"{kind}_0_{k}" for k in range(2) for kind in kinds]  # h_0_0, c_0_0, h_0_1, ...
    inputs = [name.replace("_", "0_", 1) for name in outputs]  # h0_0_0, c0_0_0, ...
    assert [i.name for i in run.get_overridable_initializers()] == inputs
    assert [o.name for o in run.get_outputs()] == ["y", *outputs]
    (x,) = sequences(frame, times=(5,), batch=3)
    x = x.astype(dtype)
    rng = np.random.default_rng(7)
    layer.forward(x)
    initial = [[rng.standard_normal(s.shape).astype(dtype) for s in cell]
               for cell in layer.final_states]
    expected = layer.forward(x, initial_state=initial)
    feeds = {"x": x, **dict(zip(inputs, [s for cell in initial for s in cell], strict=True))}
    y, *finals = run.run(None, feeds)
    tol = ATOL[np.dtype(dtype)]
    np.testing.assert_allclose(y, expected, rtol=tol, atol=tol)
    for got, want in zip(finals, [s for cell in layer.final_states for s in cell], strict=True):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    # Without the state inputs the defaults are zeros.
    y, *_ = run.run(None, {"x": x})
    np.testing.assert_allclose(y, layer.forward(x), rtol=tol, atol=tol)


MASK_OPTIONS = {
    "plain": dict(),
    "last-step": dict(return_sequences=False),
    "backwards-stack-leaky": dict(go_backwards=True, num_layers=2, leaky_relu_slope=0.2),
    "backwards-last-step": dict(go_backwards=True, return_sequences=False, stride=2),
    "channels-first": dict(data_format="channels_first", num_layers=2),
    "peephole-backwards": dict(peephole=True, go_backwards=True),
}
MASKED_RECURRENT_CASES = ["lstm1d-channels-first-stack-backwards",
                          "lstm3d-last-step-peephole-leaky-hard",
                          "gru1d-before-last-step-leaky-no-bias",
                          "gru2d-after-channels-first-stack-backwards", "gru3d-after-same"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", [*sorted(MASK_OPTIONS), *MASKED_RECURRENT_CASES])
def test_masks(case, dtype, tmp_path):
    if case in MASK_OPTIONS:
        model, frame = convlstm_model(dtype, **MASK_OPTIONS[case])
    else:
        model, frame = recurrent_model(case, dtype)
    layer = model.layers[0]
    kinds = ("h",) if "gru" in case else ("h", "c")
    path = tmp_path / "masked.onnx"
    convlstm.onnx.export(layer, path, mask=True, states=True, input_shape=(None, *frame))
    run = session(path)
    rng = np.random.default_rng(3)
    tol = ATOL[np.dtype(dtype)]
    for x in sequences(frame, times=(1, 6), batch=4):
        x = x.astype(dtype)
        mask = rng.random(x.shape[:2]) > 0.4
        mask[0] = False  # a sample with no step: zeros out, initial states kept
        mask[1, 0] = False  # a sample whose first step is skipped
        layer.forward(x)
        h0 = [[rng.standard_normal(s.shape).astype(dtype) for s in cell]
              for cell in layer.final_states]
        expected = layer.forward(x, initial_state=h0, mask=mask)
        feeds = {"x": x, "mask": mask, **{f"{kind}0_0_{k}": state for k, cell in enumerate(h0)
                                          for kind, state in zip(kinds, cell, strict=True)}}
        y, *finals = run.run(None, feeds)
        np.testing.assert_allclose(y, expected, rtol=tol, atol=tol)
        for got, want in zip(finals, [s for cell in layer.final_states for s in cell],
                             strict=True):
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
        # All True is the unmasked layer.
        y, *_ = run.run(None, {"x": x, "mask": np.ones(x.shape[:2], bool)})
        np.testing.assert_allclose(y, layer.forward(x), rtol=tol, atol=tol)


def test_masks_need_a_single_recurrent_layer(tmp_path):
    model = Sequential([ConvLSTM2D(1, 2), BatchNormalization()], input_shape=(None, 4, 4, 1))
    with pytest.raises(ValueError, match=r"mask=True exports a single ConvLSTM or ConvGRU "
                                         r"layer .*; got a model of ConvLSTM2D, "
                                         r"BatchNormalization"):
        convlstm.onnx.export(model, tmp_path / "m.onnx", mask=True)
    assert not os.listdir(tmp_path)


def test_one_export_runs_5_and_500_frames(tmp_path):
    model, frame = convlstm_model(size=(4, 4), in_channels=1)
    export_and_check(model, tmp_path, sequences(frame, times=(5, 500), batch=1))


def test_standard_operators_only(tmp_path):
    model = forecasting.next_frame_model((None, 8, 8, 1), filters=2)
    path = tmp_path / "m.onnx"
    convlstm.onnx.export(model, path)
    graph = onnx.load(str(path)).graph
    nodes = list(graph.node)
    for node in graph.node:  # and the Scan bodies
        nodes += [inner for a in node.attribute if a.g.node for inner in a.g.node]
    assert {node.domain for node in nodes} == {""}
    kinds = {node.op_type for node in nodes}
    assert {"Scan", "Conv", "Sigmoid", "Tanh", "Split", "Mul", "Add"} <= kinds
    assert [i.name for i in graph.input] == ["x"]
    assert [o.name for o in graph.output] == ["y"]


def test_static_batch_and_time(tmp_path):
    layer = ConvLSTM2D(1, 2, 3, seed=0)
    model = Sequential([layer], input_shape=(4, 5, 5, 1))
    path = tmp_path / "static.onnx"
    convlstm.onnx.export(model, path, dynamic_batch=False, dynamic_time=False)
    (x_info,) = onnx.load(str(path)).graph.input
    assert [d.dim_value for d in x_info.type.tensor_type.shape.dim] == [1, 4, 5, 5, 1]
    x = np.random.default_rng(0).random((1, 4, 5, 5, 1), np.float32)
    np.testing.assert_allclose(session(path).run(None, {"x": x})[0], model.forward(x),
                               atol=1e-5)


@pytest.mark.parametrize("opset", [13, 18, onnx.defs.onnx_opset_version()])
def test_other_opsets(opset, tmp_path):
    ort_newest = 21
    if opset > ort_newest:
        opset = ort_newest
    model, frame = convlstm_model(num_layers=2)
    export_and_check(model, tmp_path, sequences(frame, times=(3,)), opset=opset)


def test_a_bare_layer_exports_with_input_shape(tmp_path):
    layer = perturbed(ConvLSTM2D(2, 3, 3, seed=0, return_state=True))
    path = tmp_path / "layer.onnx"
    convlstm.onnx.export(layer, path, input_shape=(None, 6, 6, 2))
    x = np.random.default_rng(0).random((2, 3, 6, 6, 2), np.float32)
    output, _, _ = layer.forward(x)
    np.testing.assert_allclose(session(path).run(None, {"x": x})[0], output, atol=1e-5)


# ------------------------------------------------------------------------------ other layers

def layer_cases(dtype="float32"):
    """name: (layers, one sample's shape)."""
    image, volume = (6, 7, 3), (5, 6, 7, 3)
    d = {"dtype": dtype}
    return {
        "conv2d-same-stride": ([Conv2D(4, 3, 2, "same", activation="relu", **d)], image),
        "conv2d-valid-dilation": ([Conv2D(4, (3, 2), dilation_rate=2, **d)], image),
        "conv2d-channels-first": ([Conv2D(4, 3, padding="same", activation="tanh",
                                          data_format="channels_first", **d)], (3, 6, 7)),
        "conv2d-no-bias-softmax": ([Conv2D(4, 1, use_bias=False, activation="softmax", **d)],
                                   image),
        "conv3d-same": ([Conv3D(2, 3, padding="same", activation="sigmoid", **d)], volume),
        "conv3d-valid-stride": ([Conv3D(2, (2, 3, 3), strides=(1, 2, 2), **d)], volume),
        "conv3d-same-stride-time": ([Conv3D(2, 3, strides=2, padding="same", **d)], volume),
        "conv3d-channels-first": ([Conv3D(2, 3, data_format="channels_first", **d)],
                                  (3, 5, 6, 7)),
        "maxpool3d-valid": ([MaxPooling3D((2, 2, 2), (2, 2, 2))], volume),
        "maxpool3d-same": ([MaxPooling3D((2, 3, 3), (2, 2, 2), "same")], volume),
        "maxpool3d-overlap": ([MaxPooling3D((3, 2, 2), (1, 1, 1))], volume),
        "maxpool3d-channels-first": ([MaxPooling3D(2, data_format="channels_first")],
                                     (3, 5, 6, 7)),
        "maxpool2d-valid": ([MaxPooling2D(2)], image),
        "maxpool1d-valid": ([MaxPooling1D(2)], (7, 3)),
        "maxpool1d-same": ([MaxPooling1D(3, 2, "same")], (7, 3)),
        "maxpool1d-channels-first": ([MaxPooling1D(2, 1, "same", "channels_first")], (3, 7)),
        "maxpool2d-same": ([MaxPooling2D(3, 2, "same")], image),
        "maxpool2d-channels-first": ([MaxPooling2D(2, 1, "same", "channels_first")], (3, 6, 7)),
        "dense": ([Dense(4, activation="softmax", **d)], (5, 3)),
        "flatten-dense": ([Flatten(), Dense(3, activation="relu", **d),
                           Dense(2, use_bias=False, **d)], image),
        "flatten-channels-first": ([Flatten("channels_first"), Dense(2, **d)], (3, 6, 7)),
        "batchnorm": ([BatchNormalization(**d)], volume),
        "batchnorm-axis-1": ([BatchNormalization(axis=1, center=False, **d)], image),
        "batchnorm-no-scale": ([BatchNormalization(scale=False, epsilon=0.01, **d)], image),
        "dropout": ([Dropout(0.5), Dense(2, **d)], (4,)),
        "relu": ([ReLU()], image),
        "relu-options": ([ReLU(max_value=0.8, negative_slope=0.1, threshold=0.2)], image),
        "leaky-relu": ([LeakyReLU(0.25)], image),
        "sigmoid-tanh": ([Sigmoid(), Tanh()], image),
        "softmax": ([Softmax()], image),
        "softmax-axis-1": ([Softmax(axis=1)], image),
        **{f"activation-{name}": ([Activation(name)], image)
           for name in [*sorted(ACTIVATIONS), "softmax"]},
        "space-to-depth": ([SpaceToDepth(2)], (None, 4, 6, 3)),
        "space-to-depth-pair": ([SpaceToDepth((3, 2))], (None, 6, 4, 2)),
        "space-to-depth-channels-first": ([SpaceToDepth(2, "channels_first")], (None, 3, 4, 6)),
        "depth-to-space": ([DepthToSpace(2)], (None, 3, 2, 8)),
        "depth-to-space-pair": ([DepthToSpace((1, 2))], (None, 3, 2, 4)),
        "depth-to-space-channels-first": ([DepthToSpace((2, 1), "channels_first")],
                                          (None, 6, 3, 2)),
        "time-distributed": ([TimeDistributed(Conv2D(3, 3, activation="relu", **d)),
                              TimeDistributed(MaxPooling2D(2)),
                              TimeDistributed(Flatten()), TimeDistributed(Dense(2, **d))],
                             (None, 7, 6, 2)),
    }


LAYER_CASES = layer_cases()
# float64 runs only where it changes the export: a model without weights exports as float32,
# and float64 "same" padding with stride over a dynamic time is refused (tested on its own).
FLOAT64_CASES = [case for case, (layers, sample) in LAYER_CASES.items()
                 if Sequential(layers, input_shape=sample).get_weights()
                 and case != "conv3d-same-stride-time"]


@pytest.mark.parametrize(("case", "dtype"), [
    *((case, "float32") for case in sorted(LAYER_CASES)),
    *((case, "float64") for case in sorted(FLOAT64_CASES)),
])
def test_layers(case, dtype, tmp_path):
    layers, sample = layer_cases(dtype)[case]
    model = Sequential(layers, input_shape=sample)
    if model.get_weights():
        perturbed(model)
    rng = np.random.default_rng(2)
    inputs = [rng.standard_normal((3, *(n or 4 for n in sample)))]
    if len(sample) == 4:  # sequences: several lengths from one export
        axis = 2 if "channels-first" in case and case[:6] in ("conv3d", "maxpoo") else 1
        for t in (3, 7):
            shape = list(inputs[0].shape)
            shape[axis] = t
            inputs.append(rng.standard_normal(shape))
    if case.startswith("maxpool"):
        inputs = [np.round(x, 1) for x in inputs]  # with ties: the value wins, not the place
    export_and_check(model, tmp_path, inputs, dtype)


def test_float64_same_stride_over_dynamic_time(tmp_path):
    model = Sequential([Conv3D(2, 3, strides=2, padding="same", dtype="float64")],
                       input_shape=(5, 6, 6, 1))
    with pytest.raises(ValueError, match=r"layer 0 \(Conv3D\): padding='same' with strides > 1"):
        convlstm.onnx.export(model, tmp_path / "m.onnx")
    assert not os.listdir(tmp_path)
    # A fixed time length makes the padding known.
    export_and_check(perturbed(model), tmp_path, sequences((6, 6, 1), times=(5,)), "float64",
                     dynamic_time=False)


def test_mixed_dtypes_cast_as_the_layers_do(tmp_path):
    model = Sequential([ConvLSTM2D(1, 2, 3, dtype="float64", seed=0, return_sequences=False),
                        Flatten(), Dense(3, seed=1)], input_shape=(None, 5, 5, 1))
    export_and_check(perturbed(model), tmp_path, sequences((5, 5, 1)), "float64")


# ------------------------------------------------------------------- the README's models

def test_readme_quickstart(tmp_path):
    model = Sequential([ConvLSTM2D(1, 32, 3, 1, 1, 0.2, 1), MaxPooling3D((2, 2, 2), (2, 2, 2))],
                       input_shape=(None, 32, 32, 1))
    export_and_check(model, tmp_path, sequences((32, 32, 1), times=(10, 4), batch=1))


def test_readme_next_frame_model(tmp_path):
    model = Sequential([
        ConvLSTM2D(1, 8, 3, "same", return_sequences=True, seed=0),
        BatchNormalization(),
        ConvLSTM2D(8, 8, 3, "same", return_sequences=True, seed=1),
        Conv3D(1, (3, 3, 3), padding="same", activation="sigmoid", seed=2),
    ], input_shape=(5, 16, 16, 1))
    export_and_check(perturbed(model), tmp_path, sequences((16, 16, 1), times=(5, 2, 11)))


def test_readme_classifier_built_by_a_call(tmp_path):
    classifier = Sequential([
        TimeDistributed(Conv2D(8, 3, activation="relu", seed=0)),
        TimeDistributed(MaxPooling2D(2)),
        ConvLSTM2D(8, 16, 3, "same", return_sequences=False, seed=1),
        Flatten(),
        Dense(3, activation="softmax", seed=2),
    ])
    x = np.random.default_rng(0).random((2, 4, 16, 16, 1), np.float32)
    classifier.predict(x)  # builds it: the input shape is now known
    export_and_check(perturbed(classifier), tmp_path, [x, *sequences((16, 16, 1), times=(9,))])


def test_demo_next_frame_model(tmp_path):
    model = perturbed(forecasting.next_frame_model((None, 12, 12, 1), filters=4))
    export_and_check(model, tmp_path, sequences((12, 12, 1), times=(3, 8)))


def test_moving_mnist_forecaster(tmp_path):
    model = perturbed(forecasting.forecaster(), scale=0.05)
    export_and_check(model, tmp_path, [np.random.default_rng(0).random((1, t, 64, 64, 1))
                                       for t in (10, 3)])
    # The same forecast as ours: context, then blank frames.
    x = np.random.default_rng(1).random((1, 4, 64, 64, 1), np.float32)
    run = session(tmp_path / "model.onnx")
    blank = np.concatenate([x, np.zeros((1, 5, 64, 64, 1), np.float32)], axis=1)
    np.testing.assert_allclose(run.run(None, {"x": blank})[0][:, 3:],
                               forecasting.forecast(model, x, 6), atol=1e-5)


@pytest.mark.skipif(
    not resources.files("convlstm.pretrained").joinpath("moving_mnist.npz").is_file(),
    reason="no shipped moving_mnist.npz in this tree")
def test_pretrained_moving_mnist(tmp_path):
    model = convlstm.pretrained("moving-mnist")
    export_and_check(model, tmp_path, [np.random.default_rng(0).random((1, 10, 64, 64, 1))])


KERAS_FILES = sorted(
    path.name for path in (Path(__file__).parent / "fixtures" / "keras_files").iterdir()
    if path.suffix in (".keras", ".h5") and "weights" not in path.name
    and path.stem not in ("branching", "unsupported_gru"))


@pytest.mark.parametrize("name", KERAS_FILES)
def test_models_loaded_from_keras_files(name, tmp_path):
    pytest.importorskip("h5py")
    model = convlstm.load_keras(Path(__file__).parent / "fixtures" / "keras_files" / name)
    sample = model.input_shape
    rng = np.random.default_rng(4)
    inputs = [rng.standard_normal((2, *(n or 5 for n in sample)))]
    if sample[0] is None:  # a free time axis: another length from the same export
        inputs.append(rng.standard_normal((1, 8, *sample[1:])))
    export_and_check(model, tmp_path, inputs, model.get_weights()[0].dtype)


def test_save_onnx(tmp_path):
    model, frame = convlstm_model()
    assert model.save_onnx(tmp_path / "m.onnx") == str(tmp_path / "m.onnx")
    (x,) = sequences(frame, times=(3,))
    x = x.astype(np.float32)
    np.testing.assert_allclose(session(tmp_path / "m.onnx").run(None, {"x": x})[0],
                               model.forward(x), atol=1e-5)


# ----------------------------------------------------------------------- refusals, bad input

class Doubler(Layer):  # a user's own layer
    def __init__(self):
        self.params, self.grads = {}, {}

    def forward(self, x):
        return 2 * x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {}


@pytest.mark.parametrize(("layers", "error", "message"), [
    ([Dense(2), Doubler()], ValueError, r"layer 1 \(Doubler\): cannot export a Doubler; the "
                                        r"layers that export are Activation, BatchNormalization"),
    ([ConvLSTM2D(1, 2, activation=np.tanh)], TypeError,
     r"layer 0 \(ConvLSTM2D\): a callable has no ONNX form: .*activation is the callable "
     r"'tanh'"),
    ([ConvLSTM2D(1, 2, recurrent_activation=lambda x: x)], TypeError,
     r"recurrent_activation is the callable '<lambda>'"),
    ([Activation(np.exp)], TypeError,
     r"layer 0 \(Activation\): a callable has no ONNX form: .*activation is the callable"),
    ([TimeDistributed(Dense(2, activation=np.exp))], TypeError,
     r"layer 0 \(TimeDistributed\) > Dense: a callable has no ONNX form"),
    ([TimeDistributed(Doubler())], ValueError,
     r"layer 0 \(TimeDistributed\) > Doubler: cannot export a Doubler"),
    ([Softmax(axis=(1, 2))], ValueError, r"axis=\(1, 2\) spans several axes"),
    ([Bidirectional(ConvGRU2D(1, 2), None)], ValueError,
     r"layer 0 \(Bidirectional\): only a Bidirectional of ConvLSTM or ConvGRU layers with a "
     r"merge_mode exports \(got \['ConvGRU2D', 'ConvGRU2D'\], merge_mode=None\)"),
    ([Bidirectional(ConvLSTM2D(1, 2), None)], ValueError, r"merge_mode=None\)"),
])
def test_refused_before_anything_is_written(layers, error, message, tmp_path):
    model = Sequential(layers, input_shape=(None, 4, 4, 1))
    with pytest.raises(error, match=message):
        convlstm.onnx.export(model, tmp_path / "m.onnx")
    assert not os.listdir(tmp_path)


def test_cell_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="cannot export a ConvLSTM2DCell"):
        convlstm.onnx.export(ConvLSTM2DCell(1, 2), tmp_path / "m.onnx", input_shape=(4, 4, 1))


@pytest.mark.parametrize(("model", "options", "error", "message"), [
    (Sequential([Dense(2)]), {}, ValueError,
     r"the input shape of Sequential is unknown; build the model with Sequential\(\.\.\., "
     r"input_shape="),
    (ConvLSTM2D(1, 2), {}, ValueError, "the input shape of ConvLSTM2D is unknown"),
    (ConvLSTM2D(1, 2), {"input_shape": (None, None, 4, 1)}, ValueError,
     r"only the time .* may be None\); got \(None, None, 4, 1\)"),
    (ConvLSTM2D(1, 2), {"input_shape": "4x4"}, TypeError, "expected input_shape to be a tuple"),
    ("model.npz", {}, TypeError, "expected model to be a Sequential or a layer; got str"),
    (Sequential([ConvLSTM2D(1, 2)], input_shape=(None, 4, 4, 1)), {"dynamic_time": False},
     ValueError, r"dynamic_time=False needs a known time length; the model's input shape is "
                 r"\(None, 4, 4, 1\)"),
    (Sequential([Dense(2)], input_shape=(3,)), {"opset": 11}, ValueError,
     r"expected opset between 13 and \d+; got 11"),
    (Sequential([Dense(2)], input_shape=(3,)), {"opset": "17"}, TypeError,
     "expected opset to be an int"),
    (Sequential([Dense(2)], input_shape=(3,)), {"states": "yes"}, TypeError,
     "expected states to be True or False"),
])
def test_bad_arguments(model, options, error, message, tmp_path):
    with pytest.raises(error, match=message):
        convlstm.onnx.export(model, tmp_path / "m.onnx", **options)
    assert not os.listdir(tmp_path)


def test_unwritable_paths(tmp_path):
    model = Sequential([Dense(2)], input_shape=(3,))
    with pytest.raises(ValueError, match=r"cannot write .*m\.onnx'.*the folder .*missing'? "
                                         r"does not exist"):
        convlstm.onnx.export(model, tmp_path / "missing" / "m.onnx")
    with pytest.raises(ValueError, match=r"cannot write .*: it is a folder"):
        convlstm.onnx.export(model, tmp_path)
    with pytest.raises(TypeError, match=r"expected path to be a str or os\.PathLike; got int"):
        convlstm.onnx.export(model, 3)
    assert not os.listdir(tmp_path)


def test_a_failed_write_leaves_no_file(tmp_path, monkeypatch):
    import convlstm._files as files  # the one place that writes files atomically

    def refuse(source, target):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(files.os, "replace", refuse)
    model = Sequential([Dense(2)], input_shape=(3,))
    with pytest.raises(ValueError, match=r"cannot write .*m\.onnx': Permission denied"):
        convlstm.onnx.export(model, tmp_path / "m.onnx")
    assert not os.listdir(tmp_path)


def test_an_existing_file_is_replaced_whole(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_text("old")
    convlstm.onnx.export(Sequential([Dense(2)], input_shape=(3,)), path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)


def test_the_core_package_imports_without_onnx():
    code = ("import sys; sys.modules['onnx'] = None; import convlstm, convlstm.onnx; "
            "m = convlstm.Sequential([convlstm.Dense(2)], input_shape=(3,))\n"
            "try:\n    m.save_onnx('never.onnx')\n"
            "except ImportError as e:\n    print(e)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert "pip install onnx (from a clone: pip install -e '.[onnx]')" in result.stdout


# ---------------------------------------------------------------------------- command line

def test_cli_export(tmp_path):
    model, frame = convlstm_model()
    model.save(tmp_path / "m.npz")
    command = [sys.executable, "-m", "convlstm", "export", "--model", str(tmp_path / "m.npz"),
               "--onnx", str(tmp_path / "m.onnx")]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"wrote {tmp_path / 'm.onnx'}" in result.stdout
    (x,) = sequences(frame, times=(4,))
    x = x.astype(np.float32)
    np.testing.assert_allclose(session(tmp_path / "m.onnx").run(None, {"x": x})[0],
                               model.forward(x), atol=1e-5)

    bad = subprocess.run([*command[:-1], str(tmp_path / "no" / "m.onnx")], capture_output=True,
                         text=True)
    assert bad.returncode == 2
    assert "convlstm export: error: --onnx: cannot write" in bad.stderr


def test_cli_export_options(tmp_path):
    model = Sequential([ConvLSTM2D(1, 2, 3, seed=0)], input_shape=(4, 5, 5, 1))
    model.save(tmp_path / "m.npz")
    result = subprocess.run(
        [sys.executable, "-m", "convlstm", "export", "--model", str(tmp_path / "m.npz"),
         "--onnx", str(tmp_path / "m.onnx"), "--states", "--static-batch", "--static-time",
         "--opset", "18"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    loaded = onnx.load(str(tmp_path / "m.onnx"))
    assert loaded.opset_import[0].version == 18
    assert [d.dim_value for d in loaded.graph.input[0].type.tensor_type.shape.dim] == [
        1, 4, 5, 5, 1]
    assert [o.name for o in loaded.graph.output] == ["y", "h_0_0", "c_0_0"]
    missing = subprocess.run(
        [sys.executable, "-m", "convlstm", "export", "--model", str(tmp_path / "none.npz"),
         "--onnx", str(tmp_path / "x.onnx")], capture_output=True, text=True)
    assert missing.returncode == 2
    assert "no such file" in missing.stderr
    assert not (tmp_path / "x.onnx").exists()


def test_pooling_output_shape_keeps_an_unknown_time():
    # Sequential(..., input_shape=(None, ...)) builds through MaxPooling3D.
    assert MaxPooling3D(2).compute_output_shape((None, None, 8, 6, 3)) == (None, None, 4, 3, 3)
    assert MaxPooling3D(2, padding="same", data_format="channels_first").compute_output_shape(
        (2, 3, None, 5, 5)) == (2, 3, None, 3, 3)


def test_readme_deploying_example(tmp_path, monkeypatch):
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme[readme.index("## Deploying: ONNX"):]
    example = re.search(r"```py\n(.*?)```", section, flags=re.S).group(1)
    assert len(example.strip().splitlines()) == 3
    model, frame = convlstm_model()
    x = sequences(frame, times=(6,))[0].astype(np.float32)
    monkeypatch.chdir(tmp_path)
    namespace = {"model": model, "x": x}
    exec(compile(example, "README.md", "exec"), namespace)
    np.testing.assert_allclose(namespace["y"], model.predict(x), atol=1e-5)

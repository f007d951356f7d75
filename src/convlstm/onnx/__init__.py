"""Export models to ONNX, to run them without Python frameworks (ONNX Runtime in C++, on a
phone, in a browser).

::

    import convlstm.onnx
    convlstm.onnx.export(model, "model.onnx")
    y = onnxruntime.InferenceSession("model.onnx").run(None, {"x": x})[0]

The graph uses standard operators only (Conv, MatMul, Scan over time, Sigmoid, Tanh, Split,
MaxPool, ...), built with the ``onnx`` package's helpers (``pip install onnx``, or from a clone
``pip install -e '.[onnx]'``). This module imports ``onnx`` only when :func:`export` runs, so
the library itself still needs NumPy alone.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from convlstm._files import writable_path
from convlstm.layers.base import Layer
from convlstm.registry import layer_class

OWNER = "convlstm.onnx.export"
MIN_OPSET = 13  # Softmax over one axis, Split and Slice with tensor inputs
RECURRENT = frozenset(f"Conv{cell}{rank}D" for cell in ("LSTM", "GRU") for rank in (1, 2, 3))


def export(
    model: Layer,
    path: str | os.PathLike,
    *,
    opset: int = 17,
    dynamic_batch: bool = True,
    dynamic_time: bool = True,
    states: bool = False,
    mask: bool = False,
    input_shape: Sequence[int | None] | None = None,
) -> str:
    """Write ``model`` to ``path`` as an ONNX model that ONNX Runtime runs with our numbers.

    The graph has one input ``"x"`` (the model's input, batch first, in the first weighted
    layer's dtype) and one output ``"y"``. Frame sizes are fixed; batch and time are dynamic
    (one export runs 5 or 500 frames). Nothing is written unless every layer exports: a layer or
    an option without an ONNX form is refused first, by name. The file is written whole to a
    temporary file, checked with ``onnx.checker.check_model(full_check=True)``, then renamed.

    Args:
        model: a :class:`~convlstm.Sequential` with a known input shape (``input_shape=`` at
            construction, or after a call on data), or a single layer with ``input_shape``.
        path: the ``.onnx`` file to write.
        opset: the ONNX opset (13 to the ``onnx`` package's newest).
        dynamic_batch: a dynamic batch size; False fixes it to 1.
        dynamic_time: a dynamic time axis (for 5-D inputs (batch, time, ...)); False fixes it
            to the model's input shape's time.
        states: add the recurrent states: for the ``k``-th cell of the ``j``-th ConvLSTM or
            ConvGRU layer, the optional inputs ``h0_j_k`` and ``c0_j_k`` (ConvGRU: ``h0_j_k``
            only; default zeros; shape (batch, *spatial', F), or (batch, F, *spatial') for
            channels_first; ONNX Runtime lists them as overridable initializers) and the
            outputs ``h_j_k`` and ``c_j_k`` (final states).
        mask: add the input ``mask`` (batch, time) bool, with the semantics of
            ``ConvLSTM2D.forward(x, mask=...)``: where False a step is skipped. Only for a
            model that is a single ConvLSTM or ConvGRU layer (a Sequential passes no mask to
            its layers).
        input_shape: the shape of one sample, without the batch axis, when the model does
            not know it (a bare layer, or a Sequential never built).

    Returns:
        The path written.
    """
    layers, sample = _checked_model(model, input_shape)
    path = writable_path(OWNER, path)
    for name, value in (("dynamic_batch", dynamic_batch), ("dynamic_time", dynamic_time),
                        ("states", states), ("mask", mask)):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{OWNER}: expected {name} to be True or False; got {value!r}.")
    if mask and (len(layers) != 1 or type(layers[0]).__name__ not in RECURRENT):
        names = ", ".join(type(layer).__name__ for layer in layers)
        raise ValueError(
            f"{OWNER}: mask=True exports a single ConvLSTM or ConvGRU layer (whose forward "
            f"takes the mask); got a model of {names}, and a Sequential passes no mask to its "
            "layers.")
    if None in sample and not dynamic_time:
        raise ValueError(
            f"{OWNER}: dynamic_time=False needs a known time length; the model's input shape "
            f"is {tuple(sample)} (give input_shape=(time, height, width, channels)).")
    shape = ["batch" if dynamic_batch else 1, *sample]
    time = _time_axis(layers, sample)
    if time is not None and dynamic_time:
        shape[time] = "time"

    try:
        import onnx  # noqa: F401
    except ImportError as error:
        raise ImportError(
            f"{OWNER}: needs the onnx package: pip install onnx (from a clone: "
            "pip install -e '.[onnx]')") from error
    opset = _checked_opset(opset)
    from convlstm.onnx._export import build_model, write_model

    onnx_model = build_model(layers, tuple(shape), _input_dtype(layers), opset, bool(states),
                             bool(mask))
    write_model(onnx_model, path)
    return path


def _checked_model(model: object, input_shape: object) -> tuple[list[Layer], tuple]:
    if not isinstance(model, Layer):
        raise TypeError(f"{OWNER}: expected model to be a Sequential or a layer; got "
                        f"{type(model).__name__}.")
    if isinstance(model, layer_class("Sequential")):  # by name: files never import models
        layers = list(model.layers)
        known = model.input_shape
    else:
        layers, known = [model], None
    shape = known if input_shape is None else input_shape
    if not layers:
        raise ValueError(f"{OWNER}: the model has no layers.")
    if shape is None:
        raise ValueError(
            f"{OWNER}: the input shape of {type(model).__name__} is unknown; build the model "
            "with Sequential(..., input_shape=(time, height, width, channels)), call it on "
            "data once, or pass input_shape=.")
    if isinstance(shape, str) or not isinstance(shape, Sequence) or not all(
        n is None or (isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0)
        for n in shape
    ):
        raise TypeError(f"{OWNER}: expected input_shape to be a tuple of positive ints (time "
                        f"may be None); got {shape!r}.")
    shape = tuple(None if n is None else int(n) for n in shape)
    time = _time_axis(layers, shape)
    if not shape or any(n is None and axis + 1 != time for axis, n in enumerate(shape)):
        raise ValueError(
            f"{OWNER}: expected an input shape with known sizes (only the time of a "
            f"(time, height, width, channels) sample may be None); got {shape}.")
    return layers, shape


def _time_axis(layers: Sequence[Layer], sample: tuple) -> int | None:
    """The time axis of a batch of inputs: 1 for a recurrent layer first (or a Bidirectional
    of one); of 5-D inputs to other layers: 1, or 2 (depth) for a channels_first Conv3D or
    MaxPooling3D first; None for other inputs."""
    first = layers[0]
    inner = first.sublayers()[0] if type(first).__name__ == "Bidirectional" else first
    if type(inner).__name__ in RECURRENT:
        return 1
    if len(sample) != 4:
        return None
    volume = type(first).__name__ in ("Conv3D", "MaxPooling3D")
    return 2 if volume and getattr(first, "data_format", None) == "channels_first" else 1


def _checked_opset(opset: object) -> int:
    import onnx.defs

    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)):
        raise TypeError(f"{OWNER}: expected opset to be an int; got {opset!r}.")
    if not MIN_OPSET <= opset <= newest:
        raise ValueError(f"{OWNER}: expected opset between {MIN_OPSET} and {newest}; got "
                         f"{opset}.")
    return int(opset)


def _input_dtype(layers: Sequence[Layer]) -> np.dtype:
    """The dtype of the first layer that has one (weighted layers cast their input to it);
    float32 when no layer has one."""
    pending = list(layers)
    while pending:
        layer = pending.pop(0)
        dtype = getattr(layer, "dtype", None)
        if dtype is not None:
            return np.dtype(dtype)
        pending[:0] = layer.sublayers()
    return np.dtype(np.float32)


__all__ = ["export"]

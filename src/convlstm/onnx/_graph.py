"""Building an ONNX graph from standard operators: the builder and the shared emitters.

Tensors are tracked as :class:`Tensor` (a value name, a shape and a dtype). A shape holds ints
for static sizes and a string for a dynamic one ("batch", "time"); ``None`` is a dynamic size
with no name. Frame sizes are always static, so every padding is resolved to explicit numbers
at export time; only batch and time stay dynamic.

Convolutions: ONNX Runtime runs ``Conv`` in float32 only, so float64 convolutions are lowered
to im2col from standard operators (Pad, Slice per kernel tap, Concat, MatMul), channels last,
in the tap order of a Keras kernel.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from convlstm.functional.windows import same_pads

INT64_MAX = np.iinfo(np.int64).max
ELEMENT_TYPES = {np.dtype("float32"): TensorProto.FLOAT, np.dtype("float64"): TensorProto.DOUBLE}

Shape = tuple[Any, ...]  # int (static), str (a named dynamic size) or None (dynamic, unnamed)


@dataclass(frozen=True)
class Tensor:
    """A value of the graph being built."""

    name: str
    shape: Shape
    dtype: np.dtype

    @property
    def rank(self) -> int:
        return len(self.shape)


def spatial_and_channels(shape: Shape, channels_first: bool) -> tuple[Shape, Any]:
    """(spatial sizes, channels) of an (N, ...) shape."""
    return (shape[2:], shape[1]) if channels_first else (shape[1:-1], shape[-1])


def is_static(size: Any) -> bool:
    return isinstance(size, int)


def value_info(name: str, shape: Shape, dtype: np.dtype) -> onnx.ValueInfoProto:
    dims = [size if is_static(size) or isinstance(size, str) else None for size in shape]
    return helper.make_tensor_value_info(name, ELEMENT_TYPES[np.dtype(dtype)], dims)


class Builder:
    """Collects nodes and initializers of one graph (the main graph or a loop body)."""

    def __init__(self, opset: int, prefix: str = "") -> None:
        self.opset = opset
        self.prefix = prefix
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = itertools.count()
        self._constants: dict[tuple, str] = {}

    def fresh(self, hint: str) -> str:
        return f"{self.prefix}{hint}_{next(self._count)}"

    # --------------------------------------------------------------------- values

    def const(self, value: Any, dtype: Any = None, hint: str = "const") -> str:
        """An initializer holding ``value``; small equal constants are shared."""
        array = np.asarray(value, dtype=dtype)
        key = None
        if array.size <= 16:
            key = (array.dtype.str, array.shape, array.tobytes())
            if key in self._constants:
                return self._constants[key]
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        if key is not None:
            self._constants[key] = name
        return name

    def ints(self, values: Any) -> str:
        return self.const(np.asarray(values, dtype=np.int64).reshape(-1), hint="ints")

    def scalar(self, value: float, dtype: np.dtype) -> str:
        return self.const(np.asarray(value, dtype=dtype), hint="scalar")

    def op(self, op_type: str, inputs: list[str], outputs: int | list[str] = 1,
           **attributes: Any) -> Any:
        """Add a node; returns its output name (or names, when several)."""
        names = outputs if isinstance(outputs, list) else [
            self.fresh(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, names, name=self.fresh(op_type),
                                           **attributes))
        return names[0] if len(names) == 1 else names

    # ---------------------------------------------------------------- shape plumbing

    def shape_of(self, name: str, start: int, end: int) -> str:
        """The int64 sizes ``shape(name)[start:end]`` as a 1-D tensor."""
        if self.opset >= 15:
            return self.op("Shape", [name], start=start, end=end)
        return self.op("Slice", [self.op("Shape", [name]), self.ints([start]), self.ints([end])])

    def reshape(self, name: str, parts: list[Any]) -> str:
        """Reshape to the concatenation of ``parts``: ints, or names of 1-D int64 tensors."""
        pieces, static = [], []
        for part in parts:
            if isinstance(part, str):
                if static:
                    pieces.append(self.ints(static))
                    static = []
                pieces.append(part)
            else:
                static.append(part)
        if static:
            pieces.append(self.ints(static))
        target = pieces[0] if len(pieces) == 1 else self.op("Concat", pieces, axis=0)
        return self.op("Reshape", [name, target])

    def transpose(self, name: str, perm: tuple[int, ...]) -> str:
        if tuple(perm) == tuple(range(len(perm))):
            return name
        return self.op("Transpose", [name], perm=list(perm))

    def cast(self, tensor: Tensor, dtype: np.dtype) -> Tensor:
        dtype = np.dtype(dtype)
        if tensor.dtype == dtype:
            return tensor
        name = self.op("Cast", [tensor.name], to=ELEMENT_TYPES[dtype])
        return Tensor(name, tensor.shape, dtype)

    def split(self, name: str, axis: int, parts: int) -> list[str]:
        """``parts`` equal pieces along ``axis``."""
        extra = {"num_outputs": parts} if self.opset >= 18 else {}
        return self.op("Split", [name], outputs=parts, axis=axis, **extra)

    # ------------------------------------------------------------------ convolution

    def conv(self, x: str, kernel: np.ndarray, bias: np.ndarray | None,
             strides: tuple[int, ...], pads: Any, dilation: tuple[int, ...],
             dtype: np.dtype, sizes: Shape) -> str:
        """A Keras convolution (cross-correlation) over ``rank = kernel.ndim - 2`` axes.

        float32: ``Conv`` on channels-first ``x`` (N, C, *sizes). float64: im2col on
        channels-last ``x`` (N, *sizes, C). The output has the input's layout.

        Args:
            kernel: Keras layout (*window, C, F).
            bias: (F,) or None.
            pads: ((before, after), ...) per axis, or "SAME_UPPER" (TensorFlow's "same" for
                a dynamic axis, float32 only).
            sizes: the input's spatial sizes (a dynamic one is a str or None).
        """
        rank = kernel.ndim - 2
        if np.dtype(dtype) == np.float32:
            # Keras (*window, C, F) -> ONNX (F, C, *window).
            weights = self.const(np.transpose(kernel, (rank + 1, rank, *range(rank))),
                                 hint="kernel")
            inputs = [x, weights] + ([self.const(bias, hint="bias")] if bias is not None else [])
            window = list(kernel.shape[:rank])
            if pads == "SAME_UPPER":
                padding = {"auto_pad": "SAME_UPPER"}
            else:
                padding = {"pads": [p[0] for p in pads] + [p[1] for p in pads]}
            return self.op("Conv", inputs, kernel_shape=window, strides=list(strides),
                           dilations=list(dilation), **padding)
        return self._im2col_conv(x, kernel, bias, strides, pads, dilation, sizes)

    def _im2col_conv(self, x, kernel, bias, strides, pads, dilation, sizes) -> str:
        rank = kernel.ndim - 2
        window = kernel.shape[:rank]
        if pads == "SAME_UPPER":
            raise AssertionError("explicit pads are resolved before float64 convolutions")
        if any(before or after for before, after in pads):
            amounts = [0, *(p[0] for p in pads), 0, 0, *(p[1] for p in pads), 0]
            x = self.op("Pad", [x, self.ints(amounts)])
        padded_sizes = [
            size + before + after if is_static(size) else None
            for size, (before, after) in zip(sizes, pads)
        ]
        out_sizes = [
            (size - d * (k - 1) - 1) // s + 1 if size is not None else None
            for size, k, s, d in zip(padded_sizes, window, strides, dilation)
        ]
        axes = list(range(1, rank + 1))
        # On a dynamic axis every tap is sliced to the end, then cut to the last tap's length
        # (the last tap reaches furthest, so its count is the output's).
        dynamic = [axis for axis, size in zip(axes, out_sizes) if size is None]
        taps = list(itertools.product(*map(range, window)))

        def tap_slice(tap):
            starts = [offset * d for offset, d in zip(tap, dilation)]
            ends = [
                start + s * (n - 1) + 1 if n is not None else INT64_MAX
                for start, s, n in zip(starts, strides, out_sizes)
            ]
            return self.op("Slice", [x, self.ints(starts), self.ints(ends), self.ints(axes),
                                     self.ints(strides)])

        columns = [tap_slice(tap) for tap in taps]
        if dynamic:
            lengths = [self.shape_of(columns[-1], axis, axis + 1) for axis in dynamic]
            length = lengths[0] if len(lengths) == 1 else self.op("Concat", lengths, axis=0)
            zeros = self.ints([0] * len(dynamic))
            columns = [
                self.op("Slice", [column, zeros, length, self.ints(dynamic)])
                for column in columns[:-1]
            ] + columns[-1:]
        cols = columns[0] if len(columns) == 1 else self.op("Concat", columns, axis=-1)
        matrix = self.const(kernel.reshape(-1, kernel.shape[-1]), hint="kernel")
        y = self.op("MatMul", [cols, matrix])
        if bias is not None:
            y = self.op("Add", [y, self.const(bias, hint="bias")])
        return y


def explicit_pads(padding: Any, sizes: Shape, window: tuple[int, ...],
                  strides: tuple[int, ...], dilation: tuple[int, ...]) -> Any:
    """``((before, after), ...)`` per axis, or "SAME_UPPER" when "same" padding depends on a
    dynamic size (stride > 1 on that axis); TensorFlow's "same" puts the odd cell after."""
    if padding == "valid":
        return ((0, 0),) * len(sizes)
    if padding != "same":
        return tuple((amount, amount) for amount in padding)
    pads = []
    for size, k, s, d in zip(sizes, window, strides, dilation):
        if not is_static(size):
            if s > 1:
                return "SAME_UPPER"
            size = k  # with stride 1 the total padding is d * (k - 1), whatever the size
        pads.append(same_pads(size, k, s, d))
    return tuple(pads)


def conv_out_size(size: Any, pads: Any, k: int, s: int, d: int, axis: int) -> Any:
    """One axis' output size (a dynamic input size gives None)."""
    if not is_static(size):
        return None
    if pads == "SAME_UPPER":
        return -(-size // s)
    before, after = pads[axis]
    return (size + before + after - d * (k - 1) - 1) // s + 1

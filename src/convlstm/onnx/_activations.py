"""Keras activations as ONNX nodes, computed as ``functional.activations`` computes them."""

from __future__ import annotations

from typing import Any

import numpy as np

from convlstm.onnx._graph import Builder

_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


def activation(b: Builder, name: str, x: str, dtype: np.dtype) -> str:
    """Keras activation ``name`` on ``x``, computed as ``functional.activations`` computes it."""
    def c(value):
        return b.scalar(value, dtype)

    if name == "linear":
        return x
    simple = {"tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu", "exponential": "Exp"}
    if name in simple:
        return b.op(simple[name], [x])
    if name == "relu6":
        return b.op("Clip", [x, c(0.0), c(6.0)])
    if name == "hard_sigmoid":  # Keras 3: relu6(x + 3) / 6
        return b.op("Div", [b.op("Clip", [b.op("Add", [x, c(3.0)]), c(0.0), c(6.0)]), c(6.0)])
    if name == "hard_sigmoid_keras2":  # Keras 2: clip(0.2 x + 0.5, 0, 1)
        scaled = b.op("Add", [b.op("Mul", [x, c(0.2)]), c(0.5)])
        return b.op("Clip", [scaled, c(0.0), c(1.0)])
    if name in ("elu", "selu"):
        negative = b.op("Sub", [b.op("Exp", [b.op("Min", [x, c(0.0)])]), c(1.0)])  # expm1
        if name == "selu":
            negative = b.op("Mul", [negative, c(_SELU_ALPHA)])
        y = b.op("Where", [b.op("Greater", [x, c(0.0)]), x, negative])
        return b.op("Mul", [y, c(_SELU_SCALE)]) if name == "selu" else y
    if name == "softsign":
        return b.op("Div", [x, b.op("Add", [b.op("Abs", [x]), c(1.0)])])
    if name == "softplus":  # log(exp(x) + 1) = max(x, 0) + log(1 + exp(-|x|)), no overflow
        tail = b.op("Exp", [b.op("Neg", [b.op("Abs", [x])])])
        return b.op("Add", [b.op("Relu", [x]), b.op("Log", [b.op("Add", [tail, c(1.0)])])])
    if name == "softmax":
        return b.op("Softmax", [x], axis=-1)
    raise ValueError(f"no ONNX form for the activation {name!r}")


ONNX_ACTIVATIONS = frozenset([
    "linear", "tanh", "sigmoid", "relu", "exponential", "relu6", "hard_sigmoid",
    "hard_sigmoid_keras2", "elu", "selu", "softsign", "softplus", "softmax",
])


def activation_name(ctx: Any, where: str, option: str, name: str) -> str:
    """``name`` if :func:`activation` has an ONNX form for it; refused otherwise."""
    if name not in ONNX_ACTIVATIONS:
        ctx.refuse(where, f"{option}={name!r} has no ONNX form; expected one of "
                          f"{', '.join(sorted(ONNX_ACTIVATIONS))}.")
    return name


def leaky_relu(b: Builder, x: str, slope: float, dtype: np.dtype) -> str:
    # As functional.activations.leaky_relu: where(x >= 0, x, x * slope).
    zero = b.scalar(0.0, dtype)
    negative = b.op("Mul", [x, b.scalar(slope, dtype)])
    return b.op("Where", [b.op("GreaterOrEqual", [x, zero]), x, negative])


"""Generate the PyTorch autograd gradient fixtures in ``tests/fixtures/torch/``.

The ConvLSTM backward pass (BPTT) of the library is checked against an independent
implementation: a plain PyTorch ConvLSTM cell with Keras 3 semantics, in float64, whose
gradients come from ``torch.autograd``. Each case draws random inputs, weights, initial states and
upstream gradients, runs one layer forward, backpropagates
``loss = sum(output * d_output) + sum(h * d_h) + sum(c * d_c)`` and writes one compressed
``.npz``. Everything is seeded and the zip timestamps are fixed, so rerunning the script
regenerates byte-identical files.

How to run (from the repository root)::

    KERAS_BACKEND=torch /work/refenv/bin/python scripts/make_torch_gradient_fixtures.py
    # also compare the torch forward pass against Keras 3's ConvLSTM2D (writes nothing):
    KERAS_BACKEND=torch /work/refenv/bin/python scripts/make_torch_gradient_fixtures.py --check

The torch model
---------------
Per step: ``z = conv(x_t, kernel, stride, padding, dilation) + bias + conv(h, recurrent_kernel,
"same")`` with the gates fused in Keras order ``i, f, c, o`` along the last axis;
``i, f, o = recurrent_activation(z_i, z_f, z_o)``, ``c = f * c + i * activation(z_c)``,
``h = o * activation(c)``. "same" padding splits like TensorFlow (the extra cell goes after).
Where ``mask[b, t]`` is False, sample ``b`` keeps its ``h`` and ``c`` and repeats its previous
output (zeros at the first step). ``go_backwards`` reads the frames (and the mask) in reverse
and returns the outputs in processing order. ``leaky_relu_slope`` applies a leaky ReLU to the
output sequence only; ``h`` and ``c`` stay raw. With ``peephole`` (the ConvLSTM paper's
peepholes, beyond Keras) the gates also see the cell: ``z_i += p_i * c``, ``z_f += p_f * c``
before the cell update and ``z_o += p_o * c_new`` after it, ``p`` of shape ``(3, F)``.

File format (``convlstm_grad_<case>.npz``, all float64)
--------------------------------------------------------
``config``        0-d string: JSON with ``in_channels``, ``out_channels``, ``kernel_size``
                  ``[kh, kw]``, ``padding`` (``"same"``, ``"valid"`` or ``[ph, pw]``, symmetric),
                  ``stride`` ``[sh, sw]``, ``dilation`` ``[dh, dw]``, ``activation``,
                  ``recurrent_activation``, ``go_backwards``, ``leaky_relu_slope`` (or null).
``x``             input ``(B, T, H, W, C)``.
``kernel``, ``recurrent_kernel``, ``bias``   Keras layout ``(kh, kw, C, 4F)``,
                  ``(kh, kw, F, 4F)``, ``(4F,)``.
``h0``, ``c0``    initial states ``(B, H', W', F)``.
``mask``          optional bool ``(B, T)``.
``d_output``, ``d_h``, ``d_c``   upstream gradients of the output sequence and final states.
``output``, ``h``, ``c``         the forward results (output ``(B, T, H', W', F)``).
``grad_x``, ``grad_kernel``, ``grad_recurrent_kernel``, ``grad_bias``, ``grad_h0``,
``grad_c0``       d loss / d each input.
``peephole``, ``grad_peephole``   ``(3, F)``, rows i, f, o, only in the peephole cases (whose
                  config has ``"peephole": true``).
"""

from __future__ import annotations

import json
import os
import sys
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
import numpy as np
import torch
from make_keras_fixtures import save_npz
from torch.nn import functional as nnf

OUT_DIR = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "torch"
BASE_SEED = 20240603
BATCH = 2

DEFAULTS: dict[str, Any] = {
    "kernel_size": (3, 3),
    "padding": "same",
    "stride": (1, 1),
    "dilation": (1, 1),
    "activation": "tanh",
    "recurrent_activation": "sigmoid",
    "go_backwards": False,
    "leaky_relu_slope": None,
}

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "hard_sigmoid": lambda z: nnf.relu6(z + 3.0) / 6.0,  # Keras 3's hard_sigmoid
    "relu": torch.relu,
}

# (B, T) with False at step 0 (and step 2) of sample 0 and at the last step of sample 1.
MASK_PATTERN = ((False, True, False, True), (True, True, True, False))


@dataclass(frozen=True)
class GradCase:
    """One gradient fixture: the options that differ from ``DEFAULTS`` and the data shape."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    in_channels: int = 2
    out_channels: int = 2
    frame: tuple[int, int] = (5, 5)
    time: int = 4
    mask: bool = False


CASES: tuple[GradCase, ...] = (
    GradCase("default"),
    GradCase("valid_stride2", {"padding": "valid", "stride": (2, 2)}, frame=(6, 5)),
    GradCase("same_stride2_odd", {"stride": (2, 2)}, frame=(5, 6)),
    GradCase("dilation2_same", {"dilation": (2, 2)}, frame=(6, 6), time=3),
    GradCase("pad1_kernel2x3", {"padding": (1, 1), "kernel_size": (2, 3)}, frame=(4, 5)),
    GradCase("hard_sigmoid_relu", {"recurrent_activation": "hard_sigmoid", "activation": "relu"}),
    GradCase("mask", mask=True),
    GradCase("mask_go_backwards", {"go_backwards": True}, mask=True),
    GradCase("leaky02", {"leaky_relu_slope": 0.2}, time=3),
    GradCase("peephole", {"peephole": True}),
    GradCase("peephole_mask_go_backwards", {"peephole": True, "go_backwards": True}, mask=True),
    GradCase("peephole_hard_sigmoid_valid_stride2",
             {"peephole": True, "recurrent_activation": "hard_sigmoid", "padding": "valid",
              "stride": (2, 2)}, frame=(6, 5)),
)


def same_split(n: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TensorFlow's "same" padding of one axis: (before, after), the extra cell after."""
    out = -(-n // s)
    total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
    return total // 2, total - total // 2


def input_padding(cfg: Mapping[str, Any], frame: tuple[int, int]) -> list[tuple[int, int]]:
    """``[(top, bottom), (left, right)]`` of the input convolution."""
    pads = []
    for axis in (0, 1):
        k, s, d = cfg["kernel_size"][axis], cfg["stride"][axis], cfg["dilation"][axis]
        if cfg["padding"] == "same":
            pads.append(same_split(frame[axis], k, s, d))
        elif cfg["padding"] == "valid":
            pads.append((0, 0))
        else:
            pads.append((cfg["padding"][axis], cfg["padding"][axis]))
    return pads


def output_frame(cfg: Mapping[str, Any], frame: tuple[int, int]) -> tuple[int, int]:
    """Spatial size of an output frame."""
    sizes = []
    for axis, (before, after) in enumerate(input_padding(cfg, frame)):
        k, s, d = cfg["kernel_size"][axis], cfg["stride"][axis], cfg["dilation"][axis]
        sizes.append((frame[axis] + before + after - d * (k - 1) - 1) // s + 1)
    return sizes[0], sizes[1]


def conv_nchw(
    x: torch.Tensor,
    kernel: torch.Tensor,
    pads: list[tuple[int, int]],
    stride: tuple[int, int],
    dilation: tuple[int, int],
) -> torch.Tensor:
    """Cross-correlation of NCHW ``x`` with a Keras ``(kh, kw, C, O)`` kernel."""
    (top, bottom), (left, right) = pads
    x = nnf.pad(x, (left, right, top, bottom))
    return nnf.conv2d(x, kernel.permute(3, 2, 0, 1), stride=stride, dilation=dilation)


def convlstm_forward(
    cfg: Mapping[str, Any],
    x: torch.Tensor,
    kernel: torch.Tensor,
    recurrent_kernel: torch.Tensor,
    bias: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor,
    mask: torch.Tensor | None,
    peephole: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One Keras-3 ConvLSTM2D layer on channels-last tensors: ``(output, h, c)``; with
    ``peephole`` (3, F), the paper's peepholes."""
    act = ACTIVATIONS[cfg["activation"]]
    rec = ACTIVATIONS[cfg["recurrent_activation"]]
    T = x.shape[1]
    pads_x = input_padding(cfg, (x.shape[2], x.shape[3]))
    kh, kw = recurrent_kernel.shape[:2]
    pads_h = [same_split(1, kh, 1, 1), same_split(1, kw, 1, 1)]  # stride 1: any n gives k - 1
    h, c = h0.permute(0, 3, 1, 2), c0.permute(0, 3, 1, 2)
    previous = torch.zeros_like(h)
    outputs = []
    for t in reversed(range(T)) if cfg["go_backwards"] else range(T):
        frame = x[:, t].permute(0, 3, 1, 2)
        z = conv_nchw(frame, kernel, pads_x, cfg["stride"], cfg["dilation"])
        z = z + bias.view(1, -1, 1, 1) + conv_nchw(h, recurrent_kernel, pads_h, (1, 1), (1, 1))
        z_i, z_f, z_c, z_o = z.chunk(4, dim=1)
        if peephole is not None:
            p_i, p_f, p_o = (row.view(1, -1, 1, 1) for row in peephole)
            z_i, z_f = z_i + p_i * c, z_f + p_f * c
        c_new = rec(z_f) * c + rec(z_i) * act(z_c)
        if peephole is not None:
            z_o = z_o + p_o * c_new
        h_new = rec(z_o) * act(c_new)
        out = h_new
        if mask is not None:
            keep = mask[:, t].view(-1, 1, 1, 1)
            out = torch.where(keep, h_new, previous)
            h_new = torch.where(keep, h_new, h)
            c_new = torch.where(keep, c_new, c)
        outputs.append(out)
        previous, h, c = out, h_new, c_new
    output = torch.stack(outputs, dim=1).permute(0, 1, 3, 4, 2)
    if cfg["leaky_relu_slope"] is not None:
        output = nnf.leaky_relu(output, cfg["leaky_relu_slope"])
    return output, h.permute(0, 2, 3, 1), c.permute(0, 2, 3, 1)


def case_config(case: GradCase) -> dict[str, Any]:
    """Every option of ``case`` (defaults filled in), pairs as tuples."""
    unknown = set(case.options) - set(DEFAULTS) - {"peephole"}
    if unknown:
        raise ValueError(f"{case.name}: unknown options {sorted(unknown)}")
    return {**DEFAULTS, **case.options}


def case_inputs(case: GradCase) -> dict[str, np.ndarray]:
    """The seeded random inputs, weights, states, mask and upstream gradients of ``case``."""
    cfg = case_config(case)
    rng = np.random.default_rng([BASE_SEED, zlib.crc32(case.name.encode())])
    kh, kw = cfg["kernel_size"]
    C, Fo = case.in_channels, case.out_channels
    state = (BATCH, *output_frame(cfg, case.frame), Fo)
    arrays = {
        "x": rng.normal(size=(BATCH, case.time, *case.frame, C)),
        "kernel": rng.uniform(-0.5, 0.5, size=(kh, kw, C, 4 * Fo)),
        "recurrent_kernel": rng.uniform(-0.5, 0.5, size=(kh, kw, Fo, 4 * Fo)),
        "bias": rng.uniform(-0.5, 0.5, size=(4 * Fo,)),
        "h0": rng.normal(size=state),
        "c0": rng.normal(size=state),
    }
    if case.mask:
        arrays["mask"] = np.array(MASK_PATTERN, dtype=bool)[:, : case.time]
    if cfg.get("peephole"):
        arrays["peephole"] = rng.uniform(-0.8, 0.8, size=(3, Fo))
    arrays["d_output"] = rng.normal(size=(BATCH, case.time, *state[1:]))
    arrays["d_h"] = rng.normal(size=state)
    arrays["d_c"] = rng.normal(size=state)
    return arrays


def make_case(case: GradCase) -> dict[str, np.ndarray]:
    """Run ``case`` forward and backward in torch and collect its arrays."""
    cfg = case_config(case)
    arrays = case_inputs(case)
    names = ("x", "kernel", "recurrent_kernel", "bias", "h0", "c0", "peephole")
    leaves = {k: torch.tensor(arrays[k], dtype=torch.float64, requires_grad=True)
              for k in names if k in arrays}
    mask = torch.tensor(arrays["mask"]) if "mask" in arrays else None
    output, h, c = convlstm_forward(cfg, *(leaves[k] for k in names[:6]), mask,
                                    leaves.get("peephole"))
    loss = sum(
        (value * torch.tensor(arrays[name])).sum()
        for value, name in ((output, "d_output"), (h, "d_h"), (c, "d_c"))
    )
    loss.backward()
    config = {
        "in_channels": case.in_channels,
        "out_channels": case.out_channels,
        **{k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
    }
    result = {"config": np.array(json.dumps(config)), **arrays}
    result.update(output=output.detach().numpy(), h=h.detach().numpy(), c=c.detach().numpy())
    result.update({f"grad_{k}": v.grad.numpy() for k, v in leaves.items()})
    return result


def keras_check(case: GradCase) -> float:
    """Max |torch - Keras 3| over output, h and c of ``case`` (Keras' ConvLSTM2D, float64)."""
    cfg = case_config(case)
    arrays = case_inputs(case)
    x_in = keras.Input(batch_shape=arrays["x"].shape, dtype="float64")
    state_in = [keras.Input(batch_shape=arrays["h0"].shape, dtype="float64") for _ in range(2)]
    inputs = [x_in, *state_in]
    y = x_in
    if not isinstance(cfg["padding"], str):
        ph, pw = cfg["padding"]
        y = keras.layers.ZeroPadding3D(((0, 0), (ph, ph), (pw, pw)), dtype="float64")(y)
    layer = keras.layers.ConvLSTM2D(
        case.out_channels,
        cfg["kernel_size"],
        strides=cfg["stride"],
        padding=cfg["padding"] if isinstance(cfg["padding"], str) else "valid",
        dilation_rate=cfg["dilation"],
        activation=cfg["activation"],
        recurrent_activation=cfg["recurrent_activation"],
        return_sequences=True,
        return_state=True,
        go_backwards=cfg["go_backwards"],
        dtype="float64",
    )
    kwargs: dict[str, Any] = {"initial_state": state_in}
    if case.mask:
        mask_in = keras.Input(batch_shape=arrays["mask"].shape, dtype="bool")
        inputs.append(mask_in)
        kwargs["mask"] = mask_in
    y, h, c = layer(y, **kwargs)
    if cfg["leaky_relu_slope"] is not None:
        y = keras.layers.LeakyReLU(negative_slope=cfg["leaky_relu_slope"], dtype="float64")(y)
    model = keras.Model(inputs, [y, h, c])
    layer.set_weights([arrays["kernel"], arrays["recurrent_kernel"], arrays["bias"]])
    feed = [arrays[k] for k in ("x", "h0", "c0", "mask") if k in arrays]
    ours = make_case(case)
    got = [keras.ops.convert_to_numpy(v) for v in model(feed)]
    return max(float(np.abs(g - ours[k]).max()) for g, k in zip(got, ("output", "h", "c")))


def main() -> None:
    """Regenerate every fixture (or, with ``--check``, compare the forward pass with Keras)."""
    if "--check" in sys.argv[1:]:
        for case in CASES:
            if "peephole" in case.options:
                continue  # Keras has no peepholes
            print(f"{case.name:24s} max |torch - keras| = {keras_check(case):.3e}")
        return
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for stale in OUT_DIR.glob("*.npz"):
        stale.unlink()
    for case in CASES:
        arrays = make_case(case)
        path = OUT_DIR / f"convlstm_grad_{case.name}.npz"
        save_npz(path, arrays)
        shapes = ", ".join(f"{k}{tuple(arrays[k].shape)}" for k in ("x", "output"))
        print(f"{path.name:44s} {path.stat().st_size:6d} B  {shapes}")
    total = sum(p.stat().st_size for p in OUT_DIR.glob("*.npz"))
    print(f"{len(CASES)} files, {total / 1024:.1f} KiB in {OUT_DIR}")


if __name__ == "__main__":
    main()

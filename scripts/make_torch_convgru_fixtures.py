"""Generate the PyTorch autograd fixtures of ConvGRU2D in ``tests/fixtures/torch_convgru/``.

An independent ConvGRU in PyTorch (float64, NCHW, Keras 3's GRU semantics with convolutions,
both ``reset_after`` values) runs forward, then ``torch.autograd`` differentiates
``loss = sum(output * d_output) + sum(h * d_h)``. The geometry helpers and the ``.npz`` writer
are ``make_torch_gradient_fixtures.py``'s. Seeded: rerunning writes the same bytes.

How to run (from the repository root)::

    python scripts/make_torch_convgru_fixtures.py

The torch model (gates z, r, h in Keras' order along the kernels' last axis; ra, a = the
recurrent activation and the activation)::

    x_part = conv(x_t, kernel) + b;   h_part = conv(h, recurrent_kernel, "same") + b'
    z = ra(x_part_z + h_part_z);      r = ra(x_part_r + h_part_r)
    reset_after:      h~ = a(x_part_h + r * h_part_h)          bias (2, 3F) = [b; b']
    not reset_after:  h~ = a(x_part_h + conv(r * h, U_h))      bias (3F,) = b, b' = 0
    h = z * h + (1 - z) * h~

Masked steps keep ``h`` and repeat the previous output (zeros at first); ``go_backwards``
reads time reversed and returns outputs in processing order.

File format (``convgru_grad_<case>.npz``, float64): ``config`` (JSON: our ConvGRU2D kwargs),
``x``, ``kernel``, ``recurrent_kernel``, ``bias``, ``h0``, optional ``mask``, ``d_output``,
``d_h``, ``output``, ``h``, and ``grad_<name>`` for x, kernel, recurrent_kernel, bias, h0.
"""

from __future__ import annotations

import json
import sys
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch
from make_keras_fixtures import save_npz
from make_torch_gradient_fixtures import ACTIVATIONS, MASK_PATTERN, conv_nchw, input_padding

OUT_DIR = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "torch_convgru"
BASE_SEED = 20261129
BATCH, TIME, C, F = 2, 4, 2, 2
DEFAULTS = {"kernel_size": (3, 3), "padding": "same", "stride": (1, 1), "dilation": (1, 1),
            "activation": "tanh", "recurrent_activation": "sigmoid", "go_backwards": False,
            "reset_after": True}
CASES = (  # (name, options, frame, mask)
    ("reset_after", {}, (5, 5), False),
    ("reset_before", {"reset_after": False}, (5, 5), False),
    ("reset_after_mask_go_backwards", {"go_backwards": True}, (4, 5), True),
    ("reset_before_mask_valid_stride2_hard_sigmoid",
     {"reset_after": False, "padding": "valid", "stride": (2, 2),
      "recurrent_activation": "hard_sigmoid"}, (6, 5), True),
    ("reset_after_dilation2_relu", {"dilation": (2, 2), "activation": "relu"}, (6, 6), False),
)


def convgru_forward(cfg, x, kernel, recurrent_kernel, bias, h0, mask):
    """One ConvGRU layer on channels-last tensors: ``(output, h)``."""
    act, rec = ACTIVATIONS[cfg["activation"]], ACTIVATIONS[cfg["recurrent_activation"]]
    pads_x = input_padding(cfg, (x.shape[2], x.shape[3]))
    kh, kw = recurrent_kernel.shape[:2]
    pads_h = [((kh - 1) // 2, kh - 1 - (kh - 1) // 2), ((kw - 1) // 2, kw - 1 - (kw - 1) // 2)]
    if cfg["reset_after"]:
        b, b_recurrent = bias[0], bias[1]
    else:
        b, b_recurrent = bias, torch.zeros_like(bias)
    h = h0.permute(0, 3, 1, 2)
    previous, outputs = torch.zeros_like(h), []
    steps = range(x.shape[1])
    for t in reversed(steps) if cfg["go_backwards"] else steps:
        frame = x[:, t].permute(0, 3, 1, 2)
        x_part = conv_nchw(frame, kernel, pads_x, cfg["stride"], cfg["dilation"])
        x_part = x_part + b.view(1, -1, 1, 1)
        h_part = conv_nchw(h, recurrent_kernel, pads_h, (1, 1), (1, 1))
        h_part = h_part + b_recurrent.view(1, -1, 1, 1)
        x_z, x_r, x_h = x_part.chunk(3, dim=1)
        h_z, h_r, h_h = h_part.chunk(3, dim=1)
        z, r = rec(x_z + h_z), rec(x_r + h_r)
        if cfg["reset_after"]:
            candidate = act(x_h + r * h_h)
        else:
            candidate = act(x_h + conv_nchw(r * h, recurrent_kernel[..., 2 * F :], pads_h,
                                            (1, 1), (1, 1)))
        h_new = z * h + (1 - z) * candidate
        out = h_new
        if mask is not None:
            keep = mask[:, t].view(-1, 1, 1, 1)
            out = torch.where(keep, h_new, previous)
            h_new = torch.where(keep, h_new, h)
        outputs.append(out)
        previous, h = out, h_new
    return torch.stack(outputs, dim=1).permute(0, 1, 3, 4, 2), h.permute(0, 2, 3, 1)


def make_case(name, options, frame, masked):
    cfg = {**DEFAULTS, **options}
    rng = np.random.default_rng([BASE_SEED, zlib.crc32(name.encode())])
    kh, kw = cfg["kernel_size"]
    out = []
    for axis, (before, after) in enumerate(input_padding(cfg, frame)):
        k, s, d = cfg["kernel_size"][axis], cfg["stride"][axis], cfg["dilation"][axis]
        out.append((frame[axis] + before + after - d * (k - 1) - 1) // s + 1)
    state = (BATCH, *out, F)
    arrays = {
        "x": rng.normal(size=(BATCH, TIME, *frame, C)),
        "kernel": rng.uniform(-0.5, 0.5, (kh, kw, C, 3 * F)),
        "recurrent_kernel": rng.uniform(-0.5, 0.5, (kh, kw, F, 3 * F)),
        "bias": rng.uniform(-0.5, 0.5, (2, 3 * F) if cfg["reset_after"] else (3 * F,)),
        "h0": rng.normal(size=state),
    }
    if masked:
        arrays["mask"] = np.array(MASK_PATTERN, dtype=bool)
    arrays["d_output"] = rng.normal(size=(BATCH, TIME, *state[1:]))
    arrays["d_h"] = rng.normal(size=state)
    names = ("x", "kernel", "recurrent_kernel", "bias", "h0")
    leaves = {k: torch.tensor(arrays[k], dtype=torch.float64, requires_grad=True) for k in names}
    mask = torch.tensor(arrays["mask"]) if masked else None
    output, h = convgru_forward(cfg, *leaves.values(), mask)
    loss = ((output * torch.tensor(arrays["d_output"])).sum()
            + (h * torch.tensor(arrays["d_h"])).sum())
    loss.backward()
    padding = cfg["padding"] if isinstance(cfg["padding"], str) else list(cfg["padding"])
    config = {"in_channels": C, "out_channels": F, **{k: list(v) if isinstance(v, tuple) else v
                                                     for k, v in cfg.items()},
              "padding": padding}
    result = {"config": np.array(json.dumps(config)), **arrays,
              "output": output.detach().numpy(), "h": h.detach().numpy()}
    result.update({f"grad_{k}": v.grad.numpy() for k, v in leaves.items()})
    return result


def main() -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for stale in OUT_DIR.glob("*.npz"):
        stale.unlink()
    for case in CASES:
        save_npz(OUT_DIR / f"convgru_grad_{case[0]}.npz", make_case(*case))
        print(case[0])


if __name__ == "__main__":
    main()

"""Generate the Keras 3 reference fixtures in ``tests/fixtures/keras/``.

The library itself is pure NumPy; these fixtures are the ground truth its tests compare
against. Each case builds a small Keras 3 model with fixed random weights, runs it on fixed
random inputs and writes one compressed ``.npz`` file. Everything is seeded, so rerunning the
script regenerates byte-identical files.

How to run (from the repository root)::

    pip install torch==2.13.0 keras
    KERAS_BACKEND=torch python scripts/make_keras_fixtures.py

File format
-----------
``convlstm_<case>.npz``
    ``config``   0-d string array: JSON of ``convlstm.ConvLSTM2D`` kwargs (``in_channels``,
                 ``out_channels`` and every option that differs from its default).
    ``x``        input, ``(batch, time, H, W, C)`` or ``(batch, time, C, H, W)`` for
                 ``channels_first``; float32 (float64 for ``dtype="float64"``).
    ``w0, w1..`` weights in Keras ``get_weights()`` order, concatenated over stacked layers:
                 per layer ``kernel (kh, kw, C_in, 4F)``, ``recurrent_kernel (kh, kw, F, 4F)``
                 and ``bias (4F,)`` (no bias when ``use_bias=False``).
    ``mask``     optional bool ``(batch, time)``.
    ``h0, c0``   optional initial state of the (first) layer, shaped like one output frame
                 ``(batch, H', W', F)`` (``(batch, F, H', W')`` for ``channels_first``).
    ``output``   the Keras output; ``h`` and ``c`` (last layer's final states) when
                 ``return_state``; ``x2`` and ``output2`` (a second call that continues the
                 state) when ``stateful``.

``maxpool3d_<case>.npz``
    ``config``   JSON of ``convlstm.MaxPooling3D`` kwargs (``pool_size`` always, the other
                 options when they differ from the defaults; our ``stride`` is Keras'
                 ``strides``).
    ``x``, ``output``.

How our options map to Keras: ``num_layers=N`` is a chain of N ``ConvLSTM2D`` layers (the
first maps C_in -> F, the others F -> F, all but the last with ``return_sequences=True``);
``leaky_relu_slope`` adds a ``LeakyReLU`` after every ConvLSTM2D layer (states stay raw); an
integer or pair padding is a ``ZeroPadding3D`` on H and W in front of every ConvLSTM2D layer,
which then uses ``padding="valid"``; ``go_backwards`` is set on the first layer only (the
stack reads time reversed once). Input, weights and initial states are drawn on a 1/256 grid
so that they are exact in float32 and float64.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
import numpy as np

OUT_DIR = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "keras"
BASE_SEED = 20240601
BATCH = 2

CONVLSTM_DEFAULTS: dict[str, Any] = {
    "kernel_size": 3,
    "padding": "same",
    "stride": 1,
    "leaky_relu_slope": None,
    "num_layers": 1,
    "dilation": 1,
    "activation": "tanh",
    "recurrent_activation": "sigmoid",
    "use_bias": True,
    "return_sequences": True,
    "return_state": False,
    "go_backwards": False,
    "stateful": False,
    "data_format": "channels_last",
    "dtype": "float32",
}

MAXPOOL_DEFAULTS: dict[str, Any] = {
    "pool_size": (2, 2, 2),
    "stride": None,
    "padding": "valid",
    "data_format": "channels_last",
}

# Mask with False entries at the first and at the last step (batch of 2).
MASK_PATTERN = ((False, True, True, False, True), (True, True, False, True, False))


@dataclass(frozen=True)
class ConvLSTMCase:
    """One ConvLSTM fixture: our non-default kwargs plus the shape of the data."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    in_channels: int = 2
    out_channels: int = 3
    frame: tuple[int, int] = (5, 6)
    time: int = 4
    mask: bool = False
    initial_state: bool = False


@dataclass(frozen=True)
class MaxPoolCase:
    """One MaxPooling3D fixture: our kwargs plus the input shape (without batch)."""

    name: str
    options: Mapping[str, Any]
    shape: tuple[int, int, int, int]
    dtype: str = "float32"


CONVLSTM_CASES: tuple[ConvLSTMCase, ...] = (
    ConvLSTMCase("default"),
    ConvLSTMCase("valid", {"padding": "valid"}, frame=(6, 7)),
    ConvLSTMCase("same_stride2_odd", {"stride": 2}, frame=(7, 6)),
    ConvLSTMCase("valid_stride2", {"padding": "valid", "stride": 2}, frame=(7, 6)),
    ConvLSTMCase("dilation2_same", {"dilation": 2}, frame=(7, 7), time=3),
    ConvLSTMCase("dilation2_valid", {"padding": "valid", "dilation": 2}, frame=(7, 7)),
    ConvLSTMCase("kernel2x3_same", {"kernel_size": (2, 3)}),
    ConvLSTMCase("kernel1", {"kernel_size": 1}),
    ConvLSTMCase("pad2_k3", {"padding": 2}),
    ConvLSTMCase("pad1x0", {"padding": (1, 0)}),
    ConvLSTMCase("activation_relu", {"activation": "relu"}),
    ConvLSTMCase("activation_elu", {"activation": "elu"}),
    ConvLSTMCase("activation_softsign", {"activation": "softsign"}),
    ConvLSTMCase("activation_linear", {"activation": "linear"}),
    ConvLSTMCase("recurrent_hard_sigmoid", {"recurrent_activation": "hard_sigmoid"}),
    ConvLSTMCase("recurrent_relu", {"recurrent_activation": "relu"}),
    ConvLSTMCase("no_bias", {"use_bias": False}),
    ConvLSTMCase("last_output", {"return_sequences": False}),
    ConvLSTMCase("return_state", {"return_state": True}),
    ConvLSTMCase("return_state_last", {"return_state": True, "return_sequences": False}),
    ConvLSTMCase("go_backwards", {"go_backwards": True}, time=5),
    ConvLSTMCase("go_backwards_last", {"go_backwards": True, "return_sequences": False}),
    ConvLSTMCase("mask", {"return_state": True}, time=5, mask=True),
    ConvLSTMCase("mask_last", {"return_sequences": False}, time=5, mask=True),
    ConvLSTMCase(
        "mask_go_backwards", {"go_backwards": True, "return_state": True}, time=5, mask=True
    ),
    ConvLSTMCase("initial_state", {}, initial_state=True),
    ConvLSTMCase(
        "initial_state_mask_return_state",
        {"return_state": True},
        time=5,
        mask=True,
        initial_state=True,
    ),
    ConvLSTMCase(
        "stack2_leaky02_pad1",
        {"num_layers": 2, "padding": 1, "leaky_relu_slope": 0.2},
        in_channels=1,
    ),
    ConvLSTMCase("stack3", {"num_layers": 3}, out_channels=2, time=3),
    ConvLSTMCase("stack2_go_backwards", {"num_layers": 2, "go_backwards": True}),
    ConvLSTMCase(
        "stack2_leaky01_return_state_last",
        {"num_layers": 2, "leaky_relu_slope": 0.1, "return_state": True, "return_sequences": False},
    ),
    ConvLSTMCase("stack2_pad2_grow", {"num_layers": 2, "padding": 2}, frame=(5, 5), time=3),
    ConvLSTMCase("stack2_mask", {"num_layers": 2}, time=5, mask=True),
    ConvLSTMCase("leaky03", {"leaky_relu_slope": 0.3}),
    ConvLSTMCase("channels_first", {"data_format": "channels_first"}),
    ConvLSTMCase(
        "channels_first_stride2", {"data_format": "channels_first", "stride": 2}, frame=(7, 6)
    ),
    ConvLSTMCase("channels_first_pad1x2", {"data_format": "channels_first", "padding": (1, 2)}),
    ConvLSTMCase("float64", {"dtype": "float64"}),
    ConvLSTMCase("stateful", {"stateful": True, "return_state": True}, time=3),
)

MAXPOOL_CASES: tuple[MaxPoolCase, ...] = (
    MaxPoolCase("pool222_valid_even", {}, (4, 6, 6, 2)),
    MaxPoolCase("pool222_valid_odd", {}, (5, 7, 5, 2)),
    MaxPoolCase("pool2_same_odd", {"padding": "same", "stride": (2, 2, 2)}, (5, 7, 5, 2)),
    MaxPoolCase(
        "pool3_stride2_same",
        {"pool_size": (3, 3, 3), "stride": (2, 2, 2), "padding": "same"},
        (5, 7, 6, 2),
    ),
    MaxPoolCase("pool3_stride1_valid", {"pool_size": (3, 3, 3), "stride": (1, 1, 1)}, (5, 6, 5, 2)),
    MaxPoolCase("pool122", {"pool_size": (1, 2, 2)}, (3, 6, 7, 2)),
    MaxPoolCase(
        "pool231_stride121_same",
        {"pool_size": (2, 3, 1), "stride": (1, 2, 1), "padding": "same"},
        (5, 7, 5, 2),
    ),
    MaxPoolCase(
        "channels_first_same", {"padding": "same", "data_format": "channels_first"}, (2, 5, 7, 5)
    ),
    MaxPoolCase(
        "float64",
        {"pool_size": (3, 3, 3), "stride": (2, 2, 2), "padding": "same"},
        (5, 7, 6, 2),
        dtype="float64",
    ),
)


def case_rng(kind: str, name: str) -> np.random.Generator:
    """A generator seeded from the case name, so cases do not depend on each other."""
    return np.random.default_rng([BASE_SEED, zlib.crc32(f"{kind}/{name}".encode())])


def grid_uniform(
    rng: np.random.Generator, shape: tuple[int, ...], low: float, high: float, dtype: str
) -> np.ndarray:
    """Uniform values in [low, high) on a 1/256 grid (exact in float32 and float64)."""
    steps = rng.integers(round(low * 256), round(high * 256), size=shape)
    return (steps / 256.0).astype(dtype)


def pair(value: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """Normalise an int or a pair of ints to a pair."""
    if isinstance(value, int):
        return value, value
    first, second = value
    return int(first), int(second)


def non_default(options: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The options whose value differs from the default (tuples compare like lists)."""

    def norm(v: Any) -> Any:
        return list(v) if isinstance(v, tuple) else v

    return {k: v for k, v in options.items() if norm(v) != norm(defaults[k])}


def json_array(config: Mapping[str, Any]) -> np.ndarray:
    """A 0-d string array holding ``config`` as JSON (tuples become lists)."""
    return np.array(json.dumps(config))


def output_frame(cfg: Mapping[str, Any], frame: tuple[int, int]) -> tuple[int, int]:
    """Spatial size of a ConvLSTM output frame under our padding conventions."""
    sizes = []
    for n, k, s, d, axis in zip(
        frame,
        pair(cfg["kernel_size"]),
        pair(cfg["stride"]),
        pair(cfg["dilation"]),
        (0, 1),
        strict=True,
    ):
        eff = (k - 1) * d + 1
        if cfg["padding"] == "same":
            sizes.append(-(-n // s))
        elif cfg["padding"] == "valid":
            sizes.append((n - eff) // s + 1)
        else:
            sizes.append((n + 2 * pair(cfg["padding"])[axis] - eff) // s + 1)
    return sizes[0], sizes[1]


def to_layout(channels_last_shape: tuple[int, ...], channels_first: bool) -> tuple[int, ...]:
    """Move the trailing channel axis to position 2 for channels_first sequences."""
    if not channels_first:
        return channels_last_shape
    *lead, c = channels_last_shape
    return (*lead[:-2], c, *lead[-2:])


def build_convlstm(
    cfg: Mapping[str, Any],
    case: ConvLSTMCase,
    x_shape: tuple[int, ...],
    state_shape: tuple[int, ...],
) -> keras.Model:
    """Functional Keras model equivalent to our ConvLSTM2D with options ``cfg``.

    Inputs are ``[x]`` plus ``mask`` and ``h0, c0`` when the case uses them; outputs are
    ``[output]`` plus ``h, c`` when ``return_state``.
    """
    dtype = cfg["dtype"]
    padding = cfg["padding"]
    zero_pad = None if isinstance(padding, str) else pair(padding)
    x_in = keras.Input(batch_shape=x_shape, dtype=dtype, name="x")
    inputs = [x_in]
    mask_in = None
    if case.mask:
        mask_in = keras.Input(batch_shape=(BATCH, case.time), dtype="bool", name="mask")
        inputs.append(mask_in)
    state_in = []
    if case.initial_state:
        state_in = [keras.Input(batch_shape=state_shape, dtype=dtype, name=n) for n in ("h0", "c0")]
        inputs.extend(state_in)

    y, states = x_in, []
    for i in range(cfg["num_layers"]):
        last = i == cfg["num_layers"] - 1
        if zero_pad is not None:
            ph, pw = zero_pad
            # With channels_first the padded axes are (C, H, W); C gets no padding either way.
            y = keras.layers.ZeroPadding3D(
                ((0, 0), (ph, ph), (pw, pw)), data_format=cfg["data_format"], dtype=dtype
            )(y)
        layer = keras.layers.ConvLSTM2D(
            filters=case.out_channels,
            kernel_size=pair(cfg["kernel_size"]),
            strides=pair(cfg["stride"]),
            padding="valid" if zero_pad is not None else padding,
            data_format=cfg["data_format"],
            dilation_rate=pair(cfg["dilation"]),
            activation=cfg["activation"],
            recurrent_activation=cfg["recurrent_activation"],
            use_bias=cfg["use_bias"],
            return_sequences=cfg["return_sequences"] or not last,
            return_state=cfg["return_state"] and last,
            go_backwards=cfg["go_backwards"] and i == 0,
            stateful=cfg["stateful"],
            dtype=dtype,
        )
        call_kwargs: dict[str, Any] = {}
        if mask_in is not None:
            # Later layers see the sequence in the order the first layer produced it.
            reverse = cfg["go_backwards"] and i > 0
            call_kwargs["mask"] = keras.ops.flip(mask_in, axis=1) if reverse else mask_in
        if state_in and i == 0:
            call_kwargs["initial_state"] = state_in
        result = layer(y, **call_kwargs)
        if cfg["return_state"] and last:
            y, *states = result
        else:
            y = result
        if cfg["leaky_relu_slope"] is not None:
            y = keras.layers.LeakyReLU(negative_slope=cfg["leaky_relu_slope"], dtype=dtype)(y)
    return keras.Model(inputs, [y, *states])


def run_model(model: keras.Model, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Call ``model`` eagerly and return its outputs as NumPy arrays."""
    outputs = model(inputs)
    if not isinstance(outputs, list | tuple):
        outputs = [outputs]
    return [keras.ops.convert_to_numpy(o) for o in outputs]


def make_convlstm_case(case: ConvLSTMCase) -> dict[str, np.ndarray]:
    """Build, run and collect the arrays of one ConvLSTM fixture."""
    unknown = set(case.options) - set(CONVLSTM_DEFAULTS)
    if unknown:
        raise ValueError(f"{case.name}: unknown options {sorted(unknown)}")
    cfg = {**CONVLSTM_DEFAULTS, **case.options}
    if cfg["stateful"] and case.initial_state:
        raise ValueError(f"{case.name}: the second stateful call would reset the state")
    rng = case_rng("convlstm", case.name)
    dtype = cfg["dtype"]
    channels_first = cfg["data_format"] == "channels_first"
    x_shape = to_layout((BATCH, case.time, *case.frame, case.in_channels), channels_first)
    state_shape = to_layout(
        (BATCH, *output_frame(cfg, case.frame), case.out_channels), channels_first
    )
    model = build_convlstm(cfg, case, x_shape, state_shape)

    weights = [grid_uniform(rng, tuple(w.shape), -0.5, 0.5, dtype) for w in model.get_weights()]
    model.set_weights(weights)
    arrays: dict[str, np.ndarray] = {
        "config": json_array(
            {
                "in_channels": case.in_channels,
                "out_channels": case.out_channels,
                **non_default(case.options, CONVLSTM_DEFAULTS),
            }
        ),
        "x": grid_uniform(rng, x_shape, -1.0, 1.0, dtype),
    }
    arrays.update({f"w{i}": w for i, w in enumerate(model.get_weights())})
    if case.mask:
        arrays["mask"] = np.array(MASK_PATTERN, dtype=bool)[:, : case.time]
    if case.initial_state:
        arrays["h0"] = grid_uniform(rng, state_shape, -0.5, 0.5, dtype)
        arrays["c0"] = grid_uniform(rng, state_shape, -1.0, 1.0, dtype)

    feed = [arrays[k] for k in ("x", "mask", "h0", "c0") if k in arrays]
    names = ["output", "h", "c"] if cfg["return_state"] else ["output"]
    arrays.update(zip(names, run_model(model, feed), strict=True))
    if cfg["stateful"]:
        arrays["x2"] = grid_uniform(rng, x_shape, -1.0, 1.0, dtype)
        arrays["output2"] = run_model(model, [arrays["x2"], *feed[1:]])[0]
    return arrays


def make_maxpool_case(case: MaxPoolCase) -> dict[str, np.ndarray]:
    """Build, run and collect the arrays of one MaxPooling3D fixture."""
    unknown = set(case.options) - set(MAXPOOL_DEFAULTS)
    if unknown:
        raise ValueError(f"{case.name}: unknown options {sorted(unknown)}")
    cfg = {**MAXPOOL_DEFAULTS, **case.options}
    rng = case_rng("maxpool3d", case.name)
    # Mostly negative values: a padded cell that took part in the max would show up as 0.
    x = grid_uniform(rng, (BATCH, *case.shape), -1.0, 0.25, case.dtype)
    layer = keras.layers.MaxPooling3D(
        pool_size=cfg["pool_size"],
        strides=cfg["stride"],
        padding=cfg["padding"],
        data_format=cfg["data_format"],
        dtype=case.dtype,
    )
    config = {"pool_size": cfg["pool_size"], **non_default(case.options, MAXPOOL_DEFAULTS)}
    return {
        "config": json_array(config),
        "x": x,
        "output": keras.ops.convert_to_numpy(layer(x)),
    }


def save_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write a compressed ``.npz`` like ``np.savez_compressed``, with fixed zip timestamps."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w") as stream:
                np.lib.format.write_array(stream, np.asanyarray(array), allow_pickle=False)


def main() -> None:
    """Regenerate every fixture and print a listing."""
    if keras.backend.backend() != "torch":
        print(f"note: running on the {keras.backend.backend()!r} Keras backend, not torch")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for stale in OUT_DIR.glob("*.npz"):
        stale.unlink()
    jobs = [("convlstm", c, make_convlstm_case) for c in CONVLSTM_CASES]
    jobs += [("maxpool3d", c, make_maxpool_case) for c in MAXPOOL_CASES]
    for kind, case, make in jobs:
        arrays = make(case)
        path = OUT_DIR / f"{kind}_{case.name}.npz"
        save_npz(path, arrays)
        shapes = ", ".join(
            f"{k}{tuple(arrays[k].shape)}" for k in ("x", "output", "h", "output2") if k in arrays
        )
        print(f"{path.name:48s} {path.stat().st_size:6d} B  {shapes}")
    total = sum(p.stat().st_size for p in OUT_DIR.glob("*.npz"))
    print(f"{len(jobs)} files, {total / 1024:.1f} KiB in {OUT_DIR}")


if __name__ == "__main__":
    main()

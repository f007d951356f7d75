"""PyTorch's side of the benchmark: its two usual ConvLSTM designs and ``max_pool3d``.

Both designs compute Keras' ConvLSTM2D (gates i, f, c, o fused along the channels; sigmoid for
i, f, o and tanh for the candidate and the output; the recurrent convolution "same" with no
bias) on the weights of a :class:`harness.ConvLSTMProblem`, converted from Keras'
(kh, kw, in, 4F) to PyTorch's OIHW:

* ``fused``: per step one ``conv2d`` over the concatenation ``[x_t, h]`` with the two kernels
  concatenated along the input channels (the common ``ConvLSTMCell`` found in PyTorch code);
* ``split``: the input ``conv2d`` over all B*T frames at once (with the bias), then per step
  only the recurrent ``conv2d``.

Inputs arrive channels-last (B, T, H, W, C), as this library takes them; the permute to
(B, T, C, H, W) and the output's permute back to channels-last are inside the timed step. The
forward runs under ``torch.inference_mode()``; the training step uses autograd (MSE loss,
backward to the input and every weight). MaxPooling3D is ``max_pool3d`` on the (B, C, D, H, W)
permuted view of the channels-last input, the result permuted back and made contiguous.

Run alone only as the benchmark's memory probe::

    python benchmarks/torch_convlstm.py --memory-probe b --design split [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import numpy as np
import torch
from torch.nn import functional as nnf

from harness import (
    LEARNING_RATE,
    MODEL_SHAPES,
    POOL_SIZE,
    ConvLSTMProblem,
    ForecasterProblem,
    Runner,
    Workload,
    measure_step_memory,
    problem_for,
    workloads,
)

DESIGNS = ("fused", "split")


def to_oihw(kernel: np.ndarray) -> torch.Tensor:
    """Keras (kh, kw, in, out) -> PyTorch (out, in, kh, kw), contiguous."""
    return torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))


def to_keras(weight: torch.Tensor) -> np.ndarray:
    """PyTorch (out, in, kh, kw) -> Keras (kh, kw, in, out)."""
    return np.ascontiguousarray(weight.detach().numpy().transpose(2, 3, 1, 0))


class TorchConvLSTM:
    """One ConvLSTM layer in PyTorch, ``design`` "fused" or "split", holding leaf weights."""

    def __init__(self, problem: ConvLSTMProblem | None, design: str,
                 weights: list[np.ndarray] | None = None) -> None:
        if design not in DESIGNS:
            raise ValueError(f"TorchConvLSTM: expected design in {DESIGNS}; got {design!r}.")
        self.design = design
        if weights is None:
            weights = [problem.kernel, problem.recurrent_kernel, problem.bias]
        kernel_array, recurrent_array, bias_array = weights  # Keras layout
        self.in_channels = kernel_array.shape[2]
        self.filters = recurrent_array.shape[2]
        kernel, recurrent = to_oihw(kernel_array), to_oihw(recurrent_array)
        self.bias = torch.from_numpy(bias_array.copy()).requires_grad_()
        if design == "fused":
            self.weight = torch.cat([kernel, recurrent], dim=1).requires_grad_()  # (4F, C+F, 3, 3)
            self.params = [self.weight, self.bias]
        else:
            self.kernel = kernel.requires_grad_()
            self.recurrent_kernel = recurrent.requires_grad_()
            self.params = [self.kernel, self.recurrent_kernel, self.bias]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, H, W, C) channels-last -> outputs (B, T, H, W, F), a permuted view."""
        frames = x.permute(0, 1, 4, 2, 3).contiguous()  # (B, T, C, H, W)
        return self.forward_planes(frames).permute(0, 1, 3, 4, 2)

    def forward_planes(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, C, H, W) contiguous -> outputs (B, T, F, H, W)."""
        B, T, C, H, W = frames.shape
        kernel = (self.weight if self.design == "fused" else self.recurrent_kernel).shape[-1]
        padding = kernel // 2
        h = frames.new_zeros(B, self.filters, H, W)
        c = frames.new_zeros(B, self.filters, H, W)
        if self.design == "split":
            z_x = nnf.conv2d(frames.view(B * T, C, H, W), self.kernel, self.bias,
                             padding=padding)
            z_x = z_x.view(B, T, 4 * self.filters, H, W)
        outputs = []
        for t in range(T):
            if self.design == "fused":
                z = nnf.conv2d(
                    torch.cat([frames[:, t], h], dim=1), self.weight, self.bias,
                    padding=padding
                )
            else:
                z = z_x[:, t] + nnf.conv2d(h, self.recurrent_kernel, padding=padding)
            z_i, z_f, z_c, z_o = z.chunk(4, dim=1)
            c = torch.sigmoid(z_f) * c + torch.sigmoid(z_i) * torch.tanh(z_c)
            h = torch.sigmoid(z_o) * torch.tanh(c)
            outputs.append(h)
        return torch.stack(outputs, dim=1)

    def keras_grads(self) -> dict[str, np.ndarray]:
        """The weights' gradients in Keras layout: d_kernel, d_recurrent_kernel, d_bias."""
        if self.design == "fused":
            grad = self.weight.grad
            kernel, recurrent = grad[:, : self.in_channels], grad[:, self.in_channels :]
        else:
            kernel, recurrent = self.kernel.grad, self.recurrent_kernel.grad
        return {
            "d_kernel": to_keras(kernel),
            "d_recurrent_kernel": to_keras(recurrent),
            "d_bias": self.bias.grad.numpy().copy(),
        }


def convlstm_runner(workload: Workload, problem: ConvLSTMProblem, design: str) -> Runner:
    """PyTorch's :class:`Runner` for a ConvLSTM2D forward or training step."""
    model = TorchConvLSTM(problem, design)
    if workload.kind == "forward":
        x = torch.from_numpy(problem.x)

        def forward() -> torch.Tensor:
            with torch.inference_mode():
                return model.forward(x).contiguous()

        return Runner(run=forward, collect=lambda out: {"output": out.numpy()})

    x = torch.from_numpy(problem.x.copy()).requires_grad_()
    target = torch.from_numpy(problem.target)

    def train() -> torch.Tensor:
        x.grad = None
        for param in model.params:
            param.grad = None
        loss = nnf.mse_loss(model.forward(x), target)
        loss.backward()
        return loss.detach()

    def collect(loss: torch.Tensor) -> dict[str, np.ndarray]:
        return {"loss": loss.numpy(), "d_x": x.grad.numpy(), **model.keras_grads()}

    return Runner(run=train, collect=collect)


class TorchForecaster:
    """Workload m in PyTorch: ``convlstm.forecasting.forecaster`` on the same initial weights.

    (B, T, 64, 64, 1) channels-last frames -> ``pixel_unshuffle(4)`` (for one channel the same
    channel order as our SpaceToDepth) -> ConvLSTM layers of one design -> 1x1 sigmoid head ->
    ``pixel_shuffle(4)``; binary cross-entropy; ``torch.optim.Adam`` with Keras' epsilon.
    """

    def __init__(self, problem: ForecasterProblem, design: str) -> None:
        self.block = problem.shape.block
        weights = problem.weights
        count = problem.shape.layers
        self.layers = [TorchConvLSTM(None, design, weights[3 * k : 3 * k + 3])
                       for k in range(count)]
        head_kernel, head_bias = weights[3 * count :]
        self.head = torch.from_numpy(np.ascontiguousarray(
            head_kernel[0, 0, 0].T[:, :, None, None])).requires_grad_()  # (16, F, 1, 1)
        self.head_bias = torch.from_numpy(head_bias.copy()).requires_grad_()
        self.params = [*(p for layer in self.layers for p in layer.params), self.head,
                       self.head_bias]
        self.optimizer = torch.optim.Adam(self.params, lr=LEARNING_RATE, eps=1e-7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, H, W, 1) -> predictions (B, T, H, W, 1) in (0, 1)."""
        B, T, H, W, C = x.shape
        frames = nnf.pixel_unshuffle(x.permute(0, 1, 4, 2, 3).reshape(B * T, C, H, W),
                                     self.block)
        h = frames.view(B, T, *frames.shape[1:])
        for layer in self.layers:
            h = layer.forward_planes(h)
        _, _, F, side, _ = h.shape
        y = torch.sigmoid(nnf.conv2d(h.reshape(B * T, F, side, side), self.head,
                                     self.head_bias))
        return nnf.pixel_shuffle(y, self.block).view(B, T, C, H, W).permute(0, 1, 3, 4, 2)

    def keras_grads(self) -> dict[str, np.ndarray]:
        """Every weight's gradient in Keras layout, in ``get_weights`` order, as ``d_<k>``."""
        grads = []
        for layer in self.layers:
            layer_grads = layer.keras_grads()
            grads += [layer_grads[key] for key in ("d_kernel", "d_recurrent_kernel", "d_bias")]
        grads.append(self.head.grad.numpy()[:, :, 0, 0].T[None, None, None].copy())
        grads.append(self.head_bias.grad.numpy().copy())
        return {f"d_{k}": grad for k, grad in enumerate(grads)}


def forecaster_runner(problem: ForecasterProblem, design: str) -> Runner:
    """PyTorch's whole training step of workload m: forward, loss, backward, Adam's step."""
    model = TorchForecaster(problem, design)
    x, target = torch.from_numpy(problem.x), torch.from_numpy(problem.target)

    def train() -> torch.Tensor:
        model.optimizer.zero_grad(set_to_none=True)
        loss = nnf.binary_cross_entropy(model.forward(x), target)
        loss.backward()
        model.optimizer.step()
        return loss.detach()

    return Runner(run=train, collect=lambda loss: {"loss": loss.numpy(), **model.keras_grads()})


def stream_runner(problem: ConvLSTMProblem, design: str) -> Runner:
    """Workload e in PyTorch: the cell stepped once per frame under ``inference_mode``, its
    states carried between calls, each frame arriving channels-last (B, 1, H, W, C)."""
    model = TorchConvLSTM(problem, design)
    frames = [torch.from_numpy(np.ascontiguousarray(problem.x[:, t : t + 1]))
              for t in range(problem.shape.time)]
    B, _, H, W, _ = problem.x.shape
    F = problem.shape.filters

    def stream() -> torch.Tensor:
        with torch.inference_mode():
            h = torch.zeros(B, F, H, W)
            c = torch.zeros(B, F, H, W)
            outputs = []
            for frame in frames:
                x = frame[:, 0].permute(0, 3, 1, 2)  # (B, C, H, W)
                if model.design == "fused":
                    z = nnf.conv2d(torch.cat([x, h], dim=1), model.weight, model.bias, padding=1)
                else:
                    z = (nnf.conv2d(x, model.kernel, model.bias, padding=1)
                         + nnf.conv2d(h, model.recurrent_kernel, padding=1))
                z_i, z_f, z_c, z_o = z.chunk(4, dim=1)
                c = torch.sigmoid(z_f) * c + torch.sigmoid(z_i) * torch.tanh(z_c)
                h = torch.sigmoid(z_o) * torch.tanh(c)
                outputs.append(h.permute(0, 2, 3, 1).contiguous()[:, None])  # channels-last
            return torch.cat(outputs, dim=1)

    return Runner(run=stream, collect=lambda out: {"output": out.numpy()})


def max_pool(x: torch.Tensor) -> torch.Tensor:
    """MaxPooling3D((2, 2, 2)) of channels-last (B, D, H, W, C), channels-last out."""
    pooled = nnf.max_pool3d(x.permute(0, 4, 1, 2, 3), POOL_SIZE)  # (B, C, D', H', W')
    return pooled.permute(0, 2, 3, 4, 1).contiguous()


def pool_runner(workload: Workload, problem: tuple[np.ndarray, np.ndarray]) -> Runner:
    """PyTorch's :class:`Runner` for the pooling forward or backward."""
    x_array, d_output_array = problem
    if workload.kind == "forward":
        x = torch.from_numpy(x_array)

        def forward() -> torch.Tensor:
            with torch.inference_mode():
                return max_pool(x)

        return Runner(run=forward, collect=lambda out: {"output": out.numpy()})

    x = torch.from_numpy(x_array.copy()).requires_grad_()
    d_output = torch.from_numpy(d_output_array)
    graph: dict[str, torch.Tensor] = {}

    def prepare() -> None:
        x.grad = None
        graph["output"] = max_pool(x)

    def backward() -> torch.Tensor:
        graph.pop("output").backward(d_output)
        return x.grad

    return Runner(run=backward, prepare=prepare, collect=lambda d_x: {"d_x": d_x.numpy()})


def torch_runners(workload: Workload, problem: Any) -> dict[str, Runner]:
    """PyTorch's runners for ``workload``, by design ("max_pool3d" for pooling)."""
    if workload.group == "pool":
        return {"max_pool3d": pool_runner(workload, problem)}
    if workload.group in MODEL_SHAPES:
        return {design: forecaster_runner(problem, design) for design in DESIGNS}
    if workload.kind == "stream":
        return {design: stream_runner(problem, design) for design in DESIGNS}
    return {design: convlstm_runner(workload, problem, design) for design in DESIGNS}


def memory_probe(group: str, design: str, quick: bool) -> dict[str, Any]:
    """PyTorch's training step on ``group`` measured in this process (call it in a fresh one)."""
    (workload,) = workloads(quick, [f"{group}/train"])
    runner = convlstm_runner(workload, problem_for(workload), design)
    record = measure_step_memory(runner.run)
    return {"library": f"torch {design}", "workload": workload.name, **record}


def main(argv: list[str] | None = None) -> int:
    """The memory probe: one training step in this fresh process, one JSON line out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory-probe", required=True, metavar="GROUP")
    parser.add_argument("--design", choices=DESIGNS, default="split")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    print(json.dumps(memory_probe(args.memory_probe, args.design, args.quick)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The host's cost of one framework call per layer kind, timed alone: PyTorch eager on a GPU.

A training or inference step of a small network is bound by the host thread, and its calls
do not all cost the same: a cuDNN convolution or batch norm goes through cuDNN's plan
lookup, a ReLU through one TensorIterator kernel. This times, for each layer kind of the
zoo (benchmarks/torch_zoo.py: same modules, NCHW, cudnn.benchmark off, fp32), the host's
wall time per call of the module, with tensors small enough that the GPU never holds the
host back:
- `fwd.infer`: `module(x)` under `model.eval()` and `torch.inference_mode()`,
- `fwd.train`: `module(x)` in train mode with autograd recording (x requires grad; each
  call on a copy of x, the copy's own cost taken off),
- `bwd`: the autograd node's cost in `backward()`: K independent branches
  `layer_i(x.clone()).sum()` summed, minus the same graph with the layer left out, per
  branch (the layer's AccumulateGrad nodes for its own parameters included).
Medians of repeated timings; raw times are kept. On a CUDA machine:

    python benchmarks/torch_host_calls.py --out measurements/h200-host-calls.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch_zoo
from torch import nn

SCHEMA = "simulator.torch-host-calls/1"
CALLS, REPS, BRANCHES = 200, 7, 32


def cases(dev: str) -> list[tuple[str, str, Callable[[], nn.Module], tuple[int, ...]]]:
    """(layer kind, variant, module factory, input shape): the zoo's layer kinds."""
    ones = torch.ones(1, 64, 16, 16, device=dev)

    class Add(nn.Module):  # a residual add (out-of-place, as MobileNetV2 and x + f(x))
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + ones

    class CrossEntropy(nn.Module):
        target = torch.zeros(4, dtype=torch.long, device=dev)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return nn.functional.cross_entropy(x, self.target)

    img = (1, 64, 16, 16)
    return [
        ("conv2d", "3x3 64->64 no bias", lambda: nn.Conv2d(64, 64, 3, padding=1, bias=False), img),
        ("conv2d", "3x3 64->64 bias", lambda: nn.Conv2d(64, 64, 3, padding=1), img),
        ("conv2d", "1x1 64->256 no bias", lambda: nn.Conv2d(64, 256, 1, bias=False), img),
        ("conv2d", "7x7/2 3->64 no bias", lambda: nn.Conv2d(3, 64, 7, 2, 3, bias=False),
         (1, 3, 32, 32)),
        ("conv2d", "11x11/4 3->64 bias", lambda: nn.Conv2d(3, 64, 11, 4, 2), (1, 3, 64, 64)),
        ("conv2d", "depthwise 3x3 64", lambda: nn.Conv2d(64, 64, 3, padding=1, groups=64,
                                                         bias=False), img),
        ("batchnorm2d", "64", lambda: nn.BatchNorm2d(64), img),
        ("relu", "inplace", lambda: nn.ReLU(inplace=True), img),
        ("relu", "out of place", lambda: nn.ReLU(), img),
        ("relu6", "inplace", lambda: nn.ReLU6(inplace=True), img),
        ("add", "x + y", Add, img),
        ("maxpool2d", "3/2 pad 1", lambda: nn.MaxPool2d(3, 2, 1), img),
        ("adaptive_avgpool2d", "1x1", lambda: nn.AdaptiveAvgPool2d(1), img),
        ("adaptive_avgpool2d", "6x6", lambda: nn.AdaptiveAvgPool2d(6), img),
        ("linear", "512->1000", lambda: nn.Linear(512, 1000), (4, 512)),
        ("dropout", "0.5", lambda: nn.Dropout(0.5), (4, 512)),
        ("cross_entropy", "4x1000", CrossEntropy, (4, 1000)),
    ]


def per_call_s(fn: Callable[[], Any], calls: int = CALLS, reps: int = REPS) -> list[float]:
    """Host seconds per call of `fn`, `reps` times over `calls` calls (GPU drained first)."""
    out = []
    for _ in range(reps):
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        out.append((time.perf_counter() - start) / calls)
    torch.cuda.synchronize()
    return out


def backward_s(modules: list[nn.Module] | None, x: torch.Tensor, reps: int = REPS) -> list[float]:
    """Host seconds of one `backward()` over len(modules) branches (None: the branches
    without the layer)."""
    out = []
    for _ in range(reps + 1):
        layers = modules or [nn.Identity()] * BRANCHES
        total = sum(m(x.clone()).sum() for m in layers)
        torch.cuda.synchronize()
        start = time.perf_counter()
        total.backward()  # type: ignore[union-attr]
        out.append(time.perf_counter() - start)
        torch.cuda.synchronize()
        x.grad = None
        for m in modules or []:
            m.zero_grad(set_to_none=True)
    return out[1:]  # the first builds the engine's buffers


def measure(dev: str) -> list[dict[str, Any]]:
    records = []
    for kind, variant, make, shape in cases(dev):
        module = make().to(dev)
        x = torch.randn(*shape, device=dev)
        module.eval()
        with torch.inference_mode():
            per_call_s(lambda m=module, x=x: m(x), 20, 1)  # warm-up
            infer = per_call_s(lambda m=module, x=x: m(x))
        module.train()
        xg_in = x.clone().requires_grad_(True)
        # each call on its own copy (in-place layers cannot write a leaf), the copy's cost
        # measured alone and taken off
        per_call_s(lambda m=module, x=xg_in: m(x.clone()), 20, 1)
        copied = per_call_s(lambda m=module, x=xg_in: m(x.clone()))
        copy = per_call_s(lambda x=xg_in: x.clone())
        train = [a - b for a, b in zip(copied, copy, strict=True)]
        branches = [make().to(dev).train() for _ in range(BRANCHES)]
        with_layer = backward_s(branches, xg_in)
        without = backward_s(None, xg_in)
        bwd = [(a - b) / BRANCHES for a, b in zip(with_layer, without, strict=True)]
        for part, times in (("fwd.infer", infer), ("fwd.train", train), ("bwd", bwd)):
            records.append({"kind": kind, "variant": variant, "pass": part,
                            "input_shape": list(shape), "median_s": statistics.median(times),
                            "times_s": [float(f"{t:.6g}") for t in times], "status": "ok"})
        print(f"{kind:20s} {variant:22s} infer {statistics.median(infer) * 1e6:7.1f} us  "
              f"train {statistics.median(train) * 1e6:7.1f} us  "
              f"bwd {statistics.median(bwd) * 1e6:7.1f} us", flush=True)
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("torch_host_calls: needs a CUDA GPU")
    torch.backends.cudnn.benchmark = False
    doc = torch_zoo.provenance("python3 " + " ".join(sys.argv), SCHEMA)
    doc["method"] = (f"host wall time per module call, median of {REPS} x {CALLS} calls; "
                     f"backward: {BRANCHES} branches with minus without the layer, per branch")
    doc["records"] = measure("cuda")
    torch_zoo.write_json_atomic(Path(args.out), doc)


if __name__ == "__main__":
    main()

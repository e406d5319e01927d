"""The facts behind workloads/memory.py, measured with PyTorch on one CUDA GPU.

Standalone (imports nothing from this repository). Run on a machine with torch, torchvision and
a CUDA GPU, in a fresh process:

    python3 benchmarks/torch_memory_facts.py --out OUT/h200-memory-facts.json [--batches 32 128]

1. `context`: device memory in use (total - free, cudaMemGetInfo) minus the caching allocator's
   reserve, after cuBLAS, cuBLASLt and cuDNN have run (modules load lazily, on first use):
   what the CUDA context and the libraries hold outside the allocator.
2. `cublas`: memory_allocated after a Linear's forward (bias: cuBLASLt) under inference_mode,
   then after a forward and backward (backward runs on autograd's device thread), with every
   tensor freed: the workspaces the handles keep.
3. `convolutions`: each distinct convolution of torchvision's alexnet, vgg16, resnet18,
   resnet50 and mobilenet_v2 (224x224 input), alone: max_memory_allocated during the call
   minus what was allocated before it and the tensors it returns; forward under
   inference_mode, then backward (torch.autograd.grad for input and weight), for fp32-strict
   (no TF32), fp32 (cuDNN TF32 on, PyTorch's default) and bf16 (input and weight in bf16).
   cudnn.benchmark False (heuristic algorithm choice), as in benchmarks/torch_zoo.py.
4. `context_after_steps`: item 1 again after one training step (SGD with momentum) and one
   inference step of each network at batch 8, in fp32 and under bf16 autocast: more kernels
   loaded, as in a process that ran the zoo.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from typing import Any

import torch
import torch.nn.functional as F
import torchvision

SCHEMA = "simulator.memory-facts/1"
NETWORKS = ("alexnet", "vgg16", "resnet18", "resnet50", "mobilenet_v2")
PRECISIONS = {"fp32-strict": (False, torch.float32), "fp32": (True, torch.float32),
              "bf16": (True, torch.bfloat16)}


def used_bytes() -> int:
    free, total = torch.cuda.mem_get_info()
    return int(total - free)


def context_and_cublas() -> dict[str, Any]:
    torch.cuda.init()
    torch.empty(1, device="cuda")
    torch.cuda.synchronize()
    out: dict[str, Any] = {"after_first_tensor": {"used_bytes": used_bytes(),
                                                  "reserved_bytes": torch.cuda.memory_reserved()}}
    lin = torch.nn.Linear(1024, 1024).cuda()
    x = torch.randn(64, 1024, device="cuda")
    base = torch.cuda.memory_allocated()
    with torch.inference_mode():
        y = lin(x)
    del y
    torch.cuda.synchronize()
    out["cublas"] = {"after_forward_bytes": torch.cuda.memory_allocated() - base}
    xg = x.clone().requires_grad_(True)
    lin(xg).sum().backward()
    lin.zero_grad(set_to_none=True)
    del xg
    torch.cuda.synchronize()
    out["cublas"]["after_backward_bytes"] = torch.cuda.memory_allocated() - base
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).cuda()
    xc = torch.randn(8, 64, 56, 56, device="cuda", requires_grad=True)
    conv(xc).sum().backward()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        conv(xc).sum().backward()
    del xc
    conv.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    used, reserved = used_bytes(), torch.cuda.memory_reserved()
    out["after_cublas_cudnn"] = {"used_bytes": used, "reserved_bytes": reserved,
                                 "context_bytes": used - reserved}
    out["total_bytes"] = int(torch.cuda.mem_get_info()[1])
    return out


def distinct_convs(name: str) -> list[dict[str, Any]]:
    model = getattr(torchvision.models, name)(weights=None).eval()
    seen: dict[tuple, dict[str, Any]] = {}

    def hook(mod: torch.nn.Conv2d, args: tuple, _out: torch.Tensor) -> None:
        c, h, w = args[0].shape[1:]
        spec = {"in_channels": c, "out_channels": mod.out_channels, "kernel": list(mod.kernel_size),
                "stride": list(mod.stride), "padding": list(mod.padding), "groups": mod.groups,
                "bias": mod.bias is not None, "height": h, "width": w}
        seen.setdefault(tuple(json.dumps(spec, sort_keys=True)), {**spec, "network": name})

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model(torch.zeros(1, 3, 224, 224))
    for h in handles:
        h.remove()
    return list(seen.values())


def conv_call(spec: dict[str, Any], batch: int, precision: str) -> dict[str, Any]:
    tf32, dtype = PRECISIONS[precision]
    torch.backends.cudnn.allow_tf32 = tf32
    x = torch.randn(batch, spec["in_channels"], spec["height"], spec["width"], device="cuda",
                    dtype=dtype)
    w = torch.randn(spec["out_channels"], spec["in_channels"] // spec["groups"], *spec["kernel"],
                    device="cuda", dtype=dtype)
    b = torch.zeros(spec["out_channels"], device="cuda", dtype=dtype) if spec["bias"] else None
    kw = {"stride": spec["stride"], "padding": spec["padding"], "groups": spec["groups"]}
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    with torch.inference_mode():
        y = F.conv2d(x, w, b, **kw)
    torch.cuda.synchronize()
    rec = {"forward_workspace_bytes": torch.cuda.max_memory_allocated() - base - y.nbytes,
           "input_bytes": x.nbytes, "output_bytes": y.nbytes}
    del y
    x.requires_grad_(True)
    w.requires_grad_(True)
    y = F.conv2d(x, w, None, **kw)
    g = torch.ones_like(y)
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    gx, gw = torch.autograd.grad(y, [x, w], g)
    torch.cuda.synchronize()
    rec["backward_workspace_bytes"] = (torch.cuda.max_memory_allocated() - base - gx.nbytes
                                       - gw.nbytes)
    return rec


def convolutions(batches: list[int]) -> list[dict[str, Any]]:
    rows = []
    for name in NETWORKS:
        for spec in distinct_convs(name):
            for batch in batches:
                for precision in PRECISIONS:
                    row = {**spec, "batch": batch, "precision": precision}
                    try:
                        row.update(conv_call(spec, batch, precision))
                    except torch.cuda.OutOfMemoryError as exc:
                        row["error"] = str(exc).splitlines()[0][:200]
                    rows.append(row)
                    torch.cuda.empty_cache()
    return rows


def context_after_steps() -> dict[str, int]:
    for name in NETWORKS:
        model = getattr(torchvision.models, name)(weights=None).cuda()
        opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
        x = torch.randn(8, 3, 224, 224, device="cuda")
        y = torch.randint(0, 1000, (8,), device="cuda")
        for dtype in (torch.float32, torch.bfloat16):
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
                model.train()
                F.cross_entropy(model(x), y).backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                model.eval()
                with torch.inference_mode():
                    model(x)
        del model, opt
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    used, reserved = used_bytes(), torch.cuda.memory_reserved()
    return {"used_bytes": used, "reserved_bytes": reserved, "context_bytes": used - reserved}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 128])
    args = parser.parse_args(argv)
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = False
    props = torch.cuda.get_device_properties(0)
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "date": datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat(),
        "command": " ".join(["python3"] + sys.argv),
        "device": {"name": props.name, "compute_capability": f"{props.major}.{props.minor}",
                   "memory_bytes": int(props.total_memory)},
        "software": {"python": platform.python_version(), "torch": torch.__version__,
                     "torchvision": torchvision.__version__, "cuda": torch.version.cuda,
                     "cudnn": torch.backends.cudnn.version(),
                     "CUDA_MODULE_LOADING": os.environ.get("CUDA_MODULE_LOADING", "(unset)")},
    }
    doc.update(context_and_cublas())
    doc["convolutions"] = convolutions(args.batches)
    doc["context_after_steps"] = context_after_steps()
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(doc, handle, indent=1, sort_keys=True)
        handle.write("\n")
    print(json.dumps({k: v for k, v in doc.items() if k != "convolutions"}, indent=1))
    print(f"{len(doc['convolutions'])} convolution rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())

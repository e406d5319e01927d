"""Ground truth for end-to-end validation: PyTorch training and inference steps of VGG16 on a GPU.

Run on a machine with torch, torchvision and a CUDA GPU (not imported by the tests):

    python benchmarks/torch_vgg16.py --out measurements/NAME-torch-vgg16.json [--quick]

torchvision vgg16 (weights=None, num_classes=1000), random 224x224 inputs in NCHW (default
memory format), cross-entropy loss, SGD with momentum 0.9; cudnn.benchmark = True.
mode "train": zero_grad(set_to_none=True), forward, loss, backward, optimizer step;
mode "infer": forward under torch.no_grad() with the model in eval mode.
precision "fp32": PyTorch defaults (cuDNN may use TF32, matmul does not), "fp32-strict":
no TF32 anywhere, "tf32": TF32 for both, "bf16"/"fp16": torch.autocast (fp16 training with a
GradScaler). Warm-up steps, then timed steps with CUDA events (per step; median and min) and
torch.cuda.max_memory_allocated per configuration. ResNet-50 and AlexNet are also timed
(train, fp32 and bf16, batch 64). The JSON file is rewritten after every configuration.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torchvision

from simulator.measure.provenance import cpu_info, utc_now
from simulator.report.atomic import write_json_atomic

SCHEMA = "simulator.torch-steps/1"
PRECISIONS = ("fp32", "fp32-strict", "tf32", "bf16", "fp16")
_TF32_FLAGS = {
    "fp32": (True, False),
    "fp32-strict": (False, False),
    "tf32": (True, True),
    "bf16": (True, False),
    "fp16": (True, False),
}  # (cudnn.allow_tf32, matmul.allow_tf32)


def set_precision_flags(precision: str) -> dict[str, Any]:
    """Set the TF32 switches for `precision` and return what PyTorch then reports."""
    cudnn_tf32, matmul_tf32 = _TF32_FLAGS[precision]
    torch.backends.cudnn.allow_tf32 = cudnn_tf32
    torch.backends.cuda.matmul.allow_tf32 = matmul_tf32
    return read_flags()


def read_flags() -> dict[str, Any]:
    """The TF32 switches as PyTorch reports them (legacy API only: mixing APIs is an error)."""
    flags: dict[str, Any] = {
        "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
        "matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
    }
    try:
        flags["float32_matmul_precision"] = torch.get_float32_matmul_precision()
    except RuntimeError as exc:
        flags["float32_matmul_precision"] = f"unreadable: {exc}"
    return flags


def _autocast(precision: str) -> contextlib.AbstractContextManager:
    if precision in ("bf16", "fp16"):
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(device_type="cuda", dtype=dtype)
    return contextlib.nullcontext()


def make_step(model: torch.nn.Module, mode: str, precision: str, batch: int) -> Callable[[], None]:
    """One training or inference step on fixed random data."""
    x = torch.randn(batch, 3, 224, 224, device="cuda")
    y = torch.randint(0, 1000, (batch,), device="cuda")
    if mode == "infer":
        model.eval()

        def infer() -> None:
            with torch.no_grad(), _autocast(precision):
                model(x)

        return infer
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None

    def train() -> None:
        opt.zero_grad(set_to_none=True)
        with _autocast(precision):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()

    return train


def time_steps(step: Callable[[], None], warmup: int, steps: int) -> list[float]:
    """Seconds per step from CUDA events around each of `steps` back-to-back steps."""
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    events = [torch.cuda.Event(enable_timing=True) for _ in range(steps + 1)]
    events[0].record()
    for i in range(steps):
        step()
        events[i + 1].record()
    torch.cuda.synchronize()
    return [events[i].elapsed_time(events[i + 1]) / 1e3 for i in range(steps)]


def run_config(
    model: torch.nn.Module,
    name: str,
    mode: str,
    batch: int,
    precision: str,
    warmup: int,
    steps: int,
) -> dict[str, Any]:
    flags = set_precision_flags(precision)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    record: dict[str, Any] = {
        "model": name,
        "mode": mode,
        "batch": batch,
        "precision": precision,
        "flags": flags,
        "warmup_steps": warmup,
    }
    try:
        times = time_steps(make_step(model, mode, precision, batch), warmup, steps)
    except torch.cuda.OutOfMemoryError as exc:
        record["error"] = f"out of memory: {str(exc).splitlines()[0]}"
        return record
    record.update(
        median_s=statistics.median(times),
        min_s=min(times),
        reps=len(times),
        times_s=[float(f"{t:.5g}") for t in times],
        max_memory_allocated_bytes=int(torch.cuda.max_memory_allocated()),
    )
    return record


def provenance(command: str) -> dict[str, Any]:
    props = torch.cuda.get_device_properties(0)
    device = {
        "kind": "gpu",
        "name": props.name,
        "sm_count": props.multi_processor_count,
        "memory_bytes": int(props.total_memory),
        "compute_capability": f"{props.major}.{props.minor}",
        "host": cpu_info(),
    }
    software = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "cudnn_benchmark": True,
        "memory_format": "NCHW (contiguous)",
        "optimizer": "SGD momentum 0.9",
        "loss": "cross_entropy",
        "default_flags": read_flags(),
    }
    return {
        "schema": SCHEMA,
        "date": utc_now(),
        "command": command,
        "device": device,
        "software": software,
        "records": [],
    }


def configs(quick: bool) -> list[tuple[str, str, int, str]]:
    if quick:
        return [("vgg16", "train", 1, "fp32"), ("vgg16", "infer", 1, "bf16")]
    out = [
        ("vgg16", mode, batch, precision)
        for mode in ("train", "infer")
        for batch in (1, 16, 64, 128)
        for precision in PRECISIONS
    ]
    return out + [
        (name, "train", 64, p) for name in ("resnet50", "alexnet") for p in ("fp32", "bf16")
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args(argv)
    torch.backends.cudnn.benchmark = True
    doc = provenance(" ".join(["python"] + sys.argv))
    models: dict[str, torch.nn.Module] = {}
    for name, mode, batch, precision in configs(args.quick):
        if name not in models:
            models.clear()
            torch.cuda.empty_cache()
            models[name] = getattr(torchvision.models, name)(weights=None, num_classes=1000).cuda()
        start = time.perf_counter()
        record = run_config(models[name], name, mode, batch, precision, args.warmup, args.steps)
        doc["records"].append(record)
        write_json_atomic(Path(args.out), doc)
        ms = record.get("median_s", float("nan")) * 1e3
        print(
            f"{name} {mode} b{batch} {precision}: {ms:.2f} ms/step "
            f"({time.perf_counter() - start:.1f} s) {record.get('error', '')}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

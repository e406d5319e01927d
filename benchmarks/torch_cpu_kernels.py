"""PyTorch's own CPU kernels (oneDNN convolutions, MKL matrix products, ATen elementwise
ops) timed one by one at 1 thread and at all threads, with the host's CPU description.

    python benchmarks/torch_cpu_kernels.py --out measurements/h200-host-torch-cpu-kernels.json

What it times, each at every thread count (torch.set_num_threads), fp32 unless named:
the distinct convolutions of torchvision's resnet18 and resnet50 at batch 1 and 8 (forward,
NCHW, inference_mode: what the zoo's inference steps run), the MLP's matrix products
(784-1024-1024-10 at batch 1, 32, 256), square matrix products in fp32, bf16 and fp16 (what
the units reach), a copy, relu and add over sizes from cache-resident to DRAM-bound, and a
one-element relu (the eager dispatch cost of one op). Times are medians of repetitions,
each one call, timed with time.perf_counter after a warm-up. Writes one JSON document
(schema simulator.torch-cpu-kernels/1) with the provenance of the run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

SCHEMA = "simulator.torch-cpu-kernels/1"
MIN_S, MAX_REPS = 0.15, 40


def timed(fn: Callable[[], Any]) -> dict[str, Any]:
    fn()
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < MIN_S and len(times) < MAX_REPS):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "reps": len(times)}


def conv_shapes() -> list[dict[str, Any]]:
    """The distinct convolutions of resnet18 and resnet50 (input shape at batch 1)."""
    import torchvision

    seen: dict[tuple, dict[str, Any]] = {}
    for name in ("resnet18", "resnet50"):
        model = getattr(torchvision.models, name)(weights=None).eval()

        def hook(mod: torch.nn.Conv2d, inp: tuple, _out: Any, name: str = name) -> None:
            c, h, w = inp[0].shape[1:]
            key = (c, h, w, mod.out_channels, mod.kernel_size[0], mod.stride[0], mod.padding[0])
            entry = seen.setdefault(key, {"in_channels": c, "height": h, "width": w,
                                          "out_channels": mod.out_channels,
                                          "kernel": mod.kernel_size[0], "stride": mod.stride[0],
                                          "padding": mod.padding[0], "models": {}})
            entry["models"][name] = entry["models"].get(name, 0) + 1

        handles = [m.register_forward_hook(hook) for m in model.modules()
                   if isinstance(m, torch.nn.Conv2d)]
        with torch.inference_mode():
            model(torch.randn(1, 3, 224, 224))
        for h in handles:
            h.remove()
    return list(seen.values())


def conv_records(shapes: list[dict[str, Any]], batch: int) -> list[dict[str, Any]]:
    out = []
    for s in shapes:
        conv = torch.nn.Conv2d(s["in_channels"], s["out_channels"], s["kernel"], s["stride"],
                               s["padding"], bias=False).eval()
        x = torch.randn(batch, s["in_channels"], s["height"], s["width"])
        with torch.inference_mode():
            rec = timed(lambda conv=conv, x=x: conv(x))
        out.append({"op": "conv2d_fwd", "batch": batch, **{k: v for k, v in s.items()}, **rec})
    return out


def mm_records() -> list[dict[str, Any]]:
    out = []
    for batch in (1, 32, 256):
        for k, n in ((784, 1024), (1024, 1024), (1024, 10)):
            lin = torch.nn.Linear(k, n)
            x = torch.randn(batch, k)
            with torch.inference_mode():
                rec = timed(lambda lin=lin, x=x: lin(x))
                out.append({"op": "linear", "m": batch, "n": n, "k": k, **rec})
    for dtype, name in ((torch.float32, "fp32"), (torch.bfloat16, "bf16"), (torch.float16, "fp16")):
        for size in (512, 2048):
            a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
            out.append({"op": "gemm", "dtype": name, "m": size, "n": size, "k": size,
                        **timed(lambda a=a, b=b: torch.mm(a, b))})
    return out


def elementwise_records() -> list[dict[str, Any]]:
    out = []
    for elements in (1, 2**14, 2**18, 2**21, 2**24, 2**26):
        a, b = torch.randn(elements), torch.randn(elements)
        out.append({"op": "relu", "elements": elements, **timed(lambda a=a: torch.relu(a))})
        out.append({"op": "add", "elements": elements,
                    **timed(lambda a=a, b=b: torch.add(a, b))})
        out.append({"op": "copy", "elements": elements, **timed(lambda a=a, b=b: a.copy_(b))})
    return out


def _text(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError) as err:
        return f"unavailable: {err}"


def provenance(argv: list[str]) -> dict[str, Any]:
    mhz = [line.split(":")[1].strip() for line in _text(["cat", "/proc/cpuinfo"]).splitlines()
           if line.startswith("cpu MHz")]
    return {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": " ".join(argv),
            "torch": torch.__version__, "python": platform.python_version(),
            "platform": platform.platform(), "lscpu": _text(["lscpu"]),
            "cpu_mhz_at_start": mhz, "parallel_info": torch.__config__.parallel_info(),
            "mkldnn": torch.backends.mkldnn.is_available(), "cpu_count": os.cpu_count(),
            "method": "time.perf_counter around one call; 2 warm-up calls; median of "
                      f"3-{MAX_REPS} calls within {MIN_S} s; inference_mode; NCHW"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--threads", default=None, help="comma-separated, default 1,all")
    args = parser.parse_args()
    counts = ([int(t) for t in args.threads.split(",")] if args.threads
              else sorted({1, os.cpu_count() or 1}))
    shapes = conv_shapes()
    records: list[dict[str, Any]] = []
    for threads in counts:
        torch.set_num_threads(threads)
        started = time.perf_counter()
        part = mm_records() + elementwise_records()
        for batch in (1, 8):
            part += conv_records(shapes, batch)
        for rec in part:
            rec.setdefault("dtype", "fp32")
            rec["threads"] = threads
        records += part
        print(f"threads {threads}: {len(part)} records, {time.perf_counter() - started:.1f} s",
              flush=True)
    doc = {"schema": SCHEMA, "device": {"kind": "cpu"}, **provenance(["python"] + sys.argv),
           "records": records}
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {path}: {len(records)} records")


if __name__ == "__main__":
    main()

"""Diagnostics: where a PyTorch VGG16 training step spends its GPU time, by kernel, from the
PyTorch profiler (CUDA kernel times summed by kernel name). Run on a GPU machine:

    python benchmarks/torch_vgg16_profile.py --out measurements/NAME-vgg16-profile.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import torch
import torchvision
from torch.profiler import ProfilerActivity, profile


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    records = []
    for precision in ("fp32", "bf16"):
        model = torchvision.models.vgg16().cuda()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x = torch.randn(64, 3, 224, 224, device="cuda")
        y = torch.randint(0, 1000, (64,), device="cuda")
        amp = (torch.autocast("cuda", dtype=torch.bfloat16) if precision == "bf16"
               else contextlib.nullcontext())

        def step(model=model, opt=opt, amp=amp, x=x, y=y) -> None:
            opt.zero_grad(set_to_none=True)
            with amp:
                loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()

        for _ in range(5):
            step()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(3):
                step()
            torch.cuda.synchronize()
        kernels = {}
        for ev in prof.key_averages():
            t = getattr(ev, "device_time_total", None) or getattr(ev, "cuda_time_total", 0)
            if t > 0:
                kernels[ev.key] = {"total_us": t / 3, "calls": ev.count / 3}
        records.append({"model": "vgg16", "mode": "train", "batch": 64, "precision": precision,
                        "kernels_per_step": kernels,
                        "gpu_time_per_step_us": sum(k["total_us"] for k in kernels.values())})
    doc = {"schema": "simulator.torch-profile/1",
           "date": datetime.now(UTC).isoformat(timespec="seconds"),
           "command": " ".join(sys.argv), "device": torch.cuda.get_device_name(0),
           "software": {"torch": torch.__version__, "cudnn": torch.backends.cudnn.version()},
           "records": records}
    Path(args.out).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()

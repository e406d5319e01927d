"""Ground truth for data parallelism: PyTorch DDP training steps of VGG16 on one host's GPUs.

Run on a machine with several GPUs (not imported by the tests):

    python benchmarks/torch_ddp_vgg16.py --out measurements/NAME-ddp-vgg16.json

One process per GPU, torchvision vgg16, random 224x224 inputs on the GPU, SGD momentum 0.9,
DDP with its default 25 MB buckets, cudnn.benchmark on; precisions fp32 (PyTorch defaults) and
bf16 (autocast); batch per GPU 32 and 64. 5 warm-up and 15 timed steps between CUDA events on
rank 0 (median). The same steps on one GPU (no DDP) are timed first for the scaling efficiency.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys

os.environ.setdefault("NCCL_NVLS_ENABLE", "0")

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torchvision

from simulator.measure.provenance import write_torch_distributed

CONFIGS = [(p, b) for p in ("fp32", "bf16") for b in (32, 64)]


def _steps(model, batch: int, precision: str, warmup: int = 5, steps: int = 15) -> list[float]:
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, 224, 224, device="cuda")
    y = torch.randint(0, 1000, (batch,), device="cuda")
    amp = (torch.autocast("cuda", dtype=torch.bfloat16) if precision == "bf16"
           else contextlib.nullcontext())
    times = []
    for i in range(warmup + steps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        opt.zero_grad(set_to_none=True)
        with amp:
            loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        b.record()
        b.synchronize()
        if i >= warmup:
            times.append(a.elapsed_time(b) / 1e3)
    return times


def _worker(rank: int, world: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="29534")
    torch.cuda.set_device(rank)
    torch.backends.cudnn.benchmark = True
    dist.init_process_group("nccl", rank=rank, world_size=world)
    records = []
    for precision, batch in CONFIGS:
        single = None
        if rank == 0:
            single = _steps(torchvision.models.vgg16().cuda(), batch, precision)
        dist.barrier()
        model = torch.nn.parallel.DistributedDataParallel(torchvision.models.vgg16().cuda(),
                                                          device_ids=[rank])
        times = _steps(model, batch, precision)
        if rank == 0:
            records.append({"model": "vgg16", "mode": "train", "parallel": "data",
                            "devices": world, "batch": batch, "precision": precision,
                            "median_s": statistics.median(times), "times_s": times,
                            "single_device_median_s": statistics.median(single)})
            print(precision, batch, records[-1]["median_s"], records[-1]["single_device_median_s"],
                  flush=True)
        del model
        torch.cuda.empty_cache()
    if rank == 0:
        write_torch_distributed(out, "simulator.torch-ddp-steps/1",
                                {"name": torch.cuda.get_device_name(0), "count": world}, torch,
                                records)
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    world = torch.cuda.device_count()
    if world < 2:
        sys.exit("error: needs at least 2 GPUs")
    mp.spawn(_worker, args=(world, args.out), nprocs=world)


if __name__ == "__main__":
    main()

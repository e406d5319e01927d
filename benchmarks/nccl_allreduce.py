"""Ground truth for collectives: NCCL all-reduce through torch.distributed on one host's GPUs.

Run on a machine with several GPUs (not imported by the tests):

    python benchmarks/nccl_allreduce.py --out measurements/NAME-nccl-allreduce.json

One process per GPU; float32 tensors from 4 KiB to 1 GiB; 5 warm-up and 20 timed all-reduces
per size between CUDA events on rank 0 (after a barrier); median per-op time, algorithm
bandwidth S/t and bus bandwidth S/t * 2(n-1)/n (nccl-tests' definitions). NVLink multicast
(NVLS) is switched off, as the lending rules of our GPU machines require.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

os.environ.setdefault("NCCL_NVLS_ENABLE", "0")

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from simulator.measure.provenance import write_torch_distributed

SIZES = [4096 * 4**i for i in range(10)] + [1 << 30]


def _worker(rank: int, world: int, out: str, reps: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="29533")
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", rank=rank, world_size=world)
    records = []
    for size in SIZES:
        x = torch.ones(size // 4, device="cuda", dtype=torch.float32)
        for _ in range(5):
            dist.all_reduce(x)
        torch.cuda.synchronize()
        times = []
        for _ in range(reps):
            dist.barrier()
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            dist.all_reduce(x)
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b) / 1e3)
        t = statistics.median(times)
        records.append({"collective": "allreduce", "bytes": size, "devices": world,
                        "median_s": t, "min_s": min(times), "times_s": times,
                        "algorithm_bandwidth_bytes_per_s": size / t,
                        "bus_bandwidth_bytes_per_s": size / t * 2 * (world - 1) / world})
        del x
    if rank == 0:
        props = torch.cuda.get_device_properties(0)
        write_torch_distributed(out, "simulator.collectives/1",
                                {"name": props.name, "count": world,
                                 "memory_bytes": props.total_memory}, torch, records)
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    world = torch.cuda.device_count()
    if world < 2:
        sys.exit("error: needs at least 2 GPUs")
    mp.spawn(_worker, args=(world, args.out, args.reps), nprocs=world)


if __name__ == "__main__":
    main()

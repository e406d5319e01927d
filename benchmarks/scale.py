"""Benchmark: wall time of simulating one data-parallel VGG16 training step on 8, 64, 1,024
and 16,384 GPUs (H200, 8 per node over NVLink4, one InfiniBand NDR NIC per node), medians of a
few runs. A script, not a test: it prints figures.

Each run is what `predict --devices N --parallel data` does: build the cluster, plan the step
(one representative GPU, every link carrying the load of the whole group), simulate it, and
simulate the single-GPU step for the scaling efficiency.
"""

from __future__ import annotations

import statistics
import time

from simulator.api.predict import predict

SIZES = (8, 64, 1024, 16384)
REPEATS = 5


def one_step(n: int) -> dict:
    return predict("vgg16", "h200", batch=64, precision="bf16", mode="train", devices=n,
                   devices_per_node=8, intra_link="nvlink4", inter_link="ib-ndr",
                   parallel="data")


def main() -> None:
    print("data-parallel VGG16 training step, batch 64 per GPU, bf16, h200, 8 per node")
    print(f"{'GPUs':>7} {'wall median':>12} {'simulated step':>15} {'scaling eff.':>13} "
          f"{'mode':>10}")
    for n in SIZES:
        walls = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            result = one_step(n)
            walls.append(time.perf_counter() - start)
        print(f"{n:>7} {statistics.median(walls):>10.3f} s {result['step_time_s'] * 1e3:>12.2f} ms"
              f" {result['scaling_efficiency'] * 100:>12.1f} % {result['simulated']:>10}")


if __name__ == "__main__":
    main()

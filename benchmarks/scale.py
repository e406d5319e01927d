"""Benchmark: wall time and memory of simulating one data-parallel VGG16 training step (batch
64 per GPU, bf16, H200, 8 per node over NVLink4, one InfiniBand NDR NIC per node). A script,
not a test: it prints figures.

- symmetric: what `predict --devices N --parallel data` does for a cluster of equal GPUs
  (one representative GPU, every link carrying the load of the whole group); medians of a
  few runs.
- full, one straggler: every GPU simulated, GPU 0 running its kernels 1.2x slower
  (`--straggler 0=1.2`), as a cluster whose devices differ must be. `--repeats` runs per
  size (default 3), each in a fresh process so that its peak memory (max RSS) is its own;
  medians of CPU seconds (what one core spent) and wall seconds (which include the
  machine's other load), and the largest peak memory.

- `--case mixed`: instead of the straggler, the second half of the GPUs are H100 SXM (a
  mixed cluster: `hardware.groups`); `--case failed-link`: GPU 0's NVLink failed (its
  traffic goes round over PCIe and the NIC: `hardware.link_faults`, routes by least time).

    python benchmarks/scale.py                 # both, full up to 4,096 GPUs
    python benchmarks/scale.py --full 1024 16384 [--repeats 3] [--case mixed]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

from simulator.api.predict import predict

SYMMETRIC_SIZES = (8, 64, 1024, 16384)
FULL_SIZES = (64, 256, 1024, 4096)
REPEATS = 5
STRAGGLER = {"device": 0, "slowdown": 1.2}
CASES = ("straggler", "mixed", "failed-link")


def one_step(n: int, stragglers: list[dict] | None = None, **hardware: object) -> dict:
    return predict("vgg16", "h200", batch=64, precision="bf16", mode="train", devices=n,
                   devices_per_node=8, intra_link="nvlink4", inter_link="ib-ndr",
                   parallel="data", stragglers=stragglers or [], **hardware)


def case_step(n: int, case: str) -> dict:
    """One full simulation of the case: a straggler, a mixed cluster or a failed link."""
    if case == "mixed":
        groups = [{"device": "h200", "count": n // 2, "devices_per_node": 8,
                   "intra_link": "nvlink4"},
                  {"device": "h100-sxm", "count": n - n // 2, "devices_per_node": 8,
                   "intra_link": "nvlink4"}]
        return predict("vgg16", None, batch=64, precision="bf16", mode="train",
                       inter_link="ib-ndr", parallel="data", groups=groups)
    if case == "failed-link":
        return one_step(n, link_faults=[{"between": ["d0", "n0.fabric"], "failed": True}])
    return one_step(n, [STRAGGLER])


def _child(n: int, case: str) -> None:
    """One full simulation in this process; prints its figures as JSON."""
    start, cpu = time.perf_counter(), time.process_time()
    result = case_step(n, case)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"n": n, "wall_s": wall, "cpu_s": cpu, "peak_bytes": peak_kib * 1024,
                      "step_time_s": result["step_time_s"], "simulated": result["simulated"]}))


def symmetric(sizes: tuple[int, ...]) -> None:
    print("symmetric: data-parallel VGG16 training step, batch 64 per GPU, bf16, h200")
    print(f"{'GPUs':>7} {'wall median':>12} {'simulated step':>15} {'scaling eff.':>13}")
    for n in sizes:
        walls = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            result = one_step(n)
            walls.append(time.perf_counter() - start)
        print(f"{n:>7} {statistics.median(walls):>10.3f} s {result['step_time_s'] * 1e3:>12.2f} ms"
              f" {result['scaling_efficiency'] * 100:>12.1f} %")


def full(sizes: tuple[int, ...], repeats: int, case: str = "straggler") -> None:
    what = {"straggler": "GPU 0 a straggler (kernels 1.2x slower)",
            "mixed": "half H200, half H100 SXM", "failed-link": "GPU 0's NVLink failed"}[case]
    print(f"full, {what}: every GPU simulated; medians of {repeats} runs, largest peak memory")
    print(f"{'GPUs':>7} {'CPU':>9} {'wall':>9} {'peak memory':>12} {'simulated step':>15}")
    for n in sizes:
        runs = []
        for _ in range(repeats):
            out = subprocess.run([sys.executable, __file__, "--child", str(n), "--case", case],
                                 check=True, capture_output=True, text=True).stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))
            assert runs[-1]["simulated"] == "full"
            assert runs[-1]["step_time_s"] == runs[0]["step_time_s"]  # deterministic
        cpu = statistics.median(r["cpu_s"] for r in runs)
        wall = statistics.median(r["wall_s"] for r in runs)
        peak = max(r["peak_bytes"] for r in runs)
        print(f"{n:>7} {cpu:>7.2f} s {wall:>7.2f} s {peak / 1e9:>9.2f} GB"
              f" {runs[0]['step_time_s'] * 1e3:>12.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", type=int, nargs="*", default=None, help="full sizes")
    parser.add_argument("--repeats", type=int, default=3, help="full runs per size")
    parser.add_argument("--case", choices=CASES, default="straggler",
                        help="what makes the GPUs differ in the full runs")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        _child(args.child, args.case)
        return
    if args.full is None:
        symmetric(SYMMETRIC_SIZES)
    full(tuple(args.full) if args.full else FULL_SIZES, args.repeats, args.case)


if __name__ == "__main__":
    main()

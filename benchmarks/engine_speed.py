"""Benchmark: how fast the simulator itself is (not a test; prints figures).

Prints the wall time of building and simulating one VGG16 training step on an H100 model,
and the engine's throughput in simulated ops per second. Medians of several runs.
"""

from __future__ import annotations

import statistics
import time

from hardware_models.catalog_io import make_device
from simulator.engine.loop import simulate
from simulator.engine.plan import single_device_plan
from workloads.builder import build_graph
from workloads.model_def import load_model

REPEATS = 7


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main() -> None:
    model, device = load_model("vgg16"), make_device("h100-sxm")
    build_s, sim_s, total_s = [], [], []
    for _ in range(REPEATS):
        t_build, graph = _timed(lambda: build_graph(model, 64, "train", "fp32"))
        t_plan, plan = _timed(lambda graph=graph: single_device_plan(graph, device))
        t_sim, _trace = _timed(lambda plan=plan: simulate(plan))
        build_s.append(t_build + t_plan)
        sim_s.append(t_sim)
        total_s.append(t_build + t_plan + t_sim)
    ops = len(graph)
    print(f"VGG16 training step, batch 64, h100-sxm: {ops} ops")
    print(f"  build graph + plan  median {statistics.median(build_s) * 1e3:8.2f} ms")
    print(f"  simulate            median {statistics.median(sim_s) * 1e3:8.2f} ms")
    print(f"  total               median {statistics.median(total_s) * 1e3:8.2f} ms")
    print(f"  engine throughput   {ops / statistics.median(sim_s):,.0f} simulated ops/s")


if __name__ == "__main__":
    main()

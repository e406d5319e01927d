"""CPU model: a few fast cores with SIMD units, sharing the memory bandwidth.

A matrix product is cut into blocks handed to threads; with fewer blocks than cores some
cores idle. Elementwise work splits evenly over cores. Each op pays one thread fork/join
(a parallel region), and the host *is* the device, so there is no separate launch cost.
"""

from __future__ import annotations

import math

from hardware_models.base import OpCost
from hardware_models.profile import Profile
from hardware_models.registry import hardware
from hardware_models.spec import CPUSpec
from workloads.ops import Op

BLOCK = 64  # BLAS-style output block edge handed to one thread


@hardware.register("cpu")
class CPU:
    kind = "cpu"
    spec_model = CPUSpec  # validates a catalog entry with `kind: cpu`
    host_link = None

    def __init__(self, spec: CPUSpec, profile: Profile) -> None:
        self.spec, self.profile = spec, profile
        self.name = spec.name
        self.memory_bytes = spec.memory_bytes
        self.cores = spec.total_cores
        self.threads = min(profile.threads or self.cores, self.cores)
        self.tdp_w = spec.tdp_w * spec.sockets if spec.tdp_w else None
        self.price_usd = spec.price_usd * spec.sockets if spec.price_usd else None

    def peak_flops(self, dtype: str) -> float:
        per_cycle = self.spec.flops_per_cycle_per_core
        per = per_cycle.get(dtype, per_cycle["fp32"])
        return self.threads * self.spec.clock_hz * per

    def launch_s(self, op: Op) -> float:
        return 0.0

    def op_cost(self, op: Op) -> OpCost:
        if op.kind == "copy":  # the batch is already in host memory
            return OpCost(0.0, 0.0)
        overhead = (self.profile.kernel_overhead_s or self.spec.thread_fork_join_s) * op.kernels
        memory_s = self.profile.memory_s(op.bytes, self.spec.memory_bandwidth_bytes_per_s,
                                         self.spec.cache_bytes)
        if op.kind == "gemm" and op.gemm is not None:
            g = op.gemm
            blocks = math.ceil(g.m / BLOCK) * math.ceil(g.n / BLOCK) * g.batch
            used = blocks / (math.ceil(blocks / self.threads) * self.threads)
            small = min(g.m, g.n, g.k)  # thin products cannot fill the SIMD register blocks
            fill = small / (small + self.profile.gemm_half_dim)
            kernel = str(op.attr("kernel", "gemm"))
            rate = self.peak_flops(op.dtype) * self.profile.gemm_eff(op.dtype, kernel) * used * fill
            return OpCost(op.flops / rate, memory_s, overhead)
        used = min(1.0, op.work_items / self.threads)
        rate = self.peak_flops("fp32") * self.profile.vec_eff(op.dtype, str(op.attr("kernel", op.kind))) * used
        return OpCost(op.flops / rate, memory_s, overhead)

"""The ideal device: exact, contention-free roofline times with no overheads.

It plays the part of a null backend in tests: every op takes exactly
max(flops / flops_per_s, bytes / bytes_per_s), so expected times can be written down.
"""

from __future__ import annotations

from hardware_models.base import OpCost
from hardware_models.registry import hardware
from workloads.ops import Op


@hardware.register("ideal")
class IdealDevice:
    kind = "ideal"
    host_link = None
    tdp_w = None
    price_usd = None

    def __init__(self, flops_per_s: float = 1e12, bytes_per_s: float = 1e11,
                 memory_bytes: float = 1e12, name: str = "ideal", cores: int = 1) -> None:
        self.name, self.cores = name, cores
        self.flops_per_s, self.bytes_per_s = flops_per_s, bytes_per_s
        self.memory_bytes = memory_bytes

    def peak_flops(self, dtype: str) -> float:
        return self.flops_per_s

    def launch_s(self, op: Op) -> float:
        return 0.0

    def op_cost(self, op: Op) -> OpCost:
        return OpCost(op.flops / self.flops_per_s, op.bytes / self.bytes_per_s)

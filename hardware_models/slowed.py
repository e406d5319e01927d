"""A device that runs every kernel `factor` times slower than its model says: a straggler
(thermal throttling, a degraded part, a noisy neighbour). What the host spends launching
kernels is the host's and stays as it is; so does the device's memory.
"""

from __future__ import annotations

from typing import Any

from hardware_models.base import OpCost
from workloads.ops import Op


class Slowed:
    """`device` with kernel times (compute, memory and fixed overhead) times `factor`."""

    def __init__(self, device: Any, factor: float) -> None:
        if not factor >= 1.0:
            raise ValueError(f"a straggler's slowdown must be at least 1, got {factor!r}")
        self._device = device
        self.slowdown = factor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._device, name)

    def op_cost(self, op: Op) -> OpCost:
        cost = self._device.op_cost(op)
        f = self.slowdown
        return OpCost(cost.compute_s * f, cost.memory_s * f, cost.overhead_s * f)


def slowed(device: Any, factor: float) -> Any:
    """`device` itself for a factor of 1, else its straggling twin."""
    return device if factor == 1.0 else Slowed(device, factor)

"""The hooks a hardware model implements: what one op costs on it, and what launching it
costs the host. The engine does all the waiting; models only state costs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from workloads.ops import Op


@dataclass(frozen=True)
class OpCost:
    """Time of one op on one device: the slower of its compute and memory time, plus a fixed
    per-kernel overhead (kernel ramp / thread fork-join)."""

    compute_s: float
    memory_s: float
    overhead_s: float = 0.0

    @property
    def duration_s(self) -> float:
        return max(self.compute_s, self.memory_s) + self.overhead_s

    @property
    def bound(self) -> str:
        return "compute" if self.compute_s >= self.memory_s else "memory"


class Device(Protocol):
    """A device the engine can run ops on."""

    name: str
    kind: str
    memory_bytes: float
    cores: int
    tdp_w: float | None
    price_usd: float | None

    def op_cost(self, op: Op) -> OpCost: ...

    def launch_s(self, op: Op) -> float: ...

    def peak_flops(self, dtype: str) -> float: ...

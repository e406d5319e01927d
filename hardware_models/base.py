"""The hooks a hardware model implements: what one op costs on it, and what launching it
costs the host. The engine does all the waiting; models only state costs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

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


def host_extra_s(profile: Any, op: Op) -> float:
    """The host profile's terms that are not per kernel: the Python of one step (charged to
    the op that opens the step, marked `step` by the builder) and the optimizer's work per
    parameter tensor (charged to the optimizer step, which carries `tensors`)."""
    mode = op.attr("step", None)
    extra = profile.step_s.get(str(mode), 0.0) if mode is not None else 0.0
    if op.kind == "optimizer":
        extra += profile.optimizer_tensor_s * float(op.attr("tensors", 0))
    return float(extra)

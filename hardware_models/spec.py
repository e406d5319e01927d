"""Validated device and link specifications, as read from catalog YAML files.

A spec holds published numbers only (peaks, bandwidths, sizes, prices), each file citing
its sources. Achievable efficiencies live in calibration profiles (see `profile.py`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt

Dtype = Literal["fp64", "fp32", "tf32", "bf16", "fp16"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Sourced(_Strict):
    """Every catalog entry: a name, a display name, its sources and its assumptions."""

    name: str
    display_name: str
    sources: list[str]
    assumptions: list[str] = []


class _Device(_Sourced):
    """What every device has: memory, bandwidth, and (where published) power and price."""

    year: int | None = None
    clock_hz: PositiveFloat
    memory_bytes: PositiveFloat
    memory_bandwidth_bytes_per_s: PositiveFloat
    tdp_w: PositiveFloat | None = None
    price_usd: PositiveFloat | None = None


class CPUSpec(_Device):
    """A multi-core CPU: a few fast cores with SIMD units. `clock_hz` is the base clock;
    peaks are quoted at base clock. `tdp_w` and `price_usd` are per socket."""

    kind: Literal["cpu"] = "cpu"
    cores: PositiveInt
    sockets: PositiveInt = 1
    flops_per_cycle_per_core: dict[Dtype, PositiveFloat] = Field(
        description="SIMD FLOPs per cycle per core, FMA counted as 2"
    )
    cache_bytes: PositiveFloat | None = None
    thread_fork_join_s: PositiveFloat = Field(
        description="overhead of one parallel region (fork + join of the BLAS/OpenMP pool)"
    )

    @property
    def total_cores(self) -> int:
        return self.cores * self.sockets


class GPUSpec(_Device):
    """A GPU: many streaming multiprocessors (SMs) of many slow cores, plus tensor cores.
    `clock_hz` is the boost clock."""

    kind: Literal["gpu"] = "gpu"
    sms: PositiveInt
    cores_per_sm: PositiveInt
    peak_flops: dict[Dtype, PositiveFloat] = Field(
        description="dense peak FLOP/s per dtype (tensor cores where the GPU has them)"
    )
    l2_bytes: PositiveFloat
    kernel_launch_s: PositiveFloat = Field(description="host CPU time to launch one kernel")
    host_link: str = Field(description="name of a link in the catalog, e.g. pcie5-x16")

    @property
    def total_cores(self) -> int:
        return self.sms * self.cores_per_sm


class LinkSpec(_Sourced):
    """A point-to-point or switched link: bandwidth per direction and latency."""

    kind: Literal["link"] = "link"
    bandwidth_bytes_per_s: PositiveFloat = Field(description="per direction")
    latency_s: PositiveFloat


DeviceSpec = CPUSpec | GPUSpec

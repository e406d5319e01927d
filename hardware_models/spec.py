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


class CPUSpec(_Strict):
    """A multi-core CPU: a few fast cores with SIMD units."""

    kind: Literal["cpu"] = "cpu"
    name: str
    display_name: str
    year: int | None = None
    cores: PositiveInt
    sockets: PositiveInt = 1
    clock_hz: PositiveFloat = Field(description="base clock; peaks are quoted at base clock")
    flops_per_cycle_per_core: dict[Dtype, PositiveFloat] = Field(
        description="SIMD FLOPs per cycle per core, FMA counted as 2"
    )
    memory_bytes: PositiveFloat
    memory_bandwidth_bytes_per_s: PositiveFloat
    cache_bytes: PositiveFloat | None = None
    thread_fork_join_s: PositiveFloat = Field(
        description="overhead of one parallel region (fork + join of the BLAS/OpenMP pool)"
    )
    tdp_w: PositiveFloat | None = None
    price_usd: PositiveFloat | None = None
    sources: list[str]
    assumptions: list[str] = []

    @property
    def total_cores(self) -> int:
        return self.cores * self.sockets


class GPUSpec(_Strict):
    """A GPU: many streaming multiprocessors (SMs) of many slow cores, plus tensor cores."""

    kind: Literal["gpu"] = "gpu"
    name: str
    display_name: str
    year: int | None = None
    sms: PositiveInt
    cores_per_sm: PositiveInt
    clock_hz: PositiveFloat = Field(description="boost clock")
    peak_flops: dict[Dtype, PositiveFloat] = Field(
        description="dense peak FLOP/s per dtype (tensor cores where the GPU has them)"
    )
    memory_bytes: PositiveFloat
    memory_bandwidth_bytes_per_s: PositiveFloat
    l2_bytes: PositiveFloat
    kernel_launch_s: PositiveFloat = Field(description="host CPU time to launch one kernel")
    host_link: str = Field(description="name of a link in the catalog, e.g. pcie5-x16")
    tdp_w: PositiveFloat | None = None
    price_usd: PositiveFloat | None = None
    sources: list[str]
    assumptions: list[str] = []

    @property
    def total_cores(self) -> int:
        return self.sms * self.cores_per_sm


class LinkSpec(_Strict):
    """A point-to-point or switched link: bandwidth per direction and latency."""

    kind: Literal["link"] = "link"
    name: str
    display_name: str
    bandwidth_bytes_per_s: PositiveFloat = Field(description="per direction")
    latency_s: PositiveFloat
    sources: list[str]
    assumptions: list[str] = []


DeviceSpec = CPUSpec | GPUSpec

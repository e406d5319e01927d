"""Validated device and link specifications, as read from catalog YAML files.

A spec holds published numbers only (peaks, bandwidths, sizes, prices), each file citing
its sources. Achievable efficiencies live in calibration profiles (see `profile.py`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt

Dtype = Literal["fp64", "fp32", "tf32", "bf16", "fp16"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)  # no bool as int


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
    """A multi-core CPU: a few fast cores with SIMD units. `clock_hz` is the base clock and
    `max_clock_hz` the highest (turbo) clock one core reaches; peaks are quoted at the
    highest clock the cores can run at (`peak_clock_hz`), so that no measured rate exceeds
    them. `flops_per_cycle_per_core` has an entry per dtype the cores compute natively (the
    ISA's: AVX2 FMA 32 fp32, AVX-512 64, AMX bf16 1024 per cycle); a dtype without one is
    converted and computed on the fp32 units. `tdp_w` and `price_usd` are per socket."""

    kind: Literal["cpu"] = "cpu"
    cores: PositiveInt
    sockets: PositiveInt = 1
    max_clock_hz: PositiveFloat | None = Field(
        None, description="highest turbo clock of one core; absent where the cores run at "
        "their base clock (a virtual machine that does not turbo)")
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

    @property
    def peak_clock_hz(self) -> float:
        return max(self.clock_hz, self.max_clock_hz or 0.0)

    def native_dtype(self, dtype: str) -> str:
        """The dtype the cores compute `dtype` in: itself where they have units for it,
        else fp32 (fp16/bf16 converted to fp32, as oneDNN and OpenBLAS do without them)."""
        return dtype if dtype in self.flops_per_cycle_per_core else "fp32"

    def per_cycle(self, dtype: str) -> float:
        """FLOPs per cycle per core that the cores compute `dtype` at (converted: fp32's)."""
        table: dict[str, float] = {k: v for k, v in self.flops_per_cycle_per_core.items()}
        return table[self.native_dtype(dtype)]

    def peak_flops_per_s(self, dtype: str, cores: int | None = None) -> float:
        """Peak FLOP/s of `cores` cores (default all) in `dtype`, at the peak clock."""
        return (cores or self.total_cores) * self.peak_clock_hz * self.per_cycle(dtype)


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
    """A point-to-point or switched link: bandwidth per direction and latency, and the class
    of hop it is to a collective library (NCCL's NVLINK, PCI or NET latencies)."""

    kind: Literal["link"] = "link"
    bandwidth_bytes_per_s: PositiveFloat = Field(description="per direction")
    latency_s: PositiveFloat
    transport: Literal["nvlink", "pci", "net"] | None = Field(
        None, description="the class of hop in NCCL's tuning model; default: from the name "
        "(nvlink*, pci*, else net for a link between nodes, pci inside one)")


DeviceSpec = CPUSpec | GPUSpec

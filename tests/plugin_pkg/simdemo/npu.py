"""Device kind `npu`: an accelerator costed as a plain roofline (a toy; see `accelerators.tpu`
for a systolic-array model).

A matrix product runs on the matrix units at `matmul_efficiency` of the dtype's peak, any
other op on the vector units at `vector_efficiency` of the fp32 peak; memory streams at the
HBM bandwidth, and the batch crosses the host link (`host_link`, a catalog link).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveFloat, PositiveInt

from hardware_models.base import OpCost
from hardware_models.links import Link
from hardware_models.profile import Profile
from workloads.ops import Op


class NPUSpec(BaseModel):
    """A catalog entry with `kind: npu`: validated field by field, unknown keys refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["npu"] = "npu"
    name: str
    display_name: str
    sources: list[str] = []
    cores: PositiveInt = Field(description="matrix units")
    peak_flops: dict[str, PositiveFloat] = Field(description="per dtype; fp32 required")
    matmul_efficiency: PositiveFloat = 1.0
    vector_efficiency: PositiveFloat = 1.0
    memory_bytes: PositiveFloat
    memory_bandwidth_bytes_per_s: PositiveFloat
    launch_s: NonNegativeFloat = Field(0.0, description="host time per kernel")
    host_link: str = Field(description="a catalog link, e.g. pcie4-x16")
    tdp_w: PositiveFloat | None = None
    price_usd: PositiveFloat | None = None


class NPU:
    """The device model: what one op costs on a `npu` and what launching it costs the host."""

    kind = "npu"
    spec_model = NPUSpec

    def __init__(self, spec: NPUSpec, profile: Profile, host_link: Link) -> None:
        self.spec, self.profile, self.host_link = spec, profile, host_link
        self.name, self.cores, self.memory_bytes = spec.name, spec.cores, spec.memory_bytes
        self.tdp_w, self.price_usd = spec.tdp_w, spec.price_usd

    def peak_flops(self, dtype: str) -> float:
        return self.spec.peak_flops.get(dtype, self.spec.peak_flops["fp32"])

    def launch_s(self, op: Op) -> float:
        return self.spec.launch_s * op.kernels

    def op_cost(self, op: Op) -> OpCost:
        if op.kind == "copy":
            size = float(op.attr("bytes_moved", op.bytes_read))  # type: ignore[arg-type]
            return self.host_link.copy_cost(size, self.profile)
        if op.kind == "gemm":
            rate = self.peak_flops(op.dtype) * self.spec.matmul_efficiency
        else:
            rate = self.peak_flops("fp32") * self.spec.vector_efficiency
        return OpCost(op.flops / rate, op.bytes / self.spec.memory_bandwidth_bytes_per_s)

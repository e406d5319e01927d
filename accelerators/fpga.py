"""Device kind `fpga`: a dataflow accelerator built from DSP slices at a fabric clock.

The design is an overlay, as Vitis AI's DPU or an HLS matrix engine is one: every op runs in
turn on one array of multiply-accumulate lanes built from the usable DSP slices
(`dsp_slices` x `dsp_fraction`, `dsps_per_mac` slices per lane for the op's dtype). A matrix
product (m x k) @ (k x n) is unrolled spatially over k (up to the lanes) and then n, padded to
whole unrolled blocks, and pipelined over m: one iteration per cycle at best. The pipeline's
initiation interval (II) is set by the layer's resources: the operand bytes one iteration
needs over what the memories can deliver per cycle, from BRAM/URAM (two ports of 9 bytes per
block) when the op's data fit on chip, else from DDR/HBM (`memory_bandwidth_bytes_per_s` /
`clock_hz`). Elementwise work uses the same lanes, one operation per lane per cycle. Each op
also pays its pipeline depth (`pipeline_depth_cycles`) and a fixed host-side call
(`call_s`: one kernel invocation through XRT). The batch crosses the host link (PCIe).

Not modelled: a spatial dataflow design with one pipeline per layer (FINN, hls4ml), place
and route (the clock is an input, not a result), LUT-based arithmetic, partial
reconfiguration, and off-chip traffic beyond the op's own bytes.
"""

from __future__ import annotations

import math
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveFloat, PositiveInt

from hardware_models.base import OpCost
from hardware_models.links import Link
from hardware_models.profile import Profile
from workloads.ops import Gemm, Op

BRAM_BYTES, URAM_BYTES = 4608, 36864  # a 36 Kb block RAM, a 288 Kb UltraRAM
PORT_BYTES_PER_CYCLE = 18  # two ports of 72 bits per block


class FPGASpec(BaseModel):
    """A catalog entry with `kind: fpga`: one card, validated field by field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["fpga"] = "fpga"
    name: str
    display_name: str
    year: int | None = None
    sources: list[str]
    assumptions: list[str] = []
    dsp_slices: PositiveInt
    dsp_fraction: float = Field(gt=0, le=1, description="share of the DSPs a design places")
    dsps_per_mac: dict[str, PositiveFloat] = Field(description="DSP slices per MAC lane by dtype")
    clock_hz: PositiveFloat = Field(description="the kernel's fabric clock")
    bram_blocks: PositiveInt
    uram_blocks: int = Field(0, ge=0)
    memory_bytes: PositiveFloat
    memory_bandwidth_bytes_per_s: PositiveFloat
    pipeline_depth_cycles: PositiveInt = 100
    call_s: NonNegativeFloat = Field(description="host time per kernel invocation")
    host_link: str
    tdp_w: PositiveFloat | None = None
    price_usd: PositiveFloat | None = None

    @property
    def onchip_bytes(self) -> float:
        return float(self.bram_blocks * BRAM_BYTES + self.uram_blocks * URAM_BYTES)

    @property
    def onchip_bytes_per_cycle(self) -> float:
        return float((self.bram_blocks + self.uram_blocks) * PORT_BYTES_PER_CYCLE)


class FPGA:
    """What one op costs on the card's overlay, and what invoking it costs the host."""

    kind = "fpga"
    spec_model = FPGASpec
    catalog = resources.files("accelerators") / "catalog"  # entries with kind: fpga

    def __init__(self, spec: FPGASpec, profile: Profile, host_link: Link) -> None:
        self.spec, self.profile, self.host_link = spec, profile, host_link
        self.name, self.memory_bytes = spec.name, spec.memory_bytes
        self.cores = spec.dsp_slices
        self.tdp_w, self.price_usd = spec.tdp_w, spec.price_usd

    def lanes(self, dtype: str) -> int:
        """MAC lanes the usable DSPs make in `dtype` (an unlisted dtype as fp32)."""
        per = self.spec.dsps_per_mac.get(dtype, self.spec.dsps_per_mac["fp32"])
        return max(1, int(self.spec.dsp_slices * self.spec.dsp_fraction / per))

    def peak_flops(self, dtype: str) -> float:
        return 2.0 * self.lanes(dtype) * self.spec.clock_hz

    def launch_s(self, op: Op) -> float:
        return self.spec.call_s * op.kernels

    def iterations(self, op: Op) -> tuple[int, int]:
        """(pipeline iterations, MAC lanes each uses): k unrolled first, then n."""
        lanes = self.lanes(op.dtype)
        g = op.gemm
        if op.kind != "gemm" or g is None:
            return max(1, math.ceil(op.flops / lanes)), lanes
        tk = min(g.k, lanes)
        tn = max(1, min(g.n, lanes // tk))
        return g.batch * g.m * math.ceil(g.n / tn) * math.ceil(g.k / tk), tk * tn

    def initiation_interval(self, op: Op, iterations: int) -> int:
        """Cycles between iterations: the operand bytes one iteration needs over the bytes
        per cycle its memory delivers (on chip when the op's data fit there)."""
        per_iteration = op.bytes / iterations
        onchip = op.bytes <= self.spec.onchip_bytes
        supply = (self.spec.onchip_bytes_per_cycle if onchip else
                  self.spec.memory_bandwidth_bytes_per_s / self.spec.clock_hz)
        return max(1, math.ceil(per_iteration / supply))

    def op_cost(self, op: Op) -> OpCost:
        if op.kind == "copy":
            size = float(op.attr("bytes_moved", op.bytes_read))
            return self.host_link.copy_cost(size, self.profile, bool(op.attr("pinned", False)))
        iterations, _ = self.iterations(op)
        ii = self.initiation_interval(op, iterations)
        cycles = iterations * ii + self.spec.pipeline_depth_cycles * op.kernels
        offchip = 0.0 if op.bytes <= self.spec.onchip_bytes else op.bytes
        return OpCost(cycles / self.spec.clock_hz, offchip / self.spec.memory_bandwidth_bytes_per_s)


def mac_utilisation(device: FPGA, g: Gemm, dtype: str = "fp16") -> float:
    """Share of the lanes' peak a product reaches with II = 1 (its padding loss alone)."""
    op = Op("g", "gemm", "task", "g", g.flops, 0.0, 0.0, dtype, 1, gemm=g)
    iterations, _ = device.iterations(op)
    return g.flops / (2.0 * device.lanes(dtype) * iterations)


__all__ = ["FPGA", "FPGASpec", "mac_utilisation"]

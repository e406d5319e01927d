"""Device kind `tpu`: a systolic-array accelerator (Google's TPU v2 ... v5e).

A chip has `tensor_cores`, each with `mxus_per_core` matrix units of `mxu_rows` x `mxu_cols`
multiply-accumulate cells, a vector unit, on-chip vector memory (VMEM) and HBM. A matrix
product (m x k) @ (k x n) is mapped as XLA maps it: the weights are loaded into the array in
tiles of mxu_rows (k) x mxu_cols (n), padded up to whole tiles, and the m rows of the other
operand stream through each tile. The next tile's weights shift in while the current one
computes (double-buffered: the first TPU's matrix unit holds a second weight tile to hide
the shift-in, Jouppi et al., ISCA 2017; assumed for v2 on), so a tile costs
max(m, mxu_rows) cycles and a product one pipeline fill of mxu_rows. Tiles are spread over
all matrix units; where there are fewer tiles than units, the m rows are split among the
idle units. So a 64 x 64 product on a 128 x 128 array uses a quarter of it, and a thin
stream (small m) waits for its weights. A convolution is an NHWC
product over every pixel of every sample (m = N x H x W): the per-sample GEMMs that cuDNN
runs for a 1x1 convolution on NCHW tensors (`algorithm: gemm`) are one product here.
Every other op runs on the vector units (`vector_flops_per_s`) or streams from HBM, whichever
is slower. XLA fuses an elementwise op, a pooling or a reduction with the op that produces
its input, so one operand of its output's size reaches it on chip: it pays HBM time for the
rest of what it reads and for what it writes (an op whose bytes all fit in VMEM stays on
chip).
fp32 products run as `fp32_passes` bf16 passes (XLA's default precision: 1); there are no
fp64 units. XLA compiles the whole step into one program: no launch per op, only a fixed
`op_overhead_s` per op. The batch crosses the host link (PCIe); chips talk over ICI
(`ici_link`, a catalog link, the default link between the chips of a slice).
"""

from __future__ import annotations

import math
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveFloat, PositiveInt

from hardware_models.base import OpCost
from hardware_models.links import Link
from hardware_models.profile import Profile
from simulator.core.errors import UserError
from workloads.ops import Gemm, Op

MATRIX_DTYPES = ("bf16", "fp16")  # what the matrix units multiply natively (fp16 as bf16)
FUSED_KINDS = ("elementwise", "pool", "reduction")  # fused with their producer by XLA


class TPUSpec(BaseModel):
    """A catalog entry with `kind: tpu`: one chip, validated field by field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["tpu"] = "tpu"
    name: str
    display_name: str
    year: int | None = None
    sources: list[str]
    assumptions: list[str] = []
    tensor_cores: PositiveInt = Field(description="TensorCores per chip")
    mxus_per_core: PositiveInt
    mxu_rows: PositiveInt = 128
    mxu_cols: PositiveInt = 128
    clock_hz: PositiveFloat
    published_peak_flops: dict[str, PositiveFloat] = Field(
        description="the vendor's peak per chip (bf16); checked against the array geometry")
    vector_flops_per_s: PositiveFloat = Field(description="fp32 peak of the vector units")
    vmem_bytes: PositiveFloat = Field(description="on-chip vector memory per chip")
    memory_bytes: PositiveFloat
    memory_bandwidth_bytes_per_s: PositiveFloat
    host_link: str = Field(description="a catalog link: the chip's PCIe")
    ici_link: str = Field(description="a catalog link: the chip-to-chip interconnect")
    ici_topology: Literal["2d_torus", "3d_torus"]
    fp32_passes: PositiveInt = 1
    op_overhead_s: NonNegativeFloat = Field(description="fixed device time per op")
    tdp_w: PositiveFloat | None = None
    price_usd: PositiveFloat | None = None

    @property
    def matrix_units(self) -> int:
        return self.tensor_cores * self.mxus_per_core

    @property
    def matrix_flops_per_s(self) -> float:
        """bf16 peak from the geometry: 2 FLOPs per cell per cycle."""
        return 2.0 * self.mxu_rows * self.mxu_cols * self.matrix_units * self.clock_hz


class TPU:
    """What one op costs on a TPU chip (no host launches: XLA runs the step as one program)."""

    kind = "tpu"
    spec_model = TPUSpec
    catalog = resources.files("accelerators") / "catalog"  # entries with kind: tpu

    def __init__(self, spec: TPUSpec, profile: Profile, host_link: Link) -> None:
        self.spec, self.profile, self.host_link = spec, profile, host_link
        self.name, self.memory_bytes = spec.name, spec.memory_bytes
        self.cores = spec.matrix_units * spec.mxu_rows * spec.mxu_cols  # MAC cells
        self.tdp_w, self.price_usd = spec.tdp_w, spec.price_usd
        self.chip_link = spec.ici_link

    def passes(self, dtype: str) -> int:
        if dtype == "fp64":
            raise UserError(f"{self.name}: a TPU has no fp64 units; use fp32 or bf16")
        return 1 if dtype in MATRIX_DTYPES else self.spec.fp32_passes

    def peak_flops(self, dtype: str) -> float:
        if dtype == "fp64":
            return self.spec.vector_flops_per_s  # nothing runs faster than the vector units
        return self.spec.matrix_flops_per_s / self.passes(dtype)

    def launch_s(self, op: Op) -> float:
        return 0.0

    def matmul_s(self, g: Gemm, dtype: str) -> float:
        """Weight tiles padded to the array, spread over the units, m rows streamed each
        while the next tile's weights shift in; one pipeline fill per product."""
        s = self.spec
        tiles = g.batch * math.ceil(g.k / s.mxu_rows) * math.ceil(g.n / s.mxu_cols)
        waves = math.ceil(tiles / s.matrix_units)
        split = max(1, s.matrix_units // tiles)  # idle units share the rows of a tile
        cycles = waves * max(math.ceil(g.m / split), s.mxu_rows) + s.mxu_rows
        return self.passes(dtype) * cycles / s.clock_hz

    def product(self, op: Op) -> Gemm:
        """The op's matrix product as XLA runs it: a convolution's per-sample GEMMs
        (W [a x c] times x [c x HW] for each of N samples) as one NHWC product."""
        g = op.gemm
        assert g is not None
        if op.attr("algorithm") == "gemm" and g.batch > 1:
            return Gemm(g.batch * g.n, g.m, g.k)
        return g

    def memory_s(self, op: Op) -> float:
        if op.kind == "gemm":
            return op.bytes / self.spec.memory_bandwidth_bytes_per_s
        if op.bytes <= self.spec.vmem_bytes:
            return 0.0  # fused into its neighbours by XLA, kept in VMEM
        fused = min(op.bytes_read, op.bytes_written) if op.kind in FUSED_KINDS else 0.0
        return (op.bytes - fused) / self.spec.memory_bandwidth_bytes_per_s

    def op_cost(self, op: Op) -> OpCost:
        if op.kind == "copy":
            size = float(op.attr("bytes_moved", op.bytes_read))
            return self.host_link.copy_cost(size, self.profile, bool(op.attr("pinned", False)))
        overhead = self.spec.op_overhead_s * op.kernels
        if op.kind == "gemm" and op.gemm is not None:
            return OpCost(self.matmul_s(self.product(op), op.dtype), self.memory_s(op), overhead)
        return OpCost(op.flops / self.spec.vector_flops_per_s, self.memory_s(op), overhead)


def utilisation(device: Any, g: Gemm, dtype: str = "bf16") -> float:
    """Fraction of the matrix units' peak a product reaches on `device` (a TPU)."""
    return g.flops / (device.matmul_s(g, dtype) * device.peak_flops(dtype))

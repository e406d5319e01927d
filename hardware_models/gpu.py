"""GPU model: many SMs of many slow cores, tensor cores per dtype, HBM/GDDR bandwidth.

Matrix products are cut into output tiles; tiles run in waves over the SMs, so a product
with 1.1 waves of tiles pays for 2 (wave quantisation) and a tiny product uses few SMs.
The work is handed out in units of one tile by one K block (stream-K / split-K, as cuBLAS
does on Hopper), so a long K fills the SMs evenly and only short products see whole waves.
Tiles shrink to fit thin products (few output channels), and a small tile runs below the
full rate: its operand intensity i = tm*tn / (tm + tn) gives a fraction i / (i + half_dim).
The largest tile and the half-speed intensity may differ per dtype (tf32's 4-byte operands
fill shared memory twice as fast as fp16's). The output tile is stored after its main loop,
so a product's store of C (at the memory bandwidth) adds to its main loops: this is what
makes a thin-K outer product (a weight gradient at a small batch) slower than its roofline.
Everything else is costed as a roofline on the non-tensor units and memory bandwidth.
A convolution run as an NHWC tensor-core kernel on NCHW tensors (`layout_bytes`, where its
dtype runs on tensor cores: fp16 from Volta, tf32 and bf16 from Ampere) adds the transposes
of its activations: two kernels that read and write those bytes at the profile's
`layout_efficiency` of the memory bandwidth. A 3x3 stride-1 weight gradient whose dtype has
no tensor cores is cuDNN's non-fused Winograd F(4x4, 3x3) (`winograd_tiles`): 36 products
with a quarter of the multiplies, plus its transforms at the memory bandwidth. A 1x1
convolution run as a GEMM (`algorithm: gemm`) goes at the GEMM library's rates
("conv_gemm.DTYPE" where fitted), with the GEMM tile fill, not the convolution kernels'.
A tensor-core GEMM of a linear layer whose feature sizes are not multiples of 16 bytes (GPT-2's
vocabulary of 50,257) runs the library's narrow-load kernels at `gemm_alignment_efficiency`
of the aligned rate (measured on the H200: 91-134 TFLOP/s in bf16 against 580-730 aligned).
A kernel that runs one thread block per channel (cuDNN's NCHW batch norm in training, `ctas`)
streams at most `cta_bandwidth_bytes_per_s` per block: a layer of 16 to 128 channels at a large
image uses a few SMs and runs far below the memory bandwidth (measured: 140 GB/s at 16 channels,
2 TB/s from about 256). A kernel that loops over a window (pooling, depthwise convolutions)
pays, besides its taps at its vector rate, `item_flops` per work item (an output element; its
index arithmetic and stores: max pooling runs 62 G outputs/s with 3x3 windows and 81 G/s with
2x2 on the H200, not 9/4 slower). Batch norm's second read of its inputs comes from the L2
cache where they fit in it (`reread_bytes`).
Each kernel costs the host `launch_s` (the engine's host thread; per kind of kernel where the
library's dispatch cost was measured), or only the driver's `kernel_launch_s` where a library
call launches it from native code (cuSOLVER's kernels inside one getrf), and the device a
fixed `kernel_overhead_s` (ramp-up and tail).
"""

from __future__ import annotations

import math
from typing import cast

from hardware_models.base import OpCost, host_extra_s
from hardware_models.links import Link
from hardware_models.profile import Profile
from hardware_models.registry import hardware
from hardware_models.spec import Dtype, GPUSpec
from workloads.ops import DTYPE_BYTES, Gemm, Op

BACKWARD_PHASES = ("bwd_data", "bwd_weight")
K_BLOCK = 64  # the K depth of one main-loop block: the unit stream-K kernels hand out
MIN_TILE_EDGE = 32  # the smallest tile edge libraries use for tensor-core (and warp) tiles


def _tile_edge(size: int, largest: int) -> int:
    """Libraries pick a tile that fits the product: the power of two covering `size`,
    between the MMA minimum and the largest tile the profile allows."""
    return min(largest, max(MIN_TILE_EDGE, 1 << max(0, math.ceil(math.log2(size)))))


@hardware.register("gpu")
class GPU:
    kind = "gpu"
    spec_model = GPUSpec  # validates a catalog entry with `kind: gpu`

    def __init__(self, spec: GPUSpec, profile: Profile, host_link: Link) -> None:
        self.spec, self.profile, self.host_link = spec, profile, host_link
        self.name = spec.name
        self.memory_bytes = spec.memory_bytes
        self.cores = spec.total_cores
        self.tdp_w, self.price_usd = spec.tdp_w, spec.price_usd

    def peak_flops(self, dtype: str) -> float:
        peaks = self.spec.peak_flops
        # an unlisted dtype (or one outside Dtype) falls back to the fp32 peak
        return peaks.get(cast(Dtype, dtype), peaks["fp32"])

    def launch_s(self, op: Op) -> float:
        """Host time to issue `op`: per kernel issued through the framework, the library's
        measured cost for its kind of kernel, else the profile's (or the spec sheet's) cost
        of one tiny kernel, backward kernels at the host profile's backward rate where it has
        one; per kernel a library call launches itself from native code, the driver's
        launch alone (the spec's `kernel_launch_s`), and per NCHW <-> NHWC transpose cuDNN
        runs around a tensor-core convolution the host profile's `transpose_launch_s` (else
        the driver's launch too); plus, for a data-gradient op, the
        autograd engine's cost of the backward node that issues it; plus the host profile's
        per-step and per-parameter-tensor terms (see `host`)."""
        prof = self.profile
        per = prof.launch_s if prof.launch_s is not None else self.spec.kernel_launch_s
        if op.phase in BACKWARD_PHASES and prof.backward_launch_s is not None:
            per = prof.backward_launch_s
        kernel, by_kernel = str(op.attr("kernel", op.kind)), prof.launch_s_by_kernel
        per = by_kernel.get(f"{kernel}.{op.phase}", by_kernel.get(kernel, per))
        autograd = prof.autograd_node_s if op.phase == "bwd_data" else 0.0
        native = self.spec.kernel_launch_s * op.library_kernels
        transpose = self.spec.kernel_launch_s if prof.transpose_launch_s is None \
            else prof.transpose_launch_s
        native += transpose * self.layout_s(op)[1]
        return per * op.framework_calls + native + autograd + host_extra_s(prof, op)

    def op_cost(self, op: Op) -> OpCost:
        overhead = self.profile.kernel_overhead_s * op.kernels
        if op.kind == "copy":
            size = float(op.attr("bytes_moved", op.bytes_read))
            return self.host_link.copy_cost(size, self.profile, bool(op.attr("pinned", False)))
        memory_s = self.profile.memory_s(op.bytes, self.spec.memory_bandwidth_bytes_per_s,
                                         self.spec.l2_bytes)
        if op.kind == "gemm" and op.attr("algorithm") == "small_channels":
            # cuDNN's kernels for fewer channels than a tensor-core step: a fitted fraction
            # of the FP32 units' rate per pass, whatever the dtype (workloads.layers)
            kernel = str(op.attr("kernel"))
            rate = self.peak_flops("fp32") * self.profile.vec_eff(op.dtype, kernel)
            return OpCost(op.flops / rate, memory_s, overhead)
        if op.kind == "gemm" and op.gemm is not None:
            kernel = str(op.attr("kernel", "gemm"))
            if op.attr("algorithm") == "gemm":  # a 1x1 convolution handed to the GEMM library
                kernel = "conv_gemm"  # its own fitted rate where there is one, else cuBLAS's
            g = op.gemm
            store_s = self.profile.memory_s(g.m * g.n * g.batch * DTYPE_BYTES.get(op.dtype, 4),
                                            self.spec.memory_bandwidth_bytes_per_s, None)
            layout_s, layout_kernels = self.layout_s(op)
            main_s = self.winograd_s(op, g) if self.runs_winograd(op) else \
                self.gemm_s(g, op.dtype, kernel, op.phase) / self.alignment_factor(op) + store_s
            return OpCost(main_s + layout_s, memory_s,
                          overhead + self.profile.kernel_overhead_s * layout_kernels)
        kernel = str(op.attr("kernel", op.kind))
        vector_rate = self.peak_flops("fp32") * self.profile.vec_eff(op.dtype, kernel)
        streamed = op.bytes - self.cached_reread_bytes(op)
        if streamed < op.bytes:
            memory_s = self.profile.memory_s(streamed, self.spec.memory_bandwidth_bytes_per_s,
                                             self.spec.l2_bytes)
        ctas = int(cast(float, op.attr("ctas", 0)))
        cta_rate = self.profile.cta_rate(op.dtype, kernel) if ctas else None
        if cta_rate is not None:  # one block per channel: the channels' blocks stream alone
            memory_s = max(memory_s, streamed / ctas / cta_rate)
        per_item = self.profile.item_cost_flops(op.dtype, kernel) * op.work_items
        return OpCost((op.flops + per_item) / vector_rate, memory_s, overhead)

    def cached_reread_bytes(self, op: Op) -> float:
        """The bytes a kernel's second pass reads again (`reread_bytes`) where they fit in the
        L2 cache, so that they do not come from memory again; else none."""
        reread = float(cast(float, op.attr("reread_bytes", 0.0)))
        return reread if reread and self.spec.l2_bytes and reread <= self.spec.l2_bytes else 0.0

    def alignment_factor(self, op: Op) -> float:
        """The rate factor of a tensor-core GEMM whose strides are not multiples of 16 bytes
        (`align`: the largest power of two dividing its feature sizes): 1 otherwise, and on
        the FP32 units, whose kernels load one element at a time anyway (measured on the
        H200: 49-51 TFLOP/s aligned or not)."""
        align = int(cast(float, op.attr("align", 0)))
        if not align or not self.tensor_cores(op.dtype):
            return 1.0
        return self.profile.alignment_eff(align * DTYPE_BYTES.get(op.dtype, 4))

    def tensor_cores(self, dtype: str) -> bool:
        """Whether the GPU has tensor cores for `dtype` (a peak of its own beyond fp32's)."""
        return dtype not in ("fp32", "fp64") and dtype in self.spec.peak_flops

    def layout_s(self, op: Op) -> tuple[float, int]:
        """Time and kernels of the NCHW <-> NHWC transposes around a tensor-core convolution
        (each transposed byte read once and written once)."""
        size = float(op.attr("layout_bytes", 0.0))
        if not size or not self.tensor_cores(op.dtype):
            return 0.0, 0
        eff = self.profile.layout_eff(op.dtype)
        return self.profile.memory_s(2.0 * size, self.spec.memory_bandwidth_bytes_per_s,
                                     None) / eff, 2

    def runs_winograd(self, op: Op) -> bool:
        return bool(op.attr("winograd_tiles")) and not self.tensor_cores(op.dtype)

    def winograd_s(self, op: Op, g: Gemm) -> float:
        """A 3x3 weight gradient as non-fused Winograd F(4x4, 3x3): x and dy transformed to
        6x6 tiles (written, then read by the products), 36 products (Cout x Cin, K = tiles),
        and the 36 x Cout x Cin result transformed back to 3x3 filters."""
        tiles = int(cast(float, op.attr("winograd_tiles", 0.0)))
        cout, cin = g.m, g.n // 9
        size = DTYPE_BYTES.get(op.dtype, 4)
        moved = 36 * (tiles * (cout + cin) * 2 + cout * cin * 2) * size
        transforms_s = self.profile.memory_s(moved, self.spec.memory_bandwidth_bytes_per_s, None)
        return self.gemm_s(Gemm(cout, cin, tiles, 36), op.dtype, "conv") + transforms_s

    def gemm_s(self, g: Gemm, dtype: str, kernel: str = "gemm", phase: str | None = None
               ) -> float:
        """Time of the main loops: work units (one tile x one K block) spread evenly over the
        SMs, as stream-K / split-K kernels do; the last, partial wave costs a whole wave."""
        if dtype not in self.spec.peak_flops:  # no such tensor cores: the fp32 units do it
            dtype = "fp32"
        (big_m, big_n), half = self.profile.gemm_shape(dtype)
        tm, tn = _tile_edge(g.m, big_m), _tile_edge(g.n, big_n)
        tiles = math.ceil(g.m / tm) * math.ceil(g.n / tn) * g.batch
        blocks = math.ceil(g.k / K_BLOCK)
        waves = math.ceil(tiles * blocks / self.spec.sms)
        sm_rate = self.peak_flops(dtype) * self.profile.gemm_eff(dtype, kernel, phase) / \
            self.spec.sms
        block_k = min(g.k, K_BLOCK)
        fill = self.tile_fill(tm, tn, kernel, half, dtype)
        return waves * (2.0 * tm * tn * block_k) / (sm_rate * fill)

    def tile_fill(self, tm: int, tn: int, kernel: str, half: float, dtype: str = "") -> float:
        """Fraction of the full rate a tile reaches: each K step loads tm + tn operands for
        tm * tn multiply-adds, so small tiles (thin products) are starved of operands."""
        if kernel == "conv":
            half = self.profile.conv_half(dtype, half)
        intensity = tm * tn / (tm + tn)
        return intensity / (intensity + half)

"""CPU model: a few fast cores with SIMD units, sharing the memory bandwidth.

An op runs on `threads` cores (the request's; default all of them). A matrix product's
outputs are split evenly into one block per thread, as square as the product allows; a block
of mt x nt outputs summed over k reaches the fraction i / (i + h) of the full rate, where
i = 1 / (1/mt + 1/nt + 1/k) is its operand intensity (a GPU tile's law, with the depth), so a
thin product (batch 1, a weight gradient at batch 1) or many threads make slow blocks.
t threads compute at t / (1 + c (t - 1)) times one thread's rate (they share the power
budget, the clock, the caches); memory streams at t times one core's bandwidth up to the
socket's, `cache_speedup` times faster when the op's bytes fit in the last-level cache.
Elementwise work runs on the library's vector threads (numpy: one). Each op call through the
framework pays a fixed dispatch time (not the calls a library makes inside one of its own,
LAPACK's BLAS calls inside dgetrf) and, on more than one thread, each call a fork/join time
per thread beyond the first; an output larger than the allocator's mmap threshold (32 MiB)
is fresh memory, whose pages fault when first written (not an op marked `in_place`: a task
graph's tasks update their data where it lies). The host *is* the device: nothing is
launched ahead, and the framework's per-step and per-parameter-tensor host terms are part
of the ops' time.

Peaks are cores x the peak clock x the ISA's FLOPs per cycle for the dtype (fp16 and bf16
converted and computed on the fp32 units where the cores have none); a profile's
efficiencies are fractions of them, at most 1, so no op runs above the peak.
"""

from __future__ import annotations

import math

from hardware_models.base import OpCost, host_extra_s
from hardware_models.profile import Profile
from hardware_models.registry import hardware
from hardware_models.spec import CPUSpec
from simulator.core.errors import UserError
from workloads.ops import Gemm, Op

MMAP_THRESHOLD_BYTES = 32 * 2**20  # glibc maps larger buffers fresh (DEFAULT_MMAP_THRESHOLD_MAX)
PAGE_BYTES = 4096


def block_intensity(g: Gemm, threads: int, lanes: float) -> tuple[float, int]:
    """Multiply-adds per operand element moved, 1 / (1/mt + 1/nt + 1/k), of one thread's
    share of the outputs (mt x nt, as square as the product allows; batched products stack
    their rows): a row of A and a column of B feed each output block, and its k-deep sums
    load and store the block once. Each edge counts at least one SIMD vector (`lanes`): a
    thinner product (a matrix-vector product, a depth-1 outer product) is bound by the
    memory it streams, which its memory time prices. Also the threads that get a share."""
    rows = g.m * g.batch
    used = max(1, min(threads, rows * g.n))
    area = rows * g.n / used
    mt = min(float(rows), math.sqrt(area))
    nt = area / mt
    if nt > g.n:
        nt = float(g.n)
        mt = area / nt
    return 1.0 / sum(1.0 / max(lanes, edge) for edge in (mt, nt, float(g.k))), used


@hardware.register("cpu")
class CPU:
    kind = "cpu"
    spec_model = CPUSpec  # validates a catalog entry with `kind: cpu`
    host_link = None

    def __init__(self, spec: CPUSpec, profile: Profile, threads: int | None = None) -> None:
        self.spec, self.profile = spec, profile
        self.name = spec.name
        self.memory_bytes = spec.memory_bytes
        self.cores = spec.total_cores
        self.threads = threads or self.cores
        if self.threads > self.cores:
            raise UserError(f"threads: {spec.name} has {self.cores} cores, got {self.threads} "
                            f"threads (one thread per core at most)")
        self.tdp_w = spec.tdp_w * spec.sockets if spec.tdp_w else None
        self.price_usd = spec.price_usd * spec.sockets if spec.price_usd else None

    def with_threads(self, threads: int) -> CPU:
        """The same CPU running ops on `threads` threads."""
        return CPU(self.spec, self.profile, threads)

    def peak_flops(self, dtype: str) -> float:
        return self.spec.peak_flops_per_s(dtype, self.threads)

    def launch_s(self, op: Op) -> float:
        return 0.0

    def speedup(self, threads: int) -> float:
        """How many times one thread's rate `threads` threads compute at."""
        return threads / (1.0 + self.profile.thread_contention * (threads - 1))

    def vector_threads(self) -> int:
        return min(self.threads, self.profile.vector_threads or self.threads)

    def stream_s(self, size_bytes: float, threads: int) -> float:
        """Time for `threads` cores to stream `size_bytes`: from the caches when they fit."""
        prof, spec = self.profile, self.spec
        socket = spec.memory_bandwidth_bytes_per_s * prof.memory_efficiency
        per_core = prof.core_bandwidth_bytes_per_s
        cores = threads * per_core if per_core else None
        if spec.cache_bytes and size_bytes <= spec.cache_bytes:
            return size_bytes / ((cores or socket) * prof.cache_speedup)
        return size_bytes / min(socket, cores or socket)

    def fixed_s(self, op: Op, threads: int) -> float:
        """Dispatch of each call through the framework (a library call's own BLAS calls
        have none), fork/join of the threads beyond the first per call, first touch of a
        fresh output, and the host terms."""
        prof = self.profile
        kernel = str(op.attr("kernel", op.kind))
        per_thread = prof.fork_join_s.get(kernel, prof.fork_join_s.get("default"))
        if per_thread is None:  # the spec's cost of one parallel region over all cores
            per_thread = self.spec.thread_fork_join_s / max(1, self.cores - 1)
        calls = (prof.kernel_overhead_s * op.framework_calls
                 + per_thread * (threads - 1) * op.kernels)
        fresh = 0.0 if op.attr("in_place", False) else self.first_touch_s(op.bytes_written,
                                                                          threads)
        return calls + fresh + host_extra_s(prof, op)

    def first_touch_s(self, written_bytes: float, threads: int) -> float:
        """An output above the allocator's mmap threshold is fresh memory each call: every
        page faults when first written, the faults shared by the writing threads."""
        if written_bytes < MMAP_THRESHOLD_BYTES or not self.profile.page_fault_s:
            return 0.0
        pages = math.ceil(written_bytes / PAGE_BYTES)
        return pages * self.profile.page_fault_s / self.speedup(threads)

    def op_cost(self, op: Op) -> OpCost:
        if op.kind == "copy":  # the batch is already in host memory
            return OpCost(0.0, 0.0)
        if op.kind == "gemm" and op.gemm is not None:
            return self.gemm_cost(op, op.gemm)
        threads = min(self.vector_threads(), max(1, op.work_items))
        kernel = str(op.attr("kernel", op.kind))
        rate = (self.spec.peak_flops_per_s("fp32", 1) * self.speedup(threads)
                * self.profile.vec_eff(op.dtype, kernel))
        return OpCost(op.flops / rate, self.stream_s(op.bytes, threads), self.fixed_s(op, threads))

    def gemm_efficiency(self, dtype: str, kernel: str) -> float:
        """A library's own kernel for the dtype where fitted ('gemm.fp16': numpy's float16
        loop), else the fraction of the units that compute it: the dtype's own where the
        cores have them ('bf16': AMX), else fp32's (the dtype is converted to fp32)."""
        own = self.profile.gemm_efficiency.get(f"{kernel}.{dtype}")
        if own is not None:
            return own
        native = self.spec.native_dtype(dtype)
        return self.profile.gemm_eff(native if self.same_unit(native) else "fp32", kernel)

    def same_unit(self, dtype: str) -> bool:
        """Whether the profile's efficiency for `dtype` was fitted on the same kind of unit
        (the same FLOPs per cycle relative to fp32) as this CPU's."""
        fitted, spec = self.profile.units, self.spec
        if dtype not in fitted or "fp32" not in fitted:
            return True
        return math.isclose(fitted[dtype] / fitted["fp32"],
                            spec.per_cycle(dtype) / spec.per_cycle("fp32"))

    def gemm_cost(self, op: Op, g: Gemm) -> OpCost:
        lanes = self.spec.per_cycle("fp32") / 4  # 2 FMA units x 2 FLOPs
        intensity, threads = block_intensity(g, self.threads, lanes)
        half = self.profile.gemm_half_dim
        fill = intensity / (intensity + half) if half else 1.0
        eff = self.gemm_efficiency(op.dtype, str(op.attr("kernel", "gemm")))
        rate = self.spec.peak_flops_per_s(op.dtype, 1) * eff * self.speedup(threads) * fill
        return OpCost(op.flops / rate, self.stream_s(op.bytes, threads), self.fixed_s(op, threads))

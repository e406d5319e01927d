"""Calibration profiles: the achievable rates and fixed overheads of one device.

A spec sheet says what a device could do; a profile says what it does, fitted by
`simulator calibrate` from measured kernels. The spec-sheet profile (`spec_sheet_profile`)
assumes peak rates and only the catalog's launch overhead.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveFloat, PositiveInt

SAME_WIDTH = {"fp16": "bf16", "bf16": "fp16", "fp32": "tf32", "tf32": "fp32"}
# the suffix of a convolution kernel's own rate in a backward pass ("conv_wgrad.bf16"): cuDNN
# and cuBLAS run a weight gradient (K = the batch's pixels) and a data gradient as kernels of
# their own, at rates of their own (measured on the H200: the weight gradients of ResNets,
# MobileNetV2 and VGG16 ran 20-40% below their forward passes' rate)
PASS_RATES = {"bwd_data": "dgrad", "bwd_weight": "wgrad"}


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    device: str
    device_file: str | None = Field(
        None, description="the device entry this profile is of, by path relative to the "
        "profile file, where the device is not in the catalog (`calibrate` on a new machine)")
    origin: str = Field(description="'spec-sheet', 'calibrated' or 'transferred from NAME'")
    gemm_efficiency: dict[str, PositiveFloat] = Field(
        default_factory=dict, description="achievable fraction of peak for full waves, per dtype"
    )
    gemm_tile: tuple[PositiveInt, PositiveInt] = (128, 128)
    gemm_half_dim: NonNegativeFloat = Field(
        0.0, description="CPU: the operand intensity 1/(1/mt+1/nt+1/k) of one thread's output "
        "block at which it runs at half its full rate; GPU: that of a tile, tm*tn/(tm+tn)"
    )
    gemm_tiles: dict[str, tuple[PositiveInt, PositiveInt]] = Field(
        default_factory=dict, description="GPU: the largest tile per dtype, where fitted per "
        "dtype (4-byte operands fill shared memory twice as fast as 2-byte ones)")
    gemm_half_dims: dict[str, NonNegativeFloat] = Field(
        default_factory=dict, description="GPU: gemm_half_dim per dtype, where fitted per dtype")
    conv_half_dim: NonNegativeFloat | None = Field(
        None, description="gemm_half_dim for cuDNN convolutions, where fitted separately")
    conv_half_dims: dict[str, NonNegativeFloat] = Field(
        default_factory=dict, description="conv_half_dim per dtype, where fitted per dtype "
        "(fp32's FFMA kernels and the tensor-core kernels have different tiles)")
    memory_efficiency: PositiveFloat = 1.0
    layout_efficiency: dict[str, PositiveFloat] = Field(
        default_factory=dict, description="GPU: fraction of the achievable memory bandwidth "
        "that the NCHW <-> NHWC transposes around tensor-core convolutions reach, per dtype "
        "(the dtype of the same width where only it was fitted; absent: 1)")
    vector_efficiency: dict[str, PositiveFloat] = Field(
        default_factory=dict,
        description="achievable fraction of the non-tensor peak, per dtype or per kind.dtype"
    )
    item_flops: dict[str, NonNegativeFloat] = Field(
        default_factory=dict,
        description="GPU: a vector kernel's cost per work item (an output element of max "
        "pooling: its window's index arithmetic and the index store) in FLOPs at the kernel's "
        "own vector rate, beyond its flops, per kind.dtype (absent: 0)")
    cta_bandwidth_bytes_per_s: dict[str, PositiveFloat] = Field(
        default_factory=dict,
        description="GPU: the bytes per second one thread block of a kernel that runs one block "
        "per channel (cuDNN's NCHW batch norm) streams, per kind.dtype: with few channels such "
        "a kernel cannot fill the GPU (absent: no such limit)")
    gemm_alignment_efficiency: dict[str, PositiveFloat] = Field(
        default_factory=dict,
        description="GPU: the fraction of the aligned rate a tensor-core GEMM reaches when its "
        "strides are multiples of only this many bytes (keys '2', '4', '8'; 16 and above: 1): "
        "the library falls back to kernels with narrower loads (cuBLAS's align1/align2)")
    cache_speedup: PositiveFloat = Field(
        1.0, description="bandwidth multiplier for ops whose bytes fit in the last-level cache"
    )
    kernel_overhead_s: NonNegativeFloat = Field(
        0.0, description="device-side fixed time per kernel"
    )
    launch_s: NonNegativeFloat | None = Field(None, description="host time per launch")
    launch_s_by_kernel: dict[str, NonNegativeFloat] = Field(
        default_factory=dict, description="host time per call of one library op, per kernel "
        "kind ('conv', 'gemm', 'relu', ...) or kind and pass ('conv.bwd_data'), where "
        "measured: a cuDNN convolution costs the host several times an elementwise op")
    transpose_launch_s: NonNegativeFloat | None = Field(
        None, description="host time per NCHW <-> NHWC transpose cuDNN launches around a "
        "tensor-core convolution (its launch and the call's own work on that path), where a "
        "host profile gave it (else the spec's kernel_launch_s)")
    autograd_node_s: NonNegativeFloat = Field(
        0.0, description="host time the autograd engine adds per backward node, beyond "
        "launching the node's kernels (PyTorch; charged to each data-gradient op)")
    backward_launch_s: NonNegativeFloat | None = Field(
        None, description="host time per backward kernel, autograd included, where a host "
        "profile gave it (else launch_s plus autograd_node_s per data-gradient op)")
    optimizer_tensor_s: NonNegativeFloat = Field(
        0.0, description="host time per parameter tensor per optimizer step (host profile)")
    step_s: dict[str, NonNegativeFloat] = Field(
        default_factory=dict, description="host time per step by mode (host profile)")
    host_origin: str | None = Field(None, description="the host profile these terms came from")
    copy_efficiency: dict[str, PositiveFloat] = Field(
        default_factory=dict, description="fraction of host-link bandwidth: pinned, pageable"
    )
    copy_overhead_s: NonNegativeFloat = 0.0
    threads: PositiveInt | None = Field(None, description="CPU: threads the fit assumed")
    kernel_rates_backend: str | None = Field(
        None, description="the library whose kernels the per-kernel vector rates describe"
    )
    fitted_from: list[str] = []
    fit_error: dict[str, float] = {}
    # CPU terms (hardware_models.cpu): how the rate of one op changes with its thread count
    core_bandwidth_bytes_per_s: PositiveFloat | None = Field(
        None, description="CPU: memory bandwidth one core streams (t cores stream t times it, "
        "up to memory_efficiency x the socket's); None: no per-core limit")
    thread_contention: NonNegativeFloat = Field(
        0.0, description="CPU: t threads compute at t / (1 + c (t - 1)) times one thread's "
        "rate (shared power and clock, caches and memory controllers)")
    fork_join_s: dict[str, NonNegativeFloat] = Field(
        default_factory=dict, description="CPU: fixed time per op call per thread beyond the "
        "first, per kernel kind ('conv': oneDNN's reorders and parallel regions) or 'default' "
        "for every other op; absent: the spec's thread_fork_join_s over all cores")
    vector_threads: PositiveInt | None = Field(
        None, description="CPU: threads the library runs elementwise kernels on (numpy: 1, "
        "its ufuncs are single-threaded); None: every thread")
    page_fault_s: NonNegativeFloat = Field(
        0.0, description="CPU: time per 4 KiB page of an output above the allocator's mmap "
        "threshold (fresh memory each call: each page faults on first touch), on one thread")
    units: dict[str, PositiveFloat] = Field(
        default_factory=dict, description="CPU: FLOPs per cycle per core of the CPU the "
        "efficiencies were fitted on; a dtype's efficiency describes its unit (AMX, AVX-512) "
        "and applies to a CPU whose unit has the same ratio to fp32")

    def vec_eff(self, dtype: str, kind: str = "elementwise") -> float:
        """Per kernel or kind and dtype ("relu.fp16", "reduction.fp32") if fitted, else the
        same kernel in the dtype of the same width (fp16 <-> bf16), else per dtype, else
        fp32's, else the peak rate."""
        eff = self.vector_efficiency
        for key in (f"{kind}.{dtype}", f"{kind}.{SAME_WIDTH.get(dtype, dtype)}", dtype, "fp32"):
            if key in eff:
                return eff[key]
        return 1.0

    def item_cost_flops(self, dtype: str, kind: str) -> float:
        """`item_flops` of `kind` in `dtype` (or the dtype of the same width), else 0."""
        costs = self.item_flops
        for key in (f"{kind}.{dtype}", f"{kind}.{SAME_WIDTH.get(dtype, dtype)}"):
            if key in costs:
                return costs[key]
        return 0.0

    def cta_rate(self, dtype: str, kind: str) -> float | None:
        """The per-block streaming rate of `kind` in `dtype` (or the dtype of the same width)."""
        rates = self.cta_bandwidth_bytes_per_s
        for key in (f"{kind}.{dtype}", f"{kind}.{SAME_WIDTH.get(dtype, dtype)}"):
            if key in rates:
                return rates[key]
        return None

    def alignment_eff(self, align_bytes: int) -> float:
        """The rate factor of a tensor-core GEMM whose strides are multiples of
        `align_bytes` (the fitted factor of that alignment or of the next narrower one)."""
        if align_bytes >= 16:
            return 1.0
        fitted = sorted((int(k), v) for k, v in self.gemm_alignment_efficiency.items())
        below = [v for k, v in fitted if k <= align_bytes]
        return below[-1] if below else (fitted[0][1] if fitted else 1.0)

    def conv_half(self, dtype: str, default: float) -> float:
        """The half-speed tile intensity of cuDNN's convolution kernels for `dtype`."""
        halves = self.conv_half_dims
        own = halves.get(dtype, halves.get(SAME_WIDTH.get(dtype, dtype)))
        if own is not None:
            return own
        return default if self.conv_half_dim is None else self.conv_half_dim

    def layout_eff(self, dtype: str) -> float:
        eff = self.layout_efficiency
        return eff.get(dtype, eff.get(SAME_WIDTH.get(dtype, dtype), 1.0))

    def memory_s(
        self, size_bytes: float, bandwidth_bytes_per_s: float, cache_bytes: float | None
    ) -> float:
        """Time to stream `size_bytes`: from the cache when it fits, else from memory."""
        speedup = self.cache_speedup if cache_bytes and size_bytes <= cache_bytes else 1.0
        return size_bytes / (bandwidth_bytes_per_s * self.memory_efficiency * speedup)

    def gemm_shape(self, dtype: str) -> tuple[tuple[int, int], float]:
        """The largest tile and the half-speed tile intensity for `dtype`'s products."""
        return (self.gemm_tiles.get(dtype, self.gemm_tile),
                self.gemm_half_dims.get(dtype, self.gemm_half_dim))

    def gemm_eff(self, dtype: str, kernel: str = "gemm", phase: str | None = None) -> float:
        """Per kernel, pass and dtype ("conv_wgrad.bf16": cuDNN's weight-gradient kernels) if
        fitted, else per kernel and dtype ("conv.bf16": cuDNN convolutions), else per dtype."""
        eff = self.gemm_efficiency
        own = PASS_RATES.get(phase or "")
        if own is not None and f"{kernel}_{own}.{dtype}" in eff:
            return eff[f"{kernel}_{own}.{dtype}"]
        return eff.get(f"{kernel}.{dtype}", eff.get(dtype, eff.get("fp32", 1.0)))


def for_framework(profile: Profile, framework: str) -> Profile:
    """Per-kernel rates describe one library's kernels (CuPy's unvectorised elementwise
    loops, numpy's float16 emulation); predicting another framework drops them and keeps
    the device terms (bandwidth, overheads, GEMM efficiency)."""
    if profile.kernel_rates_backend in (None, framework):
        return profile
    gemm = {k: v for k, v in profile.gemm_efficiency.items() if "." not in k}
    return profile.model_copy(update={"vector_efficiency": {}, "item_flops": {},
                                      "gemm_efficiency": gemm,
                                      "conv_half_dim": None, "launch_s_by_kernel": {},
                                      "autograd_node_s": 0.0})


def spec_sheet_profile(device: str) -> Profile:
    return Profile(device=device, origin="spec-sheet")

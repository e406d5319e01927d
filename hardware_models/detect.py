"""What a machine's own readings say about its peaks: a CPU's SIMD flags as FLOPs per cycle
per core, a GPU's compute capability as FP32 lanes per SM. Used where `calibrate` writes a
device entry for a machine the catalog does not have (simulator/calibrate/new_device.py);
each rule is stated in words beside the number, for the entry's `assumptions:`.
"""

from __future__ import annotations

# (flag, dtype, FLOPs per cycle per core, why), the first rule per dtype that matches wins.
# Widths and unit counts: Intel 64 and IA-32 Architectures Optimization Reference Manual
# (FMA throughput per port), AMD Zen 4 Software Optimization Guide (two 256-bit FMA pipes).
_CPU_RULES: tuple[tuple[str, str, float, str], ...] = (
    ("avx512f", "fp32", 64.0, "AVX-512 read as two 512-bit FMA units (16 lanes x 2 x 2)"),
    ("avx512f", "fp64", 32.0, "AVX-512 read as two 512-bit FMA units (8 lanes x 2 x 2)"),
    ("fma", "fp32", 32.0, "AVX2 with FMA: two 256-bit FMA units (8 lanes x 2 x 2)"),
    ("fma", "fp64", 16.0, "AVX2 with FMA: two 256-bit FMA units (4 lanes x 2 x 2)"),
    ("avx", "fp32", 16.0, "AVX without FMA: a 256-bit add and a 256-bit multiply per cycle"),
    ("avx", "fp64", 8.0, "AVX without FMA: a 256-bit add and a 256-bit multiply per cycle"),
    ("sse4_2", "fp32", 8.0, "SSE: a 128-bit add and a 128-bit multiply per cycle"),
    ("sse4_2", "fp64", 4.0, "SSE: a 128-bit add and a 128-bit multiply per cycle"),
)
# dtypes computed natively only with these flags (else converted to fp32: CPUSpec.native_dtype)
_CPU_LOW_PRECISION: tuple[tuple[str, str, float | None, str], ...] = (
    ("amx_bf16", "bf16", 1024.0, "AMX-BF16: 1,024 bf16 FLOPs per cycle per core (Intel, 4th "
     "Gen Xeon Scalable)"),
    ("avx512_bf16", "bf16", None, "AVX512-BF16 dot products (VDPBF16PS): twice fp32"),
    ("avx512_fp16", "fp16", None, "AVX512-FP16: 32 fp16 lanes per 512-bit unit, twice fp32"),
)


def cpu_flops_per_cycle(flags: list[str]) -> tuple[dict[str, float], list[str]]:
    """FLOPs per cycle per core per dtype read from SIMD flags (as /proc/cpuinfo names them),
    and the rule behind each number. Two FMA units are the most a core of that ISA issues,
    so the peak is an upper bound and a fitted efficiency stays at most 1; a core with one
    unit (Zen 4's AVX-512, many laptop parts) reaches half of it."""
    have = set(flags)
    table: dict[str, float] = {}
    why: list[str] = []
    for flag, dtype, flops, rule in _CPU_RULES:
        if flag in have and dtype not in table:
            table[dtype] = flops
            why.append(f"{dtype} = {flops:g} FLOPs per cycle per core: {rule} (flag {flag})")
    if "fp32" not in table:
        return {}, []
    for flag, dtype, native, rule in _CPU_LOW_PRECISION:
        if flag in have and dtype not in table:
            table[dtype] = native if native is not None else 2 * table["fp32"]
            why.append(f"{dtype} = {table[dtype]:g} FLOPs per cycle per core: {rule} (flag {flag})")
    return table, why


# FP32 results per clock per SM by compute capability: CUDA C++ Programming Guide,
# "Arithmetic Instructions" (throughput of native arithmetic instructions), 32-bit
# floating-point add, multiply, multiply-add.
_FP32_LANES_PER_SM = {"3.0": 192, "3.2": 192, "3.5": 192, "3.7": 192, "5.0": 128, "5.2": 128,
                      "5.3": 128, "6.0": 64, "6.1": 128, "6.2": 128, "7.0": 64, "7.2": 64,
                      "7.5": 64, "8.0": 64, "8.6": 128, "8.7": 128, "8.9": 128, "9.0": 128,
                      "10.0": 128, "10.3": 128, "12.0": 128}


def fp32_lanes_per_sm(compute_capability: str) -> int | None:
    """FP32 lanes (CUDA cores) per SM of a compute capability, None where not tabled."""
    return _FP32_LANES_PER_SM.get(compute_capability)

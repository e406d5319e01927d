"""Provenance: what was measured on (CPU or GPU) and with which software, and when.

Every reading is best effort: a field that cannot be read is left out, never guessed.
"""

from __future__ import annotations

import datetime
import functools
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

# cudaDeviceAttr values (driver_types.h); clock rates are in kHz.
_GPU_ATTRS = {
    "sm_count": 16,
    "clock_khz": 13,
    "memory_clock_khz": 36,
    "memory_bus_width_bits": 37,
    "l2_bytes": 38,
    "cc_major": 75,
    "cc_minor": 76,
    "shared_memory_per_sm_bytes": 81,
}
_SMI_FIELDS = (
    "name",
    "driver_version",
    "clocks.max.sm",
    "clocks.max.memory",
    "clocks.sm",
    "clocks.mem",
    "power.limit",
    "pcie.link.gen.max",
    "pcie.link.width.max",
    "pcie.link.gen.current",
    "pcie.link.width.current",
    "memory.total",
    "persistence_mode",
    "compute_mode",
)
_SIMD = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512_bf16",
    "avx512_fp16",
    "avx_vnni",
    "amx_bf16",
    "amx_tile",
)


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return ""


def _cpuinfo() -> tuple[str, int | None, list[str], float | None]:
    """Model name, physical core count, SIMD flags and the first CPU's clock (Hz, as the
    kernel reports it: `cpu MHz`) from /proc/cpuinfo."""
    name = platform.processor() or platform.machine()
    cores: set[tuple[str, str]] = set()
    flags: list[str] = []
    clock_hz = None
    physical = core = ""
    for line in _read("/proc/cpuinfo").splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "model name":
            name = value
        elif key == "physical id":
            physical = value
        elif key == "core id":
            core = value
            cores.add((physical, core))
        elif key == "flags" and not flags:
            flags = [f for f in _SIMD if f in value.split()]
        elif key == "cpu MHz" and clock_hz is None:
            clock_hz = _positive(value, 1e6)
    return name, (len(cores) or None), flags, clock_hz


def _positive(text: str, scale: float) -> float | None:
    try:
        value = float(text) * scale
    except ValueError:
        return None
    return value if value > 0 and value != float("inf") else None


_SIZE_SUFFIX = {"K": 1024, "M": 1024**2, "G": 1024**3}


def _cache_size_bytes(text: str) -> float | None:
    """sysfs cache sizes read '32768K' (or '32M')."""
    text = text.strip()
    if text and text[-1].upper() in _SIZE_SUFFIX:
        return _positive(text[:-1], _SIZE_SUFFIX[text[-1].upper()])
    return _positive(text, 1.0)


def _sysfs_cpu(root: str = "/sys/devices/system/cpu/cpu0") -> dict[str, float]:
    """The highest clock the kernel allows the first CPU (cpufreq's `cpuinfo_max_freq`, kHz)
    and its largest cache (the last level), where sysfs has them (a VM often has no cpufreq)."""
    found: dict[str, float] = {}
    max_hz = _positive(_read(f"{root}/cpufreq/cpuinfo_max_freq"), 1e3)
    if max_hz:
        found["max_clock_hz"] = max_hz
    sizes = [_cache_size_bytes(_read(str(index / "size")))
             for index in sorted(Path(root, "cache").glob("index*"))]
    if known := [s for s in sizes if s]:
        found["cache_bytes"] = max(known)
    return found


def cpu_info() -> dict[str, Any]:
    """The host CPU: model, physical cores, logical CPUs usable here, memory, SIMD flags, and
    where the kernel reports them its clock, turbo clock and last-level cache."""
    name, cores, flags, clock_hz = _cpuinfo()
    logical = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info: dict[str, Any] = {
        "kind": "cpu",
        "name": name,
        "cores": cores or logical,
        "logical_cpus": logical,
        "simd": flags,
        "machine": platform.machine(),
    }
    if clock_hz:
        info["clock_hz"] = clock_hz
    info.update(_sysfs_cpu())
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            info["memory_bytes"] = int(line.split()[1]) * 1024
    return info


def usable_cpus() -> int:
    return cpu_info()["logical_cpus"] or 1


def numpy_software() -> dict[str, Any]:
    """Python, numpy and its BLAS (from numpy's build config and threadpoolctl if present)."""
    import numpy as np

    software: dict[str, Any] = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
    }
    try:
        config = np.show_config(mode="dicts")
        software["blas"] = config["Build Dependencies"]["blas"]
    except Exception:  # noqa: BLE001 - older numpy: no dict mode
        software["blas"] = None
    try:
        from threadpoolctl import threadpool_info

        software["threadpools"] = threadpool_info()
    except ImportError:
        pass
    return software


def _smi_query(fields: tuple[str, ...]) -> list[str] | None:
    try:
        out = subprocess.run(
            [
                "nvidia-smi",
                f"--query-gpu={','.join(fields)}",
                "--format=csv,noheader,nounits",
                "-i",
                "0",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    values = [v.strip() for v in out.stdout.strip().split(",")]
    return values if len(values) == len(fields) else None


@functools.lru_cache(maxsize=1)
def nvidia_smi() -> dict[str, str]:
    """nvidia-smi readings; if the one query fails, field by field (a field it lacks is left
    out)."""
    values = _smi_query(_SMI_FIELDS)
    if values is not None:
        return dict(zip(_SMI_FIELDS, values, strict=True))
    readings = {}
    for field in _SMI_FIELDS:
        value = _smi_query((field,))
        if value is not None:
            readings[field] = value[0]
    return readings


def gpu_info(cupy: Any) -> dict[str, Any]:
    """The GPU of device 0: name, SMs, clocks, memory, compute capability, plus nvidia-smi."""
    rt = cupy.cuda.runtime
    attrs = {}
    for key, attr in _GPU_ATTRS.items():
        try:
            attrs[key] = int(rt.deviceGetAttribute(attr, 0))
        except Exception:  # noqa: BLE001, S112 - an attribute this CUDA lacks is left out
            continue
    name = rt.getDeviceProperties(0).get("name", b"")
    info: dict[str, Any] = {
        "kind": "gpu",
        "name": name.decode() if isinstance(name, bytes) else str(name),
        "sm_count": attrs.get("sm_count"),
        "clock_mhz": attrs["clock_khz"] / 1000 if "clock_khz" in attrs else None,
        "memory_clock_mhz": attrs["memory_clock_khz"] / 1000
        if "memory_clock_khz" in attrs
        else None,
        "memory_bytes": int(cupy.cuda.Device(0).mem_info[1]),
        "compute_capability": f"{attrs.get('cc_major')}.{attrs.get('cc_minor')}",
    }
    info.update(
        {
            k: attrs[k]
            for k in ("memory_bus_width_bits", "l2_bytes", "shared_memory_per_sm_bytes")
            if k in attrs
        }
    )
    info["nvidia_smi"] = nvidia_smi()
    info["host"] = cpu_info()
    return info


def _version(number: int) -> str:
    return f"{number // 1000}.{number % 1000 // 10}"


def gpu_software(cupy: Any) -> dict[str, Any]:
    """numpy/Python plus CuPy, CUDA runtime and driver versions, cuBLAS, and CuPy settings."""
    rt = cupy.cuda.runtime
    software = numpy_software()
    software.update(
        cupy=cupy.__version__,
        cuda_runtime=_version(rt.runtimeGetVersion()),
        cuda_driver_api=_version(rt.driverGetVersion()),
    )
    software["driver"] = nvidia_smi().get("driver_version")
    try:
        from cupy_backends.cuda.libs import cublas

        software["cublas"] = cublas.getVersion(cupy.cuda.device.get_cublas_handle())
    except Exception:  # noqa: BLE001, S110 - provenance is best effort
        pass
    software["env"] = {
        k: os.environ.get(k)
        for k in ("CUPY_TF32", "CUPY_ACCELERATORS", "CUDA_VISIBLE_DEVICES")
        if k in os.environ
    }
    return software


def command_line(backend: str, out: str, quick: bool) -> str:
    return f"python -m simulator measure --backend {backend} --out {out}" + (" --quick" * quick)


def argv() -> list[str]:
    return list(sys.argv)


def write_torch_distributed(out: str, schema: str, device: dict[str, Any], torch: Any,
                            records: list[dict[str, Any]]) -> None:
    """The result file of a torch.distributed benchmark, with its provenance, written
    atomically."""
    from simulator.report.atomic import write_json_atomic

    write_json_atomic(Path(out), {"schema": schema, "date": utc_now(), "command": " ".join(argv()),
                                  "device": device, "software": torch_distributed_software(torch),
                                  "records": records})


def torch_distributed_software(torch: Any) -> dict[str, Any]:
    """Versions behind a torch.distributed (NCCL) benchmark, and the NVLS switch it ran with."""
    return {"torch": torch.__version__, "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "nccl": ".".join(map(str, torch.cuda.nccl.version())),
            "python": platform.python_version(),
            "NCCL_NVLS_ENABLE": os.environ.get("NCCL_NVLS_ENABLE")}

"""Backends: numpy (CPU) and CuPy (GPU) behind one small interface.

A Backend gives the array module `xp`, a timer, random arrays of a named dtype
("fp32", "tf32", "fp16"; "bf16" as raw 16-bit patterns in uint16 for the GPU's cuBLAS path),
and a way to return freed memory. Random data, never zeros: zeros can run faster than real
data on tensor cores. TF32 is not a storage type: "tf32" arrays are float32, and the worker
for TF32 runs with CUPY_TF32=1 so that CuPy's float32 matrix products use TF32 tensor cores.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from simulator.measure.timing import CpuTimer, GpuTimer

_STORAGE = {"fp64": "float64", "fp32": "float32", "tf32": "float32", "fp16": "float16",
            "bf16": "uint16"}
_POOL_ELEMENTS = 1 << 20


def load_cupy() -> Any:
    """Import CuPy; raises ImportError/RuntimeError where CuPy or a GPU is missing."""
    import cupy

    if cupy.cuda.runtime.getDeviceCount() < 1:
        raise RuntimeError("CuPy found no CUDA device")
    return cupy


class Backend:
    """Arrays, timing and memory housekeeping for one backend in one worker process."""

    def __init__(self, name: str, quick: bool, threads: int | None) -> None:
        self.name, self.quick, self.threads = name, quick, threads
        if name == "cupy":
            self.xp = load_cupy()
            self.timer: CpuTimer | GpuTimer = GpuTimer(self.xp, quick)
        else:
            self.xp = np
            self.timer = CpuTimer(quick)
        self._pools: dict[str, np.ndarray] = {}

    @property
    def is_gpu(self) -> bool:
        return self.name == "cupy"

    @property
    def gpu_timer(self) -> GpuTimer:
        """The CUDA-event timer (GPU backends only)."""
        if not isinstance(self.timer, GpuTimer):
            raise TypeError("the numpy backend has no GPU timer")
        return self.timer

    def storage(self, dtype: str) -> Any:
        return np.dtype(_STORAGE[dtype])

    def empty(self, shape: tuple[int, ...], dtype: str) -> Any:
        return self.xp.empty(shape, dtype=self.storage(dtype))

    def zeros(self, shape: tuple[int, ...], dtype: str) -> Any:
        return self.xp.zeros(shape, dtype=self.storage(dtype))

    def rand(self, shape: tuple[int, ...], dtype: str) -> Any:
        """Uniform random values in [-1, 1) of the named dtype."""
        if self.is_gpu:
            return self._rand_gpu(shape, dtype)
        return self._rand_cpu(shape, dtype)

    def _rand_gpu(self, shape: tuple[int, ...], dtype: str) -> Any:
        cp = self.xp
        values = cp.random.random(shape, dtype=cp.float32)
        values *= 2
        values -= 1
        if dtype == "bf16":
            return (values.view(cp.uint32) >> 16).astype(cp.uint16)
        return values if dtype in ("fp32", "tf32") else values.astype(self.storage(dtype))

    def _rand_cpu(self, shape: tuple[int, ...], dtype: str) -> np.ndarray:
        """Tiles a cached block of random numbers: as good as fresh ones for timing, and fast."""
        if dtype == "bf16":
            raise ValueError("numpy has no bfloat16 type")
        if dtype not in self._pools:
            rng = np.random.default_rng(12345)
            block = rng.random(_POOL_ELEMENTS, dtype=np.float32) * 2 - 1
            self._pools[dtype] = block.astype(self.storage(dtype))
        pool, total = self._pools[dtype], math.prod(shape)
        flat = np.empty(total, dtype=pool.dtype)
        for start in range(0, total, pool.size):
            stop = min(total, start + pool.size)
            flat[start:stop] = pool[: stop - start]
        return flat.reshape(shape)

    def release(self) -> None:
        """Give cached device memory back (between large cases)."""
        if self.is_gpu:
            self.gpu_timer.sync()
            self.xp.get_default_memory_pool().free_all_blocks()

"""Host<->device copies (pageable and pinned) and the fixed cost of launching a kernel.

Copies use cudaMemcpy (synchronous) between one device buffer and a host buffer that is
either ordinary pageable memory or page-locked (pinned) memory; each is timed with the host
clock around the call, so the time includes what the host does for it (staging pageable
memory through a pinned bounce buffer).

Launch overhead is measured four ways on a one-element add: host seconds per launch when
launching back to back ("*.host", CuPy's Python dispatch included; also a raw empty kernel),
one launch timed alone with events on an idle GPU ("event_single": launch latency plus
kernel), and per-kernel device time when launches are queued ahead ("event_queued"). On
numpy the same one-element add gives the per-call dispatch cost of a ufunc.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from simulator.measure.backend import Backend
from simulator.measure.plan import Plan
from simulator.measure.records import make_record


def _host_times(fn: Callable[[], Any], sync: Callable[[], None], reps: int) -> list[float]:
    fn()
    sync()
    times = []
    for _ in range(reps):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return times


def run_copies(backend: Backend, plan: Plan) -> list[dict[str, Any]]:
    """H2D and D2H copies, pageable and pinned, for each planned size."""
    cp, records = backend.xp, []
    largest = max(plan.copy_sizes)
    device = cp.empty(largest, dtype=cp.uint8)
    device.fill(1)
    pageable = np.ones(largest, dtype=np.uint8)
    pinned_mem = cp.cuda.alloc_pinned_memory(largest)
    pinned = np.frombuffer(pinned_mem, dtype=np.uint8, count=largest)
    pinned[:] = 1
    rt, sync = cp.cuda.runtime, backend.gpu_timer.sync
    reps = 3 if backend.quick else 10
    for is_pinned, host in ((False, pageable), (True, pinned)):
        for size in plan.copy_sizes:
            for op, dst, src, kind in (
                (
                    "copy_h2d",
                    device.data.ptr,
                    host.ctypes.data,
                    getattr(rt, "memcpyHostToDevice", 1),
                ),
                (
                    "copy_d2h",
                    host.ctypes.data,
                    device.data.ptr,
                    getattr(rt, "memcpyDeviceToHost", 2),
                ),
            ):

                def copy(
                    dst: int = dst, src: int = src, kind: int = kind, size: int = size
                ) -> None:
                    rt.memcpy(dst, src, size, kind)

                times = _host_times(copy, sync, reps)
                label = "pinned" if is_pinned else "pageable"
                records.append(
                    make_record(
                        op,
                        "fp32",
                        None,
                        label,
                        {"bytes_moved": size, "pinned": is_pinned},
                        0.0,
                        float(size),
                        times,
                    )
                )
    del device, pinned, pinned_mem
    backend.release()
    return records


def _launch_record(backend: Backend, label: str, times: list[float]) -> dict[str, Any]:
    return make_record("launch", "fp32", backend.threads, label, {}, 0.0, 0.0, times)


def _per_launch_host(
    fn: Callable[[], Any], sync: Callable[[], None], count: int, reps: int
) -> list[float]:
    """Host seconds per launch over `count` back-to-back launches (no sync inside)."""
    for _ in range(count // 10 + 1):
        fn()
    sync()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        for _ in range(count):
            fn()
        times.append((time.perf_counter() - start) / count)
        sync()
    return times


def run_launch(backend: Backend) -> list[dict[str, Any]]:
    """Fixed per-kernel (GPU) or per-call (numpy) overhead of a one-element add."""
    xp = backend.xp
    x, y, z = backend.rand((1,), "fp32"), backend.rand((1,), "fp32"), backend.empty((1,), "fp32")

    def tiny() -> None:
        xp.add(x, y, out=z)

    count, reps = (200, 3) if backend.quick else (2000, 10)
    if not backend.is_gpu:
        return [
            _launch_record(
                backend, "numpy_ufunc.host", _per_launch_host(tiny, lambda: None, count, reps)
            )
        ]
    timer = backend.gpu_timer
    empty = xp.RawKernel('extern "C" __global__ void simulator_noop() {}', "simulator_noop")
    records = [
        _launch_record(backend, "cupy_ufunc.host", _per_launch_host(tiny, timer.sync, count, reps)),
        _launch_record(
            backend,
            "raw_kernel.host",
            _per_launch_host(lambda: empty((1,), (1,), ()), timer.sync, count, reps),
        ),
        _launch_record(
            backend,
            "cupy_ufunc.event_single",
            [timer.event_once(tiny) for _ in range(max(reps, 20))],
        ),
        _launch_record(backend, "cupy_ufunc.event_queued", timer.time(tiny)),
    ]
    return records

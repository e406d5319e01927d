"""Timers: host clock (time.perf_counter) for numpy, CUDA events for CuPy.

Both warm up first (first-touch, kernel compilation, library autotuning stay out of the
numbers), then repeat and return every repetition's time. Very short calls are repeated
`inner` times per repetition and divided, so the timer's own resolution does not dominate.

On the GPU each repetition is queued behind a short spin kernel: while the GPU spins, the
host enqueues the timed launches, so the events measure the kernels back to back on the
device, without the host's launch latency in between (that latency is measured on its own,
as the "launch" records).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

Fn = Callable[[], Any]
Parts = list[tuple[str, Fn]]


def _clamp(value: float, low: int, high: int) -> int:
    return int(min(high, max(low, value)))


class CpuTimer:
    """Host-clock timer; the number of repetitions adapts to a time budget per case."""

    def __init__(self, quick: bool) -> None:
        self.budget_s = 0.02 if quick else 0.5
        self.min_reps, self.max_reps = (2, 3) if quick else (3, 10)
        self.target_call_s = 2e-4 if quick else 2e-3

    def _once(self, fn: Fn, inner: int = 1) -> float:
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        return (time.perf_counter() - start) / inner

    def _warm(self, fn: Fn) -> float:
        first = self._once(fn)
        return first if first > 0.2 else self._once(fn)

    def time(self, fn: Fn) -> list[float]:
        """Per-call seconds of `fn`, one entry per repetition."""
        estimate = self._warm(fn)
        inner = _clamp(math.ceil(self.target_call_s / max(estimate, 1e-9)), 1, 10000)
        reps = _clamp(self.budget_s / (estimate * inner), self.min_reps, self.max_reps)
        return [self._once(fn, inner) for _ in range(reps)]

    def time_parts(self, parts: Parts) -> list[dict[str, float]]:
        """Seconds of each named stage, one dict per repetition (stages run in order)."""
        estimate = sum(self._warm(fn) for _, fn in parts)
        reps = _clamp(self.budget_s / max(estimate, 1e-9), self.min_reps, self.max_reps)
        return [{name: self._once(fn) for name, fn in parts} for _ in range(reps)]


_SPIN_SOURCE = r"""
extern "C" __global__ void simulator_spin(unsigned long long ns) {
    unsigned long long start, now;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
    do { asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now)); } while (now - start < ns);
}
"""


class GpuTimer:
    """CUDA-event timer on CuPy's current stream."""

    def __init__(self, cupy: Any, quick: bool) -> None:
        self.cp = cupy
        self.reps = 3 if quick else 10
        self.target_s = 1e-3  # enough back-to-back calls per repetition to fill ~1 ms
        self.max_inner = 100
        self.start, self.end = cupy.cuda.Event(), cupy.cuda.Event()
        self.spin_ok = True
        try:
            self._spin_kernel = cupy.RawKernel(_SPIN_SOURCE, "simulator_spin")
            self._spin(1e-6)
            self.sync()
        except Exception:  # noqa: BLE001 - no NVRTC or %globaltimer: time without the spin
            self.spin_ok = False

    def sync(self) -> None:
        self.cp.cuda.get_current_stream().synchronize()

    def _spin(self, seconds: float) -> None:
        if self.spin_ok:
            import numpy

            self._spin_kernel((1,), (1,), (numpy.uint64(int(seconds * 1e9)),))

    def _elapsed(self, a: Any, b: Any) -> float:
        return self.cp.cuda.get_elapsed_time(a, b) / 1e3

    def event_once(self, fn: Fn) -> float:
        """One call timed alone on an idle GPU (includes the launch latency)."""
        self.sync()
        self.start.record()
        fn()
        self.end.record()
        self.end.synchronize()
        return self._elapsed(self.start, self.end)

    def _host_enqueue_s(self, fn: Fn, inner: int) -> float:
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        elapsed = time.perf_counter() - start
        self.sync()
        return elapsed

    def time(self, fn: Fn, spin: bool = True, max_inner: int | None = None) -> list[float]:
        """Per-call device seconds of `fn`, one entry per repetition."""
        fn()
        self.sync()
        one = self.event_once(fn)
        cap = self.max_inner if max_inner is None else max_inner
        inner = _clamp(math.ceil(self.target_s / max(one, 1e-7)), 1, cap)
        spin_s = min(0.1, 1.5 * self._host_enqueue_s(fn, inner) + 2e-5) if spin else 0.0
        times = []
        for _ in range(self.reps):
            if spin:
                self._spin(spin_s)
            self.start.record()
            for _ in range(inner):
                fn()
            self.end.record()
            self.end.synchronize()
            times.append(self._elapsed(self.start, self.end) / inner)
        return times

    def time_parts(self, parts: Parts) -> list[dict[str, float]]:
        """Device seconds of each named stage, one dict per repetition."""
        events = [self.cp.cuda.Event() for _ in range(len(parts) + 1)]
        for _, fn in parts:
            fn()
        self.sync()
        spin_s = min(0.1, 1.5 * self._host_enqueue_s(lambda: [f() for _, f in parts], 1) + 2e-5)
        result = []
        for _ in range(self.reps):
            self._spin(spin_s)
            events[0].record()
            for i, (_, fn) in enumerate(parts):
                fn()
                events[i + 1].record()
            events[-1].synchronize()
            result.append(
                {name: self._elapsed(events[i], events[i + 1]) for i, (name, _) in enumerate(parts)}
            )
        return result

"""Metrics from a trace: step time, throughput, the time breakdown, per-layer times,
utilisation and the bottleneck.

The breakdown partitions the step time of the busiest device's compute stream: each
kernel's time goes to `compute` or `memory` (whichever bound it) with its fixed overhead
to `launch`; each gap goes to what the next kernel was waiting for (its launch, a host
copy -> `transfer`, a collective -> `communication`), or to `idle`. The parts sum to the
step time exactly.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from simulator.engine.trace import Span, Trace

CATEGORIES = ("compute", "memory", "launch", "transfer", "communication", "idle")
GAP_CAUSE = {"launch": "launch", "transfer": "transfer", "communication": "communication"}


def critical_device(trace: Trace) -> int:
    ends: dict[int, float] = defaultdict(float)
    for s in trace.spans:
        ends[s.device] = max(ends[s.device], s.end_s)
    return max(sorted(ends), key=lambda d: ends[d]) if ends else 0


def breakdown(trace: Trace, device: int | None = None) -> dict[str, float]:
    device = critical_device(trace) if device is None else device
    parts = dict.fromkeys(CATEGORIES, 0.0)
    cursor = 0.0
    for span in trace.on(device, "compute"):
        gap = span.start_s - cursor
        if gap > 0:
            parts[GAP_CAUSE.get(span.wait_cause, "idle")] += gap
        overhead = min(span.overhead_s, span.duration_s)
        parts["launch"] += overhead
        parts[span.category if span.category in parts else "compute"] += span.duration_s - overhead
        cursor = max(cursor, span.end_s)
    tail = trace.end_s - cursor
    if tail > 0:
        later = [s for s in trace.spans if s.end_s > cursor]
        last = max(later, key=lambda s: s.end_s)
        parts[last.category if last.category in ("transfer", "communication") else "idle"] += tail
    return parts


def per_layer(trace: Trace, device: int | None = None) -> list[dict[str, Any]]:
    """Busy time by (layer, phase) on one device, in first-start order."""
    device = critical_device(trace) if device is None else device
    times: dict[tuple[str, str], float] = {}
    for span in trace.on(device):
        key = (span.layer, span.phase)
        times[key] = times.get(key, 0.0) + span.duration_s
    return [{"layer": layer, "phase": phase, "time_s": t} for (layer, phase), t in times.items()]


def bottleneck(parts: dict[str, float]) -> str:
    return max(CATEGORIES, key=lambda c: parts[c])


def span_totals(spans: list[Span]) -> tuple[float, float]:
    return sum(s.flops for s in spans), sum(s.bytes for s in spans)

"""Metrics from a trace: step time, throughput, the time breakdown, per-layer times,
utilisation, the bottleneck and communication time (`step_metrics` puts them together;
every prediction's numbers come from here).

The breakdown partitions the step time of the busiest device's compute stream: each
kernel's time goes to `compute` or `memory` (whichever bound it) with its fixed overhead
to `launch`; each gap goes to what the next kernel was waiting for (its launch, a host
copy -> `transfer`, a collective -> `communication`), or to `idle`. The parts sum to the
step time exactly.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from simulator.engine.plan import Plan
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


def communication_s(trace: Trace, plan: Plan, device: int) -> float:
    """Time during which a transfer to or from `device` is in flight (union of spans). In a
    symmetric plan the representative's comm tasks stand for all of its transfers."""
    symmetric = plan.replicas > 1
    touching = set()
    for task in plan.tasks:
        if task.transfer is None:
            continue
        ends = {e for f in task.transfer.flows for e in (f.src, f.dst)}
        if task.device == device or (not symmetric and device in ends):
            touching.add(task.name)
    busy, cursor = 0.0, 0.0
    for span in sorted((s for s in trace.spans if s.name in touching), key=lambda s: s.start_s):
        start = max(span.start_s, cursor)
        if span.end_s > start:
            busy += span.end_s - start
        cursor = max(cursor, span.end_s)
    return busy


def step_metrics(trace: Trace, plan: Plan, samples: int, flops: float,
                 peak_flops_per_s: float) -> dict[str, Any]:
    """The timing fields of a result: the step is the trace's end, the breakdown and the
    communication time are those of the device that finishes last."""
    device = critical_device(trace)
    parts = breakdown(trace, device)
    step = trace.end_s
    return {
        "status": "ok", "step_time_s": step, "samples_per_s": samples / step,
        "breakdown": parts, "bottleneck": bottleneck(parts),
        "utilisation": flops / (step * peak_flops_per_s), "achieved_flops_per_s": flops / step,
        "communication_s": communication_s(trace, plan, device),
    }

"""trace.json in Chrome trace event format: opens in https://ui.perfetto.dev and chrome://tracing.

One file holds every scenario of a run, so scenarios can be compared on one time axis
(each starts at 0). Each (scenario, device) is a process, named `SCENARIO — DEVICE`; each
execution resource of the device is a thread: the host launch thread, the compute stream,
the copy engine and the communication stream (links), plus any other stream the plan uses.
Every simulated op is one complete event (`ph: "X"`, `ts`/`dur` in microseconds) with
`args` {flops, bytes, layer, phase, kind, category, wait_cause}; the host thread shows one
`launch NAME` event per kernel launch, derived from the op's launch time in the trace.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from simulator.engine.trace import Span, Trace
from simulator.report.atomic import check_finite, write_text_atomic

FILE_NAME = "trace.json"
HOST = "host"
THREAD_NAMES = {HOST: "host launch thread", "compute": "compute", "copy": "copy engine",
                "comm": "communication (links)"}
US_PER_S = 1e6
LaunchCost = Callable[[Span], float | None]


def launch_intervals(spans: Iterable[Span],
                     launch_cost: LaunchCost) -> list[tuple[Span, float, float]]:
    """(span, start_s, end_s) of each launch on one device's host thread.

    The host launches in program order, back to back: a launch ends at the op's
    `launched_s` and starts when the previous one ended, or `launch_cost` earlier.
    """
    intervals, previous = [], 0.0
    for span in sorted(spans, key=lambda s: (s.launched_s, s.start_s, s.name)):
        cost = launch_cost(span)
        start = previous if cost is None else max(previous, span.launched_s - cost)
        if span.launched_s > start:
            intervals.append((span, start, span.launched_s))
        previous = max(previous, span.launched_s)
    return intervals


def _meta(kind: str, pid: int, tid: int, name: str, sort_index: int) -> list[dict[str, Any]]:
    return [{"ph": "M", "name": f"{kind}_name", "pid": pid, "tid": tid, "args": {"name": name}},
            {"ph": "M", "name": f"{kind}_sort_index", "pid": pid, "tid": tid,
             "args": {"sort_index": sort_index}}]


def _op_event(span: Span, pid: int, tid: int) -> dict[str, Any]:
    return {"ph": "X", "name": span.name, "cat": span.category, "pid": pid, "tid": tid,
            "ts": span.start_s * US_PER_S, "dur": span.duration_s * US_PER_S,
            "args": {"flops": span.flops, "bytes": span.bytes, "layer": span.layer,
                     "phase": span.phase, "kind": span.kind, "category": span.category,
                     "wait_cause": span.wait_cause}}


def _launch_event(span: Span, start_s: float, end_s: float, pid: int) -> dict[str, Any]:
    return {"ph": "X", "name": f"launch {span.name}", "cat": "launch", "pid": pid, "tid": 0,
            "ts": start_s * US_PER_S, "dur": (end_s - start_s) * US_PER_S,
            "args": {"op": span.name, "layer": span.layer, "phase": span.phase,
                     "category": "launch"}}


def thread_ids(streams: Iterable[str]) -> dict[str, int]:
    """Fixed ids for the known resources (host 0, compute 1, copy 2, comm 3), then the rest."""
    known = list(THREAD_NAMES)
    extra = sorted(set(streams) - set(known))
    return {name: i for i, name in enumerate(known + extra)}


def device_events(trace: Trace, device: int, pid: int, label: str,
                  launch_cost: LaunchCost) -> list[dict[str, Any]]:
    spans = trace.on(device)
    tids = thread_ids(s.stream for s in spans)
    events = _meta("process", pid, 0, label, pid)
    used = {HOST} | {s.stream for s in spans}
    for stream, tid in tids.items():
        if stream in used:
            events += _meta("thread", pid, tid, THREAD_NAMES.get(stream, stream), tid)
    events += [_op_event(s, pid, tids[s.stream]) for s in spans]
    events += [_launch_event(s, a, b, pid) for s, a, b in launch_intervals(spans, launch_cost)]
    return events


def device_label(scenario: str, trace: Trace, device: int) -> str:
    label = f"{scenario} — {trace.device_names[device]}"
    if len(trace.device_names) > 1:
        label += f" [device {device}]"
    if trace.replicas > 1:
        label += f" (each stands for {trace.replicas} identical devices)"
    return label


def trace_document(scenarios: list[tuple[str, Trace, LaunchCost]], title: str) -> dict[str, Any]:
    """All scenarios' traces as one Chrome trace object; pids run 1, 2, ... in order."""
    events: list[dict[str, Any]] = []
    pid = 0
    for name, trace, launch_cost in scenarios:
        for device in range(len(trace.device_names)):
            pid += 1
            events += device_events(trace, device, pid, device_label(name, trace, device),
                                    launch_cost)
    events.sort(key=lambda e: (e["pid"], e["ph"] != "M", e["tid"], e.get("ts", 0.0),
                               e["name"]))
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"title": title, "time_unit": "microseconds"}}


def write_chrome_trace(folder: Path, document: dict[str, Any]) -> Path:
    """One event per line: small enough to read, stable enough to diff."""
    check_finite(document, str(folder / FILE_NAME))
    lines = [json.dumps(e, sort_keys=True, allow_nan=False) for e in document["traceEvents"]]
    head = {k: v for k, v in document.items() if k != "traceEvents"}
    text = "{\"traceEvents\": [\n" + ",\n".join(lines) + "\n],\n"
    text += json.dumps(head, sort_keys=True, allow_nan=False)[1:] + "\n"
    path = folder / FILE_NAME
    write_text_atomic(path, text)
    return path

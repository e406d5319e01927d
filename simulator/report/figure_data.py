"""figure-data.json: what the figures of a run need beyond results.json, so that
`python -m simulator plot` redraws them without simulating again.

Per scenario that ran (one entry, in experiment order):
- `device`: its name and kind and its roofs: `peak_flops_per_s` per dtype the device
  computes natively (tensor cores and plain FP32 units alike), `memory_bandwidth_bytes_per_s`
  and, on a CPU, `fork_join_s` (the fixed cost of one parallel region);
- `devices`, `replicas` (how many identical devices each simulated one stands for), `end_s`;
- `spans`: every span of the trace as `[device, stream, start_s, duration_s, category, layer]`
  with the strings as indexes into `streams`, `categories` and `layers`;
- `launches`: the host launch thread's intervals `[device, start_s, end_s, layer]`;
- `links`: when a transfer crossed each link channel (one direction of one cable), as
  `[channel, start_s, duration_s]` with the channel an index into `channels`; flows that
  overlap on a channel are merged into one interval (the channel is busy), channels in
  natural order (d2 before d10); absent in files of older runs (no link rows then);
- `critical_device`: the device whose stream ends last (the breakdown's and layers' device);
- `layer_kinds`: the kind of each of `layers` (`conv2d`, `linear`, ...; "" for what is no
  layer of the model: the input copy, the loss, the optimizer step, collectives, a task
  graph's tasks); absent in files of older runs;
- `ops`: each op of the critical device (the one whose compute stream ends last) as
  `[name, layer, kind, phase, dtype, flops, bytes, time_s, launch_s]`.
Times and sizes keep six significant digits (figures need fewer); keys are sorted, so the
same run gives the same bytes. The file is written through `output_folder`, like every file
of a results folder, and read back by `load`, which turns anything malformed into one line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.core.errors import UserError
from simulator.engine.trace import Span, Trace
from simulator.report.atomic import write_json_atomic
from simulator.report.chrome_trace import LaunchCost, launch_intervals
from simulator.results.metrics import critical_device
from simulator.results.prediction import Prediction
from workloads.ops import DTYPE_BYTES

FILE_NAME = "figure-data.json"
FORMAT = 1
RESULTS = "results.json"
DEVICE_PREFIX = re.compile(r"^d[0-9]+\.")  # a multi-device plan's name for a device's op


def _r(value: float) -> float:
    return float(f"{value:.6g}")


def device_roofs(device: Any) -> dict[str, Any]:
    """Name, kind and the roofs of a device model (whatever of them it can state)."""
    spec = getattr(device, "spec", None)
    listed = getattr(spec, "peak_flops", None) or getattr(spec, "flops_per_cycle_per_core",
                                                          None) or {"fp32": 1.0}
    peaks = {dtype: _r(device.peak_flops(dtype)) for dtype in DTYPE_BYTES if dtype in listed}
    bandwidth = getattr(spec, "memory_bandwidth_bytes_per_s", None) or getattr(
        device, "bytes_per_s", None)
    fork_join = getattr(spec, "thread_fork_join_s", None)
    return {"name": str(getattr(device, "name", "device")),
            "kind": str(getattr(device, "kind", "device")), "peak_flops_per_s": peaks,
            "memory_bandwidth_bytes_per_s": _r(bandwidth) if bandwidth else None,
            "fork_join_s": _r(fork_join) if fork_join else None}


class _Index(dict[str, int]):
    def of(self, name: str) -> int:
        return self.setdefault(name, len(self))


def _op_of(graph: Any, name: str) -> Any:
    """The graph's op behind a span: its name, or a device's copy of it (`d3.NAME`)."""
    for candidate in (name, DEVICE_PREFIX.sub("", name)):
        if candidate in graph:
            return graph.op(candidate)
    return None


def _ops(prediction: Prediction, spans: list[Span], layers: _Index) -> list[list[Any]]:
    """The work each span did (its own FLOPs and bytes: a device's share of a split op)."""
    graph, device = prediction.graph, prediction.device
    rows = []
    for span in spans:
        op = _op_of(graph, span.name)
        launch = float(device.launch_s(op)) if op is not None and hasattr(device, "launch_s") \
            else 0.0
        dtype = op.dtype if op is not None else graph.precision
        rows.append([span.name, layers.of(span.layer), span.kind, span.phase, dtype,
                     _r(span.flops), _r(span.bytes), _r(span.duration_s), _r(launch)])
    return rows


def scenario_data(name: str, prediction: Prediction, launch_cost: LaunchCost) -> dict[str, Any]:
    trace: Trace = prediction.trace  # type: ignore[assignment]
    layers, streams, categories = _Index(), _Index(), _Index()
    spans = [[s.device, streams.of(s.stream), _r(s.start_s), _r(s.duration_s),
              categories.of(s.category), layers.of(s.layer)]
             for s in sorted(trace.spans, key=lambda s: (s.device, s.start_s, s.end_s, s.name))]
    launches = [[device, _r(a), _r(b), layers.of(s.layer)]
                for device in range(len(trace.device_names))
                for s, a, b in launch_intervals(trace.on(device), launch_cost)]
    critical = critical_device(trace)
    ops = _ops(prediction, trace.on(critical), layers)
    channels = _Index()
    links = link_busy(trace, channels)
    kinds = {"device_kinds": trace.device_names} if len(set(trace.device_names)) > 1 else {}
    return {**kinds, "name": name, "device": device_roofs(prediction.device),
            "critical_device": critical,
            "devices": len(trace.device_names), "replicas": trace.replicas,
            "end_s": _r(trace.end_s), "spans": spans, "launches": launches, "ops": ops,
            "layers": list(layers), "streams": list(streams), "categories": list(categories),
            "links": links, "channels": list(channels),
            "layer_kinds": [prediction.graph.layer_kinds.get(layer, "") for layer in layers]}


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort key that orders the numbers inside names by value: d2 before d10."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"([0-9]+)", name))


def link_busy(trace: Trace, channels: _Index) -> list[list[Any]]:
    """[channel, start_s, duration_s] of every interval a channel carried a flow, overlapping
    flows merged."""
    by_channel: dict[str, list[tuple[float, float]]] = {}
    for record in trace.links:
        if record.end_s > record.start_s:
            by_channel.setdefault(record.channel, []).append((record.start_s, record.end_s))
    out: list[list[Any]] = []
    for channel in sorted(by_channel, key=natural_key):
        merged: list[list[float]] = []
        for start, end in sorted(by_channel[channel]):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        index = channels.of(channel)
        out += [[index, _r(start), _r(end - start)] for start, end in merged]
    return out


def figure_data(title: str, scenarios: list[tuple[dict[str, Any], Prediction, LaunchCost]]
                ) -> dict[str, Any]:
    """The document for the scenarios of a run (those without a trace are left out)."""
    return {"format": FORMAT, "title": title,
            "scenarios": [scenario_data(row["name"], pred, cost)
                          for row, pred, cost in scenarios if pred.trace is not None]}


def write_figure_data(folder: Path, document: dict[str, Any]) -> Path:
    path = folder / FILE_NAME
    write_json_atomic(path, document)
    return path


@dataclass(frozen=True)
class Saved:
    """A results folder as the figures see it: the rows of results.json and the figure data."""

    title: str
    rows: list[dict[str, Any]]
    scenarios: list[dict[str, Any]]
    provenance: dict[str, Any]

    def scenario(self, name: str) -> dict[str, Any] | None:
        return next((s for s in self.scenarios if s["name"] == name), None)


def _read(path: Path) -> Any:
    if not path.is_file():
        raise UserError(f"{path}: not found; is this a results folder of `python -m simulator "
                        "run`? (re-run the experiment to write it)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise UserError(f"{path}: unreadable JSON ({str(err).splitlines()[0]})") from None


def read_results(folder: Path) -> Any:
    """results.json of a results folder (a run's or a sweep's); one line if there is none."""
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder; give the results folder a run wrote")
    return _read(folder / RESULTS)


def is_sweep(results: Any) -> bool:
    """Whether results.json is a sweep's (its points and their summary)."""
    return isinstance(results, dict) and isinstance(results.get("points"), list) and \
        isinstance(results.get("summary"), dict)


def load(folder: Path) -> Saved:
    """Read a results folder; one-line UserError if it is not one (or is damaged)."""
    results = read_results(folder)
    data = _read(folder / FILE_NAME)
    if not isinstance(results, dict) or not isinstance(results.get("scenarios"), list):
        raise UserError(f"{folder / RESULTS}: scenarios: missing; not a results.json of a run")
    if not isinstance(data, dict) or data.get("format") != FORMAT \
            or not isinstance(data.get("scenarios"), list):
        raise UserError(f"{folder / FILE_NAME}: format: expected {FORMAT}; written by another "
                        "version of the simulator (re-run the experiment)")
    return Saved(str(results.get("title", "")), results["scenarios"], data["scenarios"],
                 results.get("provenance") or {})

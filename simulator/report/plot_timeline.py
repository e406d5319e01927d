"""Figure: one step of one scenario as a Gantt chart, drawn from the saved figure data.

One lane per execution resource of each device (host launch thread, compute stream, copy
engine, communication), bars coloured by what bound the op (compute, memory, transfer,
communication) and launches in the launch colour, so the figure shows where the GPU waits
for the host, for the PCIe copy or for the network. Up to `DETAILED` devices are drawn lane
by lane; with more, the first `FIRST` are, and the rest share one lane per resource that
shows, over time, the fraction of those devices busy (stacked by category), so a timeline
of 1,000 devices has as many lanes as one of five.

Below the devices, one lane per link channel (one direction of one cable, `d0>n0.fabric`),
filled in the communication colour while a transfer crosses it. Up to `DETAILED` channels
are drawn one by one; with more, the channels of one kind (their names with the numbers
taken out: `d*>n*.fabric`, `n*.nic*>spine`) share one lane that shows the fraction of them
busy, at most `LINK_KINDS` such lanes (further kinds share a last lane, `other links`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from simulator.report.chrome_trace import THREAD_NAMES
from simulator.report.figure_style import SLIDES, Style
from simulator.report.units import format_count, format_time, time_unit

DETAILED = 8  # devices drawn lane by lane when there are at most this many
FIRST = 4  # devices drawn lane by lane before the aggregated lanes
BINS = 400  # time bins of an aggregated lane
LANE_ORDER = ("host", "compute", "copy", "comm")
LABEL_PT = 0.62 / 72  # width of one character per point of font size, in inches
LINK_KINDS = 6  # aggregated link lanes at most
LINK_CATEGORY = "communication"

Bar = tuple[float, float, str, str]  # start_s, duration_s, category, layer


@dataclass
class Lane:
    label: str
    bars: list[Bar] = field(default_factory=list)
    busy: dict[str, np.ndarray] | None = None  # category -> fraction of devices busy per bin


def _device_bars(data: dict[str, Any], devices: set[int]) -> dict[int, dict[str, list[Bar]]]:
    """{device: {stream: [bar]}} for the given devices, host launches as stream 'host'."""
    layers, streams, cats = data["layers"], data["streams"], data["categories"]
    out: dict[int, dict[str, list[Bar]]] = {d: {} for d in sorted(devices)}
    for device, start, end, layer in data["launches"]:
        if device in devices:
            out[device].setdefault("host", []).append((start, end - start, "launch", layers[layer]))
    for device, stream, start, duration, cat, layer in data["spans"]:
        if device in devices and duration > 0:
            out[device].setdefault(streams[stream], []).append(
                (start, duration, cats[cat], layers[layer]))
    return out


def _ordered(streams: dict[str, Any]) -> list[str]:
    return [k for k in LANE_ORDER if k in streams] + sorted(set(streams) - set(LANE_ORDER))


def _busy(bars: list[Bar], end_s: float, devices: int) -> dict[str, np.ndarray]:
    """Fraction of `devices` busy in each of BINS time bins, per category."""
    edges = np.linspace(0.0, end_s, BINS + 1)
    width = end_s / BINS
    out: dict[str, np.ndarray] = {}
    for start, duration, category, _ in bars:
        start, duration = min(start, end_s), min(duration, end_s - min(start, end_s))
        first, last = min(BINS - 1, int(start / width)), min(BINS - 1,
                                                              int((start + duration) / width))
        lo = np.maximum(edges[first:last + 1], start)
        hi = np.minimum(edges[first + 1:last + 2], start + duration)
        out.setdefault(category, np.zeros(BINS))[first:last + 1] += np.maximum(hi - lo, 0.0)
    return {c: np.minimum(v / (width * devices), 1.0) for c, v in out.items()}


def link_lanes(data: dict[str, Any]) -> list[Lane]:
    """The link channels' lanes (see the module docstring); none in files without links."""
    names = data.get("channels", [])
    bars: dict[str, list[Bar]] = {name: [] for name in names}
    for channel, start, duration in data.get("links", []):
        bars[names[channel]].append((start, duration, LINK_CATEGORY, ""))
    if len(names) <= DETAILED:
        return [Lane(f"link {name}", bars[name]) for name in names]
    kinds: dict[str, list[str]] = {}
    for name in names:
        kinds.setdefault(re.sub(r"[0-9]+", "*", name), []).append(name)
    groups = list(kinds.items())
    if len(groups) > LINK_KINDS:
        rest = [name for _, members in groups[LINK_KINDS - 1:] for name in members]
        groups = groups[:LINK_KINDS - 1] + [("other links", rest)]
    out = []
    for kind, members in groups:
        if len(members) == 1:
            out.append(Lane(f"link {members[0]}", bars[members[0]]))
            continue
        pooled = [bar for name in members for bar in bars[name]]
        out.append(Lane(f"links {kind} ({format_count(len(members))}, share busy)",
                        busy=_busy(pooled, data["end_s"], len(members))))
    return out


def lanes(data: dict[str, Any]) -> list[Lane]:
    """The lanes of a timeline, top first (see the module docstring)."""
    count = data["devices"]
    shown = count if count <= DETAILED else FIRST
    bars = _device_bars(data, set(range(count)))
    out = []
    for device in range(shown):
        prefix = f"dev {device}: " if count > 1 else ""
        out += [Lane(prefix + THREAD_NAMES.get(k, k), bars[device][k])
                for k in _ordered(bars[device])]
    rest = range(shown, count)
    if rest:
        pooled: dict[str, list[Bar]] = {}
        for device in rest:
            for stream, items in bars[device].items():
                pooled.setdefault(stream, []).extend(items)
        label = f"dev {rest[0]}-{rest[-1]} ({format_count(len(rest))}): "
        out += [Lane(f"{label}{THREAD_NAMES.get(k, k)} (share busy)",
                     busy=_busy(pooled[k], data["end_s"], len(rest)))
                for k in _ordered(pooled)]
    return out + link_lanes(data)


def _label_long_bars(ax: Axes, y: int, bars: list[Bar], end_s: float, scale: float,
                     style: Style) -> None:
    """Name the layer on bars wide enough to hold the name."""
    size = 0.8 * float(style.rc["font.size"])
    per_char = LABEL_PT * size / (0.8 * style.width(2))
    for start, duration, category, layer in bars:
        if category != "launch" and duration >= per_char * (len(layer) + 2) * end_s:
            ax.text((start + duration / 2) / scale, y, layer, ha="center", va="center",
                    color="white", fontsize=size, fontweight="bold")


def _draw_busy(ax: Axes, y: int, busy: dict[str, np.ndarray], end_s: float, scale: float,
               colours: dict[str, str]) -> None:
    edges = np.linspace(0.0, end_s / scale, BINS + 1)
    base = np.full(BINS, y + 0.35)
    for category in [c for c in colours if c in busy]:
        top = base - 0.7 * busy[category]
        ax.stairs(top, edges, baseline=base, fill=True, color=colours[category])
        base = top


def timeline_figure(name: str, data: dict[str, Any], style: Style = SLIDES) -> Figure:
    rows = lanes(data)
    end_s = data["end_s"]
    scale, unit = time_unit(end_s)
    fig = Figure(figsize=style.size(2, base_in=max(style.height_in * 0.6,
                                                   style.row_in * (3 + 1.8 * len(rows)))),
                 layout="constrained")
    ax = fig.add_subplot()
    colours = style.categories
    used: set[str] = set()
    for y, lane in enumerate(rows):
        if lane.busy is not None:
            _draw_busy(ax, y, lane.busy, end_s, scale, colours)
            used |= set(lane.busy)
            continue
        for category in sorted({bar[2] for bar in lane.bars}):
            spans = [(a / scale, d / scale) for a, d, c, _ in lane.bars if c == category]
            edges = 0.0 if category == "launch" else 0.4  # launches are back to back
            ax.broken_barh(spans, (y - 0.35, 0.7), facecolors=colours.get(category, "#555555"),
                           edgecolors="white", linewidth=edges)
            used.add(category)
        _label_long_bars(ax, y, lane.bars, end_s, scale, style)
    ax.set_yticks(range(len(rows)), [lane.label for lane in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(0, end_s / scale)
    ax.set_xlabel(f"time since the step started ({unit})")
    ax.set_title(f"{name}: one step, {format_time(end_s)}{_devices_note(data)}")
    ax.tick_params(axis="y", length=0)
    ax.grid(True, axis="x", alpha=0.3)
    handles = [Patch(color=colours[c], label=c) for c in colours if c in used]
    fig.legend(handles=handles, loc="outside lower center", ncols=max(1, len(handles)))
    return fig


def _devices_note(data: dict[str, Any]) -> str:
    count, replicas = data["devices"], data.get("replicas", 1)
    if replicas > 1:
        return f" (each device stands for {format_count(replicas)})"
    return f" ({format_count(count)} devices)" if count > DETAILED else ""

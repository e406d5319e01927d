"""Figure: one step of one scenario as a Gantt chart, drawn from the saved figure data.

One lane per execution resource of a device (host launch thread, compute stream, copy
engine, communication), bars coloured by what bound the op (compute, memory, transfer,
communication) and launches in the launch colour, so the figure shows where the GPU waits
for the host, for the PCIe copy or for the network.

A figure holds at most `MAX_LANES` lanes, so that it reads on a 16:9 slide and in a paper
at 8 devices as at 1,000 (the lanes are `LANE_PITCH` apart, tick labels never collide):
- devices whose bars are alike (every bar of every lane starts and lasts the same to within
  `ALIKE` of the step, under a pixel of a slide: the devices of data parallelism) share one
  set of lanes, `dev 0-7`, drawn from the critical device (the one whose stream ends last),
  or the group's first device;
- the critical device's group is always drawn bar by bar, further groups while they fit;
  the devices of the groups that do not fit share one lane per resource that shows, over
  time, the fraction of them busy (stacked by category): `dev 8-999 (992 devices, share busy)`;
- the line under the title says what was folded into what.

Below the devices, one lane per link channel (one direction of one cable, `d0>n0.fabric`),
filled in the communication colour while a transfer crosses it. Up to `LINKS_DETAILED`
channels are drawn one by one; with more, the channels of one kind (their names with the
numbers taken out: `d*>n*.fabric`, `n*.nic*>spine`) share one lane: drawn bar by bar when
the channels are alike (`links d*>n*.fabric (8 alike)`), else showing the fraction of them
busy; at most `LINK_KINDS` such lanes (further kinds share a last lane, `other links`).
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
from simulator.report.figure_style import SLIDES, Style, fit_titles, lay_out, legend
from simulator.report.units import format_count, format_time, time_unit

MAX_LANES = 14  # lanes of one figure at most (see the module docstring)
ALIKE = 1 / 2000  # of the step: bars this close are drawn alike (a pixel of a slide)
GROUPS_TRIED = 16  # device groups a device is compared with before it counts as unlike
BINS = 400  # time bins of an aggregated lane
LANE_ORDER = ("host", "compute", "copy", "comm")
LABEL_PT = 0.62 / 72  # width of one character per point of font size, in inches
LINKS_DETAILED = 4  # link channels drawn one by one when there are at most this many
LINK_KINDS = 6  # aggregated link lanes at most
LINK_CATEGORY = "communication"
LANE_PITCH_IN = {"slides": 0.36, "paper": 0.16}  # from one lane to the next, at least
SHORT_NAMES = {"host launch thread": "host launches", "copy engine": "copies",
               "communication (links)": "communication"}  # lane names one column wide

Bar = tuple[float, float, str, str]  # start_s, duration_s, category, layer


@dataclass
class Lane:
    label: str
    bars: list[Bar] = field(default_factory=list)
    busy: dict[str, np.ndarray] | None = None  # category -> fraction of devices busy per bin


@dataclass
class Lanes:
    """The lanes of a timeline, top first, and what the figure says was folded."""

    rows: list[Lane]
    folded: list[str]

    def __len__(self) -> int:
        return len(self.rows)


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


@dataclass
class _Shape:
    """What of a member's lanes must agree for two members to be alike."""

    keys: tuple[tuple[str, str, int], ...]  # (lane, category, bars) in lane order
    times: np.ndarray  # every bar's start and duration, in the order of `keys`


def _shape(streams: dict[str, list[Bar]]) -> _Shape:
    keys, times = [], []
    for stream in _ordered(streams):
        for category in sorted({bar[2] for bar in streams[stream]}):
            bars = [bar for bar in streams[stream] if bar[2] == category]
            keys.append((stream, category, len(bars)))
            times += [t for bar in bars for t in bar[:2]]
    return _Shape(tuple(keys), np.asarray(times, dtype=float))


def alike_groups(members: dict[int, dict[str, list[Bar]]], end_s: float,
                 first: int | None = None) -> list[list[int]]:
    """The members (devices or channels) in groups whose bars are alike (see the module
    docstring), the group of `first` first, then in order of their first member. A member
    alike to none of the first `GROUPS_TRIED` groups starts a group of its own."""
    order = sorted(members, key=lambda m: (m != first, m))
    groups: list[tuple[_Shape, list[int]]] = []
    tolerance = ALIKE * end_s
    for member in order:
        shape = _shape(members[member])
        for seen, group in groups[:GROUPS_TRIED]:
            if seen.keys == shape.keys and (not len(shape.times) or float(
                    np.max(np.abs(seen.times - shape.times))) <= tolerance):
                group.append(member)
                break
        else:
            groups.append((shape, [member]))
    return [group for _, group in groups]


def spans_text(numbers: list[int], most: int = 3) -> str:
    """`0-7`, `1, 3, 5-9`; past `most` runs, the first runs and `...`."""
    runs: list[list[int]] = []
    for n in sorted(numbers):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    text = [f"{a}" if a == b else f"{a}-{b}" for a, b in runs]
    return ", ".join(text[:most]) + (", ..." if len(text) > most else "")


def _stream_lanes(prefix: str, streams: dict[str, list[Bar]]) -> list[Lane]:
    return [Lane(prefix + THREAD_NAMES.get(k, k), streams[k]) for k in _ordered(streams)]


def device_lanes(data: dict[str, Any], room: int) -> tuple[list[Lane], list[str]]:
    """The devices' lanes, at most `room` of them unless the critical device's group alone
    needs more, and the notes of what was folded (see the module docstring)."""
    count = data["devices"]
    bars = _device_bars(data, set(range(count)))
    if count == 1:
        return _stream_lanes("", bars[0]), []
    critical = data.get("critical_device", 0)
    groups = alike_groups(bars, data["end_s"], critical)
    drawn: list[list[int]] = []
    used = 0
    for i, group in enumerate(groups):
        need = len(bars[group[0]])
        rest = {k for g in groups[i + 1:] for d in g for k in bars[d]}
        if drawn and used + need + len(rest) > room:
            break
        drawn.append(group)
        used += need
    out, notes = [], []
    kinds = data.get("device_kinds")  # a mixed cluster: each lane names its kind
    for group in drawn:
        face = critical if critical in group else group[0]
        kind = f" ({kinds[face]})" if kinds and len({kinds[d] for d in group}) == 1 else ""
        out += _stream_lanes(f"dev {spans_text(group)}{kind}: ", bars[face])
        if len(group) > 1:
            notes.append(f"dev {spans_text(group)}: {format_count(len(group))} devices alike "
                         f"(bars within {100 * ALIKE:.2g}% of the step), drawn as dev {face}")
    pooled_devices = [d for g in groups[len(drawn):] for d in g]
    if pooled_devices:
        pooled: dict[str, list[Bar]] = {}
        for device in pooled_devices:
            for stream, items in bars[device].items():
                pooled.setdefault(stream, []).extend(items)
        label = f"dev {spans_text(pooled_devices, 1)} ({format_count(len(pooled_devices))}): "
        out += [Lane(f"{label}{THREAD_NAMES.get(k, k)}",
                     busy=_busy(pooled[k], data["end_s"], len(pooled_devices)))
                for k in _ordered(pooled)]
        notes.append(f"dev {spans_text(pooled_devices, 1)}: {format_count(len(pooled_devices))}"
                     " devices that differ, a lane per resource, the fraction of them busy")
    return out, notes


def link_lanes(data: dict[str, Any]) -> list[Lane]:
    """The link channels' lanes (see the module docstring); none in files without links."""
    return _link_lanes(data)[0]


def _link_lanes(data: dict[str, Any]) -> tuple[list[Lane], list[str]]:
    names = data.get("channels", [])
    bars: dict[str, list[Bar]] = {name: [] for name in names}
    for channel, start, duration in data.get("links", []):
        bars[names[channel]].append((start, duration, LINK_CATEGORY, ""))
    if len(names) <= LINKS_DETAILED:
        return [Lane(f"link {name}", bars[name]) for name in names], []
    kinds: dict[str, list[str]] = {}
    for name in names:
        kinds.setdefault(re.sub(r"[0-9]+", "*", name), []).append(name)
    groups = list(kinds.items())
    if len(groups) > LINK_KINDS:
        rest = [name for _, members in groups[LINK_KINDS - 1:] for name in members]
        groups = groups[:LINK_KINDS - 1] + [("other links", rest)]
    out, alike, shared = [], 0, 0
    for kind, members in groups:
        if len(members) == 1:
            out.append(Lane(f"link {members[0]}", bars[members[0]]))
        elif len(alike_groups({i: {"link": bars[m]} for i, m in enumerate(members)},
                              data["end_s"])) == 1:
            out.append(Lane(f"links {kind} ({format_count(len(members))} alike)",
                            bars[members[0]]))
            alike += len(members)
        else:
            pooled = [bar for name in members for bar in bars[name]]
            out.append(Lane(f"links {kind} ({format_count(len(members))}, share busy)",
                            busy=_busy(pooled, data["end_s"], len(members))))
            shared += len(members)
    if not alike and not shared:
        return out, []
    how = ("alike, drawn as one" if not shared else "the fraction of them busy" if not alike
           else "alike ones drawn as one, the others as the fraction busy")
    return out, [f"{format_count(len(names))} link channels, a lane per kind: {how}"]


def lanes(data: dict[str, Any]) -> Lanes:
    """The lanes of a timeline, top first, at most MAX_LANES where the critical device's
    own lanes leave room (see the module docstring)."""
    links, link_notes = _link_lanes(data)
    devices, device_notes = device_lanes(data, max(MAX_LANES - len(links), 2 * len(LANE_ORDER)))
    return Lanes(devices + links, device_notes + link_notes)


def _label_long_bars(ax: Axes, y: int, bars: list[Bar], end_s: float, scale: float,
                     style: Style) -> None:
    """Name the layer on bars wide enough to hold the name."""
    size = 0.8 * float(style.rc["font.size"])
    per_char = LABEL_PT * size / (0.8 * style.width())
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


def fit_height(fig: Figure, ax: Axes, lane_count: int, style: Style) -> None:
    """Make the lanes `LANE_PITCH_IN` apart: a slide keeps its height (16:9) while they fit
    on it and grows past that; a paper figure is as tall as its lanes need."""
    pitch_in = LANE_PITCH_IN.get(style.name, LANE_PITCH_IN["slides"])
    for _ in range(3):  # the layout's margins barely move as the height changes
        renderer = lay_out(fig)
        width_in, height_in = fig.get_size_inches()
        have_in = ax.get_window_extent(renderer).height / fig.dpi
        want_in = height_in + pitch_in * lane_count - have_in
        if style.name == "slides":
            want_in = max(want_in, style.height_in)
        if abs(want_in - height_in) < 0.01:
            return
        fig.set_size_inches(width_in, want_in)


def timeline_figure(name: str, data: dict[str, Any], style: Style = SLIDES) -> Figure:
    timeline = lanes(data)
    rows = timeline.rows
    end_s = data["end_s"]
    scale, unit = time_unit(end_s)
    fig = Figure(figsize=(style.width(), style.height_in), layout="constrained")
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
    ax.set_yticks(range(len(rows)), [_short(lane.label) if style.narrow else lane.label
                                     for lane in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(0, end_s / scale)
    ax.set_xlabel(f"time since the step started ({unit})")
    fig.suptitle(f"{name}: one step, {format_time(end_s)}{_devices_note(data)}")
    if timeline.folded:
        ax.set_title("\n".join(timeline.folded), fontsize="small", fontweight="normal",
                     color="#444444")
    ax.tick_params(axis="y", length=0)
    ax.grid(True, axis="x", alpha=0.3)
    handles = [Patch(color=colours[c], label=c) for c in colours if c in used]
    legend(fig, handles, len(handles))
    if style.narrow and timeline.folded:  # the note under the title as wide as the figure
        for _ in range(2):
            lay_out(fig)
            box = ax.get_position()
            ax.title.set_x((0.5 - box.x0) / box.width)
    fit_titles(fig)
    fit_height(fig, ax, len(rows), style)
    return fig


def _short(label: str) -> str:
    """A lane's label one column wide: `dev 0: host launches`, `dev 0-7: communication`."""
    for long, short in SHORT_NAMES.items():
        label = label.replace(long, short)
    return label


def _devices_note(data: dict[str, Any]) -> str:
    count, replicas = data["devices"], data.get("replicas", 1)
    if replicas > 1:
        return f" (each device stands for {format_count(replicas)})"
    return f" ({format_count(count)} devices)" if count > 1 else ""

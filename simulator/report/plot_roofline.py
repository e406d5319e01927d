"""Figure: the roofline of a step: every op of the critical device placed by its arithmetic
intensity (FLOPs per byte moved) and the rate it achieved (FLOPs over its device time),
under the roofs of its device, one panel per device (CPU and GPU side by side).

Roofs: a flat line per peak rate, the dtypes that share it named together ("fp32" is the
plain FP32 units; on a GPU, a higher one is its tensor cores); the memory roof (intensity x
memory bandwidth) up to the highest peak; and the launch floor, the rate a kernel of the
step's median size reaches when its fixed host cost dominates (its bytes / the median launch
time, times the intensity: the GPU's kernel launch, a CPU's fork/join of its thread pool):
an op above that line runs faster on the device than the host can issue it. Ops are
sized by their time and coloured by phase or, with `color_by="layer"`, by the kind of their
layer (`conv2d`, `linear`, ...: the kinds that take most time get the palette's colours,
the rest share grey, as `other kinds`; what is no layer of the model, the loss or the
optimizer step, goes by its phase). The `LABELLED` ops that take most of the step are named
with their share of it, always: every text of a panel (roof labels, op names, the note) is
placed after the figure's layout so that no two overlap and no text covers the line that
ties an op's name to its point, nor such a line another's name (`label_layout`); an op name
goes near its point if there is room, else anywhere in the panel with a longer line, else
(on a panel crowded past that) its number (`#1`) goes on or beside its point, with no line,
and the name, after its number, in a free place of the panel. Ops without FLOPs or
without bytes (copies, collectives) have no place on a roofline and are counted in the
panel's note.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.transforms import Bbox

from simulator.report.figure_data import DEVICE_PREFIX
from simulator.report.figure_style import PHASE_LABELS, SLIDES, Style, fit_titles, lay_out
from simulator.report.label_layout import SIXTEEN, Option, Placer, around
from simulator.report.units import format_bandwidth, format_rate, format_time, si_unit

MAX_PANELS = 3
LABELLED = 5  # ops named per panel: those that take most time
ROOF_COLOUR, FLOOR_COLOUR, OTHER_COLOUR, NOTE_COLOUR = "#333333", "#888888", "#BBBBBB", "#555555"
OTHER = "other"
TEXT_BACKGROUND = {"facecolor": "white", "edgecolor": "none", "alpha": 0.75, "pad": 0.1}
OP_PLACES = around((9.0, 16.0, 26.0, 38.0, 54.0, 72.0, 96.0, 128.0), SIXTEEN)
TAG_PLACES = [(0.0, 0.0, "center", "center")] + around((6.0, 9.0, 12.0, 16.0), SIXTEEN)
COLOR_BY = ("phase", "layer")


def _points(data: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """The ops that have a place on the roofline (as dicts), and how many do not."""
    keys = ("name", "layer", "kind", "phase", "dtype", "flops", "bytes", "time_s", "launch_s")
    ops = [dict(zip(keys, op, strict=True)) for op in data["ops"]]
    placed = [op for op in ops if op["flops"] > 0 and op["bytes"] > 0 and op["time_s"] > 0]
    return placed, len(ops) - len(placed)


def roofs(device: dict[str, Any]) -> list[tuple[float, str]]:
    """[(peak FLOP/s, label)] highest first; dtypes sharing a peak share a roof."""
    by_peak: dict[float, list[str]] = {}
    for dtype, peak in device["peak_flops_per_s"].items():
        by_peak.setdefault(peak, []).append(dtype)
    fp32 = device["peak_flops_per_s"].get("fp32")
    out = []
    for peak, dtypes in sorted(by_peak.items(), reverse=True):
        unit = "FP32 units" if "fp32" in dtypes else (
            "tensor cores" if device["kind"] == "gpu" and fp32 and peak > fp32 else "")
        out.append((peak, f"{'/'.join(dtypes)}{f' ({unit})' if unit else ''}: "
                          f"{format_rate(peak)}"))
    return out


def _floor(data: dict[str, Any], placed: list[dict[str, Any]]) -> tuple[float, str] | None:
    """(bytes per second of the launch floor, its label), or None if the device has none."""
    fixed = [op["launch_s"] for op in placed if op["launch_s"] > 0]
    what = "launch"
    if not fixed and data["device"].get("fork_join_s"):
        fixed, what = [data["device"]["fork_join_s"]], "fork/join"
    if not fixed or not placed:
        return None
    size = statistics.median(op["bytes"] for op in placed)
    cost = statistics.median(fixed)
    return size / cost, f"{what} floor ({format_time(cost)} per op of {_mb(size)})"


def _mb(size: float) -> str:
    scale, unit = si_unit(size, "B")
    return f"{size / scale:.3g} {unit}"


@dataclass(frozen=True)
class Colours:
    """What colours the points: `key(op, data)` -> a name, `colour` and `label` per name."""

    by: str
    colour: dict[str, str]
    label: dict[str, str]

    def key(self, op: dict[str, Any], data: dict[str, Any]) -> str:
        if self.by == "phase":
            return str(op["phase"])
        kinds = data.get("layer_kinds") or []
        kind = kinds[op["layer"]] if op["layer"] < len(kinds) else ""
        return kind or PHASE_LABELS.get(op["phase"], op["kind"])

    def of(self, op: dict[str, Any], data: dict[str, Any]) -> str:
        return self.colour.get(self.key(op, data), OTHER_COLOUR)


def colours(picked: list[tuple[str, dict[str, Any]]], by: str, style: Style) -> Colours:
    """The phase colours of `style`, or one palette colour per layer kind, by time."""
    if by == "phase":
        return Colours(by, dict(style.phases), dict(PHASE_LABELS))
    plain = Colours(by, {}, {})
    time_s: dict[str, float] = {}
    for _, data in picked:
        for op in _points(data)[0]:
            key = plain.key(op, data)
            time_s[key] = time_s.get(key, 0.0) + op["time_s"]
    ranked = sorted(time_s, key=lambda k: (-time_s[k], k))
    named = ranked[:len(style.palette) - 1] if len(ranked) > len(style.palette) else ranked
    colour = {k: style.palette[i] for i, k in enumerate(named)}
    label = {k: k for k in named} | ({OTHER: "other kinds"} if len(named) < len(ranked) else {})
    return Colours(by, colour | ({OTHER: OTHER_COLOUR} if OTHER in label else {}), label)


@dataclass(frozen=True)
class Label:
    """A text to place once the figure is laid out: where it may go, in order of preference."""

    text: str
    options: list[Option]
    role: str  # "note", "roof", "memory" or "op": every one is drawn (see `place_labels`)
    anchor: tuple[float, float] | None = None  # an op's point


@dataclass
class Panel:
    """One device's axes and the texts to place once the figure is laid out."""

    ax: Axes
    data: dict[str, Any]
    placed: list[dict[str, Any]]
    labels: list[Label] = field(default_factory=list)
    scale: float = 1.0


def _limits(placed: list[dict[str, Any]], top: list[tuple[float, str]],
            bandwidth: float | None) -> tuple[float, float]:
    ridges = [peak / bandwidth for peak, _ in top] if bandwidth else []
    intensities = [op["flops"] / op["bytes"] for op in placed] + ridges or [1.0]
    return (10 ** math.floor(math.log10(min(intensities)) - 0.5),
            10 ** math.ceil(math.log10(max(intensities)) + 0.7))


def _roofs(panel: Panel, top: list[tuple[float, str]], x_lo: float, x_hi: float,
           style: Style) -> None:
    """The flat roofs, labelled at their right end (above the highest, below the others, or
    the other side, or further left), and the memory roof, labelled along its slope."""
    ax, bandwidth = panel.ax, panel.data["device"].get("memory_bandwidth_bytes_per_s")
    above, below = (-2.0, 2.0, "right", "bottom"), (-2.0, -2.0, "right", "top")
    for i, (peak, label) in enumerate(top):
        start = max(peak / bandwidth if bandwidth else x_lo, x_lo)
        y = peak / panel.scale
        ax.plot([start, x_hi], [y] * 2, color=ROOF_COLOUR,
                linewidth=style.linewidth * (1.4 if i == 0 else 0.9),
                linestyle="-" if i == 0 else (0, (4, 2)))
        sides = [above, below] if i == 0 else [below, above]
        right = [((x_hi, y), side) for side in sides]
        left = [((start, y), (dx + 6, dy, "left", va)) for dx, dy, _, va in sides]
        panel.labels.append(Label(label, right + left, "roof"))
    if bandwidth and top:
        ridge = top[0][0] / bandwidth
        ax.plot([x_lo, ridge], [x_lo * bandwidth / panel.scale, top[0][0] / panel.scale],
                color=ROOF_COLOUR, linewidth=style.linewidth * 1.4)
        along = [max(x_lo, ridge / step) for step in (10.0, 30.0, 100.0, 1000.0, 3.0)]
        panel.labels.append(Label(f"memory {format_bandwidth(bandwidth)}",
                                  [((x, x * bandwidth / panel.scale), (6.0, -4.0, "left", "top"))
                                   for x in along], "memory"))


def _panel(ax: Axes, name: str, data: dict[str, Any], style: Style,
           colour: Colours) -> Panel:
    placed, skipped = _points(data)
    device = data["device"]
    top = roofs(device)
    scale, unit = si_unit(top[0][0] if top else 1.0, "FLOP/s")
    panel = Panel(ax, data, placed, scale=scale)
    x_lo, x_hi = _limits(placed, top, device.get("memory_bandwidth_bytes_per_s"))
    _roofs(panel, top, x_lo, x_hi, style)
    floor = _floor(data, placed)
    if floor:
        ax.plot([x_lo, x_hi], [x_lo * floor[0] / scale, x_hi * floor[0] / scale],
                color=FLOOR_COLOUR, linewidth=style.linewidth, linestyle=":")
    _scatter(panel, colour, style)
    ax.set(xscale="log", yscale="log", xlim=(x_lo, x_hi))
    rates = [op["flops"] / op["time_s"] / scale for op in placed] or [top[0][0] / scale]
    ax.set_ylim(min(rates) / 5, (top[0][0] / scale if top else max(rates)) * 5)
    ax.set_xlabel("intensity (FLOP/byte)")
    ax.set_ylabel(f"achieved rate ({unit})")
    notes = ([floor[1]] if floor else []) + (
        [f"{skipped} ops without FLOPs or bytes not shown"] if skipped else [])
    if notes:  # after the roofs' labels, before the ops' names
        first_op = next((i for i, label in enumerate(panel.labels) if label.role == "op"),
                        len(panel.labels))
        panel.labels.insert(first_op, Label("\n".join(notes), [], "note"))
    ax.set_title(f"{name}\n{device['name']} ({device['kind']})", fontsize="medium",
                 fontweight="normal")
    ax.grid(True, which="major", alpha=0.3)
    return panel


def _scatter(panel: Panel, colour: Colours, style: Style) -> None:
    placed, scale = panel.placed, panel.scale
    total = sum(op["time_s"] for op in placed) or 1.0
    base = style.markersize ** 2
    if placed:  # one collection for all ops: one draw call, however many ops
        panel.ax.scatter([op["flops"] / op["bytes"] for op in placed],
                         [op["flops"] / op["time_s"] / scale for op in placed],
                         s=[base * (0.4 + 6 * math.sqrt(op["time_s"] / total)) for op in placed],
                         c=[colour.of(op, panel.data) for op in placed],
                         edgecolors="black", linewidths=0.3, alpha=0.85, zorder=3)
    step_s = panel.data.get("end_s") or total
    for op in sorted(placed, key=lambda o: (-o["time_s"], o["name"]))[:LABELLED]:
        point = (op["flops"] / op["bytes"], op["flops"] / op["time_s"] / scale)
        share = f" ({100 * op['time_s'] / step_s:.2g}%)"
        panel.labels.append(Label(DEVICE_PREFIX.sub("", op["name"]) + share,
                                  [(point, place) for place in OP_PLACES], "op", point))


def _marker_boxes(panel: Panel, renderer: Any) -> list[Bbox]:
    """The box of every point's marker, in pixels (a scatter's sizes are areas in pt²)."""
    out = []
    for collection in panel.ax.collections:
        if not isinstance(collection, PathCollection):
            continue
        offsets = np.asarray(collection.get_offsets())
        sizes = collection.get_sizes()
        pixels = panel.ax.transData.transform(offsets)
        for (x, y), size in zip(pixels, np.resize(sizes, len(offsets)), strict=True):
            half = math.sqrt(size) / 2 * panel.ax.figure.dpi / 72
            out.append(Bbox.from_extents(x - half, y - half, x + half, y + half))
    return out


def place_labels(panel: Panel, renderer: Any) -> None:
    """Place the panel's labels in order (roofs, memory, op names), each where it overlaps
    no marker, no label and no connector line placed before it; the note after the roofs,
    in the first corner where it covers no point. An op name with no room anywhere gets a number
    (see the module docstring)."""
    placer = Placer(panel.ax, renderer, _marker_boxes(panel, renderer),
                    [t.get_window_extent(renderer) for t in panel.ax.texts if t.get_text()])
    keyed: list[Label] = []
    (x_lo, x_hi), (y_lo, y_hi) = panel.ax.get_xlim(), panel.ax.get_ylim()
    for label in panel.labels:
        style = _text_style(label.role)
        if label.role == "note":
            corners = [((x_hi, y_lo), (-4.0, 4.0, "right", "bottom")),
                       ((x_lo, y_hi), (4.0, -4.0, "left", "top")),
                       ((x_lo, y_lo), (4.0, 4.0, "left", "bottom"))]
            placer.place(label.text, corners + placer.spread(corners[0][0]), True, **style)
            continue
        if label.role == "op" and label.anchor is not None:
            options = label.options + placer.spread(label.anchor)
            if placer.place(label.text, options, **style) is None:
                keyed.append(label)
            continue
        placer.place(label.text, label.options, True, **style)
    lines = []
    for number, label in enumerate(keyed, start=1):
        assert label.anchor is not None
        placer.place(f"#{number}", [(label.anchor, place) for place in TAG_PLACES], True,
                     **_text_style("key"))
        lines.append(f"#{number} {label.text}")
    if lines:
        corner = (panel.ax.get_xlim()[0], panel.ax.get_ylim()[1])
        placer.place("\n".join(lines), placer.spread(corner), True, **_text_style("key"))


def _text_style(role: str) -> dict[str, Any]:
    style: dict[str, Any] = {"fontsize": "x-small", "zorder": 4, "bbox": TEXT_BACKGROUND,
                             "color": {"op": "black", "key": "black", "note": NOTE_COLOUR}.get(
                                 role, ROOF_COLOUR)}
    if role == "op":
        style["arrowprops"] = {"arrowstyle": "-", "linewidth": 0.5, "shrinkA": 0,
                               "shrinkB": 2}
    return style


def roofline_figure(picked: list[tuple[str, dict[str, Any]]], title: str,
                    style: Style = SLIDES, color_by: str = "phase") -> Figure:
    """One panel per (scenario name, figure data) in `picked` (at most MAX_PANELS), the
    points coloured by `color_by` (`COLOR_BY`); the texts placed after the layout."""
    picked = picked[:MAX_PANELS]
    fig = Figure(figsize=style.size(2, aspect=0.56 if style.name == "slides" else 0.5),
                 dpi=style.dpi, layout="constrained")
    axes = fig.subplots(1, len(picked), squeeze=False)[0]
    colour = colours(picked, color_by, style)
    panels = [_panel(ax, name, data, style, colour)
              for ax, (name, data) in zip(axes, picked, strict=True)]
    shown = {colour.key(op, p.data) for p in panels for op in p.placed}
    shown = {k if k in colour.colour else OTHER for k in shown}
    handles = [Line2D([], [], marker="o", linestyle="none", color=colour.colour[k],
                      markeredgecolor="black", label=colour.label.get(k, k))
               for k in colour.colour if k in shown]
    handles.append(Line2D([], [], color=FLOOR_COLOUR, linestyle=":",
                          label="launch floor (median op)"))
    fig.legend(handles=handles, loc="outside lower center", ncols=max(1, min(len(handles), 5)))
    fig.suptitle(f"{title}: every op of one step under its device's roofs")
    fit_titles(fig)
    renderer = lay_out(fig)
    for panel in panels:
        place_labels(panel, renderer)
    return fig

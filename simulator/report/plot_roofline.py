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
(on a panel crowded past that) its number (`#1`; `#1,#2` for ops on one spot) goes beside
its point (further off with a line, or on it, where there is no room beside it),
and the name, after its number, in a key (`#1 NAME`) in a free place of the panel, else under
the axes' label (the figure is then laid out and its texts placed again). Ops without FLOPs or
without bytes (copies, collectives) have no place on a roofline and are counted in the
panel's note, which goes where it covers no point: in a free corner or place of the panel,
else under the axes' label.
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
from simulator.report.figure_style import (
    PHASE_LABELS,
    SLIDES,
    Style,
    fit_titles,
    lay_out,
    legend,
)
from simulator.report.label_layout import SIXTEEN, Option, Placer, around
from simulator.report.units import format_bandwidth, format_rate, format_time, si_unit

MAX_PANELS = 3
STACKED_PANEL_IN, STACKED_FRAME_IN = 2.2, 1.0  # one column: a panel; title and legend
LABELLED = 5  # ops named per panel: those that take most time
ROOF_COLOUR, FLOOR_COLOUR, OTHER_COLOUR, NOTE_COLOUR = "#333333", "#888888", "#BBBBBB", "#555555"
OTHER = "other"
TEXT_BACKGROUND = {"facecolor": "white", "edgecolor": "none", "alpha": 0.75, "pad": 0.1}
OP_PLACES = around((9.0, 16.0, 26.0, 38.0, 54.0, 72.0, 96.0, 128.0), SIXTEEN)
SAME_SPOT_PT = 4.0  # keyed ops closer than this share one tag (`#1,#2`)
ROOF_TRIES = 400  # places tried for the roofs' labels together, at most
KEY_PASSES = 4  # layouts at most: names that find no room are keyed under the axes
XLABEL = "intensity (FLOP/byte)"
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
    note_below: bool = False  # the note found no place free of points: under the axes
    note_homeless: bool = False  # ... found out by the last `place_labels`


def _limits(placed: list[dict[str, Any]], top: list[tuple[float, str]],
            bandwidth: float | None) -> tuple[float, float]:
    ridges = [peak / bandwidth for peak, _ in top] if bandwidth else []
    intensities = [op["flops"] / op["bytes"] for op in placed] + ridges or [1.0]
    return (10 ** math.floor(math.log10(min(intensities)) - 0.5),
            10 ** math.ceil(math.log10(max(intensities)) + 0.7))


def _roofs(panel: Panel, top: list[tuple[float, str]], x_lo: float, x_hi: float,
           style: Style) -> None:
    """The flat roofs, labelled at their right end (above the highest, below the others, or
    the other side), else at their left end, else along them; and the memory roof,
    labelled along its slope."""
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
        along = [((start * (x_hi / start) ** f, y), (0.0, dy, "center", va))
                 for f in (0.5, 0.75, 0.25) for _, dy, _, va in sides]  # a flat roof: anywhere
        panel.labels.append(Label(label, right + left + along, "roof"))
    if bandwidth and top:
        ridge = top[0][0] / bandwidth
        ax.plot([x_lo, ridge], [x_lo * bandwidth / panel.scale, top[0][0] / panel.scale],
                color=ROOF_COLOUR, linewidth=style.linewidth * 1.4)
        spots = [max(x_lo, ridge / step) for step in (10.0, 30.0, 100.0, 1000.0, 3.0, 300.0)]
        sides = [(6.0, -4.0, "left", "top"), (-6.0, 4.0, "right", "bottom")]  # under, over
        panel.labels.append(Label(f"memory {format_bandwidth(bandwidth)}",
                                  [((x, x * bandwidth / panel.scale), side) for side in sides
                                   for x in spots], "memory"))


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
    ax.set_xlabel(XLABEL)
    ax.set_ylabel(f"achieved rate ({unit})")
    ops = f"{skipped} op{'s' if skipped > 1 else ''}"
    notes = ([floor[1]] if floor else []) + (
        [f"{ops} without FLOPs or bytes not shown"] if skipped else [])
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


def place_labels(panel: Panel, renderer: Any, keyed: list[str], below: bool,
                 last: bool = False) -> list[str]:
    """Place the panel's labels in order (roofs, memory, the note, op names), each where it
    overlaps no marker, no label and no connector line placed before it; the note in the
    first corner, else the first place of the panel, where it covers no point (none free:
    `panel.note_homeless`, and the caller writes it under the axes' label, where it covers
    nothing; on the `last` pass it goes where it covers points only). An op name
    with no room (or in `keyed`) gets a number instead (`#1`, by its point) and the key
    (`#1 NAME`) goes in a free place of the panel, or, with `below`, is under the axes'
    label already (the names newly numbered then are numbered after those, and, if `last`,
    keyed in the panel, come what may). Returns the op names the caller must key under the
    axes' label (and redraw): all that are numbered if the key found no room, else none
    (with `below`: the names newly numbered)."""
    placer = Placer(panel.ax, renderer, _marker_boxes(panel, renderer))
    roofs = [label for label in panel.labels if label.role == "roof"]
    for group in (roofs, _merged(roofs)):  # roofs close together: one above, the next
        if any(_place_roofs(placer, group, [ROOF_TRIES], over) for over in (False, True)):
            break                             # below; else one label for them all
    else:
        for label in _merged(roofs):
            placer.place(label.text, label.options, True, **_text_style("roof"))
    (x_lo, x_hi), (y_lo, y_hi) = panel.ax.get_xlim(), panel.ax.get_ylim()
    new = []
    for label in panel.labels:
        style = _text_style(label.role)
        if label.role == "note" and not panel.note_below:
            corners = [((x_hi, y_lo), (-4.0, 4.0, "right", "bottom")),
                       ((x_lo, y_hi), (4.0, -4.0, "left", "top")),
                       ((x_lo, y_lo), (4.0, 4.0, "left", "bottom"))]
            options = corners + placer.spread(corners[0][0])
            panel.note_homeless = placer.place(label.text, options, **style) is None
            if panel.note_homeless and last:
                placer.place(label.text, options, True, **style)
        elif label.role == "memory":
            placer.place(label.text, label.options, True, **style)
        elif label.role == "op" and label.anchor is not None and label.text not in keyed \
                and placer.place(label.text, label.options + placer.spread(label.anchor),
                                 **style) is None:
            new.append(label.text)
    numbered = [label for label in panel.labels if label.text in keyed] + [
        label for label in panel.labels if label.text in new]
    _place_tags(panel, placer, numbered)
    inside = [label.text for label in numbered if not below or label.text in new]
    if not inside:
        return []
    key = _key(inside, len(numbered) - len(inside) + 1).strip()
    corner = (x_lo, y_hi)
    if placer.place(key, placer.spread(corner), **_text_style("key")) is None and \
            placer.place(key, placer.spread(corner), last, over_markers=True,
                         **_text_style("key")) is None:
        return [label.text for label in numbered]
    return []


def _place_tags(panel: Panel, placer: Placer, numbered: list[Label]) -> None:
    """`#1`, `#2`, ... for the `numbered` ops (`#1,#2` for ops on one spot): beside the
    point; else further off, with a line; else over points beside it; else anywhere."""
    same_px = SAME_SPOT_PT * panel.ax.figure.dpi / 72
    tags: list[tuple[Any, tuple[float, float], list[str]]] = []
    for number, label in enumerate(numbered, start=1):
        assert label.anchor is not None
        pixel = panel.ax.transData.transform(label.anchor)
        near = next((tag for tag in tags if math.dist(tag[0], pixel) < same_px), None)
        if near is None:
            tags.append((pixel, label.anchor, [f"#{number}"]))
        else:
            near[2].append(f"#{number}")
    for _, anchor, numbers in tags:
        beside = [(anchor, place) for place in TAG_PLACES]
        tag, far = ",".join(numbers), placer.spread(anchor)
        if placer.place(tag, beside, **_text_style("key")) is None and placer.place(
                tag, far, **_text_style("op")) is None and placer.place(
                tag, beside, over_markers=True, **_text_style("key")) is None:
            placer.place(tag, far, True, over_markers=True, **_text_style("key"))


def _merged(roofs: list[Label]) -> list[Label]:
    """One label for all roofs, their lines top first, placed above the highest roof or
    below the lowest (for roofs too close together for a label each)."""
    if len(roofs) < 2:
        return roofs
    above = [option for option in roofs[0].options if option[1][1] > 0]
    below = [option for option in roofs[-1].options if option[1][1] < 0]
    return [Label("\n".join(label.text for label in roofs), above + below, "roof")]


def _place_roofs(placer: Placer, roofs: list[Label], budget: list[int],
                 over_markers: bool = False) -> bool:
    """Place every roof's label where none overlaps another or a marker (or, with
    `over_markers`, where they cover markers only), trying each roof's places in order,
    back-tracking (at most `budget[0]` tries); False (and nothing placed) if there is no
    such choice."""
    if not roofs:
        return True
    for option in roofs[0].options:
        if budget[0] <= 0:
            return False
        budget[0] -= 1
        text = placer.place(roofs[0].text, [option], over_markers=over_markers,
                            **_text_style("roof"))
        if text is None:
            continue
        if _place_roofs(placer, roofs[1:], budget, over_markers):
            return True
        placer.undo(text)
    return False


def _key(names: list[str], first: int = 1) -> str:
    """The numbered ops' names (numbers from `first`), a line each, after a line break."""
    return "".join(f"\n#{number} {name}" for number, name in enumerate(names, start=first))


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
    size = style.size(aspect=0.5)
    if style.narrow:  # one column: the panels one above the other
        size = (size[0], len(picked) * STACKED_PANEL_IN + STACKED_FRAME_IN)
    fig = Figure(figsize=size, dpi=style.dpi, layout="constrained")
    axes = fig.subplots(*((len(picked), 1) if style.narrow else (1, len(picked))),
                        squeeze=False).flat
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
    legend(fig, handles, 5)
    fig.suptitle(f"{title}: every op of one step under its device's roofs")
    fit_titles(fig)
    keyed: list[list[str]] = [[] for _ in panels]  # the names keyed under each axes
    for attempt in range(KEY_PASSES):  # a key or note under an axes shrinks it: place anew
        renderer = lay_out(fig)
        more = [place_labels(panel, renderer, keys, bool(keys), attempt == KEY_PASSES - 1)
                for panel, keys in zip(panels, keyed, strict=True)]
        if not any(more) and not any(p.note_homeless for p in panels) or \
                attempt == KEY_PASSES - 1:
            return fig
        for panel, keys, names in zip(panels, keyed, more, strict=True):
            keys[:] = [label.text for label in panel.labels if label.text in keys + names]
            panel.note_below = panel.note_below or panel.note_homeless
            note = [label.text for label in panel.labels if label.role == "note"]
            panel.ax.set_xlabel("\n".join([XLABEL + _key(keys)] + note * panel.note_below))
            for text in list(panel.ax.texts):
                text.remove()
        fit_titles(fig)
    return fig

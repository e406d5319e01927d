"""Figure: one step of one scenario as a Gantt chart of the trace.

One lane per execution resource of each device (host launch thread, compute stream, copy
engine, communication), bars coloured by what bound the op (compute, memory, transfer,
communication) and launches in the launch colour, so the figure shows where the GPU
waits for the host, for the PCIe copy or for the network. At most four devices are drawn.
"""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from simulator.engine.trace import Trace
from simulator.report.chrome_trace import THREAD_NAMES, LaunchCost, launch_intervals
from simulator.report.figure_style import CATEGORY_COLOURS, SLIDE_INCHES, format_time, time_unit

MAX_DEVICES = 4
LABEL_SHARE_PER_CHAR = 0.009  # width of one bold 13 pt character on a 13 inch axis
LANE_ORDER = ("host", "compute", "copy", "comm")


Bar = tuple[float, float, str, str]  # start_s, duration_s, category, layer


def _lanes(trace: Trace, launch_cost: LaunchCost) -> list[tuple[str, list[Bar]]]:
    """[(lane label, [(start_s, duration_s, category, layer)])] per drawn device, top first."""
    lanes = []
    devices = range(min(len(trace.device_names), MAX_DEVICES))
    for device in devices:
        spans = trace.on(device)
        prefix = f"dev {device}: " if len(trace.device_names) > 1 else ""
        bars: dict[str, list[Bar]] = {"host": [
            (a, b - a, "launch", s.layer) for s, a, b in launch_intervals(spans, launch_cost)]}
        for s in spans:
            if s.duration_s > 0:
                bars.setdefault(s.stream, []).append((s.start_s, s.duration_s, s.category,
                                                      s.layer))
        order = [k for k in LANE_ORDER if k in bars] + sorted(set(bars) - set(LANE_ORDER))
        lanes += [(prefix + THREAD_NAMES.get(k, k), bars[k]) for k in order if bars[k]]
    return lanes


def _label_long_bars(ax: Axes, y: int, bars: list[Bar], end_s: float, scale: float) -> None:
    """Name the layer on bars wide enough to hold the name."""
    for start, duration, category, layer in bars:
        if category != "launch" and duration >= LABEL_SHARE_PER_CHAR * (len(layer) + 2) * end_s:
            ax.text((start + duration / 2) / scale, y, layer, ha="center", va="center",
                    color="white", fontsize=13, fontweight="bold")


def timeline_figure(name: str, trace: Trace, launch_cost: LaunchCost) -> Figure:
    lanes = _lanes(trace, launch_cost)
    scale, unit = time_unit(trace.end_s)
    height = max(4.5, 2.4 + 0.9 * len(lanes))
    fig = Figure(figsize=(SLIDE_INCHES[0], height), layout="constrained")
    ax = fig.add_subplot()
    used: list[str] = []
    for y, (_, bars) in enumerate(lanes):
        for category in sorted({bar[2] for bar in bars}):
            spans = [(a / scale, d / scale) for a, d, c, _ in bars if c == category]
            colour = CATEGORY_COLOURS.get(category, "#555555")
            edges = 0.0 if category == "launch" else 0.4  # launches are back to back
            ax.broken_barh(spans, (y - 0.35, 0.7), facecolors=colour, edgecolors="white",
                           linewidth=edges)
            if category not in used:
                used.append(category)
        _label_long_bars(ax, y, bars, trace.end_s, scale)
    ax.set_yticks(range(len(lanes)), [label for label, _ in lanes])
    ax.invert_yaxis()
    ax.set_xlim(0, trace.end_s / scale)
    ax.set_xlabel(f"time since the step started ({unit})")
    shown = min(len(trace.device_names), MAX_DEVICES)
    more = f" (devices 0-{shown - 1} of {len(trace.device_names)})" \
        if shown < len(trace.device_names) else ""
    ax.set_title(f"{name}: one step, {format_time(trace.end_s)}{more}")
    ax.tick_params(axis="y", length=0)
    ax.grid(True, axis="x", alpha=0.3)
    order = [c for c in CATEGORY_COLOURS if c in used]
    handles = [Patch(color=CATEGORY_COLOURS[c], label=c) for c in order]
    fig.legend(handles=handles, loc="outside lower center", ncols=max(1, len(handles)))
    return fig


"""Figure: the roofline of a step: every op of the critical device placed by its arithmetic
intensity (FLOPs per byte moved) and the rate it achieved (FLOPs over its device time),
under the roofs of its device, one panel per device (CPU and GPU side by side).

Roofs: a flat line per peak rate, the dtypes that share it named together ("fp32" is the
plain FP32 units; on a GPU, a higher one is its tensor cores); the memory roof (intensity x
memory bandwidth) up to the highest peak; and the launch floor, the rate a kernel of the
step's median size reaches when its fixed host cost dominates (its bytes / the median launch
time, times the intensity: the GPU's kernel launch, a CPU's fork/join of its thread pool):
an op above that line runs faster on the device than the host can issue it. Ops are
coloured by phase, sized by their time, and the few that take most of the step are named.
Ops without FLOPs or without bytes (copies, collectives) have no place on a roofline and are
counted in the panel's note.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from simulator.report.figure_data import DEVICE_PREFIX
from simulator.report.figure_style import PHASE_LABELS, SLIDES, Style
from simulator.report.units import format_bandwidth, format_rate, format_time, si_unit

MAX_PANELS = 3
LABELLED = 3  # ops named per panel: those that take most time
ROOF_COLOUR, FLOOR_COLOUR = "#333333", "#888888"
LABEL_OFFSETS = ((10, -16, "left"), (10, 12, "left"), (-10, 12, "right"))  # points


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


def _panel(ax: Axes, name: str, data: dict[str, Any], style: Style) -> set[str]:
    placed, skipped = _points(data)
    device = data["device"]
    top = roofs(device)
    scale, unit = si_unit(top[0][0] if top else 1.0, "FLOP/s")
    bandwidth = device.get("memory_bandwidth_bytes_per_s")
    ridges = [peak / bandwidth for peak, _ in top] if bandwidth else []
    intensities = [op["flops"] / op["bytes"] for op in placed] + ridges or [1.0]
    x_lo = 10 ** math.floor(math.log10(min(intensities)) - 0.5)
    x_hi = 10 ** math.ceil(math.log10(max(intensities)) + 0.7)
    for i, (peak, label) in enumerate(top):
        start = peak / bandwidth if bandwidth else x_lo
        ax.plot([max(start, x_lo), x_hi], [peak / scale] * 2, color=ROOF_COLOUR,
                linewidth=style.linewidth * (1.4 if i == 0 else 0.9),
                linestyle="-" if i == 0 else (0, (4, 2)))
        ax.annotate(label, (x_hi, peak / scale), xytext=(-2, 2 if i == 0 else -2),
                    textcoords="offset points", ha="right", va="bottom" if i == 0 else "top",
                    fontsize="x-small", color=ROOF_COLOUR)
    if bandwidth and top:
        ridge = top[0][0] / bandwidth
        ax.plot([x_lo, ridge], [x_lo * bandwidth / scale, top[0][0] / scale],
                color=ROOF_COLOUR, linewidth=style.linewidth * 1.4)
        at = max(x_lo, ridge / 10)
        ax.annotate(f"memory {format_bandwidth(bandwidth)}", (at, at * bandwidth / scale),
                    xytext=(6, -4), textcoords="offset points", ha="left", va="top",
                    fontsize="x-small", color=ROOF_COLOUR)
    floor = _floor(data, placed)
    if floor:
        ax.plot([x_lo, x_hi], [x_lo * floor[0] / scale, x_hi * floor[0] / scale],
                color=FLOOR_COLOUR, linewidth=style.linewidth, linestyle=":")
    phases = _scatter(ax, placed, scale, style)
    for text in ax.texts:  # labels may reach past the axes; the layout keeps to the axes
        text.set_in_layout(False)
    ax.set(xscale="log", yscale="log", xlim=(x_lo, x_hi))
    rates = [op["flops"] / op["time_s"] / scale for op in placed] or [top[0][0] / scale]
    ax.set_ylim(min(rates) / 5, (top[0][0] / scale if top else max(rates)) * 3)
    ax.set_xlabel("intensity (FLOP/byte)")
    ax.set_ylabel(f"achieved rate ({unit})")
    notes = ([floor[1]] if floor else []) + (
        [f"{skipped} ops without FLOPs or bytes not shown"] if skipped else [])
    ax.text(0.98, 0.02, "\n".join(notes), transform=ax.transAxes, ha="right", va="bottom",
            fontsize="x-small", color="#555555")
    ax.set_title(f"{name}\n{device['name']} ({device['kind']})", fontsize="medium",
                 fontweight="normal")
    ax.grid(True, which="major", alpha=0.3)
    return phases


def _scatter(ax: Axes, placed: list[dict[str, Any]], scale: float, style: Style) -> set[str]:
    total = sum(op["time_s"] for op in placed) or 1.0
    base = style.markersize ** 2
    if placed:  # one collection for all ops: one draw call, however many ops
        ax.scatter([op["flops"] / op["bytes"] for op in placed],
                   [op["flops"] / op["time_s"] / scale for op in placed],
                   s=[base * (0.4 + 6 * math.sqrt(op["time_s"] / total)) for op in placed],
                   c=[style.phases.get(op["phase"], "#555555") for op in placed],
                   edgecolors="black", linewidths=0.3, alpha=0.85, zorder=3)
    ranked = sorted(placed, key=lambda o: (-o["time_s"], o["name"]))[:LABELLED]
    for op, (dx, dy, ha) in zip(ranked, LABEL_OFFSETS, strict=False):
        ax.annotate(DEVICE_PREFIX.sub("", op["name"]),
                    (op["flops"] / op["bytes"], op["flops"] / op["time_s"] / scale),
                    xytext=(dx, dy), textcoords="offset points", ha=ha, fontsize="x-small",
                    zorder=4, arrowprops={"arrowstyle": "-", "linewidth": 0.5})
    return {op["phase"] for op in placed}


def roofline_figure(picked: list[tuple[str, dict[str, Any]]], title: str,
                    style: Style = SLIDES) -> Figure:
    """One panel per (scenario name, figure data) in `picked` (at most MAX_PANELS)."""
    picked = picked[:MAX_PANELS]
    fig = Figure(figsize=style.size(2, aspect=0.56 if style.name == "slides" else 0.5),
                 layout="constrained")
    axes = fig.subplots(1, len(picked), squeeze=False)[0]
    phases: set[str] = set()
    for ax, (name, data) in zip(axes, picked, strict=True):
        phases |= _panel(ax, name, data, style)
    handles = [Line2D([], [], marker="o", linestyle="none", color=style.phases[p],
                      markeredgecolor="black", label=PHASE_LABELS[p])
               for p in style.phases if p in phases]
    handles.append(Line2D([], [], color=FLOOR_COLOUR, linestyle=":",
                          label="launch floor (median op)"))
    fig.legend(handles=handles, loc="outside lower center", ncols=max(1, min(len(handles), 4)))
    fig.suptitle(f"{title}: every op of one step under its device's roofs")
    return fig

"""Stacked-bar figures: where each scenario's step goes, and which layers take the time.

`breakdown_figure`: one horizontal bar per scenario, top to bottom in experiment order,
split into the breakdown categories, the step time written at the end of each bar. Shares
rather than seconds, because step times across scenarios differ by orders of magnitude
(the comparison figure shows the absolute times). Out-of-memory scenarios say so in place.

`layers_figure`: per-layer busy time on the critical device (all its streams) of one
scenario, summed over phases (forward, backward data, backward weights, ...), the top N
layers by total, largest at the top, each labelled with its share of the step and its
bound: the category (compute, memory, transfer, communication) that holds most of the
layer's device time, or `launch` when the host takes longer to launch the layer's kernels
than the device takes to run them.
"""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from simulator.report.figure_style import (
    PHASE_LABELS,
    SLIDES,
    Style,
    fit_right,
    fit_titles,
    lay_out,
    legend,
    row_height_inches,
    setting_separators,
    wrap_label,
)
from simulator.report.units import format_time, time_unit
from simulator.results.metrics import CATEGORIES


def breakdown_figure(rows: list[dict[str, Any]], title: str, style: Style = SLIDES) -> Figure:
    names = [wrap_label(row["name"], style.label_chars) for row in rows]
    fig = Figure(figsize=style.size(base_in=max(style.height_in * 0.6, style.row_in * 5
                                                + row_height_inches(names, style)),
                                    slide_rows=len(rows)), layout="constrained")
    ax = fig.add_subplot()
    ys = list(range(len(rows)))
    used = [c for c in CATEGORIES if any(r["breakdown"] and r["breakdown"][c] > 0 for r in rows)]
    left = [0.0] * len(rows)
    for category in used:
        shares = [100 * r["breakdown"][category] / r["step_time_s"] if r["breakdown"] else 0.0
                  for r in rows]
        ax.barh(ys, shares, left=left, color=style.categories[category], label=category,
                height=0.7)
        left = [a + b for a, b in zip(left, shares, strict=True)]
    for y, row in zip(ys, rows, strict=True):
        if row["status"] == "ok":
            ax.text(101, y, format_time(row["step_time_s"]), va="center", fontsize="small")
        else:
            ax.text(1, y, _oom_text(row), va="center", fontsize="small", color="#D55E00")
    ax.set(yticks=ys, yticklabels=names,
           xlim=(0, 100), xlabel="share of step time (%)")
    ax.set_ylim(len(rows) - 0.5, -0.5)
    setting_separators(ax, rows)
    ax.tick_params(axis="y", length=0)
    ax.text(1.01, 1.01, "step time", transform=ax.transAxes, fontsize="small",
            color="#555555", va="bottom")
    fig.suptitle(title)
    ax.set_title("where the step time goes", fontweight="normal", fontsize="medium")
    legend(fig, ax.get_legend_handles_labels()[0], len(used), handlelength=1.2)
    return fig


def _oom_text(row: dict[str, Any]) -> str:
    need, have = row["memory_peak_bytes"] / 1e9, row["memory_capacity_bytes"] / 1e9
    return f"out of memory: needs {need:.1f} GB, has {have:.1f} GB"


def top_layers(layers: list[dict[str, Any]], top: int) -> list[tuple[str, dict[str, float]]]:
    """[(layer, {phase: seconds})] for the `top` busy layers by total time, largest first."""
    by_layer: dict[str, dict[str, float]] = {}
    for row in layers:
        phases = by_layer.setdefault(row["layer"], {})
        phases[row["phase"]] = phases.get(row["phase"], 0.0) + row["time_s"]
    busy = [(name, phases) for name, phases in by_layer.items() if sum(phases.values()) > 0]
    ranked = sorted(busy, key=lambda kv: (-sum(kv[1].values()), kv[0]))
    return ranked[:top]


def layer_bounds(data: dict[str, Any]) -> dict[str, str]:
    """{layer: what bounds it} on the critical device (see the module docstring)."""
    device, layers, cats = data["critical_device"], data["layers"], data["categories"]
    device_s: dict[str, dict[str, float]] = {}
    for dev, _, _, duration, cat, layer in data["spans"]:
        if dev == device:
            by = device_s.setdefault(layers[layer], {})
            by[cats[cat]] = by.get(cats[cat], 0.0) + duration
    launch_s: dict[str, float] = {}
    for dev, start, end, layer in data["launches"]:
        if dev == device:
            launch_s[layers[layer]] = launch_s.get(layers[layer], 0.0) + end - start
    bounds = {}
    for layer, by in device_s.items():
        busiest = max(sorted(by), key=lambda c: by[c])
        bounds[layer] = "launch" if launch_s.get(layer, 0.0) > sum(by.values()) else busiest
    return bounds


LABELS_NOTE = {False: "; labels: share of the step time, bound",
               True: "\nlabels: share of the step time, bound"}  # one column: a line


def layers_figure(row: dict[str, Any], top: int, data: dict[str, Any] | None = None,
                  style: Style = SLIDES) -> Figure:
    ranked = top_layers(row["layers"] or [], top)
    bounds = layer_bounds(data) if data else {}
    fig = Figure(figsize=style.size(rows=len(ranked)), layout="constrained")
    ax = fig.add_subplot()
    longest = max((sum(p.values()) for _, p in ranked), default=0.0)
    scale, unit = time_unit(longest)
    phases = [p for p in style.phases if any(p in ph for _, ph in ranked)]
    ys = list(range(len(ranked)))
    left = [0.0] * len(ranked)
    for phase in phases:
        widths = [ph.get(phase, 0.0) / scale for _, ph in ranked]
        ax.barh(ys, widths, left=left, height=0.7, color=style.phases[phase],
                label=PHASE_LABELS[phase])
        left = [a + b for a, b in zip(left, widths, strict=True)]
    step = row["step_time_s"]
    for y, (name, ph) in zip(ys, ranked, strict=True):
        bound = f", {bounds[name]}-bound" if name in bounds else ""
        ax.text(sum(ph.values()) / scale, y, f" {100 * sum(ph.values()) / step:.1f}%{bound}",
                va="center", fontsize="small")
    ax.set_yticks(ys, [name for name, _ in ranked])
    ax.invert_yaxis()
    ax.set_xlim(0, longest / scale * 1.05)
    ax.set_xlabel(f"busy time per step ({unit}){LABELS_NOTE[style.narrow]}")
    ax.set_title(f"{row['name']}: top {len(ranked)} layers by time")
    ax.tick_params(axis="y", length=0)
    ax.grid(True, axis="x", alpha=0.3)
    legend(fig, ax.get_legend_handles_labels()[0], 4, handlelength=1.2)
    fit_titles(fig)
    fit_right(ax, list(ax.texts), lay_out(fig))  # every layer's label inside the axes
    return fig

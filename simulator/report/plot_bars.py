"""Stacked-bar figures: where each scenario's step goes, and which layers take the time.

`breakdown_figure`: one horizontal bar per scenario, top to bottom in experiment order,
split into the breakdown categories, the step time written at the end of each bar. Shares
rather than seconds, because step times across scenarios differ by orders of magnitude
(the comparison figure shows the absolute times). Out-of-memory scenarios say so in place.

`layers_figure`: per-layer busy time on the critical device (all its streams) of one
scenario, summed over phases (forward, backward data, backward weights, ...), the top N
layers by total, largest at the top, each labelled with its share of the step.
"""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from simulator.report.figure_style import (
    CATEGORY_COLOURS,
    PHASE_COLOURS,
    PHASE_LABELS,
    SLIDE_INCHES,
    format_time,
    row_height_inches,
    setting_separators,
    time_unit,
)
from simulator.results.metrics import CATEGORIES


def breakdown_figure(rows: list[dict[str, Any]], title: str) -> Figure:
    height = max(4.5, 2.4 + row_height_inches(len(rows)))
    fig = Figure(figsize=(SLIDE_INCHES[0], height), layout="constrained")
    ax = fig.add_subplot()
    names = [row["name"] for row in rows]
    ys = list(range(len(rows)))
    used = [c for c in CATEGORIES if any(r["breakdown"] and r["breakdown"][c] > 0 for r in rows)]
    left = [0.0] * len(rows)
    for category in used:
        shares = [100 * r["breakdown"][category] / r["step_time_s"] if r["breakdown"] else 0.0
                  for r in rows]
        ax.barh(ys, shares, left=left, color=CATEGORY_COLOURS[category], label=category,
                height=0.7)
        left = [a + b for a, b in zip(left, shares, strict=True)]
    for y, row in zip(ys, rows, strict=True):
        if row["status"] == "ok":
            ax.text(101, y, format_time(row["step_time_s"]), va="center", fontsize=13)
        else:
            ax.text(1, y, _oom_text(row), va="center", fontsize=13, color="#D55E00")
    ax.set(yticks=ys, yticklabels=names, xlim=(0, 100), xlabel="share of step time (%)")
    ax.set_ylim(len(rows) - 0.5, -0.5)
    setting_separators(ax, rows)
    ax.tick_params(axis="y", length=0)
    ax.text(1.01, 1.01, "step time", transform=ax.transAxes, fontsize=13, color="#555555",
            va="bottom")
    fig.suptitle(title, fontsize=20, fontweight="bold")
    ax.set_title("where the step time goes", fontsize=17, fontweight="normal", pad=14)
    fig.legend(loc="outside lower center", ncols=len(used), handlelength=1.2)
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


def layers_figure(row: dict[str, Any], top: int) -> Figure:
    ranked = top_layers(row["layers"] or [], top)
    fig = Figure(figsize=SLIDE_INCHES, layout="constrained")
    ax = fig.add_subplot()
    longest = max((sum(p.values()) for _, p in ranked), default=0.0)
    scale, unit = time_unit(longest)
    phases = [p for p in PHASE_COLOURS if any(p in ph for _, ph in ranked)]
    ys = list(range(len(ranked)))
    left = [0.0] * len(ranked)
    for phase in phases:
        widths = [ph.get(phase, 0.0) / scale for _, ph in ranked]
        ax.barh(ys, widths, left=left, height=0.7, color=PHASE_COLOURS[phase],
                label=PHASE_LABELS[phase])
        left = [a + b for a, b in zip(left, widths, strict=True)]
    step = row["step_time_s"]
    for y, (_, ph) in zip(ys, ranked, strict=True):
        ax.text(sum(ph.values()) / scale, y, f" {100 * sum(ph.values()) / step:.1f}%",
                va="center", fontsize=13)
    ax.set_yticks(ys, [name for name, _ in ranked])
    ax.invert_yaxis()
    ax.set_xlim(0, longest / scale * 1.15)
    ax.set_xlabel(f"busy time per step ({unit}); labels: share of the step time")
    ax.set_title(f"{row['name']}: top {len(ranked)} layers by time")
    ax.tick_params(axis="y", length=0)
    ax.grid(True, axis="x", alpha=0.3)
    fig.legend(loc="outside lower center", ncols=len(phases), handlelength=1.2)
    return fig

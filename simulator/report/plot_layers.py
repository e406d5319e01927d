"""Figure: the layers that take the most time in one scenario, split by phase.

Per-layer busy time on the critical device (all its streams), summed over phases (forward,
backward data, backward weights, ...), top N layers by total, largest at the top, each
bar labelled with its share of the step. Where a whole network's time goes, at a glance.
"""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from simulator.report.figure_style import PHASE_COLOURS, PHASE_LABELS, SLIDE_INCHES, time_unit


def top_layers(layers: list[dict[str, Any]], top: int) -> list[tuple[str, dict[str, float]]]:
    """[(layer, {phase: seconds})] for the `top` layers by total time, largest first."""
    by_layer: dict[str, dict[str, float]] = {}
    for row in layers:
        phases = by_layer.setdefault(row["layer"], {})
        phases[row["phase"]] = phases.get(row["phase"], 0.0) + row["time_s"]
    ranked = sorted(by_layer.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
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
        left = [a + b for a, b in zip(left, widths)]
    step = row["step_time_s"]
    for y, (_, ph) in zip(ys, ranked):
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

"""Figure: where each scenario's step time goes, as shares of the step (stacked bars).

One horizontal bar per scenario, top to bottom in experiment order, split into the
breakdown categories; the step time is written at the end of each bar. Shares rather
than seconds, because step times across scenarios differ by orders of magnitude (the
comparison figure shows the absolute times). Out-of-memory scenarios say so in place.
"""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from simulator.report.figure_style import (CATEGORY_COLOURS, SLIDE_INCHES, format_time,
                                           row_height_inches, setting_separators)
from simulator.results import CATEGORIES


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
        left = [a + b for a, b in zip(left, shares)]
    for y, row in zip(ys, rows):
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
    fig.legend(loc="outside lower center", ncols=len(used), handlelength=1.2)
    return fig


def _oom_text(row: dict[str, Any]) -> str:
    need, have = row["memory_peak_bytes"] / 1e9, row["memory_capacity_bytes"] / 1e9
    return f"out of memory: needs {need:.1f} GB, has {have:.1f} GB"

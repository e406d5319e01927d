"""Figure: the scenarios side by side: step time (latency) and samples per second
(throughput), plus the time to train when any scenario gives a dataset.

Bars are coloured by hardware so the same device reads the same across panels; each bar
carries its value; an axis is logarithmic when its values span more than a factor of 20
(else linear from zero, so small differences stay visible); published numbers, where a
scenario gives them under the same name (`step_time_s`, `samples_per_s`,
`time_to_train_s`), are black diamonds beside the bars.
A thin rule separates runs of scenarios with different workload settings.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from simulator.report.figure_style import (
    SLIDE_INCHES,
    format_count,
    format_time,
    hardware_colours,
    row_height_inches,
    setting_separators,
)

Panel = tuple[str, str, str, Callable[[float], str]]
PANELS: tuple[Panel, ...] = (
    ("step_time_s", "step time ↓", "seconds", format_time),
    ("samples_per_s", "throughput ↑", "samples per second", format_count),
    ("time_to_train_s", "time to train ↓", "seconds", format_time))
LOG_SCALE_RATIO = 20  # values spanning more than this get a log axis


def _published(rows: list[dict[str, Any]], key: str) -> dict[int, float]:
    found = {}
    for y, row in enumerate(rows):
        value = (row.get("published") or {}).get(key)
        if isinstance(value, (int, float)):
            found[y] = float(value)
    return found


def _scale(ax: Axes, present: list[float]) -> None:
    """Log axis with room for labels when values span decades, else linear from zero."""
    lo, hi = min(present), max(present)
    if hi / lo > LOG_SCALE_RATIO:
        ax.set_xscale("log")
        ax.set_xlim(10 ** math.floor(math.log10(lo) - 0.3),
                    10 ** math.ceil(math.log10(hi) + 0.8))
    else:
        ax.set_xlim(0, hi * 1.35)


def _label(row: dict[str, Any], key: str, value: float | None,
           fmt: Callable[[float], str]) -> str:
    if key == "time_to_train_s" and not row.get("dataset_size"):
        return ""  # no dataset given: nothing to show, whether it fits or not
    if row["status"] != "ok":
        return "out of memory"
    return fmt(value) if value else ""


def _panel(ax: Axes, rows: list[dict[str, Any]], key: str, colours: dict[str, str],
           fmt: Callable[[float], str]) -> bool:
    ys = list(range(len(rows)))
    values = [row.get(key) for row in rows]
    published = _published(rows, key)
    _scale(ax, [v for v in values if v] + list(published.values()))
    ax.barh(ys, [v or 0.0 for v in values], height=0.7,
            color=[colours[row["hardware"]] for row in rows])
    for y, given in published.items():
        ax.plot([given], [y], marker="D", color="black", markersize=9, linestyle="none")
    for y, (row, value) in enumerate(zip(rows, values, strict=True)):
        end = max(value or float(ax.get_xlim()[0]), published.get(y, 0.0))
        ax.annotate(_label(row, key, value, fmt), (end, y), xytext=(7, 0),
                    textcoords="offset points", va="center", fontsize=12,
                    color="black" if row["status"] == "ok" else "#D55E00")
    ax.grid(True, axis="x", which="major", alpha=0.3)
    return bool(published)


def comparison_figure(rows: list[dict[str, Any]], title: str) -> Figure:
    panels = [p for p in PANELS if any(row.get(p[0]) for row in rows)]
    height = max(SLIDE_INCHES[1], 2.6 + row_height_inches(len(rows)))
    fig = Figure(figsize=(SLIDE_INCHES[0] + 1.5 * (len(panels) - 2), height),
                 layout="constrained")
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    colours = hardware_colours([row["hardware"] for row in rows])
    any_published = False
    for ax, (key, name, unit, fmt) in zip(axes, panels, strict=True):
        any_published |= _panel(ax, rows, key, colours, fmt)
        setting_separators(ax, rows)
        ax.set_title(name, fontsize=18, pad=12)
        log = ax.get_xscale() == "log"
        ax.set_xlabel(f"{unit}{', log scale' if log else ''}", fontsize=14)
    axes[0].set_yticks(range(len(rows)), [row["name"] for row in rows], fontsize=13)
    axes[0].set_ylim(len(rows) - 0.5, -0.5)
    for ax in axes:
        ax.tick_params(axis="y", length=0)
    handles: list[Artist] = [Patch(color=c, label=name) for name, c in colours.items()]
    if any_published:
        handles.append(Line2D([], [], marker="D", color="black", linestyle="none",
                              label="published"))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6))
    fig.suptitle(title, fontsize=20, fontweight="bold")
    return fig

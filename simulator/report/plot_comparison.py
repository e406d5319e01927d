"""Figure: the scenarios side by side: step time (latency) and samples per second
(throughput), plus the time to train when any scenario gives a dataset.

Bars are coloured by hardware so the same device reads the same across panels; each bar
carries its value, and the axis of a time is in the unit of its largest value (ms, s, min,
h, days), the one its labels use; an axis is logarithmic when its values span more than a
factor of 20 (else linear from zero, so small differences stay visible). A prediction's
10-90% interval (`step_time_p10_s`, `step_time_p90_s`), where it has one, is an error bar
on every panel (throughput and time to train follow the step time). Published numbers,
where a scenario gives them under the same name (`step_time_s`, `samples_per_s`,
`time_to_train_s`), are black diamonds, and the bar's label says both, on two lines: "5.1 h",
"(published 4.6 h)". A thin rule separates runs of scenarios with different workload settings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, NullLocator

from simulator.report.figure_style import (
    SLIDES,
    Style,
    fit_right,
    fit_titles,
    hardware_colours,
    lay_out,
    legend,
    row_height_inches,
    setting_separators,
    wrap_label,
)
from simulator.report.units import (
    format_count,
    format_si,
    format_time,
    human_time_ticks,
    log_ticks,
    time_axis_unit,
)

PANELS = (("step_time_s", "step time ↓", True), ("samples_per_s", "throughput ↑", False),
          ("time_to_train_s", "time to train ↓", True))
LOG_SCALE_RATIO = 20  # values spanning more than this get a log axis
LOG_MARGIN = 2.0  # a log axis runs from the smallest value / this to the largest x this
STACKED_PANEL_IN, STACKED_FRAME_IN = 0.55, 0.9  # one column: a panel's title and axis; the
                                                # figure's title and legend


def _published(rows: list[dict[str, Any]], key: str) -> dict[int, float]:
    found = {}
    for y, row in enumerate(rows):
        value = (row.get("published") or {}).get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            found[y] = float(value)
    return found


def interval(row: dict[str, Any], key: str) -> tuple[float, float] | None:
    """(low, high) of `key` from the step time's 10-90% interval, or None."""
    step, lo, hi, value = (row.get(k) for k in ("step_time_s", "step_time_p10_s",
                                                "step_time_p90_s", key))
    if not (step and lo and hi and value):
        return None
    if key == "samples_per_s":  # throughput is inverse to the step time
        return value * step / hi, value * step / lo
    return value * lo / step, value * hi / step


def _scale(ax: Axes, present: list[float], is_time: bool) -> tuple[float, str]:
    """Log axis fitted to the values when they span decades (`LOG_MARGIN` either side; the
    labels' room is added once they are placed, `fit_right`), else linear from zero.
    Returns (scale, axis label): seconds on a log axis of times (ticked at 1 min, 1 h,
    1 day ... inside it), the unit of the largest time on a linear one."""
    lo, hi = min(present), max(present)
    if hi / lo > LOG_SCALE_RATIO:
        ax.set_xscale("log")
        ax.set_xlim(lo / LOG_MARGIN, hi * LOG_MARGIN)
        _log_ticks(ax, ax.get_xlim(), is_time)
        return 1.0, "log scale" if is_time else "samples per second, log scale"
    scale, unit = time_axis_unit(present) if is_time else (1.0, "samples per second")
    ax.set_xlim(0, hi / scale * 1.15)
    return scale, unit


def _log_ticks(ax: Axes, fitted: tuple[float, float], is_time: bool) -> None:
    """Ticks of a log axis inside `fitted` (the values' range, not the room the labels
    take beyond it): seconds at times people count in (1 ms, 1 min, 1 h), counts at powers
    of ten written 10 k, 1 M."""
    if is_time:  # as far apart as on the whole axis, where two of them fit the values
        whole = [tick for tick in human_time_ticks(*ax.get_xlim()) if tick[0] <= fitted[1]]
        ticks = whole if len(whole) >= 2 else human_time_ticks(*fitted)
    else:
        ticks = [(x, format_si(x, "").strip()) for x in log_ticks(*fitted)]
    ax.set_xticks([t for t, _ in ticks], [label for _, label in ticks])
    ax.xaxis.set_minor_locator(NullLocator())


def _label(row: dict[str, Any], key: str, value: float | None, published: float | None,
           fmt: Callable[[float], str]) -> str:
    if key == "time_to_train_s" and not row.get("dataset_size"):
        return ""  # no dataset given: nothing to show, whether it fits or not
    if row["status"] != "ok":
        return "out of memory"
    text = fmt(value) if value else ""
    return f"{text}\n(published {fmt(published)})" if published is not None else text


def _panel(ax: Axes, rows: list[dict[str, Any]], key: str, is_time: bool,
           colours: dict[str, str], style: Style) -> str:
    """Draw one panel; returns its axis unit."""
    ys = list(range(len(rows)))
    values = [row.get(key) for row in rows]
    published = _published(rows, key)
    fmt = format_time if is_time else format_count
    intervals = {y: interval(row, key) for y, row in enumerate(rows)}
    spread = [x for pair in intervals.values() if pair for x in pair]
    scale, unit = _scale(ax, [v for v in values if v] + list(published.values()) + spread,
                         is_time)
    ax.barh(ys, [(v or 0.0) / scale for v in values], height=0.7,
            color=[colours[row["hardware"]] for row in rows])
    for y, pair in intervals.items():
        if pair:
            ax.plot([pair[0] / scale, pair[1] / scale], [y, y], color="black",
                    linewidth=style.linewidth, solid_capstyle="butt")
            ax.plot([pair[0] / scale, pair[1] / scale], [y, y], color="black",
                    marker="|", markersize=style.markersize, linestyle="none")
    for y, given in published.items():
        ax.plot([given / scale], [y], marker="D", color="black", markersize=style.markersize,
                linestyle="none")
    gap = 3 + 0.75 * style.markersize  # clear of a diamond (its half diagonal) at the end
    for y, (row, value) in enumerate(zip(rows, values, strict=True)):
        ends = [value or 0.0, published.get(y, 0.0), (intervals[y] or (0.0, 0.0))[1]]
        end = max(max(ends) / scale, float(ax.get_xlim()[0]))
        ax.annotate(_label(row, key, value, published.get(y), fmt), (end, y), xytext=(gap, 0),
                    textcoords="offset points", va="center", fontsize="small",
                    color="black" if row["status"] == "ok" else "#D55E00")
    if not is_time and ax.get_xscale() == "linear":  # 150 k, not 150000
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
        ax.xaxis.set_major_formatter(lambda x, _: format_si(x, "") if x else "0")
    ax.grid(True, axis="x", which="major", alpha=0.3)
    return unit


def comparison_figure(rows: list[dict[str, Any]], title: str, style: Style = SLIDES) -> Figure:
    panels = [p for p in PANELS if any(row.get(p[0]) for row in rows)]
    names = [wrap_label(row["name"], style.label_chars) for row in rows]
    bars_in = row_height_inches(names, style)
    size = style.size(base_in=max(style.height_in, style.row_in * 5 + bars_in),
                      slide_rows=len(rows))  # the page's or the slide's width, no wider
    if style.narrow:  # one column: the panels one above the other, each with the names
        size = (size[0], len(panels) * (STACKED_PANEL_IN + bars_in) + STACKED_FRAME_IN)
    fig = Figure(figsize=size, layout="constrained")
    axes = (fig.subplots(len(panels), 1, squeeze=False)[:, 0] if style.narrow
            else fig.subplots(1, len(panels), sharey=True, squeeze=False)[0])
    colours = hardware_colours([row["hardware"] for row in rows], style)
    for ax, (key, name, is_time) in zip(axes, panels, strict=True):
        unit = _panel(ax, rows, key, is_time, colours, style)
        setting_separators(ax, rows)
        ax.set_title(name, fontsize="large")
        ax.set_xlabel(f"{name.rstrip(' ↓↑')} ({unit})")  # "time to train (log scale)"
    for ax in axes[:len(axes) if style.narrow else 1]:
        ax.set_yticks(range(len(rows)), names)
        ax.set_ylim(len(rows) - 0.5, -0.5)
    for ax in axes:
        ax.tick_params(axis="y", length=0)
    handles: list[Artist] = [Patch(color=c, label=name) for name, c in colours.items()]
    if any(_published(rows, key) for key, _, _ in panels):
        handles.append(Line2D([], [], marker="D", color="black", linestyle="none",
                              label="published"))
    if any(interval(row, "step_time_s") for row in rows):
        handles.append(Line2D([], [], marker="|", color="black", label="10-90% interval"))
    legend(fig, handles, 4)
    fig.suptitle(title)
    fit_titles(fig)
    renderer = lay_out(fig)
    for ax, (_, _, is_time) in zip(axes, panels, strict=True):  # every bar's label inside
        fitted = ax.get_xlim()
        fit_right(ax, list(ax.texts), renderer)
        if ax.get_xscale() == "log":
            _log_ticks(ax, fitted, is_time)
    return fig

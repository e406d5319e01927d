"""Figures across scenarios: scaling curves, the cost/time Pareto front, and the simulated
numbers against the published ones.

`scaling_figure`: per series of scenarios that differ only in the device count, the speed-up
(`scaling_efficiency` x devices: throughput over one device's running one replica's batch)
and the efficiency against devices, log scales, with the ideal line (speed-up = devices,
efficiency 100%).
`pareto_figure`: hardware cost against time to train (or step time when fewer than two
scenarios give a dataset), one point per scenario, the Pareto-optimal ones (no other
scenario both cheaper and faster) joined by the front.
`validation_figure`: every published number a scenario cites, as the ratio simulated /
published on a log axis, with the line of perfect agreement and a band of a factor of two.
Each returns None when the rows hold nothing for it to show (`missing` says why).
"""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, LogLocator, NullLocator

from simulator.report.figure_style import (
    SLIDES,
    Style,
    fit_titles,
    hardware_colours,
    lay_out,
    legend,
    row_height_inches,
    wrap_label,
)
from simulator.report.label_layout import Placer, around
from simulator.report.published_table import LABELS
from simulator.report.units import format_count, time_axis_unit

SERIES_KEYS = ("model", "hardware", "strategy", "precision", "mode", "batch")


def _ok(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r.get("status") == "ok" and r.get("step_time_s")]


def scaling_series(rows: list[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """{series label: [(devices, efficiency)]} for series with a multi-device scenario."""
    series: dict[tuple[Any, ...], list[tuple[int, float]]] = {}
    for row in _ok(rows):
        eff = row.get("scaling_efficiency") if row["devices"] > 1 else 1.0
        if eff:
            series.setdefault(tuple(row.get(k) for k in SERIES_KEYS), []).append(
                (row["devices"], eff))
    return {f"{k[0]} on {k[1]} ({k[2]}, {k[3]}, batch {k[5]})": sorted(points)
            for k, points in series.items() if any(d > 1 for d, _ in points)}


def scaling_figure(rows: list[dict[str, Any]], title: str,
                   style: Style = SLIDES) -> Figure | None:
    series = scaling_series(rows)
    if not series:
        return None
    fig = Figure(figsize=style.size(), layout="constrained")
    speed, eff = fig.subplots(1, 2)
    colours = hardware_colours(list(series), style)
    most = max(d for points in series.values() for d, _ in points)
    for label, points in series.items():
        devices = [d for d, _ in points]
        speed.plot(devices, [d * e for d, e in points], marker="o", color=colours[label],
                   label=label, markersize=style.markersize * 0.7)
        eff.plot(devices, [100 * e for _, e in points], marker="o", color=colours[label],
                 markersize=style.markersize * 0.7)
    speed.plot([1, most], [1, most], color="#555555", linestyle="--", label="ideal")
    eff.axhline(100, color="#555555", linestyle="--")
    speed.set(xscale="log", yscale="log", xlabel="devices", ylabel="speed-up (×)",
              title="speed-up")
    eff.set(xscale="log", xlabel="devices", ylabel="scaling efficiency (%)",
            title="efficiency", ylim=(0, 110))
    counts = sorted({1, *(d for points in series.values() for d, _ in points)})
    for ax, axis in ((speed, speed.xaxis), (speed, speed.yaxis), (eff, eff.xaxis)):
        axis.set_major_locator(FixedLocator(_spread(counts, 4 if style.narrow else 8)))
        axis.set_minor_locator(NullLocator())
        axis.set_major_formatter(lambda x, _: format_count(x))
        ax.grid(True, which="major", alpha=0.3)
    legend(fig, speed.get_legend_handles_labels()[0], 2)
    fig.suptitle(title)
    return fig


def _spread(counts: list[int], most: int = 8) -> list[int]:
    """At most `most` of the sorted device counts, at least a factor of 1.8 apart."""
    picked = [counts[0]]
    for count in counts[1:]:
        if count >= 1.8 * picked[-1]:
            picked.append(count)
    step = -(-len(picked) // most)
    return picked[::step]


def pareto_front(points: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """The points no other point beats on both axes (lower is better), by cost."""
    front: list[tuple[float, float, str]] = []
    for point in sorted(points):
        if not front or point[1] < front[-1][1]:
            front.append(point)
    return front


def pareto_figure(rows: list[dict[str, Any]], title: str, style: Style = SLIDES) -> Figure | None:
    ok = [r for r in _ok(rows) if r.get("hardware_cost_usd")]
    trained = sum(1 for r in ok if r.get("time_to_train_s"))
    key = "time_to_train_s" if trained >= 2 else "step_time_s"
    points = [(r["hardware_cost_usd"], r[key], r["name"]) for r in ok if r.get(key)]
    if len(points) < 2:
        return None
    scale, unit = time_axis_unit([p[1] for p in points])
    fig = Figure(figsize=style.size(), layout="constrained")
    ax = fig.add_subplot()
    colours = hardware_colours([r["hardware"] for r in ok], style)
    hardware = {r["name"]: r["hardware"] for r in ok}
    for cost, time_s, name in points:
        ax.scatter(cost, time_s / scale, color=colours[hardware[name]], zorder=3,
                   s=style.markersize ** 2, edgecolors="black", linewidths=0.4)
    front = pareto_front(points)
    ax.step([p[0] for p in front], [p[1] / scale for p in front], where="post",
            color="#555555", linestyle="--", label="Pareto front")
    ax.set(xscale="log", yscale="log", xlabel="hardware cost (USD)",
           ylabel=f"{LABELS[key]} ({unit})", title=f"cost against {LABELS[key]}")
    ax.margins(0.15)
    if style.narrow:  # one column: at most 5 powers of ten, $1,000,000 is wide
        ax.xaxis.set_major_locator(LogLocator(numticks=5))
    ax.xaxis.set_major_formatter(lambda x, _: f"${format_count(x)}")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # 1, 2, 5, 10, 20 ...
    ax.yaxis.set_major_formatter(lambda y, _: format_count(y))
    ax.yaxis.set_minor_formatter(lambda y, _: "")
    ax.grid(True, which="major", alpha=0.3)
    legend(fig, ax.get_legend_handles_labels()[0], 1)
    fig.suptitle(title)
    fit_titles(fig)
    renderer = lay_out(fig)
    placer = Placer(ax, renderer, [])
    for cost, time_s, name in sorted(points, key=lambda p: p[1]):  # names beside the points
        placer.place(wrap_label(name, style.label_chars),
                     [((cost, time_s / scale), place) for place in around()], fontsize="x-small")
    return fig


def published_pairs(rows: list[dict[str, Any]]) -> list[tuple[str, str, float, float]]:
    """(scenario, quantity, published, simulated) for every number both sides have."""
    out = []
    for row in rows:
        for key, value in (row.get("published") or {}).items():
            simulated = row.get(key)
            if isinstance(value, (int, float)) and isinstance(simulated, (int, float)) \
                    and value > 0 and simulated > 0 and not isinstance(value, bool):
                out.append((row["name"], key, float(value), float(simulated)))
    return out


def validation_figure(rows: list[dict[str, Any]], title: str,
                      style: Style = SLIDES) -> Figure | None:
    """One row per published number: simulated / published on a log axis, 1x marked."""
    pairs = published_pairs(rows)
    if not pairs:
        return None
    names = [wrap_label(f"{name}: {LABELS.get(key, key)}", style.label_chars)
             for name, key, _, _ in pairs]
    fig = Figure(figsize=style.size(base_in=max(style.height_in, style.row_in * 5
                                                + row_height_inches(names, style)),
                                    slide_rows=len(pairs)), layout="constrained")
    ax = fig.add_subplot()
    colours = hardware_colours([p[1] for p in pairs], style)
    ratios = [simulated / published for _, _, published, simulated in pairs]
    for y, ((_, key, _, _), ratio) in enumerate(zip(pairs, ratios, strict=True)):
        ax.plot([1.0, ratio], [y, y], color="#888888", linewidth=style.linewidth, zorder=2)
        ax.scatter(ratio, y, color=colours[key], s=style.markersize ** 2, zorder=3,
                   edgecolors="black", linewidths=0.4)
        ax.annotate(f"{ratio:.2f}×", (ratio, y), xytext=(0, 7), textcoords="offset points",
                    ha="center", fontsize="x-small")
    span = max(2.5, *(max(r, 1 / r) * 1.6 for r in ratios))
    ax.axvspan(0.5, 2.0, color="#E8E8E8", zorder=0, label="within a factor of 2")
    ax.axvline(1.0, color="#333333", linewidth=style.linewidth, label="simulated = published")
    ax.set(xscale="log", xlim=(1 / span, span), xlabel="simulated / published (log scale)",
           title="simulated against published")
    ax.set_yticks(range(len(pairs)), names)
    ax.set_ylim(len(pairs) - 0.5, -0.7)
    ax.xaxis.set_major_formatter(lambda x, _: f"{x:.3g}×")
    ax.tick_params(axis="y", length=0)
    legend(fig, ax.get_legend_handles_labels()[0], 2)
    fig.suptitle(title)
    return fig


def missing(kind: str) -> str:
    """Why a figure of `kind` has nothing to show."""
    return {"scaling": "no scenario runs on more than one device with a scaling efficiency",
            "pareto": "fewer than two scenarios with a hardware cost and a time",
            "validation": "no scenario cites a published number beside a simulated one",
            "roofline": "no scenario that ran has ops with FLOPs and bytes",
            }.get(kind, "no scenario ran (every one is out of memory, or the folder holds "
                        "no trace data for it)")


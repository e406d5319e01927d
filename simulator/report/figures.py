"""The figures of a run, as PNG and/or SVG: breakdown, comparison, and per selected
scenario a timeline and a per-layer chart.

Files: `breakdown.*` (shares of step time per scenario), `comparison.*` (step time,
throughput and time to train, log scales), `timeline-<scenario>.*` and `layers-<scenario>.*`
for the scenarios named in `outputs.timeline` (default: the first that ran). Matplotlib's
object API (no pyplot, no global figure state) with the Agg renderer.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, cast

import matplotlib
from matplotlib.figure import Figure

from simulator.engine.trace import Trace
from simulator.report.atomic import write_bytes_atomic
from simulator.report.chrome_trace import LaunchCost
from simulator.report.figure_style import RC, figure_bytes, slug
from simulator.report.plot_bars import breakdown_figure, layers_figure
from simulator.report.plot_comparison import comparison_figure
from simulator.report.plot_timeline import timeline_figure

FigureMaker = Callable[[], Figure]
Drawable = tuple[dict[str, Any], Trace | None, LaunchCost]  # row, trace, launch cost


def selected(drawables: list[Drawable], names: list[str] | None) -> list[Drawable]:
    """The scenarios to draw in detail: those named, else the first that ran."""
    ran = [d for d in drawables if d[1] is not None]
    if names is None:
        return ran[:1]
    return [d for d in ran if d[0]["name"] in names]


def _unique_slugs(names: list[str]) -> list[str]:
    """File stems from scenario names, each unique: a stem taken already (`a` and `A`) gets
    the scenario's number, and further numbers until it is free (`a`, `a-3`, `A`: a, a-3,
    a-4), so no figure overwrites another."""
    slugs: list[str] = []
    taken: set[str] = set()
    for i, name in enumerate(names):
        base = s = slug(name)
        n = i + 1
        while s in taken:
            s, n = f"{base}-{n}", n + 1
        taken.add(s)
        slugs.append(s)
    return slugs


def figure_makers(drawables: list[Drawable], title: str, timeline: list[str] | None,
                  top_layers: int) -> list[tuple[str, FigureMaker]]:
    rows = [row for row, _, _ in drawables]
    if not any(row.get("step_time_s") for row in rows):
        return []  # every scenario out of memory: nothing to draw (regression test)
    makers: list[tuple[str, FigureMaker]] = [
        ("breakdown", partial(breakdown_figure, rows, title)),
        ("comparison", partial(comparison_figure, rows, title))]
    picked = selected(drawables, timeline)
    for stem, (row, trace, cost) in zip(_unique_slugs([d[0]["name"] for d in picked]), picked,
                                     strict=True):
        assert trace is not None
        makers.append((f"timeline-{stem}", partial(timeline_figure, row["name"], trace, cost)))
        makers.append((f"layers-{stem}", partial(layers_figure, row, top_layers)))
    return makers


def write_figures(folder: Path, drawables: list[Drawable], title: str, formats: list[str],
                  timeline: list[str] | None, top_layers: int) -> list[Path]:
    """Draw every figure and write it in each format; returns the files written."""
    written: list[Path] = []
    with matplotlib.rc_context(cast(Any, RC)):
        for stem, make in figure_makers(drawables, title, timeline, top_layers):
            fig = make()
            for fmt in formats:
                path = folder / f"{stem}.{fmt}"
                write_bytes_atomic(path, figure_bytes(fig, fmt))
                written.append(path)
    return written

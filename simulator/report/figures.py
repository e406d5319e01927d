"""The figures of a results folder, drawn from results.json's rows and figure-data.json
(so `run` and `plot` draw the same figures from the same numbers), as PNG, SVG and/or PDF.

Kinds and files (`KINDS`): `breakdown` (shares of step time per scenario), `compare`
-> `comparison.*` (step time, throughput and time to train, with intervals and published
numbers), `timeline-<scenario>.*` and `layers-<scenario>.*` for the scenarios named in
`outputs.timeline` (default: the first that ran), `roofline` (those scenarios and the first
of every other device, CPU and GPU side by side; `roofline-by-layer` coloured by layer
kind), and, where the rows hold something for
them, `scaling`, `pareto` and `validation` (published against simulated). In the paper
style the files are named `STEM-paper.*`. Matplotlib's object API (no pyplot, no global
figure state) with the Agg renderer.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from matplotlib.figure import Figure

from simulator.report.figure_style import SLIDES, Style, figure_bytes, fit_titles, slug, styled
from simulator.report.plot_bars import breakdown_figure, layers_figure
from simulator.report.plot_comparison import comparison_figure
from simulator.report.plot_roofline import MAX_PANELS, roofline_figure
from simulator.report.plot_timeline import timeline_figure
from simulator.report.plot_tradeoffs import pareto_figure, scaling_figure, validation_figure

KINDS = ("timeline", "breakdown", "roofline", "scaling", "pareto", "compare", "layers",
         "validation")
STEMS = {"compare": "comparison"}
FigureMaker = Callable[[], Figure | None]
Rendered = dict[str, dict[str, bytes]]  # stem -> {format: bytes}


def selected(rows: list[dict[str, Any]], data: list[dict[str, Any]],
             names: list[str] | None) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(row, figure data) of the scenarios to draw in detail: those named, else the first
    that ran."""
    by_name = {d["name"]: d for d in data}
    ran = [(row, by_name[row["name"]]) for row in rows if row["name"] in by_name]
    return ran[:1] if names is None else [pair for pair in ran if pair[0]["name"] in names]


def roofline_picks(rows: list[dict[str, Any]], data: list[dict[str, Any]],
                   names: list[str] | None) -> list[tuple[str, dict[str, Any]]]:
    """The selected scenarios, then the first scenario of each other device, one per device."""
    picks: dict[str, tuple[str, dict[str, Any]]] = {}
    for row, entry in selected(rows, data, names) + selected(rows, data, [r["name"] for r in rows]):
        if entry["ops"]:
            picks.setdefault(entry["device"]["name"], (row["name"], entry))
    return list(picks.values())[:MAX_PANELS]


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


def figure_makers(rows: list[dict[str, Any]], data: list[dict[str, Any]], title: str,
                  timeline: list[str] | None, top_layers: int, style: Style = SLIDES,
                  kinds: tuple[str, ...] = KINDS,
                  color_by: str = "phase") -> list[tuple[str, str, FigureMaker]]:
    """[(kind, stem, maker)] of every figure of `kinds` that has something to show; the
    roofline coloured by `color_by` (phase: `roofline`, layer: `roofline-by-layer`)."""
    if not any(row.get("step_time_s") for row in rows):
        return []  # every scenario out of memory: nothing to draw (regression test)
    makers: list[tuple[str, str, FigureMaker]] = [
        ("breakdown", "breakdown", partial(breakdown_figure, rows, title, style)),
        ("compare", "comparison", partial(comparison_figure, rows, title, style))]
    picked = selected(rows, data, timeline)
    for stem, (row, entry) in zip(_unique_slugs([r["name"] for r, _ in picked]), picked,
                                  strict=True):
        makers.append(("timeline", f"timeline-{stem}",
                       partial(timeline_figure, row["name"], entry, style)))
        makers.append(("layers", f"layers-{stem}",
                       partial(layers_figure, row, top_layers, entry, style)))
    roof = roofline_picks(rows, data, timeline)
    if roof:
        stem = "roofline" if color_by == "phase" else f"roofline-by-{color_by}"
        makers.append(("roofline", stem, partial(roofline_figure, roof, title, style, color_by)))
    makers += [("scaling", "scaling", partial(scaling_figure, rows, title, style)),
               ("pareto", "pareto", partial(pareto_figure, rows, title, style)),
               ("validation", "validation", partial(validation_figure, rows, title, style))]
    return [m for m in makers if m[0] in kinds]


def file_stem(stem: str, style: Style) -> str:
    return stem + style.suffix


def render(makers: list[tuple[str, str, FigureMaker]], formats: list[str],
           style: Style = SLIDES) -> Rendered:
    """Draw each figure (None: nothing to show, left out) and save it in each format."""
    out: Rendered = {}
    with styled(style):
        for _, stem, make in makers:
            fig = make()
            if fig is None:
                continue
            fit_titles(fig)
            out[file_stem(stem, style)] = {fmt: figure_bytes(fig, fmt, style) for fmt in formats}
    return out

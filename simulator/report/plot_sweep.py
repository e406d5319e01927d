"""Figures of a sweep: Pareto fronts, scaling curves and, where the sweep names one, a chart of
one number against one swept field.

- `pareto-<x>-vs-<y>.*`: every point that ran (grey: breaks a constraint; coloured by
  hardware: meets them), the front drawn as a step line, the best point under the
  constraints ringed; log axes.
- `scaling.*`: throughput against devices (log-log, with the ideal line from each curve's
  smallest point) and scaling efficiency against devices, one curve per setting of the other
  swept fields.
- `sweep.*` (with `sweep.figure`): `y` against the swept field `x`, one line per value of
  `series`, one panel per value of `facet` (times: dotted lines at an hour and a day).
Matplotlib's object API with the Agg renderer; equal inputs give equal bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from simulator.report.atomic import write_bytes_atomic
from simulator.report.figure_style import (
    OKABE_ITO,
    SLIDES,
    figure_bytes,
    fit_titles,
    hardware_colours,
    slug,
    styled,
)

SLIDE_INCHES = SLIDES.size()

LABELS = {"time_to_train_s": "time to train (s)", "step_time_s": "step time (s)",
          "hardware_cost_usd": "hardware cost (USD)", "cloud_cost_usd": "cloud cost (USD)",
          "energy_j": "energy (J)", "samples_per_s": "samples per second",
          "samples_per_s_per_usd": "samples/s per USD of hardware",
          # swept fields a chart's x axis shows most
          "workload.dataset_size": "dataset size (samples)", "workload.batch": "batch per device",
          "hardware.count": "devices", "workload.epochs": "epochs"}


def _value(row: dict[str, Any], path: str) -> Any:
    return next((v for p, v in row["values"] if p == path), None)


def _shown(value: Any) -> str:
    return str(value.get("name") or value.get("base")) if isinstance(value, dict) else str(value)


def pareto_figure(rows: list[dict[str, Any]], front: dict[str, Any], best_index: int | None,
                  title: str) -> Figure:
    x, y = front["x"], front["y"]
    ran = [r for r in rows if r["status"] == "ok" and r.get(x) and r.get(y)]
    colours = hardware_colours([str(r["hardware"]) for r in ran])
    fig = Figure(figsize=SLIDE_INCHES, layout="constrained")
    ax = fig.add_subplot()
    for name, colour in colours.items():
        ok = [r for r in ran if r["hardware"] == name and r["feasible"]]
        ax.scatter([r[x] for r in ok], [r[y] for r in ok], color=colour, s=60, label=name)
    off = [r for r in ran if not r["feasible"]]
    if off:
        ax.scatter([r[x] for r in off], [r[y] for r in off], color="#BBBBBB", s=40,
                   label="breaks a constraint")
    points = front["points"]
    ax.step([p[x] for p in points], [p[y] for p in points], where="post", color="black",
            linewidth=1.5, label="Pareto front")
    chosen = [r for r in ran if r["index"] == best_index]
    if chosen:
        ax.scatter([chosen[0][x]], [chosen[0][y]], s=400, facecolors="none", edgecolors="black",
                   linewidths=2, label=f"best: {chosen[0]['label']}"[:60])
    ax.set(xscale="log", yscale="log", xlabel=LABELS.get(x, x), ylabel=LABELS.get(y, y),
           title=f"{title}: {LABELS.get(y, y).split(' (')[0]} against time")
    ax.legend(fontsize=11, loc="best")
    ax.grid(True, which="both", alpha=0.3)
    return fig


def scaling_figure(curves: list[dict[str, Any]], title: str) -> Figure:
    fig = Figure(figsize=SLIDE_INCHES, layout="constrained")
    rate, eff = fig.subplots(1, 2)
    for i, curve in enumerate(curves):
        colour = OKABE_ITO[i % len(OKABE_ITO)]
        pts = curve["points"]
        devices = [p["devices"] for p in pts]
        rate.plot(devices, [p["samples_per_s"] for p in pts], "o-", color=colour,
                  label=curve["series"][:50])
        rate.plot(devices, [pts[0]["samples_per_s"] * d / devices[0] for d in devices], ":",
                  color=colour, alpha=0.6)
        eff.plot(devices, [p["scaling_efficiency"] or 1.0 for p in pts], "o-", color=colour)
    rate.set(xscale="log", yscale="log", xlabel="devices", ylabel="samples per second",
             title="throughput (dotted: linear)")
    eff.set(xscale="log", xlabel="devices", ylabel="scaling efficiency", ylim=(0, 1.05),
            title="scaling efficiency")
    rate.legend(fontsize=10)
    fig.suptitle(title)
    return fig


def lines_figure(rows: list[dict[str, Any]], spec: dict[str, str | None], title: str) -> Figure:
    """`y` against the swept `x`, a line per `series` value, a panel per `facet` value."""
    x, y, series, facet = spec["x"], spec["y"], spec.get("series"), spec.get("facet")
    assert x is not None and y is not None
    facets = list(dict.fromkeys(_shown(_value(r, facet)) for r in rows)) if facet else [""]
    fig = Figure(figsize=SLIDE_INCHES, layout="constrained")
    axes = fig.subplots(1, len(facets), squeeze=False, sharey=True)[0]
    names = list(dict.fromkeys(_shown(_value(r, series)) for r in rows)) if series else [y]
    colours = {n: OKABE_ITO[i % len(OKABE_ITO)] for i, n in enumerate(names)}
    for ax, panel in zip(axes, facets, strict=True):
        for name in names:
            pts = [r for r in rows if r["status"] == "ok" and r.get(y)
                   and (not facet or _shown(_value(r, facet)) == panel)
                   and (not series or _shown(_value(r, series)) == name)]
            ax.plot([_value(r, x) for r in pts], [r[y] for r in pts], "o-", label=name,
                    color=colours[name])
        ax.set(xscale="log", yscale="log", xlabel=LABELS.get(x, x), title=panel)
        ax.grid(True, which="both", alpha=0.3)
        if y.endswith("_s"):  # the times users plan by
            for seconds, words in ((3600.0, "an hour"), (86400.0, "a day")):
                ax.axhline(seconds, color="#777777", linestyle=":", linewidth=1)
                ax.annotate(words, (0.02, seconds), xycoords=("axes fraction", "data"),
                            fontsize=10, color="#555555", va="bottom")
    axes[0].set_ylabel(LABELS.get(y, y))
    axes[0].legend(fontsize=11)
    fig.suptitle(title)
    return fig


Maker = tuple[str, Callable[[], Figure]]
SWEEP_KINDS = ("pareto", "scaling", "sweep")  # `plot --kind` of a sweep folder


def sweep_kind(stem: str) -> str:
    """The kind of a sweep figure's stem: `pareto-time-vs-cost` is a `pareto`."""
    return stem.split("-", 1)[0]


def sweep_figure_makers(rows: list[dict[str, Any]], summary: dict[str, Any], title: str,
                        lines: dict[str, str | None] | None) -> list[Maker]:
    makers: list[Maker] = []
    best_time = summary["best"].get(next(iter(summary["best"]), ""), None)
    for name, front in summary["pareto"].items():
        winner = summary["best"].get(front["y"]) or best_time
        makers.append((f"pareto-{slug(name)}", partial(
            pareto_figure, rows, front, winner["index"] if winner else None, title)))
    if summary["scaling"]:
        makers.append(("scaling", partial(scaling_figure, summary["scaling"], title)))
    if lines is not None:
        makers.append(("sweep", partial(lines_figure, rows, lines, title)))
    return makers


def render_sweep_figures(rows: list[dict[str, Any]], summary: dict[str, Any], title: str,
                         formats: list[str],
                         lines: dict[str, str | None] | None) -> dict[str, dict[str, bytes]]:
    """{stem: {format: bytes}} of every figure of the sweep (written by `write_rendered`,
    embedded in report.html)."""
    rendered: dict[str, dict[str, bytes]] = {}
    with styled(SLIDES):
        for stem, make in sweep_figure_makers(rows, summary, title, lines):
            fig = make()
            fit_titles(fig)  # a long experiment title wraps, not runs off the slide
            rendered[stem] = {fmt: figure_bytes(fig, fmt) for fmt in formats}
    return rendered


def write_rendered_figures(folder: Path, rendered: dict[str, dict[str, bytes]]) -> list[Path]:
    written = []
    for stem, by_format in rendered.items():
        for fmt, data in by_format.items():
            write_bytes_atomic(folder / f"{stem}.{fmt}", data)
            written.append(folder / f"{stem}.{fmt}")
    return written

"""`python -m simulator plot RESULTS_DIR [--kind K,...] [--style paper|slides]
[--width one-column|two-column] [--format png,svg,pdf] [--scenario NAME]
[--color-by phase|layer]`: redraw figures from a results folder without simulating again.
The style and width default to the run's (`outputs.style`, `outputs.width`), else slides.

The figures come from results.json and figure-data.json (what `run` saved) through the
same code `run` draws with, so `plot` in the slides style reproduces the run's figures byte
for byte. The files go into RESULTS_DIR through the output-folder writer: the folder must
be one a run wrote (its manifest lists the files), figures of ours are replaced, a file of
the user's where a figure would go is refused, and every other file stays.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simulator.core.errors import UserError
from simulator.report.figure_data import FILE_NAME, load
from simulator.report.figure_style import FORMATS, STYLES, WIDTHS, Style, style_for
from simulator.report.figures import KINDS, figure_makers, render
from simulator.report.output_folder import staged_folder, write_rendered
from simulator.report.plot_roofline import COLOR_BY
from simulator.report.plot_tradeoffs import missing

DEFAULT_FORMATS = "png,svg"


def _choices(flag: str, text: str, valid: tuple[str, ...]) -> tuple[str, ...]:
    picked = tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
    wrong = [p for p in picked if p not in valid]
    if wrong or not picked:
        raise UserError(f"{flag}: '{wrong[0] if wrong else text}' is not one of "
                        f"{', '.join(valid)} (a comma-separated list)")
    return picked


def _outputs(provenance: dict[str, Any]) -> dict[str, Any]:
    """The run's `outputs` settings, where provenance has them."""
    outputs = (provenance.get("config") or {}).get("outputs")
    return outputs if isinstance(outputs, dict) else {}


def _timeline(outputs: dict[str, Any]) -> tuple[list[str] | None, int]:
    """The run's `outputs.timeline` and `outputs.top_layers`."""
    timeline, top = outputs.get("timeline"), outputs.get("top_layers")
    return (timeline if isinstance(timeline, list) else None,
            top if isinstance(top, int) and top > 0 else 12)


def _style(style: str | None, width: str | None, outputs: dict[str, Any]) -> Style:
    """The style asked for, else the run's (its width with it), else slides."""
    if style is None and outputs.get("style") in STYLES:
        style = outputs["style"]
        width = width or (outputs.get("width") if outputs.get("width") in WIDTHS else None)
    style = style or "slides"
    if style not in STYLES:
        raise UserError(f"--style: '{style}' is not one of {', '.join(STYLES)}")
    if width is not None and width not in WIDTHS:
        raise UserError(f"--width: '{width}' is not one of {', '.join(WIDTHS)}")
    if width is not None and style != "paper":
        raise UserError(f"--width: {width} is a paper's width; add --style paper (slides "
                        "are 16:9)")
    return style_for(style, width)


def run_plot(results_dir: str, kind: str | None, style: str | None, formats: str,
             scenario: list[str] | None, color_by: str = "phase",
             width: str | None = None) -> None:
    folder = Path(results_dir)
    kinds = _choices("--kind", kind, KINDS) if kind else KINDS
    fmts = _choices("--format", formats, FORMATS)
    _style(style, width, {})  # bad flags are refused before the folder is read
    if color_by not in COLOR_BY:
        raise UserError(f"--color-by: '{color_by}' is not one of {', '.join(COLOR_BY)}")
    saved = load(folder)
    outputs = _outputs(saved.provenance)
    drawn_in = _style(style, width, outputs)
    timeline, top = _timeline(outputs)
    names = scenario or timeline
    known = [row["name"] for row in saved.rows]
    for name in scenario or []:
        if name not in known:
            raise UserError(f"--scenario: '{name}' is not a scenario of {folder} "
                            f"(scenarios: {', '.join(known)})")
    makers = figure_makers(saved.rows, saved.scenarios, saved.title, names, top,
                           drawn_in, kinds, color_by)
    try:
        rendered = render(makers, list(fmts), drawn_in)
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise UserError(f"{folder / FILE_NAME}: malformed ({type(err).__name__}: {err}); "
                        "re-run the experiment to write it again") from None
    drawn = {m[0] for m in makers if any(stem.startswith(m[1]) for stem in rendered)}
    empty = [k for k in kinds if k not in drawn]
    if kind and empty:
        raise UserError(f"--kind {empty[0]}: {folder}: {missing(empty[0])}")
    with staged_folder(folder, keep_others=True) as staging:
        written = write_rendered(staging, rendered)
    for path in written:
        print(folder / path.name)

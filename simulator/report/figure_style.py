"""The look shared by every figure, in two styles, and deterministic PNG/SVG/PDF bytes.

- `slides`: 16:9 (13.33 x 7.5 in: every figure, taller only for more bar rows than a slide
  holds), large type, Okabe & Ito's colour-blind-safe palette.
- `paper`: one column (3.5 in) or two (7.16 in, IEEE/ACM text widths), 8 pt type, TrueType
  fonts embedded in PDF (Type 42, never Type 3) and text as paths in SVG, and palettes from
  Paul Tol's medium-contrast scheme, colour-blind safe and ordered so that no two colours of
  one figure are closer than 7 units of lightness (L*): they read apart in greyscale too.

Colours mean the same thing in every figure: a breakdown category (compute, memory, launch,
transfer, communication, idle) or a training phase has one colour everywhere. Font sizes in
the plotting code are relative ("small", "large"), so one maker draws both styles. Titles
are wrapped to the figure's width after layout (`fit_titles`): a long scenario name never
runs off the edge.
"""

from __future__ import annotations

import io
import math
import re
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, cast, get_args

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.text import Text

from simulator.config.schema import FigureWidth

OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
             "#000000")
TOL_MEDIUM = ("#004488", "#EECC66", "#994455", "#6699CC", "#997700", "#EE99AA", "#000000")
PHASE_LABELS = {"input": "input copy", "fwd": "forward", "loss": "loss",
                "bwd_data": "backward (data)", "bwd_weight": "backward (weights)",
                "update": "optimizer step", "comm": "communication", "task": "task"}
SETTING_KEYS = ("model", "mode", "batch", "precision", "devices")
BASE_RC = {"axes.spines.top": False, "axes.spines.right": False, "legend.frameon": False,
           "axes.titleweight": "bold", "figure.titleweight": "bold",
           "svg.hashsalt": "simulator", "svg.fonttype": "path", "pdf.fonttype": 42,
           "ps.fonttype": 42, "path.simplify": True}
FORMATS = ("png", "svg", "pdf")
WIDTHS: tuple[str, ...] = get_args(FigureWidth)  # a paper's widths, `Style.at`
LABEL_CHARS = 32  # characters per line of a scenario's name on an axis
LINE_SPACING, ROW_GAP_IN = 1.25, 0.05  # a line of a name on a bar's axis; space between
NARROW_LABEL_CHARS = 24  # the same, one column wide
BREAKS = re.compile(r"( (?=\(|x |on |vs\. |with |over |for ))|(?<=,) (?=\S)|(?<= ·) ")
SLIDE_ROW_IN, SLIDE_FRAME_IN = 0.4, 2.5  # a bar row of a slide; title, axis and legend


@dataclass(frozen=True)
class Style:
    """Sizes, type and colours of one style (see the module docstring)."""

    name: str
    widths_in: tuple[float, float]  # one column, two columns (slides: the slide, both)
    height_in: float
    row_in: float  # height of one bar of a bar chart
    dpi: int
    rc: dict[str, Any]
    categories: dict[str, str]
    phases: dict[str, str]
    palette: tuple[str, ...]
    linewidth: float = 1.5
    markersize: float = 9.0
    extra: dict[str, Any] = field(default_factory=dict)
    columns: int = 2  # the width figures are drawn at: 1 or 2 columns (`at`)

    def width(self, columns: int | None = None) -> float:
        return self.widths_in[min(columns or self.columns, 2) - 1]

    @property
    def narrow(self) -> bool:
        """Drawn one column wide (3.5 in): panels stack, legends take more rows."""
        return self.name != "slides" and self.columns == 1

    @property
    def suffix(self) -> str:
        """What file stems get: none on slides, `-paper`, `-paper-one-column`."""
        if self.name == "slides":
            return ""
        return f"-{self.name}" + ("-one-column" if self.columns == 1 else "")

    @property
    def label_chars(self) -> int:
        """Characters per line of a scenario's name on an axis (`wrap_label`)."""
        return NARROW_LABEL_CHARS if self.narrow else LABEL_CHARS

    def at(self, width: str) -> Style:
        """This style at a width of `WIDTHS` (`one-column` or `two-column`)."""
        return replace(self, columns=WIDTHS.index(width) + 1)

    def size(self, columns: int | None = None, rows: int = 0, base_in: float | None = None,
             aspect: float | None = None, slide_rows: int | None = None
             ) -> tuple[float, float]:
        """(width, height): on a slide 16:9 (the whole slide), taller only for more bar
        rows (`slide_rows`, else `rows`) than it holds `SLIDE_ROW_IN` apart; in a paper
        `base_in` or `aspect` x the width, taller for many bar rows."""
        width = self.width(columns)
        if self.name == "slides":
            rows = rows if slide_rows is None else slide_rows
            return width, max(self.height_in, SLIDE_FRAME_IN + SLIDE_ROW_IN * rows)
        height = width * aspect if aspect else (base_in or self.height_in)
        return width, max(height, self.row_in * (rows + 4))


SLIDES = Style(
    name="slides", widths_in=(13.33, 13.33), height_in=7.5, row_in=0.5, dpi=150,
    rc={"font.size": 16, "axes.titlesize": 20, "axes.labelsize": 17, "xtick.labelsize": 14,
        "ytick.labelsize": 14, "legend.fontsize": 14, "figure.titlesize": 20},
    categories={"compute": "#0072B2", "memory": "#E69F00", "launch": "#CC79A7",
                "transfer": "#009E73", "communication": "#D55E00", "idle": "#BBBBBB"},
    phases={"input": "#999999", "fwd": "#56B4E9", "loss": "#F0E442", "bwd_data": "#0072B2",
            "bwd_weight": "#009E73", "update": "#E69F00", "comm": "#D55E00",
            "task": "#56B4E9"},  # a task graph's tasks: never beside forward ops
    palette=OKABE_ITO)
PAPER = Style(
    name="paper", widths_in=(3.5, 7.16), height_in=2.6, row_in=0.2, dpi=300,
    rc={"font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8, "xtick.labelsize": 7,
        "ytick.labelsize": 7, "legend.fontsize": 7, "figure.titlesize": 9,
        "axes.linewidth": 0.6, "xtick.major.width": 0.6, "ytick.major.width": 0.6,
        "lines.linewidth": 1.0, "legend.handlelength": 1.2, "figure.constrained_layout.h_pad":
        0.02, "figure.constrained_layout.w_pad": 0.02},
    categories={"compute": "#004488", "launch": "#994455", "communication": "#997700",
                "transfer": "#6699CC", "memory": "#EE99AA", "idle": "#DDDDDD"},
    phases={"comm": "#000000", "bwd_data": "#004488", "update": "#994455", "loss": "#997700",
            "bwd_weight": "#6699CC", "input": "#BBBBBB", "fwd": "#EECC66", "task": "#EECC66"},
    palette=TOL_MEDIUM, linewidth=0.8, markersize=4.0)
STYLES = {style.name: style for style in (SLIDES, PAPER)}


def style_for(name: str, width: str | None = None) -> Style:
    """The style named `name` (`STYLES`) at `width` (`WIDTHS`; default two-column)."""
    style = STYLES[name]
    return style.at(width) if width else style


@contextmanager
def styled(style: Style) -> Iterator[None]:
    """Matplotlib's settings of `style` while figures are drawn and saved."""
    with matplotlib.rc_context(cast(Any, {**BASE_RC, **style.rc})):
        yield


def row_height_inches(labels: list[str], style: Style = SLIDES) -> float:
    """Height of a bar chart's rows (`labels`, the names on its axis): roomy for a few
    scenarios, compact for many, and never less than the lines of the longest name take
    (so a name wrapped on three lines does not run into the next)."""
    rows = len(labels)
    lines = max((label.count("\n") + 1 for label in labels), default=1)
    line_in = float(style.rc["ytick.labelsize"]) * LINE_SPACING / 72
    return rows * max(style.row_in * (1.0 if rows <= 8 else 0.72), lines * line_in + ROW_GAP_IN)


def setting_separators(ax: Any, rows: list[dict[str, Any]]) -> None:
    """A thin rule between consecutive scenarios whose workload settings differ."""
    for y in range(1, len(rows)):
        if any(rows[y].get(k) != rows[y - 1].get(k) for k in SETTING_KEYS):
            ax.axhline(y - 0.5, color="#888888", linewidth=0.8)


def hardware_colours(names: list[str], style: Style = SLIDES) -> dict[str, str]:
    """One palette colour per distinct name, in order of first appearance."""
    unique = list(dict.fromkeys(names))
    return {name: style.palette[i % len(style.palette)] for i, name in enumerate(unique)}


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "scenario"


def titles(fig: Figure) -> list[Text]:
    """The figure's own texts (its title among them) and every axes' title that holds text."""
    return [t for t in [*fig.texts, *(ax.title for ax in fig.axes)] if t.get_text()]


def fit_titles(fig: Figure) -> None:
    """Wrap each title, and each axes' x label, that would run past the figure's edges (or,
    with several panels, past its own panel's width) onto more lines."""
    for _ in range(4):  # layout moves titles as others wrap; a few passes settle it
        renderer = lay_out(fig)
        xlabels = [ax.xaxis.label for ax in fig.axes if ax.xaxis.label.get_text()]
        too_wide = [t for t in titles(fig) + xlabels if _room(fig, t, renderer) is not None]
        if not too_wide:
            return
        for text in too_wide:
            _wrap(text, renderer, _room(fig, text, renderer) or fig.bbox.width)


def lay_out(fig: Figure) -> Any:
    """Place `fig`'s axes and texts as saving will (no pixels drawn); returns the renderer."""
    renderer = FigureCanvasAgg(fig).get_renderer()
    engine = fig.get_layout_engine()
    if engine is not None:
        engine.execute(fig)
    return renderer


def draw(fig: Figure) -> Any:
    """Lay out and draw `fig` on an Agg canvas; returns the renderer (for text extents)."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def inside_figure(fig: Figure, text: Text, renderer: Any) -> bool:
    box, frame = text.get_window_extent(renderer), fig.bbox
    return (box.x0 >= frame.x0 - 0.5 and box.x1 <= frame.x1 + 0.5
            and box.y0 >= frame.y0 - 0.5 and box.y1 <= frame.y1 + 0.5)


def _room(fig: Figure, text: Text, renderer: Any) -> float | None:
    """The width `text` must shrink to (pixels), or None if it fits where it is."""
    panel = next((ax for ax in fig.axes if text in (ax.title, ax.xaxis.label)), None)
    box, frame = text.get_window_extent(renderer), fig.bbox
    centre = (box.x0 + box.x1) / 2  # titles are centred: room on the nearer side counts
    limit = 2 * min(centre - frame.x0, frame.x1 - centre)
    if panel is not None and len(fig.axes) > 1:
        limit = min(limit, panel.get_window_extent(renderer).width * 1.1)
    if inside_figure(fig, text, renderer) and box.width <= limit + 0.5:
        return None
    return 0.92 * limit


def _wrap(text: Text, renderer: Any, width_px: float) -> None:
    """Wrap each line of `text` (a title's own line breaks stay: a panel's device line
    stays a line of its own) to `width_px`."""
    lines = text.get_text().split("\n")
    widest = max(len(line) for line in lines)
    chars_per_px = widest / max(text.get_window_extent(renderer).width, 1.0)
    width = max(12, int(width_px * chars_per_px))
    text.set_text("\n".join(part for line in lines for part in wrap_phrases(line, width)))


def phrases(text: str) -> list[str]:
    """`text` cut where a line may break without splitting a phrase: after `, ` and ` · `,
    before ` (`, ` x `, ` on `, ` vs. `, ` with `, ` over `, ` for ` (`BREAKS`)."""
    text = " ".join(text.split())
    cuts = sorted({0, len(text)} | {m.start() + 1 if m.group(1) else m.end()
                                    for m in BREAKS.finditer(text)})
    return [text[a:b].strip() for a, b in zip(cuts, cuts[1:], strict=False)
            if text[a:b].strip()]


def wrap_phrases(text: str, width: int) -> list[str]:
    """`text` on lines of at most `width` characters, broken between phrases (`phrases`)
    where it can be, else between words (a word longer than `width` stays whole)."""
    lines: list[str] = []
    for phrase in phrases(text):
        joined = f"{lines[-1]} {phrase}" if lines else phrase
        if lines and len(joined) <= width:
            lines[-1] = joined
        else:
            lines += textwrap.wrap(phrase, width, break_long_words=False,
                                   break_on_hyphens=False) or [phrase]
    return lines or [""]


def wrap_label(name: str, width: int = LABEL_CHARS) -> str:
    """A long axis label (a scenario's name) on two or more lines of at most `width`
    characters, broken between phrases, so it does not take half the figure's width."""
    return "\n".join(wrap_phrases(name, width)) if len(name) > width else name


def legend(fig: Figure, handles: list[Any], ncols: int, **options: Any) -> Legend:
    """The figure's legend under its axes (`outside lower center`), in at most `ncols`
    columns and as many fewer as it takes to fit the figure's width (one column wide: more
    rows); labels still too wide for one column are wrapped between phrases."""
    renderer = FigureCanvasAgg(fig).get_renderer()
    room = fig.bbox.width * 0.98
    labels = [str(handle.get_label()) for handle in handles]
    for columns in range(max(1, min(ncols, len(handles))), 0, -1):
        made = fig.legend(handles, labels, loc="outside lower center", ncols=columns, **options)
        width = made.get_window_extent(renderer).width
        if width <= room or columns == 1:
            break
        made.remove()
    if width > room:  # one column, a label wider than the figure: wrap the labels
        chars = max(12, int(max(len(label) for label in labels) * room / width))
        made.remove()
        made = fig.legend(handles, [wrap_label(label, chars) for label in labels],
                          loc="outside lower center", ncols=1, **options)
    return made


def fit_right(ax: Any, texts: list[Text], renderer: Any) -> None:
    """Widen `ax`'s x range to the right (linear or log) so that each of `texts`, placed by
    a data x and running to its right, ends inside the axes; a text wider than most of the
    axes is left as it is."""
    frame = ax.get_window_extent(renderer)
    log = ax.get_xscale() == "log"
    lo, hi = (math.log10(v) if log else v for v in ax.get_xlim())
    span = need = hi - lo
    for text in texts:
        if not text.get_text():
            continue
        anchor = getattr(text, "xy", None) or text.get_position()
        at_px = ax.transData.transform(anchor)[0]
        used = (at_px - frame.x0) / frame.width  # of the axes' width, left of the text
        wide = (text.get_window_extent(renderer).x1 - at_px) / frame.width
        if used + wide > 1 and wide < 0.8:
            need = max(need, used * span / (1 - wide))
    if need > span:
        top = lo + need * 1.02
        ax.set_xlim(ax.get_xlim()[0], 10 ** top if log else top)


def figure_bytes(fig: Figure, fmt: str, style: Style = SLIDES) -> bytes:
    """PNG, SVG or PDF bytes; no dates or random ids, so equal figures give equal bytes."""
    buffer = io.BytesIO()
    metadata: dict[str, Any] = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(fmt, {})
    fig.savefig(buffer, format=fmt, dpi=style.dpi, metadata=metadata)
    return buffer.getvalue()

"""The look shared by every figure: slide-sized, large type, a colour-blind-safe palette
(Okabe & Ito), time units chosen per figure, and deterministic PNG/SVG bytes.

Colours mean the same thing in every figure: a breakdown category (compute, memory,
launch, transfer, communication, idle) or a training phase has one colour everywhere.
"""

from __future__ import annotations

import io
import re
from typing import Any

from matplotlib.figure import Figure

OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
             "#000000")
CATEGORY_COLOURS = {"compute": "#0072B2", "memory": "#E69F00", "launch": "#CC79A7",
                    "transfer": "#009E73", "communication": "#D55E00", "idle": "#BBBBBB"}
PHASE_COLOURS = {"input": "#999999", "fwd": "#56B4E9", "loss": "#F0E442",
                 "bwd_data": "#0072B2", "bwd_weight": "#009E73", "update": "#E69F00",
                 "comm": "#D55E00", "task": "#56B4E9"}
PHASE_LABELS = {"input": "input copy", "fwd": "forward", "loss": "loss",
                "bwd_data": "backward (data)", "bwd_weight": "backward (weights)",
                "update": "optimizer step", "comm": "communication",
                "task": "task"}
SLIDE_INCHES = (13.33, 7.5)  # 16:9
DPI = 150
RC = {"font.size": 16, "axes.titlesize": 20, "axes.titleweight": "bold",
      "axes.labelsize": 17, "xtick.labelsize": 14, "ytick.labelsize": 14,
      "legend.fontsize": 14, "legend.frameon": False, "axes.spines.top": False,
      "axes.spines.right": False, "svg.hashsalt": "simulator", "svg.fonttype": "path",
      "path.simplify": True}
SETTING_KEYS = ("model", "mode", "batch", "precision", "devices")
TIME_UNITS = ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs"))


def time_unit(seconds: float) -> tuple[float, str]:
    """(scale in seconds, label) so that `seconds / scale` reads as a number >= 1."""
    for scale, label in TIME_UNITS:
        if seconds >= scale:
            return scale, label
    return TIME_UNITS[-1]


LONG_UNITS = ((86400.0 * 2, 86400.0, "days"), (7200.0, 3600.0, "h"), (120.0, 60.0, "min"))


def format_time(seconds: float) -> str:
    """Three significant digits in a readable unit: 1.24 ms, 34.9 s, 5.1 h, 7.60 days."""
    for threshold, scale, label in LONG_UNITS:
        if seconds >= threshold:
            return f"{seconds / scale:.3g} {label}"
    scale, label = time_unit(seconds)
    return f"{seconds / scale:.3g} {label}"


def format_count(value: float) -> str:
    return f"{value:,.0f}" if value >= 1000 else f"{value:.3g}"


def row_height_inches(rows: int) -> float:
    """Height of a bar chart's rows: roomy for a few scenarios, compact for many."""
    return rows * (0.5 if rows <= 8 else 0.36)


def setting_separators(ax: Any, rows: list[dict[str, Any]]) -> None:
    """A thin rule between consecutive scenarios whose workload settings differ."""
    for y in range(1, len(rows)):
        if any(rows[y].get(k) != rows[y - 1].get(k) for k in SETTING_KEYS):
            ax.axhline(y - 0.5, color="#888888", linewidth=0.8)


def hardware_colours(names: list[str]) -> dict[str, str]:
    """One palette colour per distinct name, in order of first appearance."""
    unique = list(dict.fromkeys(names))
    return {name: OKABE_ITO[i % len(OKABE_ITO)] for i, name in enumerate(unique)}


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "scenario"


def figure_bytes(fig: Figure, fmt: str) -> bytes:
    """PNG or SVG bytes; no dates or random ids, so equal figures give equal bytes."""
    buffer = io.BytesIO()
    metadata: dict[str, Any] = {"Date": None} if fmt == "svg" else {}
    fig.savefig(buffer, format=fmt, dpi=DPI, metadata=metadata)
    return buffer.getvalue()

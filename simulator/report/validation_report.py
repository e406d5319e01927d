"""Writers for `validate`: the per-kernel table (JSON, CSV), the summary, and the log-log
predicted-vs-measured figure with the y = x line."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from simulator.report.atomic import write_bytes_atomic, write_json_atomic, write_text_atomic

FAMILY_COLOURS = {"gemm": "#0072B2", "elementwise": "#E69F00", "copy": "#009E73",
                  "conv": "#CC79A7", "launch": "#D55E00"}


def table_text(summary: dict[str, dict[str, float]], device: Any) -> str:
    origin = getattr(getattr(device, "profile", None), "origin", "ideal")
    lines = [f"{device.name} ({origin} profile): predicted vs measured",
             f"{'op':20s} {'n':>5s} {'MAPE':>8s} {'median':>8s} {'worst':>8s}"]
    for name, s in sorted(summary.items(), key=lambda kv: (kv[0] == "all", kv[0])):
        lines.append(f"{name:20s} {int(s['n']):5d} {s['mape'] * 100:7.1f}% "
                     f"{s['median_abs_error'] * 100:7.1f}% {s['worst'] * 100:7.1f}%")
    return "\n".join(lines)


def group_table_text(summary: dict[str, dict[str, float]], width: int = 30) -> str:
    """A `grouped_errors` summary as a console table: group, rows, MAPE, median, worst."""
    lines = [f"{'group':{width}s} {'rows':>5s} {'MAPE':>7s} {'median':>7s} {'worst':>7s}"]
    lines += [f"{key:{width}s} {s['rows']:5d} {s['mape']:7.1%} {s['median']:7.1%} "
              f"{s['worst']:7.1%}" for key, s in summary.items()]
    return "\n".join(lines)


def _csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["label"],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def figure_bytes(rows: list[dict[str, Any]], title: str, fmt: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 6.5), dpi=150)
    for fam in sorted({r["family"] for r in rows}):
        pts = [r for r in rows if r["family"] == fam]
        ax.scatter([r["measured_s"] for r in pts], [r["predicted_s"] for r in pts], s=18,
                   label=f"{fam} ({len(pts)})", color=FAMILY_COLOURS.get(fam, "#555555"), alpha=0.8)
    lo = min(min(r["measured_s"], r["predicted_s"]) for r in rows) / 2
    hi = max(max(r["measured_s"], r["predicted_s"]) for r in rows) * 2
    ax.plot([lo, hi], [lo, hi], color="black", lw=1, label="y = x")
    ax.fill_between([lo, hi], [lo * 0.9, hi * 0.9], [lo * 1.1, hi * 1.1], color="grey",
                    alpha=0.15, label="±10%")
    ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi), title=title,
           xlabel="measured time (s)", ylabel="predicted time (s)")
    ax.legend(loc="upper left", fontsize=9)
    ax.grid(True, which="major", alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, bbox_inches="tight",
                metadata={"Date": None} if fmt == "svg" else None)
    plt.close(fig)
    return buf.getvalue()


def write_validation(out: Path, rows: list[dict[str, Any]], summary: dict[str, Any],
                     device: Any) -> None:
    write_json_atomic(out / "validation.json", {"device": device.name, "summary": summary,
                                                "rows": rows})
    write_text_atomic(out / "validation.csv", _csv(rows))
    title = f"{device.name}: predicted vs measured kernels"
    for fmt in ("png", "svg"):
        write_bytes_atomic(out / f"predicted_vs_measured.{fmt}", figure_bytes(rows, title, fmt))

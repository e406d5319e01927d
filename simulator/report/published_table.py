"""The published-vs-simulated table: for every scenario that cites published numbers
(`published:` in the experiment), each number beside the simulated one and their ratio.
Written as published.md and printed at the end of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simulator.report.atomic import write_text_atomic

LABELS = {"cores": "cores", "devices": "devices", "hardware_cost_usd": "hardware cost",
          "time_to_train_s": "time to train", "step_time_s": "step time",
          "samples_per_s": "samples/s", "energy_j": "energy",
          "effective_training_time": "effective training time"}


def _fmt(key: str, value: float | None) -> str:
    if value is None:
        return "—"
    if key.endswith("_usd"):
        return f"${value:,.0f}"
    if key == "time_to_train_s" or key == "step_time_s":
        for unit, size in (("days", 86400.0), ("h", 3600.0), ("min", 60.0), ("s", 1.0)):
            if value >= size or unit == "s":
                return f"{value / size:.3g} {unit}"
    if key == "energy_j":
        return f"{value / 3.6e6:,.0f} kWh"
    if key == "effective_training_time":  # a share of the wall time
        return f"{value:.1%}"
    return f"{value:,.0f}"


def published_rows(rows: list[dict[str, Any]]) -> list[tuple[str, str, str, str, str]]:
    out = []
    for row in rows:
        published = row.get("published") or {}
        for key, value in published.items():
            if not isinstance(value, (int, float)):
                continue
            simulated = row.get(key)
            ratio = (row.get("simulated_over_published") or {}).get(key)
            out.append((row["name"], LABELS.get(key, key), _fmt(key, value), _fmt(key, simulated),
                        "—" if ratio is None else f"{ratio:.2f}x"))
    return out


def published_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table; empty when no scenario cites published numbers."""
    table = published_rows(rows)
    if not table:
        return ""
    lines = ["| scenario | quantity | published | simulated | simulated / published |",
             "|---|---|---:|---:|---:|"]
    lines += [f"| {' | '.join(cells)} |" for cells in table]
    sources = [f"- {row['name']}: {row['published']['source']}" for row in rows
               if isinstance((row.get("published") or {}).get("source"), str)]
    return "\n".join(lines + ([""] + ["Sources:"] + sources if sources else [])) + "\n"


def write_published_table(folder: Path, rows: list[dict[str, Any]]) -> Path | None:
    text = published_table(rows)
    if not text:
        return None
    path = folder / "published.md"
    write_text_atomic(path, "# Published vs simulated\n\n" + text)
    return path

"""The published-vs-simulated table: for every scenario that cites published numbers
(`published:` in the experiment), each number beside the simulated one and their ratio,
marked by what it is: an `input` (the experiment sets it: cores, devices), `priced`
(catalog prices times the configuration: the hardware cost) or `predicted` (simulated:
times, throughput, energy); each such scenario's simulated samples per second; then the
experiment's `comparisons` (ratios between scenarios at equal work beside the published
ratios), the passes over the data the published times allow at the simulated rate, and the
experiment's stated `assumptions`. Written as published.md and printed at the end of a run."""

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


KINDS = {"cores": "input", "devices": "input", "hardware_cost_usd": "priced"}
ALWAYS = ("samples_per_s",)  # shown for every scenario with published numbers
Cells = tuple[str, str, str, str, str, str]


def kind_of(key: str) -> str:
    return KINDS.get(key, "predicted")


def _ratio_text(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio:.2f}x"


def published_rows(rows: list[dict[str, Any]]) -> list[Cells]:
    out = []
    for row in rows:
        published = row.get("published") or {}
        numbers = {k: v for k, v in published.items() if isinstance(v, (int, float))}
        for key in [*numbers, *(k for k in ALWAYS if numbers and k not in numbers)]:
            value = numbers.get(key)
            ratio = (row.get("simulated_over_published") or {}).get(key)
            out.append((row["name"], LABELS.get(key, key), kind_of(key), _fmt(key, value),
                        _fmt(key, row.get(key)), _ratio_text(ratio)))
    return out


def _comparison_lines(comparisons: list[dict[str, Any]]) -> list[str]:
    if not comparisons:
        return []
    lines = ["", "Ratios between scenarios (at equal work):", "",
             "| comparison | simulated | published | simulated / published |",
             "|---|---:|---:|---:|"]
    for comp in comparisons:
        lines.append(f"| {comp['name']} | {_ratio_text(comp['simulated'])} | "
                     f"{_ratio_text(comp['published'])} | "
                     f"{_ratio_text(comp['simulated_over_published'])} |")
    return lines + [f"- {c['name']}: {c['source']}" for c in comparisons if c["source"]]


def _passes_lines(passes: list[dict[str, Any]]) -> list[str]:
    if not passes:
        return []
    lines = ["", "Passes over the data (an assumption: time to train is for `epochs` passes):"]
    for p in passes:
        n = p["epochs_assumed"]
        lines.append(f"- {p['name']}: {n} pass{'' if n == 1 else 'es'} assumed, "
                     f"{_fmt('time_to_train_s', p['time_per_pass_s'])} per pass simulated; "
                     f"the published time is {p['passes_in_published_time']:.1f} passes at "
                     "that rate")
    return lines


def published_table(rows: list[dict[str, Any]], comparisons: list[dict[str, Any]] | None = None,
                    passes: list[dict[str, Any]] | None = None,
                    assumptions: list[str] | None = None) -> str:
    """Markdown; empty when no scenario cites published numbers and nothing is compared."""
    table = published_rows(rows)
    if not table and not comparisons:
        return ""
    lines = ["| scenario | quantity | kind | published | simulated | simulated / published |",
             "|---|---|---|---:|---:|---:|"]
    lines += [f"| {' | '.join(cells)} |" for cells in table]
    lines.append("")
    lines.append("kind: input = set by the experiment (not a result); priced = catalog and "
                 "stated prices x the configuration; predicted = simulated")
    sources = [f"- {row['name']}: {row['published']['source']}" for row in rows
               if isinstance((row.get("published") or {}).get("source"), str)]
    lines += ([""] + ["Sources:"] + sources if sources else [])
    lines += _comparison_lines(comparisons or []) + _passes_lines(passes or [])
    lines += (["", "Assumptions:"] + [f"- {a}" for a in assumptions] if assumptions else [])
    return "\n".join(lines) + "\n"


def write_published_table(folder: Path, text: str) -> Path | None:
    if not text:
        return None
    path = folder / "published.md"
    write_text_atomic(path, "# Published vs simulated\n\n" + text)
    return path

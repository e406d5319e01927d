"""The published-vs-simulated table: for every scenario that cites published numbers
(`published:` in the experiment), each number beside the simulated one, their ratio and a
verdict, marked by what it is: an `input` (the experiment sets it: cores, devices),
`priced` (catalog prices times the configuration: the hardware cost) or `predicted`
(simulated: times, throughput, energy); each such scenario's simulated samples per second;
then the sources, the experiment's `comparisons` (ratios between two scenarios of one
quantity at equal work, beside the published ratios), the passes over the data the
published times allow at the simulated rate, and the experiment's stated `assumptions`.

`published_blocks` builds it once as page blocks (`blocks`); published.md, the table
printed at the end of a run and the report's section are all written from them. Times are
written as `units.format_time` writes them everywhere (ms, s, min, h, days).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simulator.report.atomic import write_text_atomic
from simulator.report.blocks import Block, markdown_blocks
from simulator.report.units import format_time

LABELS = {"cores": "cores", "devices": "devices", "hardware_cost_usd": "hardware cost",
          "time_to_train_s": "time to train", "step_time_s": "step time",
          "samples_per_s": "samples/s", "energy_j": "energy",
          "effective_training_time": "effective training time"}
KINDS = {"cores": "input", "devices": "input", "hardware_cost_usd": "priced"}
ALWAYS = ("samples_per_s",)  # shown for every scenario with published numbers
AGREES, CLOSE = 0.10, 2.0  # verdict bands: within 10%, within a factor of 2
Cells = tuple[str, str, str, str, str, str, str]
HEADER = ("scenario", "quantity", "kind", "published", "simulated", "simulated / published",
          "verdict")
KIND_NOTE = ("kind: input = set by the experiment (not a result); priced = catalog and "
             "stated prices x the configuration; predicted = simulated. verdict: agrees = "
             "within 10%; within 2x; else off by the factor, simulated higher or lower")


def _fmt(key: str, value: float | None) -> str:
    if value is None:
        return "—"
    if key.endswith("_usd"):
        return f"${value:,.0f}"
    if key.endswith("_s") and not key.endswith("per_s"):  # a time, not a rate
        return format_time(value)
    if key == "energy_j":
        return f"{value / 3.6e6:,.0f} kWh"
    if key == "effective_training_time":  # a share of the wall time
        return f"{value:.1%}"
    return f"{value:,.0f}"


def kind_of(key: str) -> str:
    return KINDS.get(key, "predicted")


def _ratio_text(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio:.2f}x"


def verdict(ratio: float | None, kind: str = "predicted") -> str:
    """How simulated / published reads: agrees, within 2x, or off by a factor."""
    if ratio is None or ratio <= 0:
        return "—"
    if kind == "input":
        return "same input" if abs(ratio - 1) <= 1e-9 else "a different input"
    side = "higher" if ratio > 1 else "lower"
    if abs(ratio - 1) <= AGREES:
        return "agrees (within 10%)"
    factor = max(ratio, 1 / ratio)
    return f"within 2x ({side})" if factor <= CLOSE else f"off by {factor:.1f}x ({side})"


def published_rows(rows: list[dict[str, Any]],
                   passes: list[dict[str, Any]] | None = None) -> list[Cells]:
    """One row of cells per published number (`HEADER`); a time to train whose passes over
    the data are assumed says how many passes the published time is at the simulated rate."""
    implied = {p["name"]: p["passes_in_published_time"] for p in passes or []}
    out = []
    for row in rows:
        published = row.get("published") or {}
        numbers = {k: v for k, v in published.items() if isinstance(v, (int, float))}
        for key in [*numbers, *(k for k in ALWAYS if numbers and k not in numbers)]:
            ratio = (row.get("simulated_over_published") or {}).get(key)
            said = verdict(ratio, kind_of(key))
            if key == "time_to_train_s" and row["name"] in implied and ratio is not None:
                said += f"; the published time is {implied[row['name']]:.1f} passes"
            out.append((row["name"], LABELS.get(key, key), kind_of(key),
                        _fmt(key, numbers.get(key)), _fmt(key, row.get(key)),
                        _ratio_text(ratio), said))
    return out


def _comparison_blocks(comparisons: list[dict[str, Any]]) -> list[Block]:
    if not comparisons:
        return []
    header = ("comparison", "quantity", "scenarios (of / over)", "simulated", "published",
              "simulated / published", "verdict")
    body = [(c["name"], LABELS.get(c["quantity"], c["quantity"]), f"{c['of']} / {c['over']}",
             _ratio_text(c["simulated"]), _ratio_text(c["published"]),
             _ratio_text(c["simulated_over_published"]),
             verdict(c["simulated_over_published"])) for c in comparisons]
    sources = [f"{c['name']}: {c['source']}" for c in comparisons if c.get("source")]
    return [("subheading", "Ratios between scenarios (at equal work):"),
            ("table", header, body, "lllrrrl")] + ([("list", sources)] if sources else [])


def _passes_blocks(passes: list[dict[str, Any]]) -> list[Block]:
    if not passes:
        return []
    items = []
    for p in passes:
        n = p["epochs_assumed"]
        items.append(f"{p['name']}: {n} pass{'' if n == 1 else 'es'} assumed, "
                     f"{format_time(p['time_per_pass_s'])} per pass simulated; the published "
                     f"time is {p['passes_in_published_time']:.1f} passes at that rate")
    return [("subheading", "Passes over the data (an assumption: time to train is for "
                           "`epochs` passes):"), ("list", items)]


def published_blocks(rows: list[dict[str, Any]], comparisons: list[dict[str, Any]] | None = None,
                     passes: list[dict[str, Any]] | None = None,
                     assumptions: list[str] | None = None) -> list[Block]:
    """The table and what follows it; empty when no scenario cites published numbers and
    nothing is compared."""
    table = published_rows(rows, passes)
    if not table and not comparisons:
        return []
    out: list[Block] = [("table", HEADER, table, "lllrrrl"), ("p", KIND_NOTE)]
    sources = [f"{row['name']}: {row['published']['source']}" for row in rows
               if isinstance((row.get("published") or {}).get("source"), str)]
    out += [("subheading", "Sources:"), ("list", sources)] if sources else []
    out += _comparison_blocks(comparisons or []) + _passes_blocks(passes or [])
    out += [("subheading", "Assumptions:"), ("list", list(assumptions))] if assumptions else []
    return out


def published_table(rows: list[dict[str, Any]], comparisons: list[dict[str, Any]] | None = None,
                    passes: list[dict[str, Any]] | None = None,
                    assumptions: list[str] | None = None) -> str:
    """Markdown of `published_blocks`; empty when they are."""
    blocks = published_blocks(rows, comparisons, passes, assumptions)
    return markdown_blocks(blocks).rstrip("\n") + "\n" if blocks else ""


def write_published_table(folder: Path, text: str) -> Path | None:
    if not text:
        return None
    path = folder / "published.md"
    write_text_atomic(path, "# Published vs simulated\n\n" + text)
    return path

"""report.md and report.html: one page per run with the configuration, the key numbers, the
published-vs-simulated table where there is one, the figures and the provenance.

report.html is self-contained: the figures are embedded as data URIs (PNG where drawn, else
SVG), the style sheet is inline, and there is no script and no link to fetch, so it opens
offline and can be mailed as one file. report.md shows the same page with the figures as
links to the files beside it. Both are built from one list of sections, and hold no date
(results.json has it), so the same run gives the same bytes.

`write_report(folder, title, description, rows, provenance, rendered, findings)` is the
function to call from any command that writes a results folder (`run`, `sweep`): `rows` are
results rows, `provenance` as `results_json.provenance` builds it, `rendered` {stem: {format:
bytes}} as `figures.render` returns it (empty: a page without figures), `findings` the run's
`comparisons`, `passes_implied` and `assumptions` (the published-vs-simulated section is
`published_table.published_blocks`, the same blocks as published.md and the console's table).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from simulator.report.atomic import write_text_atomic
from simulator.report.blocks import MIME, Block, html_block, markdown_blocks
from simulator.report.published_table import published_blocks
from simulator.report.units import format_bytes, format_count, format_time

MARKDOWN, HTML = "report.md", "report.html"
Section = tuple[str, list[Block]]
CSS = ("body{font-family:system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em;"
       "color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
       "padding:.3em .6em;text-align:left}td.n{text-align:right}img{max-width:100%;"
       "height:auto;display:block;margin:1em 0}code{background:#f4f4f4;padding:0 .2em}")


def _step(row: dict[str, Any]) -> str:
    if not row.get("step_time_s"):
        return "—"
    lo, hi = row.get("step_time_p10_s"), row.get("step_time_p90_s")
    spread = f" ({format_time(lo)}–{format_time(hi)})" if lo and hi else ""
    return format_time(row["step_time_s"]) + spread


def key_numbers(rows: list[dict[str, Any]]) -> Block:
    header = ("scenario", "status", "step time (10–90%)", "samples/s", "bottleneck",
              "time to train", "memory peak")
    body = [(r["name"], r["status"], _step(r),
             format_count(r["samples_per_s"]) if r.get("samples_per_s") else "—",
             r.get("bottleneck") or "—",
             format_time(r["time_to_train_s"]) if r.get("time_to_train_s") else "—",
             format_bytes(r["memory_peak_bytes"]) if r.get("memory_peak_bytes") else "—")
            for r in rows]
    return ("table", header, body)


def configuration(rows: list[dict[str, Any]]) -> Block:
    header = ("scenario", "model", "hardware", "devices", "strategy", "batch", "precision",
              "mode")
    body = [(r["name"], r.get("model"), r.get("hardware"), r.get("devices"), r.get("strategy"),
             r.get("batch"), r.get("precision"), r.get("mode")) for r in rows]
    return ("table", header, [tuple("—" if v is None else str(v) for v in b) for b in body])


def provenance_block(prov: dict[str, Any]) -> Block:
    git = prov.get("git") or {}
    revision = git.get("commit") or "unknown (not a git checkout)"
    if git.get("dirty"):
        revision += " (with uncommitted changes)"
    packages = ", ".join(f"{k} {v}" for k, v in sorted((prov.get("packages") or {}).items())
                         if v)
    body = [("experiment file", str(prov.get("experiment_file", "—"))),
            ("configuration sha256", str(prov.get("config_sha256", "—"))),
            ("source revision", revision), ("packages", packages or "—"),
            ("quick run (no figures)", "yes" if prov.get("quick") else "no")]
    return ("table", ("", ""), body)


def sections(title: str, description: str, rows: list[dict[str, Any]],
             provenance: dict[str, Any], rendered: dict[str, dict[str, bytes]],
             findings: dict[str, Any] | None = None) -> list[Section]:
    out: list[Section] = [("Configuration", [configuration(rows)]),
                          ("Key numbers", [key_numbers(rows)])]
    found = findings or {}
    published = published_blocks(rows, found.get("comparisons"), found.get("passes_implied"),
                                 found.get("assumptions"))
    if published:
        out.append(("Published vs simulated", published))
    figures: list[Block] = []
    for stem, by_format in rendered.items():
        fmt = next((f for f in MIME if f in by_format), None)
        if fmt is not None:
            figures.append(("figure", stem, fmt, by_format[fmt]))
    if figures:
        out.append(("Figures", figures))
    out.append(("Provenance", [provenance_block(provenance)]))
    return [(title, [("p", description)] if description else [])] + out


def markdown(page: list[Section]) -> str:
    lines: list[str] = []
    for i, (heading, blocks) in enumerate(page):
        lines += [f"{'#' if i == 0 else '##'} {heading}", ""]
        if blocks:
            lines.append(markdown_blocks(blocks))
    return "\n".join(lines)


def html_page(page: list[Section]) -> str:
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{html.escape(page[0][0])}</title><style>{CSS}</style></head><body>"]
    for i, (heading, blocks) in enumerate(page):
        tag = "h1" if i == 0 else "h2"
        parts.append(f"<{tag}>{html.escape(heading)}</{tag}>")
        parts += [html_block(b) for b in blocks]
    return "\n".join(parts + ["</body></html>", ""])


def write_report(folder: Path, title: str, description: str, rows: list[dict[str, Any]],
                 provenance: dict[str, Any], rendered: dict[str, dict[str, bytes]],
                 findings: dict[str, Any] | None = None) -> list[Path]:
    """Write report.md and report.html into `folder` (a staging folder); returns them."""
    page = sections(title, description, rows, provenance, rendered, findings)
    write_text_atomic(folder / MARKDOWN, markdown(page))
    write_text_atomic(folder / HTML, html_page(page))
    return [folder / MARKDOWN, folder / HTML]

"""The blocks a page of ours is made of, and how each is written in Markdown and in HTML, in
one place: published.md, the console's published-vs-simulated table, report.md and
report.html are built from the same blocks, so they say the same thing.

A block is a tuple: `("p", text)`, `("list", [item, ...])`, `("table", header, rows)` or
`("table", header, rows, align)` with `align` one of `l`/`r` per column (Markdown's `---:`,
HTML's right-aligned cell), `("subheading", text)`, or `("figure", stem, fmt, bytes)` (an
image: a link to `stem.fmt` in Markdown, a data URI in HTML).
"""

from __future__ import annotations

import base64
import html
from typing import Any

Block = tuple[Any, ...]
MIME = {"png": "image/png", "svg": "image/svg+xml"}
NUMBER = ' class="n"'  # a right-aligned cell


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _align(block: Block) -> str:
    return block[3] if len(block) > 3 else "l" * len(block[1])


def markdown_block(block: Block) -> list[str]:
    """The Markdown lines of one block, a blank line after it."""
    kind = block[0]
    if kind in ("p", "subheading"):  # a subheading is a line of its own (also on a console)
        return [block[1], ""]
    if kind == "list":
        return [f"- {item}" for item in block[1]] + [""]
    if kind == "table":
        rule = "|" + "".join("---:|" if a == "r" else "---|" for a in _align(block))
        return (["| " + " | ".join(map(_md_cell, block[1])) + " |", rule]
                + ["| " + " | ".join(map(_md_cell, r)) + " |" for r in block[2]] + [""])
    return [f"![{block[1]}]({block[1]}.{block[2]})", ""]


def markdown_blocks(blocks: list[Block]) -> str:
    return "\n".join(line for block in blocks for line in markdown_block(block))


def html_block(block: Block) -> str:
    kind = block[0]
    if kind == "p":
        return f"<p>{html.escape(block[1])}</p>"
    if kind == "subheading":
        return f"<h3>{html.escape(block[1])}</h3>"
    if kind == "list":
        return "<ul>" + "".join(f"<li>{html.escape(str(i))}</li>" for i in block[1]) + "</ul>"
    if kind == "table":
        align = _align(block)
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in block[1])
        body = "".join("<tr>" + "".join(
            f"<td{NUMBER if a == 'r' else ''}>{html.escape(str(c))}</td>"
            for c, a in zip(r, align, strict=False)) + "</tr>" for r in block[2])
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    data = base64.b64encode(block[3]).decode("ascii")
    return (f'<figure><img alt="{html.escape(block[1])}" src="data:{MIME[block[2]]};base64,'
            f'{data}"><figcaption>{html.escape(block[1])}</figcaption></figure>')

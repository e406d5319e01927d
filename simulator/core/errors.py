"""The one exception type for bad user input: the CLI prints it as one line and exits 2.

`UserError` keeps its message on one line whatever it quotes (a key, a file name, a value
from a hostile file): control characters are escaped as `\\xNN` and a message longer than
`MAX_MESSAGE_CHARS` is cut. `shown(value)` quotes a value for a message, shortened;
`format_path` writes a field's path as messages show it (`scenarios[1].workload.batch`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PathPart = str | int  # a mapping key or a list index on the way to a field
MAX_MESSAGE_CHARS = 1000  # a message quotes at most this much (a 1 MB key is not echoed)
SHOWN_CHARS = 60  # a quoted value in a message is cut to this many characters


def one_line(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """`text` with control characters (newlines, NUL, ESC, ...) escaped, cut to `limit`."""
    escaped = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256
                      else f"\\u{ord(c):04x}" for c in text)
    return escaped if len(escaped) <= limit else escaped[:limit - 3] + "..."


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """`repr(value)` for an error message, on one line and at most about `limit` characters."""
    return one_line(repr(value), limit)


def format_path(path: Sequence[PathPart]) -> str:
    """`("scenarios", 1, "workload", "batch")` -> `scenarios[1].workload.batch`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


class UserError(Exception):
    """Bad input (a file, a field, a name, a number): message is shown to the user as is.

    Messages name where (file:line, field path) and what is wrong, and suggest the fix.
    """

    exit_code = 2

    def __init__(self, message: object = "", *args: object) -> None:
        super().__init__(one_line(str(message)), *args)


def unknown_name(kind: str, name: str, valid: list[str]) -> UserError:
    """Error for an unknown registry or catalog name, listing the valid names."""
    return UserError(f"unknown {kind} '{name}'; valid {kind} names: {', '.join(sorted(valid))}")

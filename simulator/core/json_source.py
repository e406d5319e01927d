"""The one JSON reader for files users hand us (measurements, saved results): bounded like
the YAML reader (`yaml_source`), so no file can crash, hang or fill memory, and every problem
is one `UserError` line naming the file (and the line and column where JSON is broken).

Refused: a missing file, a directory, more than `MAX_JSON_BYTES`, bytes that are not UTF-8,
broken JSON, `NaN` / `Infinity` (not JSON, though Python writes them), a key twice in one
object, nesting deeper than `MAX_JSON_DEPTH`, and a top level that is not an object.
`record_list(...)` checks the usual shape of a measurement file: a list of objects.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from simulator.core.errors import UserError
from simulator.core.yaml_source import read_text_bounded

MAX_JSON_BYTES = 64 << 20  # 64 MiB: ~100x the largest measurement file in the repo (0.7 MB)
MAX_JSON_DEPTH = 64


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number (write a finite number or null)")


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} appears twice in one object")
        out[key] = value
    return out


def _depth(value: Any) -> int:
    """Nesting depth, iteratively (a deep file must not exhaust the stack here either)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level > MAX_JSON_DEPTH:
                return level
            stack.extend((v, level + 1) for v in (item.values() if isinstance(item, dict)
                                                  else item))
    return deepest


def read_json_object(path: str | Path, what: str = "file",
                     schema: str | None = None) -> dict[str, Any]:
    """The top-level object of a JSON file; `what` says what the file should be, `schema`
    (where given) the value its "schema" field must have."""
    path = Path(path)
    text = read_text_bounded(path, MAX_JSON_BYTES)
    try:
        data = json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique)
    except json.JSONDecodeError as err:
        raise UserError(f"{path}:{err.lineno}:{err.colno}: not valid JSON: {err.msg}") from None
    except ValueError as err:
        raise UserError(f"{path}: not valid JSON: {err}") from None
    except RecursionError:
        raise UserError(f"{path}: nested more than {MAX_JSON_DEPTH} levels deep") from None
    if _depth(data) > MAX_JSON_DEPTH:
        raise UserError(f"{path}: nested more than {MAX_JSON_DEPTH} levels deep")
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object ({what}), got {type(data).__name__}")
    if schema is not None and data.get("schema") != schema:
        raise UserError(f"{path}: schema: expected '{schema}'")
    return data


def record_list(data: dict[str, Any], path: str | Path,
                key: str = "records") -> list[dict[str, Any]]:
    """`data[key]`, checked to be a list of objects."""
    value = data.get(key)
    if not isinstance(value, list):
        raise UserError(f"{path}: {key}: expected a list of measurement objects, got "
                        f"{'nothing' if value is None else type(value).__name__}")
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise UserError(f"{path}: {key}[{i}]: expected an object, got {type(item).__name__}")
    return value

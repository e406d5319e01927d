"""Atomic file writes: write to a temporary file beside the target, then rename over it.

JSON is refused whole before anything is written when it holds a number JSON cannot
(infinity, NaN): a one-line UserError names the field, never a half-written file.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from simulator.core.errors import PathPart, UserError, format_path


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see either the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


Found = tuple[tuple[PathPart, ...], float]


def non_finite_field(obj: Any, path: tuple[PathPart, ...] = ()) -> Found | None:
    """(path, value) of the first infinite or NaN float inside `obj`, or None."""
    if isinstance(obj, float):
        return None if math.isfinite(obj) else (path, obj)
    items = obj.items() if isinstance(obj, dict) else (
        enumerate(obj) if isinstance(obj, (list, tuple)) else ())
    for key, item in items:
        found = non_finite_field(item, (*path, key if isinstance(key, int) else str(key)))
        if found is not None:
            return found
    return None


def check_finite(obj: Any, where: str = "JSON") -> None:
    """A non-finite number inside `obj` is a UserError `WHERE: field.path: ...` (JSON has no
    infinity or NaN), raised before anything is written."""
    found = non_finite_field(obj)
    if found is not None:
        raise UserError(f"{where}: {format_path(found[0])}: {found[1]} is not a finite "
                        "number and JSON cannot hold one; a result overflowed (are the "
                        "inputs' magnitudes sensible?); nothing was written")


def dumps_json(obj: Any, where: str = "JSON", indent: int | None = 2) -> str:
    """Deterministic JSON: sorted keys, fixed indentation (None: one line), trailing newline;
    non-finite numbers refused (`check_finite`)."""
    check_finite(obj, where)
    return json.dumps(obj, indent=indent, sort_keys=True, allow_nan=False) + "\n"


def write_json_atomic(path: Path, obj: Any) -> None:
    write_text_atomic(path, dumps_json(obj, Path(path).name))

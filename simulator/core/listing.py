"""`yaml_names(folder)`: the names (less `.yaml`) of the YAML files in a folder, sorted, and
listed again only when the folder changes. Catalogs are looked up on every sweep point (its
device, links and model are checked by name), and a listing costs far more than a `stat`.

A folder's modification time changes when a file is added, removed or renamed, but only to
the kernel's clock tick: two changes within one tick leave one time. As git does with its
index ("racy git"), a folder changed within the last `SETTLE_NS` is listed every time, so a
listing is reused only once its folder's time can no longer hide a change. A folder that is
not a plain directory (package data inside a zip) is listed every time.
"""

from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path
from typing import Any

YAML = ".yaml"
SETTLE_NS = 2_000_000_000


def _list(folder: Any) -> tuple[str, ...]:
    return tuple(sorted(p.name[:-len(YAML)] for p in folder.iterdir() if p.name.endswith(YAML)))


@lru_cache(maxsize=256)
def _listed(folder: Path, mtime_ns: int) -> tuple[str, ...]:
    return _list(folder)


def yaml_names(folder: Any) -> tuple[str, ...]:
    """Sorted names of `folder`'s `*.yaml` files; () if it is not a folder."""
    if not isinstance(folder, Path):
        return _list(folder) if folder.is_dir() else ()
    try:
        mtime_ns = folder.stat().st_mtime_ns
        if time.time_ns() - mtime_ns < SETTLE_NS:
            return _list(folder)
        return _listed(folder, mtime_ns)
    except (FileNotFoundError, NotADirectoryError):
        return ()

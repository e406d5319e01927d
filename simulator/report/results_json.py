"""results.json: one object per scenario plus the provenance of the run.

Layout: `{"title", "description", "scenarios": [row, ...], "provenance": {...}}`, keys
sorted, floats as Python writes them (shortest round-trip form). Provenance holds the
validated configuration, its sha256, package versions, the git commit of the simulator's
source (when it is a git checkout) and the date. Everything but `provenance.date` is
determined by the experiment file and the code, so re-running an experiment reproduces
the file byte for byte apart from that one line.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from simulator.core.version import VERSION
from simulator.report.atomic import write_json_atomic

FILE_NAME = "results.json"
PACKAGES = ("simpy", "numpy", "networkx", "pydantic", "matplotlib", "PyYAML", "rich")
SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the package


def results_document(title: str, description: str, rows: list[dict[str, Any]],
                     provenance: dict[str, Any]) -> dict[str, Any]:
    return {"title": title, "description": description, "scenarios": rows,
            "provenance": provenance}


def write_results_json(folder: Path, document: dict[str, Any]) -> Path:
    path = folder / FILE_NAME
    write_json_atomic(path, document)
    return path


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def config_dict(experiment: BaseModel) -> dict[str, Any]:
    return experiment.model_dump(mode="json")


def config_sha256(experiment: BaseModel) -> str:
    """sha256 of the validated configuration as canonical JSON (formatting-independent)."""
    return hashlib.sha256(canonical_json(config_dict(experiment)).encode()).hexdigest()


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"simulator": VERSION,
                                       "python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name.lower()] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name.lower()] = None
    return versions


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=SOURCE_ROOT, capture_output=True, text=True,
                             timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_state() -> dict[str, Any]:
    """Commit of the simulator's source tree and whether it had uncommitted changes; None
    where the package is not a checkout's own top level (an installed copy, say in a virtual
    environment inside some other repository, whose commit would not be the simulator's)."""
    top = _git("rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != SOURCE_ROOT:
        return {"commit": None, "dirty": None}
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def provenance(experiment: BaseModel, experiment_file: str, quick: bool) -> dict[str, Any]:
    return {"config": config_dict(experiment), "config_sha256": config_sha256(experiment),
            "experiment_file": experiment_file, "quick": quick,
            "packages": package_versions(), "git": git_state(),
            "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}

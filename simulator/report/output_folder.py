"""A run's output folder: what goes into it (results.json, results.csv, trace.json, the
figures) and how it gets there without ever losing a file of the user's.

- Ownership. Every folder a run writes holds `.simulator-manifest.json`: the program, its
  version and the names of the files it wrote. A re-run into such a folder replaces (or,
  if no longer produced, removes) only the files listed there; files the user added are
  left alone. An existing folder without a manifest is used only if it is empty. A file of
  the user's where a new result would go is refused (one line, exit 2), nothing touched.
  The manifest holds no dates or hashes, so the same inputs still give the same folder
  byte for byte apart from results.json's date.
- Atomicity. Files are written into a staging folder, inside the destination if it exists
  (else beside it), and moved into place one by one with os.replace, results.json last; a
  manifest listing old and new names goes in first, so a crash leaves whole files only,
  each of them either the user's or listed. SIGINT and SIGTERM wait for the moves to
  finish; before them, they remove the staging folder (SIGTERM exits with status 143).
- Leftovers. A staging folder is named `.simulator-staging-*` (inside) or
  `.NAME.simulator-staging-*` (beside), holds a marker file and is locked (flock) while
  its run is alive. The next run into the same destination removes those whose lock is
  free (and those left empty), and nothing else: after SIGKILL or a power cut, the next
  run cleans up.
- Links. `--out` that is a symlink to a folder writes into that folder; the link stays.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from simulator.config.schema import Outputs
from simulator.core.errors import UserError
from simulator.core.version import VERSION
from simulator.engine.trace import Span
from simulator.report.atomic import dumps_json, write_bytes_atomic, write_json_atomic
from simulator.report.chrome_trace import LaunchCost, trace_document, write_chrome_trace
from simulator.report.figure_data import figure_data, write_figure_data
from simulator.report.published_table import published_table, write_published_table
from simulator.report.report_page import write_report
from simulator.report.results_csv import write_results_csv
from simulator.report.results_json import results_document, write_results_json
from simulator.results.prediction import Prediction

try:
    import fcntl
except ImportError:  # not POSIX: no locks, so leftovers are never taken for dead (kept)
    fcntl = None  # type: ignore[assignment]

PROGRAM = "simulator"
MANIFEST = ".simulator-manifest.json"
STAGING_MARK = ".simulator-staging"  # marker file inside every staging folder
STAGING_INFIX = "simulator-staging-"
LAST = "results.json"  # moved last: a folder with a new results.json is complete
RESERVED = {MANIFEST, STAGING_MARK}
TERMINATED_EXIT = 128 + signal.SIGTERM


class Terminated(SystemExit):
    """SIGTERM while writing: unwinds like an exception (staging removed), exits 143."""


@dataclass(frozen=True)
class Manifest:
    """The names of the files a run wrote into a folder (while files move: old and new)."""

    files: frozenset[str]

    def owns(self, folder: Path, name: str) -> bool:
        """`folder/name` is listed and is still a plain file (not a link or a folder)."""
        try:
            return name in self.files and stat.S_ISREG(os.lstat(folder / name).st_mode)
        except FileNotFoundError:
            return False


@dataclass(frozen=True)
class Destination:
    """An --out folder as the user named it (for messages) and with symlinks followed."""

    shown: Path
    real: Path

    def show(self, name: str) -> Path:
        return self.shown / name


def default_folder(experiment_file: Path, root: Path = Path("results")) -> Path:
    """results/<experiment stem>-<UTC time>, with -2, -3 ... if that exists already."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = root / f"{experiment_file.stem}-{stamp}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def destination(target: Path) -> Destination:
    try:
        real = Path(target).resolve()
    except (OSError, RuntimeError) as err:  # a symlink loop, an unreadable folder
        raise UserError(f"{target}: cannot follow this --out path ({err})") from None
    return Destination(Path(target), real)


def check_target(target: Path) -> Manifest | None:
    """Refuse, before anything runs, an --out we must not write into; returns its manifest."""
    return _check(destination(target))


def _check(dest: Destination) -> Manifest | None:
    if dest.real.is_dir():
        return _check_folder(dest)
    if dest.real.exists():
        raise UserError(f"{dest.shown}: --out must be a folder, but this is a file; "
                        "choose another --out")
    ancestor = next(p for p in dest.real.parents if p.exists())
    if not ancestor.is_dir():
        raise UserError(f"{dest.shown}: cannot create this folder: {ancestor} is a file")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UserError(f"{dest.shown}: cannot create this folder: {ancestor} is not writable")
    return None


def _check_folder(dest: Destination) -> Manifest | None:
    if not os.access(dest.real, os.W_OK | os.X_OK):
        raise UserError(f"{dest.shown}: folder is not writable; choose another --out")
    manifest = read_manifest(dest)
    if manifest is None:
        if any(not _is_staging(entry, dest.real) for entry in dest.real.iterdir()):
            raise UserError(f"{dest.shown}: not a results folder of this simulator (no "
                            f"{MANIFEST}) and not empty; choose another --out")
        return None
    for name in sorted(manifest.files):
        if os.path.lexists(dest.real / name) and not manifest.owns(dest.real, name):
            raise UserError(f"{dest.show(name)}: listed in {MANIFEST} but no longer a plain "
                            "file; move it away or choose another --out")
    return manifest


def _safe_name(name: Any) -> bool:
    return (isinstance(name, str) and name not in RESERVED | {"", ".", ".."}
            and "/" not in name and "\\" not in name and "\0" not in name)


def parse_manifest(doc: Any) -> Manifest | None:
    """The manifest in a loaded JSON document, or None if it is not one of ours."""
    if not isinstance(doc, dict) or doc.get("program") != PROGRAM:
        return None
    files = doc.get("files")
    if not isinstance(files, list) or not all(_safe_name(name) for name in files):
        return None
    return Manifest(frozenset(files))


def read_manifest(dest: Destination) -> Manifest | None:
    """The folder's manifest; None if it has none; a malformed one is refused."""
    path = dest.real / MANIFEST
    if not os.path.lexists(path):
        return None
    try:
        doc = json.loads(path.read_text()) if not path.is_symlink() else None
    except (OSError, UnicodeDecodeError, ValueError):
        doc = None
    manifest = parse_manifest(doc)
    if manifest is None:
        raise UserError(f"{dest.show(MANIFEST)}: not a manifest this simulator wrote "
                        "(unreadable or malformed); choose another --out")
    return manifest


def manifest_document(manifest: Manifest) -> dict[str, Any]:
    return {"program": PROGRAM, "version": VERSION,
            "files": sorted(manifest.files),
            "note": "written by `python -m simulator run` (or `sweep`); a re-run into this "
                    "folder replaces the files listed here and leaves every other file alone"}


def _staging_pattern(folder: Path, dest_real: Path) -> re.Pattern[str]:
    prefix = f".{STAGING_INFIX}" if folder == dest_real else f".{dest_real.name}.{STAGING_INFIX}"
    return re.compile(re.escape(prefix) + r"[A-Za-z0-9_]+")


def _is_staging(path: Path, dest_real: Path) -> bool:
    """A staging folder this program made for `dest_real`: its name says so, and it holds
    our marker, or nothing (or only part of the marker: killed while making it)."""
    if not _staging_pattern(path.parent, dest_real).fullmatch(path.name):
        return False
    names: list[str] | None = None
    try:
        names = os.listdir(path) if stat.S_ISDIR(os.lstat(path).st_mode) else None
        mark = path / STAGING_MARK
        text = mark.read_text() if stat.S_ISREG(os.lstat(mark).st_mode) else None
    except FileNotFoundError:
        return names == []
    except (OSError, UnicodeDecodeError):
        return False
    return text is not None and (text.startswith(_mark_text())
                                 or (names == [STAGING_MARK] and _mark_text().startswith(text)))


def _mark_text() -> str:
    return f"staging folder of {PROGRAM}: removed when its run ends, or by the next run\n"


DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)


def _remove_if_dead(staging: Path, dest_real: Path) -> bool:
    """Remove a staging folder whose run has ended: its lock (on the folder itself, held
    by the run from the folder's first instant, released by any death) is free."""
    if fcntl is None:
        return False
    try:
        fd = os.open(staging, DIR_FLAGS)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held while removing it
        if _is_staging(staging, dest_real):
            shutil.rmtree(staging, ignore_errors=True)
            return True
        return False
    except OSError:
        return False
    finally:
        os.close(fd)


def clean_leftovers(dest_real: Path) -> list[Path]:
    """Remove dead staging folders of earlier runs into `dest_real`; returns them."""
    removed = []
    for folder in (dest_real, dest_real.parent):
        entries = list(folder.iterdir()) if folder.is_dir() else []
        for entry in entries:
            if _is_staging(entry, dest_real) and _remove_if_dead(entry, dest_real):
                removed.append(entry)
    return removed


def _created_parents(folder: Path) -> list[Path]:
    """Create `folder` and its missing parents; returns those created, innermost first."""
    missing = []
    for parent in [folder, *folder.parents]:
        if parent.exists():
            break
        missing.append(parent)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"{folder}: cannot create this folder ({err.strerror})") from None
    return missing


def _make_staging(dest_real: Path) -> tuple[Path, int]:
    """A new staging folder for `dest_real`, marked, and the descriptor holding its lock."""
    parent = dest_real if dest_real.is_dir() else dest_real.parent
    prefix = f".{STAGING_INFIX}" if parent == dest_real else f".{dest_real.name}.{STAGING_INFIX}"
    for _ in range(100):  # another run may take a fresh one for an empty leftover: again
        try:
            staging = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
        except OSError as err:
            raise UserError(f"{parent}: cannot write here ({err.strerror})") from None
        fd = _lock_new_folder(staging)
        if fd is not None:
            return staging, fd
    raise RuntimeError(f"{parent}: could not make a staging folder")


def _lock_new_folder(staging: Path) -> int | None:
    """Lock and mark a folder just made; None if a cleaner removed it first."""
    fd = os.open(staging, DIR_FLAGS)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        if not os.path.samestat(os.fstat(fd), os.lstat(staging)):
            raise FileNotFoundError(staging)
        mark = os.open(staging / STAGING_MARK, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.write(mark, f"{_mark_text()}pid {os.getpid()}\n".encode())
        os.close(mark)
        return fd
    except FileNotFoundError:
        os.close(fd)
        return None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        os.close(fd)
        raise


def _discard(staging: Path | None, created: list[Path]) -> None:
    if staging is not None:
        shutil.rmtree(staging, ignore_errors=True)
    for parent in created:  # innermost first; only folders this run made and left empty
        if parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(TERMINATED_EXIT)


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """While staging, SIGTERM raises Terminated (so the staging folder goes) instead of
    killing the process outright."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM wait while files move, then act as they would have (Python runs
    handlers in the main thread only, so a mask would not hold them: they are caught)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, lambda n, _: caught.append(n)) for signum in held}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
    if caught:
        signal.raise_signal(caught[0])


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Exclusive lock on a folder: two runs into one folder move their files in turn."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextmanager
def staged_folder(target: Path, keep_others: bool = False) -> Iterator[Path]:
    """Yield an empty staging folder to write into; on success its files go into `target`
    (see the module docstring); on any failure `target` is left as it was. With
    `keep_others` (adding figures to a folder a run wrote), the files of ours not staged
    again stay and stay listed."""
    dest = destination(target)
    _check(dest)
    created: list[Path] = []
    staging: Path | None = None
    lock_fd = -1
    try:
        with _sigterm_unwinds():
            with _signals_deferred():  # a signal acts once we know what to remove
                created[:] = _created_parents(dest.real.parent)
                clean_leftovers(dest.real)
                staging, lock_fd = _make_staging(dest.real)
            yield staging
            _commit(staging, dest, created, keep_others)
    except BaseException as err:
        _discard(staging, created)
        if isinstance(err, Terminated):
            print("error: terminated", file=sys.stderr)
        raise
    finally:
        if lock_fd >= 0:
            os.close(lock_fd)


def _staged_files(staging: Path) -> frozenset[str]:
    """Names of the files staged, given the usual permissions (staging is private)."""
    mask = os.umask(0)
    os.umask(mask)
    files = set()
    for path in staging.iterdir():
        if path.name in RESERVED:
            continue
        if not _safe_name(path.name) or path.is_symlink() or not path.is_file():
            raise ValueError(f"{path}: only plain files can be staged")
        path.chmod(0o666 & ~mask)
        files.add(path.name)
    return frozenset(files)


def _commit(staging: Path, dest: Destination, created: list[Path], keep_others: bool) -> None:
    new = _staged_files(staging)
    created[:0] = _created_parents(dest.real)
    with _locked(dest.real), _signals_deferred():
        old = _check(dest) or Manifest(frozenset())  # again: it may have changed meanwhile
        _refuse_collisions(dest, old, new)
        _write_manifest(staging, dest.real, Manifest(old.files | new))  # a crash: all ours
        for name in sorted(new, key=lambda n: (n == LAST, n)):
            os.replace(staging / name, dest.real / name)
        kept = old.files - new if keep_others else frozenset()
        for name in sorted(old.files - new - kept):
            if old.owns(dest.real, name):
                (dest.real / name).unlink()
        _write_manifest(staging, dest.real, Manifest(new | kept))
        _fsync_folder(dest.real)
        shutil.rmtree(staging, ignore_errors=True)


def claim_file(target: Path, name: str) -> Path:
    """Create `target` if needed and list `name` in its manifest before a byte of it is
    written, for a file that grows while a command runs (a sweep's points journal); returns
    its path. Refused like any result file: an existing file of the user's, or a folder that
    is not ours and not empty."""
    dest = destination(target)
    _check(dest)
    created = _created_parents(dest.real)
    try:
        with _locked(dest.real), _signals_deferred():
            old = _check(dest) or Manifest(frozenset())
            if name not in old.files:
                _refuse_collisions(dest, old, frozenset({name}))
                staging, fd = _make_staging(dest.real)
                try:
                    _write_manifest(staging, dest.real, Manifest(old.files | {name}))
                finally:
                    shutil.rmtree(staging, ignore_errors=True)
                    os.close(fd)
    except BaseException:
        _discard(None, created)
        raise
    return dest.real / name


def _refuse_collisions(dest: Destination, old: Manifest, new: frozenset[str]) -> None:
    for name in sorted(new):
        if os.path.lexists(dest.real / name) and not old.owns(dest.real, name):
            raise UserError(f"{dest.show(name)}: exists and was not written by this "
                            "simulator; move it away or choose another --out")


def _write_manifest(staging: Path, folder: Path, manifest: Manifest) -> None:
    mask = os.umask(0)
    os.umask(mask)
    write_json_atomic(staging / MANIFEST, manifest_document(manifest))
    (staging / MANIFEST).chmod(0o666 & ~mask)
    os.replace(staging / MANIFEST, folder / MANIFEST)


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def launch_cost_of(prediction: Prediction) -> LaunchCost:
    """Host time to launch a span's op, from the device model (None if it cannot say)."""
    graph, device = prediction.graph, prediction.device

    def cost(span: Span) -> float | None:
        if span.name not in graph or not hasattr(device, "launch_s"):
            return None
        return float(device.launch_s(graph.op(span.name)))

    return cost


def write_rendered(folder: Path, rendered: dict[str, dict[str, bytes]]) -> list[Path]:
    """Write drawn figures ({stem: {format: bytes}}) into a staging folder."""
    written = []
    for stem, by_format in rendered.items():
        for fmt, data in by_format.items():
            path = folder / f"{stem}.{fmt}"
            write_bytes_atomic(path, data)
            written.append(path)
    return written


def saved_form(obj: Any) -> Any:
    """`obj` as it reads back from its JSON file: figures are drawn from exactly that."""
    return json.loads(dumps_json(obj))


def write_run(target: Path, title: str, description: str,
              scenarios: list[tuple[dict[str, Any], Prediction]], provenance: dict[str, Any],
              outputs: Outputs, figures: bool,
              findings: dict[str, Any] | None = None) -> list[Path]:
    """Write the whole output folder atomically; returns the final paths written.
    `findings` (comparisons, passes_implied, assumptions) go into results.json and
    published.md."""
    rows = [row for row, _ in scenarios]
    drawables = [(row, pred, launch_cost_of(pred)) for row, pred in scenarios]
    data = figure_data(title, drawables)
    with staged_folder(target) as folder:
        written = [write_results_csv(folder, rows), write_figure_data(folder, data)]
        extra = findings or {}
        table = write_published_table(folder, published_table(
            rows, extra.get("comparisons"), extra.get("passes_implied"),
            extra.get("assumptions")))
        written += [table] if table else []
        if outputs.trace:
            traced = [(row["name"], pred.trace, cost) for row, pred, cost in drawables
                      if pred.trace is not None]
            written.append(write_chrome_trace(folder, trace_document(traced, title)))
        rendered: dict[str, dict[str, bytes]] = {}
        if figures and outputs.figures:
            from simulator.report.figure_style import style_for
            from simulator.report.figures import figure_makers, render

            style = style_for(outputs.style, outputs.width)
            makers = figure_makers(saved_form(rows), saved_form(data)["scenarios"], title,
                                   outputs.timeline, outputs.top_layers, style)
            rendered = render(makers, list(outputs.formats), style)
            written += write_rendered(folder, rendered)
        written += write_report(folder, title, description, rows, provenance, rendered, extra)
        document = {**results_document(title, description, rows, provenance), **extra}
        written.append(write_results_json(folder, document))
    return [Path(target) / path.name for path in written]

"""A sweep's journal: `points.jsonl` in the output folder, one JSON record per finished point,
appended the moment the point finishes.

The file is listed in the folder's manifest before its first byte (`claim_file`), so a rerun
may append to it and a user's file of that name is never touched. Each record is one line
written by a single `write` on a descriptor opened with O_APPEND: a signal in Python runs its
handler between two statements, so SIGINT or SIGTERM never leaves half a line, and after a
SIGKILL or a power cut at most the last line is torn; opening the journal again drops a torn
last line (truncating the file to its last whole line). Records are read back by key, the
last one of a key winning (`--retry-failed` appends a point's new record after its old one).
An exclusive record lock on the file (POSIX lockf: held by the sweep's process only, not by
the worker processes it forks, and gone the moment it dies) keeps two sweeps from writing
into one folder at once.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import TracebackType
from typing import Any

from simulator.core.errors import UserError
from simulator.report.output_folder import claim_file

try:
    import fcntl
except ImportError:  # not POSIX: no lock (one sweep per folder is then up to the user)
    fcntl = None  # type: ignore[assignment]

JOURNAL = "points.jsonl"


def record_line(record: dict[str, Any]) -> bytes:
    """One record as one line of canonical JSON (sorted keys: same record, same bytes)."""
    return (json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False)
            + "\n").encode()


def _whole_records(data: bytes) -> tuple[list[dict[str, Any]], int]:
    """The records of the whole lines and the length of the good prefix (a torn or unreadable
    line ends the journal: nothing after it was written by a finished write)."""
    records, good = [], 0
    for line in data.splitlines(keepends=True):
        try:
            if not line.endswith(b"\n"):
                raise ValueError("torn")
            record = json.loads(line)
            if not isinstance(record, dict) or not isinstance(record.get("key"), str):
                raise ValueError("not a record")
        except ValueError:
            break
        records.append(record)
        good += len(line)
    return records, good


def _read_all(fd: int) -> bytes:
    chunks, offset = [], 0
    while chunk := os.pread(fd, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


class PointsJournal:
    """The journal of one output folder: `with PointsJournal(folder) as journal:` reads what
    is there (`journal.records`, by key) and `journal.append(record)` adds a point."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.records: dict[str, dict[str, Any]] = {}
        self._fd = -1

    def __enter__(self) -> PointsJournal:
        path = claim_file(self.folder, JOURNAL)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND
                           | getattr(os, "O_NOFOLLOW", 0), 0o666)
        try:
            self._lock()
            data = _read_all(self._fd)  # not through another descriptor: closing one drops
            # the process's record lock on the file
            records, good = _whole_records(data)
            if good < len(data):
                os.ftruncate(self._fd, good)
            self.records = {r["key"]: r for r in records}
        except BaseException:
            os.close(self._fd)
            raise
        return self

    def _lock(self) -> None:
        if fcntl is None:
            return
        try:
            fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UserError(f"{self.folder}: another sweep is writing into this folder; wait "
                            "for it or choose another --out") from None

    def append(self, record: dict[str, Any]) -> None:
        line = record_line(record)
        written = os.write(self._fd, line)
        if written != len(line):  # a full disk: say so rather than keep a torn line
            os.ftruncate(self._fd, os.lseek(self._fd, 0, os.SEEK_END) - written)
            raise UserError(f"{self.folder / JOURNAL}: the disk is full; free some space and "
                            "run the same command again to go on")
        self.records[record["key"]] = json.loads(line)  # as it reads back from the file

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._fd >= 0:
            try:
                os.fsync(self._fd)
            except OSError:
                pass
            os.close(self._fd)
            self._fd = -1

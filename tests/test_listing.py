"""simulator.core.listing: catalog folders are listed once, and again when they change."""

from __future__ import annotations

import os

from simulator.core import listing
from simulator.core.listing import yaml_names


def _age(folder, seconds: float) -> None:
    """Set the folder's modification time `seconds` into the past."""
    old_ns = listing.time.time_ns() - int(seconds * 1e9)
    os.utime(folder, ns=(old_ns, old_ns))


def test_yaml_files_sorted_other_files_left_out(tmp_path):
    for name in ("b.yaml", "a.yaml", "notes.txt", "c.yml"):
        (tmp_path / name).write_text("x: 1\n")
    assert yaml_names(tmp_path) == ("a", "b")
    assert yaml_names(tmp_path / "missing") == ()
    assert yaml_names(tmp_path / "a.yaml") == ()


def test_a_settled_folder_is_listed_once_and_again_when_it_changes(tmp_path, monkeypatch):
    (tmp_path / "a.yaml").write_text("x: 1\n")
    _age(tmp_path, 60)
    assert yaml_names(tmp_path) == ("a",)
    calls = []
    monkeypatch.setattr(listing, "_list", lambda folder: calls.append(folder) or ("stale",))
    assert yaml_names(tmp_path) == ("a",) and calls == []  # reused: no listing
    monkeypatch.undo()
    (tmp_path / "b.yaml").write_text("x: 1\n")  # the folder's time moves on
    _age(tmp_path, 30)
    assert yaml_names(tmp_path) == ("a", "b")


def test_a_folder_changed_within_one_clock_tick_is_not_trusted(tmp_path):
    """Two changes within one tick of the file system's clock leave one modification time:
    a folder changed less than SETTLE_NS ago is listed every time."""
    (tmp_path / "a.yaml").write_text("x: 1\n")
    stamp = tmp_path.stat().st_mtime_ns
    assert yaml_names(tmp_path) == ("a",)
    (tmp_path / "b.yaml").write_text("x: 1\n")
    os.utime(tmp_path, ns=(stamp, stamp))  # as if in the same tick as the first change
    assert yaml_names(tmp_path) == ("a", "b")

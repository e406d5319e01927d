"""`run --out DIR` never loses a file of the user's: a folder is ours only by its manifest,
re-runs replace only listed files, foreign folders, files and malformed manifests are
refused with one line and exit 2, symlinks stay links, and staging folders left by
SIGTERM or SIGKILL are removed (by the run itself, or by the next run into the folder)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import simulator
from simulator.__main__ import main
from simulator.report import output_folder
from simulator.report.output_folder import MANIFEST, STAGING_MARK

ROOT = Path(__file__).resolve().parents[1]
BANDWIDTH = ROOT / "experiments" / "what_if_bandwidth.yaml"  # ~2 s with figures
SMALL = """title: Small
scenarios:
  - name: cpu
    workload: {model: mlp, batch: 32, mode: train, dataset_size: 1000}
    hardware: {device: i7-10700}
  - name: gpu
    workload: {model: mlp, batch: 32, mode: infer}
    hardware: {device: gtx-1080}
"""
THESIS = "\\documentclass{article} % a year of work\n"


def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL)
    return path


def run(experiment: Path, out: Path | str, quick: bool = True) -> int:
    return main(["run", str(experiment), "--out", str(out), *(["--quick"] if quick else [])])


def listed(folder: Path) -> list[str]:
    return json.loads((folder / MANIFEST).read_text())["files"]


def stray(*folders: Path) -> list[Path]:
    """Hidden folders anywhere under `folders`: staging folders (or look-alikes), and what
    older versions left (`.out.partial-*`, `..old-*`)."""
    return [p for f in folders if f.is_dir() for p in f.rglob(".*") if p.is_dir()]


def one_line_error(capsys: pytest.CaptureFixture[str], *words: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and all(word in err for word in words), err
    return err


def test_a_users_file_beside_a_results_json_survives(tmp_path, capsys):
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "results.json").write_text("{}")  # not ours: no manifest
    (out / "thesis.tex").write_text(THESIS)
    assert run(small(tmp_path), out) == 2
    one_line_error(capsys, str(out), "not a results folder", MANIFEST, "another --out")
    assert (out / "thesis.tex").read_text() == THESIS
    assert sorted(p.name for p in out.iterdir()) == ["results.json", "thesis.tex"]
    assert stray(tmp_path) == []


def test_a_new_folder_gets_a_manifest_of_exactly_the_files_written(tmp_path):
    out = tmp_path / "out"
    assert run(small(tmp_path), out) == 0
    doc = json.loads((out / MANIFEST).read_text())
    assert doc["program"] == "simulator" and doc["version"] == simulator.__version__
    assert sorted(doc["files"]) == sorted(p.name for p in out.iterdir() if p.name != MANIFEST)
    assert {"results.json", "results.csv", "trace.json"} <= set(doc["files"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "small.yaml"]


def test_user_files_in_a_manifest_folder_survive_a_rerun(tmp_path):
    out = tmp_path / "out"
    assert run(small(tmp_path), out, quick=False) == 0
    (out / "thesis.tex").write_text(THESIS)
    (out / "notes").mkdir()
    (out / "notes" / "n.md").write_text("mine")
    (out / "results.csv").write_text("stale")  # ours: a re-run replaces it
    figures = {name for name in listed(out) if name.endswith(".png")}
    assert figures
    assert run(small(tmp_path), out, quick=True) == 0  # no figures this time
    assert (out / "thesis.tex").read_text() == THESIS
    assert (out / "notes" / "n.md").read_text() == "mine"
    assert (out / "results.csv").read_text() != "stale"
    names = {p.name for p in out.iterdir()}
    assert not figures & names  # our old figures went with the run that made them
    assert names == set(listed(out)) | {MANIFEST, "thesis.tex", "notes"}
    assert stray(tmp_path) == []


def test_a_non_manifest_non_empty_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / ".hidden").write_text("mine too")
    assert run(small(tmp_path), out) == 2
    one_line_error(capsys, f"error: {out}: ", "another --out")
    assert [p.name for p in out.iterdir()] == [".hidden"]
    assert stray(tmp_path) == []


def test_an_empty_existing_folder_is_used(tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    assert run(small(tmp_path), out) == 0
    assert (out / "results.json").is_file() and stray(tmp_path) == []


def test_a_users_file_where_a_result_would_go_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    assert run(small(tmp_path), out, quick=True) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (out / "breakdown.png").write_bytes(b"my own figure")  # not listed: the user's
    assert run(small(tmp_path), out, quick=False) == 2
    one_line_error(capsys, str(out / "breakdown.png"), "not written by", "another --out")
    assert (out / "breakdown.png").read_bytes() == b"my own figure"
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name != "breakdown.png"} \
        == before
    assert stray(tmp_path) == []


@pytest.mark.parametrize("manifest", ["{not json", json.dumps({"program": "other"}),
                                      json.dumps({"program": "simulator",
                                                  "files": ["../victim.txt"]})])
def test_a_malformed_manifest_is_refused(tmp_path, capsys, manifest):
    out = tmp_path / "out"
    out.mkdir()
    (out / MANIFEST).write_text(manifest)
    (tmp_path / "victim.txt").write_text("keep")
    assert run(small(tmp_path), out) == 2
    one_line_error(capsys, str(out / MANIFEST), "malformed")
    assert (tmp_path / "victim.txt").read_text() == "keep"
    assert (out / MANIFEST).read_text() == manifest


def test_out_dot_inside_a_results_folder_leaves_no_stray_folder(tmp_path, monkeypatch):
    out = tmp_path / "out"
    experiment = small(tmp_path)
    assert run(experiment, out) == 0
    (out / "thesis.tex").write_text(THESIS)
    monkeypatch.chdir(out)
    assert run(experiment, ".") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "small.yaml"]
    assert sorted(p.name for p in out.iterdir()) == sorted([*listed(out), MANIFEST,
                                                            "thesis.tex"])
    assert (out / "thesis.tex").read_text() == THESIS


def test_a_symlinked_out_stays_a_link_and_its_target_gets_the_files(tmp_path):
    real, link = tmp_path / "disk" / "real", tmp_path / "link"
    real.mkdir(parents=True)
    link.symlink_to(real, target_is_directory=True)
    for _ in range(2):  # a new (empty) target, then a manifest one
        assert run(small(tmp_path), link) == 0
        assert link.is_symlink() and os.readlink(link) == str(real)
        assert (real / "results.json").is_file() and (real / MANIFEST).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk", "link", "small.yaml"]
    assert stray(tmp_path) == []


def test_a_dangling_symlink_gets_its_target_created(tmp_path):
    real, link = tmp_path / "later" / "real", tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    assert run(small(tmp_path), link) == 0
    assert link.is_symlink() and (real / "results.json").is_file()


@pytest.mark.parametrize("as_link", [False, True])
def test_an_existing_file_as_out_is_refused(tmp_path, capsys, as_link):
    mine = tmp_path / "notes.txt"
    mine.write_text("precious")
    out = mine
    if as_link:
        out = tmp_path / "link"
        out.symlink_to(mine)
    assert run(small(tmp_path), out) == 2
    one_line_error(capsys, f"error: {out}: ", "must be a folder")
    assert mine.read_text() == "precious" and out.is_symlink() == as_link
    assert stray(tmp_path) == []


def test_a_parent_that_is_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert run(small(tmp_path), tmp_path / "file" / "out") == 2
    one_line_error(capsys, "is a file")


def leave_staging(dest: Path, hold_s: float = 0.0) -> subprocess.Popen[bytes]:
    """A process that makes a staging folder for `dest` and, after `hold_s`, dies
    without cleaning up (as after SIGKILL); returns it once the folder exists."""
    code = ("import os, sys, time; from pathlib import Path; "
            "from simulator.report.output_folder import _make_staging; "
            "s, fd = _make_staging(Path(sys.argv[1]).resolve()); print(s, flush=True); "
            "time.sleep(float(sys.argv[2])); os._exit(9)")
    child = subprocess.Popen([sys.executable, "-c", code, str(dest), str(hold_s)],
                             cwd=ROOT, stdout=subprocess.PIPE)
    assert child.stdout is not None and child.stdout.readline()
    return child


def test_staging_leftovers_are_cleaned_by_the_next_run_and_only_they(tmp_path):
    out = tmp_path / "out"
    leave_staging(out).wait()  # beside a folder not yet made
    assert run(small(tmp_path), out) == 0
    assert stray(tmp_path) == []
    leave_staging(out).wait()  # inside the folder
    (dead,) = stray(out)
    (out / ".simulator-staging-empty").mkdir()  # killed before its marker: nothing to lose
    look_alikes = [out / ".simulator-staging-user", tmp_path / ".other.simulator-staging-x"]
    for folder in look_alikes:  # right name but no marker / a marker, another destination
        folder.mkdir()
    (look_alikes[0] / "mine.txt").write_text("keep")
    shutil.copy(dead / STAGING_MARK, look_alikes[1] / STAGING_MARK)
    assert run(small(tmp_path), out) == 0
    assert sorted(stray(tmp_path)) == sorted(look_alikes)
    assert (look_alikes[0] / "mine.txt").read_text() == "keep"


def test_a_live_runs_staging_folder_is_not_taken_for_a_leftover(tmp_path):
    out = tmp_path / "out"
    assert run(small(tmp_path), out) == 0
    child = leave_staging(out, hold_s=60)
    try:
        assert run(small(tmp_path), out) == 0
        assert len(stray(tmp_path)) == 1  # still there: its run holds the lock
    finally:
        child.kill()
        child.wait()
    assert run(small(tmp_path), out) == 0
    assert stray(tmp_path) == []


def start_run(out: Path) -> subprocess.Popen[str]:
    """`python -m simulator run` with figures (the slow part) as a user starts it."""
    return subprocess.Popen([sys.executable, "-m", "simulator", "run", str(BANDWIDTH),
                             "--out", str(out)], cwd=ROOT, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def signal_while_staging(child: subprocess.Popen[str], tmp_path: Path, signum: int) -> bool:
    """Send `signum` once a staging folder exists (True), or return False if the run
    ended before one was seen."""
    deadline = time.monotonic() + 120
    while child.poll() is None and time.monotonic() < deadline:
        if stray(tmp_path):
            child.send_signal(signum)
            return True
        time.sleep(0.005)
    return False


def a_previous_run_with_a_users_file(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    assert main(["run", str(BANDWIDTH), "--out", str(out), "--quick"]) == 0
    (out / "thesis.tex").write_text(THESIS)
    return out


def assert_whole(out: Path) -> None:
    """Every file the manifest lists is there and results.json reads."""
    assert set(listed(out)) | {MANIFEST} <= {p.name for p in out.iterdir()}
    assert json.loads((out / "results.json").read_text())["scenarios"]


@pytest.mark.parametrize("existing", [False, True], ids=["new folder", "re-run"])
def test_sigterm_mid_run_removes_its_staging_folder(tmp_path, existing):
    out = a_previous_run_with_a_users_file(tmp_path) if existing else tmp_path / "out"
    child = start_run(out)
    signalled = signal_while_staging(child, tmp_path, signal.SIGTERM)
    _, err = child.communicate(timeout=120)
    assert "Traceback" not in err, err
    # 143: our handler; 0: done before the signal; -15: in the instant after the files moved
    assert child.returncode in (128 + signal.SIGTERM, 0, -signal.SIGTERM), err
    if child.returncode == 128 + signal.SIGTERM:
        assert signalled and err.endswith("error: terminated\n"), err
    assert stray(tmp_path) == []
    if existing:
        assert (out / "thesis.tex").read_text() == THESIS
        assert_whole(out)
    elif out.exists():
        assert_whole(out)


def test_sigterm_the_instant_the_staging_folder_appears(tmp_path, monkeypatch, capsys):
    out, previous = tmp_path / "out", signal.getsignal(signal.SIGTERM)
    real_mkdtemp = tempfile.mkdtemp

    def mkdtemp_then_sigterm(*args: str, **kwargs: str) -> str:
        made = real_mkdtemp(*args, **kwargs)
        if "simulator-staging" in made:  # only while our handler is in place
            os.kill(os.getpid(), signal.SIGTERM)
        return made

    monkeypatch.setattr(output_folder.tempfile, "mkdtemp", mkdtemp_then_sigterm)
    with pytest.raises(SystemExit) as exit_:
        run(small(tmp_path), out)
    assert exit_.value.code == 128 + signal.SIGTERM
    assert capsys.readouterr().err.endswith("error: terminated\n")
    assert stray(tmp_path) == [] and not out.exists()
    assert signal.getsignal(signal.SIGTERM) == previous


def test_sigkill_mid_run_loses_nothing_and_the_next_run_cleans_up(tmp_path):
    out = a_previous_run_with_a_users_file(tmp_path)
    child = start_run(out)
    signal_while_staging(child, tmp_path, signal.SIGKILL)
    child.communicate(timeout=120)
    assert (out / "thesis.tex").read_text() == THESIS
    assert_whole(out)  # old or new files, each whole
    assert main(["run", str(BANDWIDTH), "--out", str(out), "--quick"]) == 0
    assert stray(tmp_path) == [] and (out / "thesis.tex").read_text() == THESIS
    assert {p.name for p in out.iterdir()} == set(listed(out)) | {MANIFEST, "thesis.tex"}


def test_sigint_while_files_move_waits_for_the_moves(tmp_path, monkeypatch):
    out = a_previous_run_with_a_users_file(tmp_path)
    inode = (out / "results.json").stat().st_ino
    real_replace = os.replace

    def interrupted_replace(src: str | Path, dst: str | Path) -> None:
        real_replace(src, dst)
        if Path(dst).parent == out.resolve():  # a move into place, not a write in staging
            os.kill(os.getpid(), signal.SIGINT)  # held until every file has moved

    monkeypatch.setattr(output_folder.os, "replace", interrupted_replace)
    assert main(["run", str(BANDWIDTH), "--out", str(out), "--quick"]) == 130
    monkeypatch.undo()
    assert (out / "results.json").stat().st_ino != inode  # moved last, so all moved
    assert stray(tmp_path) == [] and (out / "thesis.tex").read_text() == THESIS
    assert {p.name for p in out.iterdir()} == set(listed(out)) | {MANIFEST, "thesis.tex"}


def test_provenance_is_the_simulators_own_revision_not_an_enclosing_repos(tmp_path, monkeypatch):
    # regression: an installed copy inside another repository (a venv in a project) reported
    # that project's commit as the simulator's
    import subprocess

    from simulator.report import results_json
    outer = tmp_path / "project"
    installed = outer / ".venv" / "lib" / "site-packages"
    installed.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(outer)], check=True)
    subprocess.run(["git", "-C", str(outer), "-c", "user.name=t", "-c", "user.email=t@t",
                    "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    head = subprocess.run(["git", "-C", str(outer), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()
    monkeypatch.setattr(results_json, "SOURCE_ROOT", outer.resolve())  # a checkout's own top
    assert results_json.git_state() == {"commit": head, "dirty": False}
    monkeypatch.setattr(results_json, "SOURCE_ROOT", installed.resolve())  # inside another
    assert results_json.git_state() == {"commit": None, "dirty": None}

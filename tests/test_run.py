"""`python -m simulator run`: every experiment file runs; results follow the formulas; bad
input is one line, exit 2, no traceback and no output folder; outputs are atomic and
reproducible."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from simulator.__main__ import main
from simulator.config.schema import load_experiment
from simulator.config.sweep import is_sweep_file
from simulator.report import output_folder

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = [p for p in sorted((ROOT / "experiments").glob("*.yaml")) if not is_sweep_file(p)]
SMALL = """title: Small
scenarios:
  - name: cpu
    workload: {model: mlp, batch: 32, mode: train, dataset_size: 1000, epochs: 3}
    hardware: {device: i7-10700}
    published: {time_to_train_s: 0.5, source: a made-up number}
  - name: gpu
    workload: {model: mlp, batch: 32, mode: infer, sync_input: true}
    hardware: {device: gtx-1080}
  - name: too big
    workload: {model: vgg16, batch: 256, mode: train}
    hardware: {device: gt-740m}
"""


def small(tmp_path: Path, text: str = SMALL) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(text)
    return path


def run(args: list[str]) -> int:
    return main(["run", *args])


def results(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())


def needs_cluster(path: Path) -> bool:
    return any(s.hardware.count > 1 for s in load_experiment(path).scenarios)


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_every_experiment_file_runs(path, tmp_path):
    if needs_cluster(path):
        pytest.importorskip("simulator.api.cluster")
    out = tmp_path / "out"
    assert run([str(path), "--out", str(out), "--quick"]) == 0
    doc = results(out)
    names = [s.name for s in load_experiment(path).scenarios]
    assert [r["name"] for r in doc["scenarios"]] == names
    assert {"results.json", "results.csv", "trace.json"} <= {p.name for p in out.iterdir()}
    for row in doc["scenarios"]:
        assert row["status"] in ("ok", "out_of_memory")
        if row["status"] == "ok":
            assert row["step_time_s"] > 0
            assert sum(row["breakdown"].values()) == pytest.approx(row["step_time_s"])


def test_rows_follow_the_documented_formulas(tmp_path, capsys):
    out = tmp_path / "out"
    assert run([str(small(tmp_path)), "--out", str(out)]) == 0
    cpu, gpu, big = results(out)["scenarios"]
    steps = 3 * math.ceil(1000 / 32)
    assert cpu["steps"] == steps and cpu["global_batch"] == 32
    assert cpu["time_to_train_s"] == pytest.approx(steps * cpu["step_time_s"])
    assert cpu["samples_per_s"] == pytest.approx(32 / cpu["step_time_s"])
    assert cpu["cores"] == 8 and cpu["energy_basis"] == "time_to_train_s"
    # power by utilisation (simulator/results/costs.py): idle 10% of TDP, busy = not idle
    # and not waiting for launches
    for row, tdp in ((cpu, 65.0), (gpu, 180.0)):
        parts = row["breakdown"]
        busy = 1 - (parts["idle"] + parts["launch"]) / row["step_time_s"]
        assert row["power_w"] == pytest.approx(0.1 * tdp + 0.9 * tdp * busy)
        assert row["power_peak_w"] == tdp and row["pue"] == 1.0
    assert cpu["energy_j"] == pytest.approx(cpu["power_w"] * cpu["time_to_train_s"])
    assert cpu["simulated_over_published"] == {"time_to_train_s": cpu["time_to_train_s"] / 0.5}
    assert gpu["cores"] == 2560 and gpu["hardware_cost_usd"] == 599.0
    assert gpu["energy_j"] == pytest.approx(gpu["power_w"] * gpu["step_time_s"])
    assert gpu["time_to_train_s"] is None and gpu["sync_input"] is True
    assert big["status"] == "out_of_memory" and big["step_time_s"] is None
    assert big["memory_peak_bytes"] > big["memory_capacity_bytes"]
    printed = capsys.readouterr().out
    assert "[1/3] cpu:" in printed and "out of memory" in printed  # plain lines: not a tty


def test_provenance(tmp_path):
    out = tmp_path / "out"
    assert run([str(small(tmp_path)), "--out", str(out), "--quick"]) == 0
    prov = results(out)["provenance"]
    assert prov["config"]["scenarios"][0]["name"] == "cpu" and prov["quick"] is True
    assert len(prov["config_sha256"]) == 64
    packages = {"simulator", "simpy", "numpy", "networkx", "pydantic", "python"}
    assert packages <= set(prov["packages"])
    assert set(prov["git"]) == {"commit", "dirty"} and prov["date"].endswith("Z")


def test_same_inputs_give_identical_outputs_but_the_date(tmp_path):
    path = small(tmp_path)
    first, second = tmp_path / "a", tmp_path / "b"
    assert run([str(path), "--out", str(first)]) == 0
    assert run([str(path), "--out", str(second)]) == 0
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir()) and "breakdown.svg" in names
    for name in names:
        if name != "results.json":
            assert (first / name).read_bytes() == (second / name).read_bytes(), name
    a, b = results(first), results(second)
    a["provenance"].pop("date"), b["provenance"].pop("date")
    assert a == b


def test_default_folder_is_under_results_named_after_the_experiment(tmp_path, monkeypatch):
    path = small(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert run([str(path), "--quick"]) == 0
    assert run([str(path), "--quick"]) == 0  # a second run in the same second gets its own
    folders = sorted((tmp_path / "results").iterdir())
    assert len(folders) == 2 and all(f.name.startswith("small-") for f in folders)


def test_a_previous_results_folder_is_rewritten_and_the_users_files_kept(tmp_path):
    # regression: a re-run replaced the folder whole, deleting the user's own files in it
    out = tmp_path / "out"
    assert run([str(small(tmp_path)), "--out", str(out), "--quick"]) == 0
    (out / "notes.txt").write_text("the user's")
    assert run([str(small(tmp_path)), "--out", str(out), "--quick"]) == 0
    assert (out / "notes.txt").read_text() == "the user's" and (out / "results.json").is_file()


def test_a_folder_that_is_not_a_results_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    assert run([str(small(tmp_path)), "--out", str(out)]) == 2
    assert "not a results folder" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["thesis.tex"]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_interrupted_write_leaves_no_results(tmp_path, monkeypatch, error):
    def broken(folder, document):
        (folder / "results.json").write_text('{"scenarios": [')  # half written, then gone
        raise error("interrupted while writing")

    monkeypatch.setattr(output_folder, "write_results_json", broken)
    out = tmp_path / "deep" / "out"
    if error is KeyboardInterrupt:
        assert run([str(small(tmp_path)), "--out", str(out)]) == 130
    else:  # a bug rather than bad input: main lets it through, the folder still goes
        with pytest.raises(RuntimeError):
            run([str(small(tmp_path)), "--out", str(out)])
    assert not out.exists() and not (tmp_path / "deep").exists()
    assert list(tmp_path.iterdir()) == [tmp_path / "small.yaml"]


def test_an_interrupted_rerun_keeps_the_previous_results(tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert run([str(small(tmp_path)), "--out", str(out), "--quick"]) == 0
    before = (out / "results.json").read_bytes()

    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(output_folder, "write_chrome_trace", broken)
    assert run([str(small(tmp_path)), "--out", str(out), "--quick"]) == 130
    assert (out / "results.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "small.yaml"]



CLI_BAD = {  # file text (None: no file), words in the one line
    "missing file": (None, ["does not exist"]),
    "empty file": ("", ["the file is empty"]),
    "syntax error": ("title: T\nscenarios: [\n", [":3: not valid YAML"]),
    "wrong type": (SMALL.replace("batch: 32, mode: train", "batch: many, mode: train"),
                   [":4: scenarios[0].workload.batch", "many"]),
    "unknown key": (SMALL.replace("title:", "titel:"), [":1: titel: unknown field"]),
    "negative number": (SMALL.replace("dataset_size: 1000", "dataset_size: -1000"),
                        ["scenarios[0].workload.dataset_size", "greater than 0"]),
    "nan": (SMALL.replace("time_to_train_s: 0.5", "time_to_train_s: .nan"),
            [":6: scenarios[0].published.time_to_train_s", "finite"]),
    "unknown model": (SMALL.replace("model: mlp", "model: gpt5"),
                      ["unknown model 'gpt5'", "vgg16"]),
    "unknown device": (SMALL.replace("i7-10700", "i9"), ["unknown hardware 'i9'", "i7-10700"]),
    "unknown link": (SMALL.replace("device: gtx-1080", "device: gtx-1080, inter_link: x"),
                     ["unknown link 'x'", "ib-ndr"]),
}


@pytest.mark.parametrize("case", sorted(CLI_BAD))
def test_bad_input_is_one_line_exit_2_and_no_folder(case, tmp_path, capsys):
    text, words = CLI_BAD[case]
    path = tmp_path / "bad.yaml"
    if text is not None:
        path.write_text(text)
    out = tmp_path / "out"
    assert run([str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}") and err.count("\n") == 1, err
    for word in words:
        assert word in err
    assert not out.exists() and not (tmp_path / "results").exists()


@pytest.mark.parametrize("case", ["syntax error", "unknown model"])
def test_bad_input_as_a_user_runs_it(case, tmp_path, cli):
    path = tmp_path / "bad.yaml"
    path.write_text(CLI_BAD[case][0])
    done = cli("run", str(path), cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and done.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]


def test_run_as_a_user_runs_it(tmp_path, cli):
    done = cli("run", str(small(tmp_path)), "--quick", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "[3/3] too big: out of memory" in done.stdout  # plain lines when not a terminal
    (folder,) = (tmp_path / "results").iterdir()
    assert folder.name.startswith("small-") and f"results written to results/{folder.name}" \
        in done.stdout


def test_an_experiment_where_every_scenario_is_out_of_memory_runs(tmp_path):
    """Regression: drawing the figures crashed (`Number of columns must be a positive
    integer, not 0`) when no scenario fitted."""
    text = ("title: All too big\nscenarios:\n  - name: too big\n"
            "    workload: {model: vgg16, batch: 256, mode: train}\n"
            "    hardware: {device: gt-740m}\n")
    out = tmp_path / "out"
    assert run([str(small(tmp_path, text)), "--out", str(out)]) == 0
    assert (out / "results.json").is_file()


def test_a_cluster_beyond_the_largest_simulated_is_refused(tmp_path, capsys):
    # regression: --devices 1000000 ran for 45 s and 2.7 GB
    text = SMALL.replace("device: gtx-1080}", "device: gtx-1080, count: 1000000}")
    assert run([str(small(tmp_path, text)), "--out", str(tmp_path / "o")]) == 2
    assert "less than or equal to 131072" in capsys.readouterr().err

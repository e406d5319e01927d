"""The writers: the Chrome trace is well-formed and complete, results.csv reads back to
results.json, figures are written in each format and reproducibly, and the output folder
appears whole or not at all."""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
from collections import defaultdict
from pathlib import Path

import pytest

from simulator.api.experiment import run_experiment
from simulator.config.schema import load_experiment
from simulator.core.errors import UserError
from simulator.report.chrome_trace import HOST, launch_intervals, trace_document
from simulator.report.figure_data import figure_data
from simulator.report.figures import figure_makers, render
from simulator.report.output_folder import launch_cost_of, saved_form, staged_folder
from simulator.report.results_csv import csv_text, flatten
from simulator.report.units import format_time

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = """title: Report
scenarios:
  - name: laptop
    workload: {model: alexnet, batch: 8, mode: train}
    hardware: {device: i7-10510u}
  - name: gpu infer
    workload: {model: alexnet, batch: 8, mode: infer, sync_input: true}
    hardware: {device: gtx-1080}
    published: {step_time_s: 0.01, source: made up}
  - name: gpu train
    workload: {model: vgg16, batch: 16, mode: train, dataset_size: 5000}
    hardware: {device: {base: gtx-1080, overrides: {memory_bandwidth_bytes_per_s: 6.4e+11}}}
  - name: no room
    workload: {model: vgg16, batch: 128, mode: train}
    hardware: {device: gt-740m}
outputs: {timeline: [gpu infer, gpu train], top_layers: 5}
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    path = tmp_path_factory.mktemp("exp") / "report.yaml"
    path.write_text(EXPERIMENT)
    return run_experiment(load_experiment(path))


@pytest.fixture(scope="module")
def trace_doc(runs):
    traced = [(r.row["name"], r.prediction.trace, launch_cost_of(r.prediction)) for r in runs
              if r.prediction.trace is not None]
    return json.loads(json.dumps(trace_document(traced, "Report")))


def check_well_formed(doc: dict) -> dict[tuple[int, int], list[dict]]:
    """Every complete event finite, no overlap and increasing time on each thread."""
    threads: dict[tuple[int, int], list[dict]] = defaultdict(list)
    named = {(e["pid"], e["tid"]) for e in doc["traceEvents"] if e["name"] == "thread_name"}
    for event in doc["traceEvents"]:
        if event["ph"] == "X":
            assert math.isfinite(event["ts"]) and math.isfinite(event["dur"])
            assert event["ts"] >= 0 and event["dur"] >= 0
            threads[(event["pid"], event["tid"])].append(event)
    for key, events in threads.items():
        assert key in named, f"thread {key} has no thread_name"
        starts = [e["ts"] for e in events]
        assert starts == sorted(starts)
        for before, after in itertools.pairwise(events):
            assert after["ts"] >= before["ts"] + before["dur"] - 1e-6, (key, before, after)
    return threads


def test_trace_is_well_formed_and_holds_every_op_once(runs, trace_doc):
    threads = check_well_formed(trace_doc)
    processes = {e["pid"]: e["args"]["name"] for e in trace_doc["traceEvents"]
                 if e["name"] == "process_name"}
    ran = [r for r in runs if r.prediction.trace is not None]
    assert list(processes.values()) == [f"{r.row['name']} — {r.row['hardware']}" for r in ran]
    for pid, run in zip(sorted(processes), ran, strict=True):
        ops = [e for (p, tid), events in threads.items() if p == pid and tid != 0 for e in events]
        spans = run.prediction.trace.spans
        assert sorted(e["name"] for e in ops) == sorted(s.name for s in spans)
        assert len({e["name"] for e in ops}) == len(ops)
        for event in ops:
            assert {"flops", "bytes", "layer", "phase", "category"} <= set(event["args"])


def test_host_thread_shows_every_launch_once(runs, trace_doc):
    """On a GPU the launches on the host thread add up to the device's launch costs."""
    gpu = runs[1].prediction
    cost = launch_cost_of(gpu)
    expected = sum(cost(s) for s in gpu.trace.spans)
    launches = [e for e in trace_doc["traceEvents"] if e["ph"] == "X" and e["pid"] == 2
                and e["tid"] == 0]
    assert expected > 0
    assert sum(e["dur"] for e in launches) == pytest.approx(expected * 1e6)
    assert all(e["name"].startswith("launch ") for e in launches)
    cpu = runs[0].prediction  # a CPU launches nothing: its host thread stays empty
    assert launch_intervals(cpu.trace.spans, launch_cost_of(cpu)) == []


def test_thread_names_follow_the_resources(trace_doc):
    names = {(e["pid"], e["args"]["name"]) for e in trace_doc["traceEvents"]
             if e["name"] == "thread_name"}
    assert {(2, "host launch thread"), (2, "compute"), (2, "copy engine")} <= names
    assert HOST == "host"


def test_csv_reads_back_to_json(runs):
    rows = json.loads(json.dumps([r.row for r in runs]))
    table = list(csv.DictReader(io.StringIO(csv_text(rows))))
    assert len(table) == len(rows)
    assert "breakdown.compute" in table[0] and "breakdown" not in table[0]
    assert "layers" not in table[0] and "published.source" in table[0]
    keys = {k for row in rows for k in flatten(row)}
    assert set(table[0]) == {k for k in keys if not any(o.startswith(f"{k}.") for o in keys)} \
        - {"layers"}
    for row, line in zip(rows, table, strict=True):
        flat = flatten(row)
        for column, text in line.items():
            value = flat.get(column)
            if value is None:
                assert text == "", column
            elif isinstance(value, bool):
                assert text == str(value).lower()
            elif isinstance(value, (int, float)):
                assert float(text) == value, column
            else:
                assert text == value
    assert table[3]["status"] == "out_of_memory" and table[3]["breakdown.compute"] == ""


def test_figures_in_each_format_reproducibly(runs):
    scenarios = [(r.row, r.prediction, launch_cost_of(r.prediction)) for r in runs]
    rows = saved_form([r.row for r in runs])
    data = saved_form(figure_data("Report", scenarios))["scenarios"]
    first, second = (render(figure_makers(rows, data, "Report", ["gpu infer", "gpu train"], 5),
                            ["png", "svg"]) for _ in range(2))
    stems = {"breakdown", "comparison", "timeline-gpu-infer", "timeline-gpu-train",
             "layers-gpu-infer", "layers-gpu-train", "roofline", "pareto", "validation"}
    assert set(first) == stems
    for stem, by_format in first.items():
        assert set(by_format) == {"png", "svg"}
        assert by_format == second[stem], stem
        assert by_format["png"].startswith(b"\x89PNG") and b"<svg" in by_format["svg"]
    assert b"<dc:date>" not in first["breakdown"]["svg"]


def test_staged_folder_appears_whole_or_not_at_all(tmp_path):
    target = tmp_path / "new" / "out"
    with pytest.raises(ValueError), staged_folder(target) as folder:
        (folder / "results.json").write_text("{")
        raise ValueError("stop")
    assert list(tmp_path.iterdir()) == []
    with staged_folder(target) as folder:
        (folder / "results.json").write_text("{}")
        assert not target.exists()
    assert (target / "results.json").read_text() == "{}"


def test_staged_folder_refuses_files_and_foreign_folders(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="must be a folder"), staged_folder(tmp_path / "file"):
        pass
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "n.txt").write_text("keep")
    with pytest.raises(UserError, match="not a results folder"), \
            staged_folder(tmp_path / "notes"):
        pass
    assert (tmp_path / "notes" / "n.txt").read_text() == "keep"


@pytest.mark.parametrize("seconds, text", [(1.24e-3, "1.24 ms"), (34.9, "34.9 s"),
                                           (5.5e-5, "55 µs"), (3 * 3600, "3 h"),
                                           (7.6 * 86400, "7.6 days"), (300, "5 min")])
def test_format_time(seconds, text):
    assert format_time(seconds) == text


def test_cluster_trace_is_well_formed(tmp_path):
    pytest.importorskip("simulator.api.cluster")
    path = tmp_path / "c.yaml"
    path.write_text("title: C\nscenarios:\n  - name: dp\n    workload: {model: mlp, batch: 64}\n"
                    "    hardware: {device: h100-sxm, count: 4, intra_link: nvlink4}\n")
    run = run_experiment(load_experiment(path))[0]
    doc = trace_document([("dp", run.prediction.trace, launch_cost_of(run.prediction))], "C")
    check_well_formed(json.loads(json.dumps(doc)))

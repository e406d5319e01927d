"""`python -m simulator sweep`: points from a grid and zipped lists, each validated like a
hand-written scenario; a bad point is its own one-line error; the journal survives SIGINT
and SIGKILL at random points and a rerun finishes without running a finished point again;
the same sweep gives the same bytes whatever the number of workers; the Pareto front and
the constrained optimum of a hand-made table."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import pytest

from simulator.__main__ import main
from simulator.config.schema import load_experiment
from simulator.config.sweep import Constraints, load_sweep, sweep_points
from simulator.core.errors import UserError
from simulator.report.sweep_journal import JOURNAL, PointsJournal
from simulator.results.pareto import best, feasible, pareto_front

ROOT = Path(__file__).resolve().parents[1]
SMALL = """title: Small sweep
sweep:
  base:
    workload: {model: mlp, batch: 32, dataset_size: 100000, epochs: 2}
    hardware: {device: gtx-1080}
  grid:
    hardware.device: [gtx-1080, h100-sxm]
    workload.batch: [8, 0, 64]
  constraints: {deadline_s: 100}
"""
# 32 points of ~60 ms each: long enough to be killed part way
KILLABLE = """title: Kill me
sweep:
  base:
    workload: {model: resnet18, batch: 32, dataset_size: 100000}
    hardware: {device: gtx-1080}
  grid:
    hardware.device: [gtx-1080, h100-sxm, v100-sxm2, a100-sxm4]
    workload.batch: [1, 2, 4, 8, 16, 32, 64, 128]
"""


def write(tmp_path: Path, text: str, name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def sweep(*args: str) -> int:
    return main(["sweep", *args])


def journal_lines(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / JOURNAL).read_bytes().splitlines()]


def test_grid_and_zip_points_in_order(tmp_path):
    path = write(tmp_path, """title: t
sweep:
  base: {workload: {model: mlp, batch: 4}, hardware: {device: gtx-1080}}
  grid: {hardware.device: [gtx-1080, h100-sxm], workload.batch: [1, 2]}
  zip: {workload.precision: [fp32, bf16], parallel.options.micro_batches: [1, 2]}
""")
    config, _ = load_sweep(path)
    points = sweep_points(config.sweep)
    assert config.sweep.size == len(points) == 8
    assert [p.label for p in points[:3]] == [
        "device=gtx-1080 batch=1 precision=fp32 micro_batches=1",
        "device=gtx-1080 batch=1 precision=bf16 micro_batches=2",
        "device=gtx-1080 batch=2 precision=fp32 micro_batches=1"]
    assert points[7].data["hardware"]["device"] == "h100-sxm"
    assert points[7].data["parallel"] == {"options": {"micro_batches": 2}}
    assert points[7].data["workload"] == {"model": "mlp", "batch": 2, "precision": "bf16"}


@pytest.mark.parametrize("body, message", [
    ("grid: {hardware.color: [1]}", ":4: sweep.grid: unknown hardware field 'color'"),
    ("grid: {gpu: [1]}", "'gpu' is not a scenario field"),
    ("grid: {workload.batch: []}", "sweep.grid.workload.batch: must be a non-empty list"),
    ("grid: {workload.batch: 4}", "sweep.grid.workload.batch: must be a non-empty list"),
    ("zip: {workload.batch: [1, 2], hardware.count: [1]}", "zipped lists must have one length"),
    ("grid: {workload.batch: [1]}\n  zip: {workload.batch: [2]}", "in both grid and zip"),
    ("grid: {workload.batch: [1]}\n  objectives: [speed]", "sweep.objectives[0]: must be"),
    ("grid: {workload.batch: [1]}\n  figure: {x: hardware.count}", "unknown swept field"),
    ("grid: {workload.batch: [1]}\n  constraints: {deadline_s: -1}", "deadline_s: must be"),
])
def test_bad_sweep_sections_are_one_line_at_load(tmp_path, body, message):
    path = write(tmp_path, f"title: t\nsweep:\n  base: {{}}\n  {body}\n")
    with pytest.raises(UserError) as err:
        load_sweep(path)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith(str(path))


def test_too_many_points_refused(tmp_path):
    path = write(tmp_path, "title: t\nsweep:\n  base: {}\n  grid:\n"
                 "    workload.batch: [" + ", ".join(map(str, range(1, 401))) + "]\n"
                 "    hardware.count: [" + ", ".join(map(str, range(1, 401))) + "]\n")
    with pytest.raises(UserError, match="160,000 points; a sweep has at most 100,000"):
        load_sweep(path)


def test_run_refuses_a_sweep_file_naming_the_command(tmp_path, capsys):
    path = write(tmp_path, SMALL)
    with pytest.raises(UserError, match="run it with `python -m simulator sweep"):
        load_experiment(path)
    assert main(["run", str(path), "--out", str(tmp_path / "o")]) == 2


def test_bad_point_gets_its_error_and_the_rest_completes(tmp_path, capsys):
    out = tmp_path / "out"
    assert sweep(str(write(tmp_path, SMALL)), "--out", str(out), "--workers", "1",
                 "--quick") == 0
    records = journal_lines(out)
    assert [r["index"] for r in records] == list(range(6))
    bad = [r for r in records if r["status"] == "error"]
    assert [r["index"] for r in bad] == [1, 4]
    assert bad[0]["error"] == (f"{tmp_path / 'sweep.yaml'}:8: sweep point 1 (device=gtx-1080 "
                               "batch=0): workload.batch: must be greater than 0, got 0")
    assert all(r["status"] == "ok" and r["row"]["step_time_s"] > 0
               for r in records if r["status"] != "error")
    doc = json.loads((out / "results.json").read_text())
    assert doc["summary"]["failed"] == 2 and doc["summary"]["ok"] == 4
    assert "device=h100-sxm batch=64" in (out / "report.md").read_text()  # run's page writer
    assert (out / "report.html").exists()
    assert "sweep point 4 (device=h100-sxm batch=0)" in capsys.readouterr().out


def test_point_failing_in_the_model_is_recorded(tmp_path):
    """A value the schema accepts but the cluster model rejects fails alone."""
    path = write(tmp_path, """title: t
sweep:
  base: {workload: {model: mlp, batch: 8}, hardware: {device: h100-sxm, count: 2}}
  grid: {parallel.options.micro_batches: [1, 3]}
  zip: {parallel.strategy: [pipeline]}
""")
    out = tmp_path / "out"
    assert sweep(str(path), "--out", str(out), "--quick", "--workers", "1") == 0
    records = journal_lines(out)
    assert records[0]["status"] == "ok"
    assert records[1]["status"] == "error"
    assert records[1]["error"].startswith("sweep point 1 (micro_batches=3 strategy=pipeline): ")


def _result_bytes(folder: Path) -> dict[str, bytes]:
    doc = json.loads((folder / "results.json").read_text())
    doc["provenance"].pop("date")
    names = [n for n in ("points.jsonl", "points.csv", "points.parquet") if (folder / n).exists()]
    return {**{n: (folder / n).read_bytes() for n in names},
            "results.json": json.dumps(doc, sort_keys=True).encode()}


def test_same_bytes_whatever_the_number_of_workers(tmp_path):
    path = write(tmp_path, SMALL)
    for workers in ("1", "2"):
        assert sweep(str(path), "--out", str(tmp_path / workers), "--workers", workers,
                     "--quick") == 0
    assert _result_bytes(tmp_path / "1") == _result_bytes(tmp_path / "2")


def test_rerun_skips_finished_points_and_retry_failed_reruns_only_failed(tmp_path, capsys):
    path, out = write(tmp_path, SMALL), tmp_path / "out"
    assert sweep(str(path), "--out", str(out), "--quick", "--workers", "1") == 0
    first = _result_bytes(out)
    capsys.readouterr()
    assert sweep(str(path), "--out", str(out), "--quick", "--workers", "1") == 0
    assert "6 points: 2 invalid, 4 done before, 0 to run" in capsys.readouterr().out
    assert _result_bytes(out) == first


def _cli(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "simulator", "sweep", *args],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, **kw)


def _lines_now(folder: Path) -> int:
    try:
        return (folder / JOURNAL).read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    """The killable sweep's file and its uninterrupted output."""
    tmp = tmp_path_factory.mktemp("clean")
    path = write(tmp, KILLABLE)
    assert _cli(str(path), "--out", str(tmp / "out"), "--quick", "--workers", "2").wait(120) == 0
    return path, _result_bytes(tmp / "out")


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL,
                                 pytest.param(signal.SIGTERM, marks=pytest.mark.slow)])
def test_killed_sweep_resumes_to_the_uninterrupted_table(tmp_path, how, clean_run):
    """Killed when a random number of points is in the journal: the journal stays whole,
    the rerun runs exactly the points missing, and the final folder equals a clean run's."""
    path, clean = clean_run
    out = tmp_path / "out"
    after = random.Random(f"{how}").randint(2, 24)
    proc = _cli(str(path), "--out", str(out), "--quick", "--workers", "2")
    deadline = time.monotonic() + 120
    while _lines_now(out) < after and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    os.killpg(proc.pid, how) if how == signal.SIGKILL else proc.send_signal(how)
    code = proc.wait(60)
    assert proc.poll() is not None
    if code == 0:
        pytest.skip("the sweep finished before the signal arrived")
    assert code == {signal.SIGINT: 130, signal.SIGTERM: 143}.get(how, -signal.SIGKILL)
    with PointsJournal(out) as journal:  # drops a torn last line (SIGKILL only)
        kept = dict(journal.records)
    raw = (out / JOURNAL).read_bytes()
    assert raw.endswith(b"\n") and len(raw.splitlines()) == len(kept) >= after
    rerun = _cli(str(path), "--out", str(out), "--quick", "--workers", "2")
    stdout, _ = rerun.communicate(timeout=120)
    assert rerun.returncode == 0
    assert f"32 points: 0 invalid, {len(kept)} done before, {32 - len(kept)} to run" in stdout
    assert _result_bytes(out) == clean
    final = {r["key"]: r for r in journal_lines(out)}
    assert len(final) == 32 and all(final[k] == r for k, r in kept.items())


def test_torn_last_line_is_dropped_and_users_file_refused(tmp_path):
    out = tmp_path / "out"
    with PointsJournal(out) as journal:
        journal.append({"key": "a", "index": 0})
        journal.append({"key": "b", "index": 1})
    with (out / JOURNAL).open("ab") as f:
        f.write(b'{"key": "c", "ind')
    with PointsJournal(out) as journal:
        assert sorted(journal.records) == ["a", "b"]
    assert (out / JOURNAL).read_bytes().count(b"\n") == 2
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / JOURNAL).write_text("my notes\n")
    with pytest.raises(UserError, match="not a results folder of this simulator"):
        PointsJournal(mine).__enter__()
    assert (mine / JOURNAL).read_text() == "my notes\n"


def test_bad_workers_and_scheduler_are_one_line(tmp_path, capsys):
    path = write(tmp_path, SMALL)
    assert sweep(str(path), "--workers", "0") == 2
    assert "--workers: must be at least 1, got 0" in capsys.readouterr().err
    assert sweep(str(path), "--out", str(tmp_path / "o"), "--scheduler", "nonsense") == 2
    assert "--scheduler: 'nonsense' is not a scheduler address" in capsys.readouterr().err


TABLE = [  # index, time, cost, energy, status
    (0, 10.0, 100.0, 5.0, "ok"), (1, 20.0, 50.0, 4.0, "ok"), (2, 30.0, 60.0, 1.0, "ok"),
    (3, 40.0, 10.0, 2.0, "ok"), (4, 15.0, 100.0, 9.0, "ok"), (5, 5.0, None, 3.0, "ok"),
    (6, None, None, None, "out_of_memory"), (7, 20.0, 50.0, 4.0, "ok")]


def rows() -> list[dict]:
    return [{"index": i, "time_to_train_s": t, "hardware_cost_usd": c, "energy_j": e,
             "status": s, "samples_per_s": 1.0 / t if t else None} for i, t, c, e, s in TABLE]


def test_pareto_front_of_a_hand_made_table():
    front = pareto_front(rows(), "time_to_train_s", "hardware_cost_usd")
    assert [r["index"] for r in front] == [0, 1, 3]  # 4 dominated by 0, 2 by 1, 7 ties 1
    front = pareto_front(rows(), "time_to_train_s", "energy_j")
    assert [r["index"] for r in front] == [5, 2]  # 1 is slower than 5 and uses more


def test_constrained_optimum_of_a_hand_made_table():
    none = Constraints()
    assert best(rows(), "hardware_cost_usd", none)["index"] == 3
    assert best(rows(), "time_to_train_s", none)["index"] == 5
    assert best(rows(), "samples_per_s", none)["index"] == 5  # maximised
    deadline = Constraints(deadline_s=25.0)
    assert best(rows(), "hardware_cost_usd", deadline)["index"] == 1  # 1 and 7 tie: lower
    both = Constraints(deadline_s=25.0, budget_usd=80.0)
    assert best(rows(), "energy_j", both)["index"] == 1  # 5 has no price: never feasible
    assert not feasible(rows()[6], none)
    assert best(rows(), "energy_j", Constraints(deadline_s=1.0)) is None


def test_of_equally_cheap_points_the_quickest_is_best():
    """Regression: one H100 and one H200 in the same $107,000 server tied on hardware cost,
    and the slower (earlier) point was reported the best, off the Pareto front."""
    tied = [{"index": 0, "status": "ok", "time_to_train_s": 52_000.0,
             "hardware_cost_usd": 107_000.0},
            {"index": 1, "status": "ok", "time_to_train_s": 47_000.0,
             "hardware_cost_usd": 107_000.0},
            {"index": 2, "status": "ok", "time_to_train_s": 47_000.0,
             "hardware_cost_usd": 107_000.0}]
    assert best(tied, "hardware_cost_usd", Constraints())["index"] == 1
    front = pareto_front(tied, "time_to_train_s", "hardware_cost_usd")
    assert [r["index"] for r in front] == [1]


@pytest.mark.slow
def test_dask_local_cluster_gives_the_local_bytes(tmp_path):
    """A real dask.distributed LocalCluster of 2 worker processes (the [dask] extra, which
    .ci/run installs) gives the local path's files, byte for byte."""
    pytest.importorskip("distributed")
    path = write(tmp_path, SMALL)
    assert sweep(str(path), "--out", str(tmp_path / "local"), "--workers", "2", "--quick") == 0
    assert sweep(str(path), "--out", str(tmp_path / "dask"), "--workers", "2", "--quick",
                 "--scheduler", "local-cluster") == 0
    assert _result_bytes(tmp_path / "dask") == _result_bytes(tmp_path / "local")


def test_two_sweeps_cannot_share_a_journal(tmp_path):
    out = tmp_path / "out"
    with PointsJournal(out):
        child = subprocess.run([sys.executable, "-c", "import sys\n"
                                "from simulator.report.sweep_journal import PointsJournal\n"
                                f"PointsJournal(__import__('pathlib').Path({str(out)!r}))"
                                ".__enter__()"], capture_output=True, text=True, cwd=ROOT)
        assert "another sweep is writing into this folder" in child.stderr
    with PointsJournal(out):  # released when the first closed it
        pass


def test_a_model_file_is_parsed_once_and_again_when_it_changes(tmp_path):
    """Sweeps parse each model once per process (workloads.model_def cache); an edited file
    of the same size is parsed again."""
    from workloads.model_def import load_model

    assert load_model("vgg16") is load_model("vgg16")
    path = tmp_path / "m.yaml"
    text = ("name: tiny\ninput_shape: [3, 8, 8]\nlayers:\n"
            "  - {name: flat, kind: flatten}\n  - {name: fc, kind: linear, out_features: 10}\n")
    path.write_text(text)
    first = load_model(str(path))
    assert load_model(str(path)) is first
    path.write_text(text.replace("out_features: 10", "out_features: 20"))
    second = load_model(str(path))
    assert second is not first and second.layers[-1].out_features == 20


def test_an_interrupt_inside_pydantic_stays_an_interrupt(tmp_path, monkeypatch):
    """Regression: SIGTERM (or Ctrl-C) arriving while pydantic-core runs a serializer function
    (LayerDef.args -> model_dump, on every point) came back as a PydanticSerializationError;
    run_point recorded it as the point's error and the process went on. Here the signal is
    raised at that very place."""
    from pydantic import BaseModel, WrapSerializer

    import simulator.api.sweep as sweep_api
    from simulator.cli.sweep_cmd import sigterm_unwinds
    from simulator.report.output_folder import Terminated

    def signalled(value, handler):
        signal.raise_signal(signal.SIGTERM)  # runs the Python handler before returning
        return handler(value)

    class Layer(BaseModel):
        kernel: Annotated[int, WrapSerializer(signalled)] = 3

    monkeypatch.setattr(sweep_api, "predict_scenario", lambda scenario: Layer().model_dump())
    config, source = load_sweep(write(tmp_path, SMALL))
    task = sweep_api.sweep_tasks(config, source, tmp_path)[0][0]
    with sigterm_unwinds(), pytest.raises(Terminated):
        sweep_api.run_point(task)


STUBBORN_POOL = """
import os, sys, time
import simulator.api.sweep as sweep
from simulator.cli.sweep_cmd import sigterm_unwinds

def stubborn(task):  # swallows whatever is raised in it, as pydantic-core's serializers do
    open(os.path.join(sys.argv[1], str(os.getpid())), "w").close()
    while True:
        try:
            time.sleep(0.01)
        except BaseException:
            pass

sweep.run_point = stubborn
tasks = [sweep.PointTask(i, str(i), str(i), [], {}, None) for i in range(4)]
with sigterm_unwinds():
    try:
        for record in sweep.run_tasks(tasks, 2):
            pass
    except KeyboardInterrupt:
        print("stopped", flush=True)
"""


def test_ctrl_c_stops_the_pool_while_its_workers_are_mid_point(tmp_path):
    """Regression (the hang behind the flaky SIGINT resume test): pool workers inherited the
    sweep's SIGTERM handler through fork, so the pool's terminate() raised an exception in
    each worker instead of killing it; one that swallowed it (inside pydantic-core) waited
    for ever on the task queue while the main process waited for it. Ctrl-C arrives here
    when both workers are inside a point that swallows every exception."""
    proc = subprocess.Popen([sys.executable, "-c", STUBBORN_POOL, str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while len(os.listdir(tmp_path)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(os.listdir(tmp_path)) == 2, "the workers did not start"
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0 and stdout == "stopped\n", stderr
    for pid in os.listdir(tmp_path):  # no worker left behind
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid), 0)


def test_a_graph_is_built_once_per_model_batch_and_options():
    """Sweeps over devices, counts or links reuse the step's graph (simulator.api.build
    cache): same model object, batch and options, same graph; any difference, a new one."""
    from simulator.api.build import graph_factory
    from simulator.config.schema import Workload
    from workloads.model_def import load_model

    model = load_model("mlp")
    fp32 = graph_factory(model, Workload(model="mlp", batch=8))
    assert fp32(8) is graph_factory(model, Workload(model="mlp", batch=8))(8)
    assert fp32(16) is not fp32(8) and fp32(16).batch == 16
    bf16 = graph_factory(model, Workload(model="mlp", batch=8, precision="bf16"))(8)
    assert bf16 is not fp32(8) and bf16.precision == "bf16"
    twin = model.model_copy()  # an equal model validated anew: its own entry
    assert graph_factory(twin, Workload(model="mlp", batch=8))(8) is not fp32(8)


def test_a_sweep_chart_names_its_axis_in_words():
    """Regression: the x axis of do_i_need_a_gpu's chart read 'workload.dataset_size'."""
    from simulator.report.plot_sweep import lines_figure

    rows = [{"index": i, "status": "ok", "values": [["workload.dataset_size", n]],
             "time_to_train_s": n / 100.0} for i, n in enumerate((1000, 10000))]
    fig = lines_figure(rows, {"x": "workload.dataset_size", "y": "time_to_train_s"}, "t")
    assert fig.axes[0].get_xlabel() == "dataset size (samples)"
    assert fig.axes[0].get_ylabel() == "time to train (s)"


def test_workers_are_forked_only_from_a_single_threaded_process():
    """A fork copies the locks other threads hold, held for ever in the child: a sweep worker
    hung idle under pytest-xdist (whose channel thread runs beside the tests). With another
    thread alive the pool starts its workers from a fork server (regression)."""
    import threading

    from simulator.api.sweep import start_method

    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        assert start_method() in ("forkserver", "spawn")
    finally:
        stop.set()
        other.join()
    if threading.active_count() == 1:  # a plain pytest process (not an xdist worker)
        assert start_method() == "fork"

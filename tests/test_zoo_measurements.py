"""Schema of the committed PyTorch zoo measurements (benchmarks/torch_zoo.py):
measurements/h200-torch-zoo.json (step times), h200-torch-zoo-run1.json (an earlier repeat) and
measurements/h200-torch-zoo-profiles.json (profiler summaries). Each test skips when its file is
absent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

MEASUREMENTS = Path(__file__).resolve().parent.parent / "measurements"
TIMES = MEASUREMENTS / "h200-torch-zoo.json"
REPEAT = MEASUREMENTS / "h200-torch-zoo-run1.json"  # an earlier run, VGG16 on diverged weights
PROFILES = MEASUREMENTS / "h200-torch-zoo-profiles.json"
STATUSES = {"ok", "out_of_memory", "skipped_budget", "skipped_slow", "error"}
PRECISIONS = {"fp32-strict", "fp32", "bf16"}
RECORD_FIELDS = {"model", "mode", "batch", "precision", "device", "threads", "input", "status"}
TIMED_FIELDS = {"median_s", "p10_s", "p90_s", "reps", "steps_per_rep", "times_s",
                "wall_median_s", "issue_median_s", "warmup_steps"}


def _load(path: Path) -> dict:
    if not path.exists():
        pytest.skip(f"{path.name} is not committed")
    return json.loads(path.read_text())


def _check_provenance(doc: dict, schema: str) -> None:
    assert doc["schema"] == schema
    assert {"command", "date", "device", "software", "records"} <= set(doc)
    assert "torch_zoo.py" in doc["command"]
    device = doc["device"]
    assert device["kind"] == "gpu" and device["name"] and device["sm_count"] > 0
    assert device.get("driver"), "driver version (nvidia-smi) missing"
    host = device["host"]
    assert host["name"] and host["cores"] >= 1 and host["logical_cpus"] >= 1
    software = doc["software"]
    for key in ("torch", "cuda", "cudnn", "python"):
        assert software[key], key
    assert software["cudnn_benchmark"] is False


def _fields(record: dict) -> None:
    if record["status"] == "error" and "mode" not in record:  # a model that could not be built
        assert record["model"] and record["error"]
        return
    assert RECORD_FIELDS <= set(record), RECORD_FIELDS - set(record)
    assert record["status"] in STATUSES
    assert record["mode"] in ("train", "infer")
    assert record["precision"] in PRECISIONS
    assert record["device"] in ("gpu", "cpu")
    assert isinstance(record["batch"], int) and record["batch"] >= 1
    if record["device"] == "gpu":
        assert record["input"] == "device" and record["threads"] is None
    else:
        assert isinstance(record["threads"], int) and record["threads"] >= 1


@pytest.mark.parametrize("path", [TIMES, REPEAT], ids=lambda p: p.name)
def test_zoo_times_schema_and_values(path: Path) -> None:
    doc = _load(path)
    finite_required = path == TIMES
    _check_provenance(doc, "simulator.torch-zoo/1")
    assert doc["records"], "no records"
    assert path.stat().st_size < 16 * 2**20
    ok = 0
    for record in doc["records"]:
        _fields(record)
        if record["status"] != "ok":
            continue
        ok += 1
        assert TIMED_FIELDS <= set(record), TIMED_FIELDS - set(record)
        assert 0 < record["p10_s"] <= record["median_s"] <= record["p90_s"]
        assert record["reps"] == len(record["times_s"]) >= 1
        assert all(t > 0 for t in record["times_s"])
        assert min(record["times_s"]) <= record["median_s"] <= max(record["times_s"])
        assert record["steps_per_rep"] >= 1
        assert record["wall_median_s"] > 0 and record["issue_median_s"] > 0
        assert isinstance(record["output_finite"], bool)
        if finite_required:
            assert record["output_finite"] is True, (record["model"], record["mode"])
        if record["device"] == "gpu":
            assert record["timer"] == "cuda_events"
            assert record["max_memory_allocated_bytes"] > 0
            assert record["max_memory_reserved_bytes"] >= record["max_memory_allocated_bytes"]
            assert record["flags"]["cudnn_benchmark"] is False
            strict = record["precision"] == "fp32-strict"
            assert record["flags"]["cudnn_allow_tf32"] is not strict
            assert record["flags"]["matmul_allow_tf32"] is False
    assert ok > 0


def test_zoo_times_cover_each_model_in_train_and_infer() -> None:
    doc = _load(TIMES)
    seen: dict[tuple[str, str], set[str]] = {}
    cut: set[str] = set()  # models that the time budget cut short
    for r in doc["records"]:
        if r["status"] == "ok":
            seen.setdefault((r["device"], r["model"]), set()).add(r["mode"])
        elif r["status"] == "skipped_budget" and r["device"] == "gpu":
            cut.add(r["model"])
    assert seen.get(("gpu", "mlp")) == {"train", "infer"}
    for (device, model), modes in seen.items():
        if device == "gpu" and model not in cut:
            assert modes == {"train", "infer"}, (model, modes)


def test_zoo_profiles_schema() -> None:
    doc = _load(PROFILES)
    _check_provenance(doc, "simulator.torch-zoo-profile/1")
    assert PROFILES.stat().st_size < 16 * 2**20
    for record in doc["records"]:
        _fields(record)
        if record["status"] != "ok":
            continue
        assert record["steps"] >= 1 and record["wall_per_step_s"] > 0
        assert record["kernel_launches_per_step"] > 0
        assert record["kernel_time_us_per_step"] > 0
        assert record["host_self_cpu_us_per_step"] > 0
        assert record["ops_per_step"], "no host ops"
        for name, op in record["ops_per_step"].items():
            assert op["count"] > 0 and op["self_cpu_us"] >= 0, name

"""Held-out validation on torchvision networks outside the catalog
(simulator/validate/torchvision_zoo.py): which zoo records it reads, that the host fit never
reads them, and — where torch and torchvision are installed — that each row is the
prediction `predict` makes with the catalog's profiles, or, for a network whose layers the
convolution terms were fitted on, with those terms refitted without its layers."""

from __future__ import annotations

import json

import pytest

from simulator.calibrate.host import step_records
from simulator.validate.doc import MEASURED, _layer_data
from simulator.validate.torchvision_zoo import heldout_records, heldout_rows, heldout_summary


def _record(model: str, batch: int, median_s: float, issue_s: float) -> dict:
    return {"model": model, "mode": "infer", "batch": batch, "precision": "fp32",
            "device": "gpu", "status": "ok", "input": "device", "median_s": median_s,
            "issue_median_s": issue_s}


def _zoo(tmp_path, name: str, records: list[dict]):
    path = tmp_path / name
    path.write_text(json.dumps({"schema": "simulator.torch-zoo/1", "records": records}))
    return path


def test_records_outside_the_catalog_with_the_median_of_runs(tmp_path):
    one = _zoo(tmp_path, "a.json", [_record("densenet121", 8, 0.010, 0.0099),
                                    _record("resnet50", 8, 0.020, 0.001),
                                    {**_record("squeezenet1_0", 8, 1.0, 0.1), "status": "oom"},
                                    {**_record("squeezenet1_0", 4, 1.0, 0.1), "device": "cpu"}])
    two = _zoo(tmp_path, "b.json", [_record("densenet121", 8, 0.014, 0.0139)])
    three = _zoo(tmp_path, "c.json", [_record("densenet121", 8, 0.011, 0.0109)])
    records = heldout_records([one, two, three])
    assert [(r["model"], r["median_s"], r["runs"]) for r in records] == [
        ("densenet121", 0.011, 3)]
    # and the host fit reads none of them: what makes these rows held out
    assert [r["model"] for r in step_records(one)] == ["resnet50"]


def test_the_committed_networks_are_not_what_the_host_was_fitted_on():
    for name in ("h200-torch-zoo.json", "h200-heldout-torch-zoo.json"):
        path = MEASURED / name
        if path.is_file():
            held = {r["model"] for r in heldout_records([path])}
            assert held and not held & {r["model"] for r in step_records(path)}


def test_a_network_that_does_not_import_is_named_not_predicted(tmp_path):
    records = heldout_records([_zoo(tmp_path, "a.json", [_record("resnet_nope", 1, 0.01,
                                                                 0.01)])])
    rows, skipped = heldout_rows(records, None)
    assert rows == [] and list(skipped) == ["resnet_nope"]


def test_rows_are_the_catalog_prediction(torchvision):
    """ViT-B/16: none of its layers is in a layer file, so the catalog's profiles as they
    are."""
    import simulator

    records = [r for r in heldout_records([MEASURED / "h200-heldout-torch-zoo.json"])
               if r["model"] == "vit_b_16" and r["batch"] in (1, 128) and r["mode"] == "infer"]
    assert len(records) == 6  # batch 1 and 128, each in three precisions
    rows, skipped = heldout_rows(records, _layer_data())
    assert not skipped and len(rows) == len(records)
    for row, rec in zip(rows, records, strict=True):
        expected = simulator.predict("torchvision:vit_b_16", "h200", batch=rec["batch"],
                                     mode=rec["mode"], precision=rec["precision"],
                                     input="device")["step_time_s"]
        assert not row["layers_refitted"]
        assert row["predicted_s"] == pytest.approx(expected, rel=1e-12)
        assert row["error"] == pytest.approx(expected / rec["median_s"] - 1)
        assert row["host_bound"] == (rec["issue_median_s"] >= 0.9 * rec["median_s"])
    summary = heldout_summary(rows)
    assert summary["all"]["rows"] == 6
    assert summary["all"]["worst"] == max(abs(r["error"]) for r in rows)


@pytest.mark.slow
def test_a_network_whose_layers_were_fitted_is_predicted_without_them(torchvision):
    import simulator

    records = [r for r in heldout_records([MEASURED / "h200-heldout-torch-zoo.json"])
               if r["model"] == "efficientnet_b0" and r["batch"] == 256]
    rows, _ = heldout_rows(records, _layer_data())
    assert rows and all(r["layers_refitted"] for r in rows)
    catalog = [simulator.predict("torchvision:efficientnet_b0", "h200", batch=256,
                                 mode=r["mode"], precision=r["precision"],
                                 input="device")["step_time_s"] for r in rows]
    assert any(r["predicted_s"] != c for r, c in zip(rows, catalog, strict=True))

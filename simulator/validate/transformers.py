"""Transformer steps measured on the H200 (GPT-2 small and medium, BERT-base; Hugging Face
transformers, PyTorch eager, AdamW: benchmarks/torch_transformers.py) against `predict`
with the catalog's profiles. Nothing is fitted on them (the host profile comes from the CNN
zoo, the GEMM alignment factors from products timed alone): every row is out of sample.
A row is host-bound where its measured host issue time is at least 90% of its step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simulator.api.predict import predict
from simulator.core.json_source import read_json_object, record_list
from simulator.validate.compare import grouped_errors


def issue_bound(rec: dict[str, Any]) -> bool:
    """A measured step whose host issue time is at least 90% of it: the host bounds it."""
    return float(rec["issue_median_s"]) >= 0.9 * float(rec["median_s"])


def transformer_rows(path: Path) -> list[dict[str, Any]]:
    data = read_json_object(path, "transformer step measurements")
    rows = []
    for rec in record_list(data, path):
        if rec.get("status") != "ok":
            continue
        result = predict(rec["model"], "h200", batch=rec["batch"], precision=rec["precision"],
                         mode=rec["mode"], seq_len=rec["seq_len"], input="device",
                         optimizer="adamw" if rec["mode"] == "train" else "sgd")
        rows.append({**{k: rec[k] for k in ("model", "mode", "batch", "seq_len", "precision")},
                     "host_bound": issue_bound(rec),
                     "measured_s": rec["median_s"], "predicted_s": result["step_time_s"],
                     "error": result["step_time_s"] / rec["median_s"] - 1})
    return rows


def transformer_summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """MAPE, median and worst absolute error per network, precision and regime."""
    def keys(r: dict[str, Any]) -> tuple[str, ...]:
        regime = "host-bound" if r["host_bound"] else "device"
        return f"{r['model']} {r['precision']} {regime}", f"all {regime}", "all"

    return grouped_errors(rows, keys)

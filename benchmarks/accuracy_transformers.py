"""Accuracy on networks nothing was fitted to: GPT-2 small, GPT-2 medium and BERT-base steps
measured on an H200 (Hugging Face transformers, PyTorch eager, AdamW;
benchmarks/torch_transformers.py) against `predict` with the catalog's profiles, printed per
network, precision and regime.

    python benchmarks/accuracy_transformers.py [MEASUREMENTS.json] [--json OUT]

No term of any profile was fitted on these steps (the host profile comes from the CNN zoo,
the GEMM alignment factors from products timed alone), so every row is out of sample.
'host-bound' rows are those whose measured host issue time is at least 90% of the step.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

from simulator.api.predict import predict
from simulator.core.json_source import read_json_object, record_list
from simulator.report.atomic import write_json_atomic


def rows_of(path: Path) -> list[dict[str, Any]]:
    data = read_json_object(path, "transformer step measurements")
    rows = []
    for rec in record_list(data, path):
        if rec.get("status") != "ok":
            continue
        result = predict(rec["model"], "h200", batch=rec["batch"], precision=rec["precision"],
                         mode=rec["mode"], seq_len=rec["seq_len"], input="device",
                         optimizer="adamw" if rec["mode"] == "train" else "sgd")
        rows.append({**{k: rec[k] for k in ("model", "mode", "batch", "seq_len", "precision")},
                     "host_bound": rec["issue_median_s"] >= 0.9 * rec["median_s"],
                     "measured_s": rec["median_s"], "predicted_s": result["step_time_s"],
                     "error": result["step_time_s"] / rec["median_s"] - 1})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("measurements", nargs="?",
                        default="measurements/h200-torch-transformers.json")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    args = parser.parse_args()
    rows = rows_of(Path(args.measurements))
    print(f"{len(rows)} steps of {args.measurements}, none fitted on")
    print(f"{'model':12s} {'mode':5s} {'batch':>5s} {'seq':>5s} {'prec':5s} "
          f"{'measured':>10s} {'predicted':>10s} {'error':>7s}")
    for r in rows:
        print(f"{r['model']:12s} {r['mode']:5s} {r['batch']:5d} {r['seq_len']:5d} "
              f"{r['precision']:5s} {r['measured_s'] * 1e3:8.2f}ms {r['predicted_s'] * 1e3:8.2f}ms "
              f"{r['error']:+7.0%}{'  host-bound' if r['host_bound'] else ''}")
    groups: dict[str, list[float]] = {}
    for r in rows:
        regime = "host-bound" if r["host_bound"] else "device"
        for key in (f"{r['model']} {r['precision']} {regime}", f"all {regime}", "all"):
            groups.setdefault(key, []).append(abs(r["error"]))
    print(f"{'group':30s} {'rows':>5s} {'MAPE':>7s} {'median':>7s} {'worst':>7s}")
    for key, errors in sorted(groups.items()):
        print(f"{key:30s} {len(errors):5d} {statistics.mean(errors):7.1%} "
              f"{statistics.median(errors):7.1%} {max(errors):7.1%}")
    if args.json:
        write_json_atomic(Path(args.json), rows)


if __name__ == "__main__":
    main()

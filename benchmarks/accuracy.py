"""Accuracy out of sample: every measured H200 PyTorch step predicted with a host profile
fitted without its network (leave one network out), printed per network and regime next to
the targets of the accuracy issue.

    python benchmarks/accuracy.py [ZOO.json ...] [--json OUT]

With several zoo files (runs of the same zoo), each configuration's time is the median over
the runs (default: the three H200 runs of 2026-12-01).

Host-bound rows are batch 1 and the MLP at every batch; the others are 'device' rows. The
device side of the H200 is its catalog profile (transferred from the H100's calibration).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from simulator.calibrate.conv_layers import LAYER_FILES, load_layer_files
from simulator.calibrate.host import (
    held_out,
    interval_coverage,
    median_of_runs,
    step_records,
    summary,
)
from simulator.report.atomic import write_json_atomic

TARGETS = {"host-bound": 0.20, "device": 0.08}
HOST = "the H200 lease machine"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("measurements", nargs="*", default=[
        "measurements/h200-torch-zoo-run1.json", "measurements/h200-torch-zoo.json",
        "measurements/h200-run3-torch-zoo.json"])
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    parser.add_argument("--layers", nargs="+",
                        default=[f"measurements/{name}" for name in LAYER_FILES],
                        help="conv, batch-norm and pooling layers timed alone (schema "
                        "simulator.conv-layers/1): the device's convolution terms are fitted "
                        "on them without the held-out network's layers; 'none': the catalog's")
    args = parser.parse_args()
    records = median_of_runs([step_records(Path(p)) for p in args.measurements])
    layers = None if args.layers == ["none"] else load_layer_files([Path(p) for p in args.layers])
    rows = held_out(records, "h200", HOST, args.measurements, layers)
    print(f"leave-one-network-out, {len(rows)} steps, the median of "
          f"{len(args.measurements)} run(s): {', '.join(args.measurements)}")
    print(f"{'group':30s} {'rows':>5s} {'median':>8s} {'worst':>8s}")
    for group, stats in summary(rows).items():
        print(f"{group:30s} {stats['rows']:5d} {stats['median']:8.1%} {stats['worst']:8.1%}")
    for regime, target in TARGETS.items():
        errors = [abs(r["error"]) for r in rows if r["host_bound"] == (regime == "host-bound")]
        mape = statistics.mean(errors)
        verdict = "met" if mape <= target else "NOT met"
        print(f"{regime}: MAPE {mape:.1%} (target {target:.0%}: {verdict})")
    for mode, target in (("train", 0.08), ("infer", 0.12)):
        per_net = {}
        for r in rows:
            if r["mode"] == mode and r["batch"] >= 32 and r["model"] != "mlp":
                per_net.setdefault(r["model"], []).append(abs(r["error"]))
        cells = ", ".join(f"{m} {statistics.mean(e):.1%}" for m, e in sorted(per_net.items()))
        worst = max(statistics.mean(e) for e in per_net.values())
        verdict = "met" if worst <= target else "NOT met"
        print(f"{mode} at batch >= 32, MAPE per network (target {target:.0%}: {verdict}): "
              f"{cells}")
    coverage = interval_coverage(rows)
    verdict = "met" if 0.70 <= coverage <= 0.90 else "NOT met"
    print(f"10-90% prediction intervals, nested leave-one-network-out: {coverage:.0%} of the "
          f"measured steps inside (target 70-90%: {verdict})")
    if args.json:
        write_json_atomic(Path(args.json), rows)


if __name__ == "__main__":
    main()

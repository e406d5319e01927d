"""Peak memory as measured: every H200 PyTorch zoo step's predicted allocated peak
(workloads/memory.py, the `memory_peak_bytes` of `predict --json`) against its
torch.cuda.max_memory_allocated, and the allocator's reserve against max_memory_reserved,
printed per network (median and worst absolute error).

    python benchmarks/accuracy_memory.py [measurements/h200-torch-zoo.json] [--fit] [--json OUT]

The allocated peak has no fitted constant (sizes from PyTorch's and cuDNN's sources and from
measurements/h200-memory-facts.json), so in sample is out of sample for it. The reserve is
one fitted ratio, RESERVED_PER_ALLOCATED (reserved / allocated, the median over the steps),
judged leave one network out: each network's reserve predicted with the ratio of the others.
`--fit` prints the ratio fitted on every network (the value workloads/memory.py should hold).

The zoo ran inference in the process that had trained before it: autograd's device thread
had already made its own cuBLAS workspace, which stays allocated. A fresh inference process
has none, so the comparison adds it to inference predictions (the size measured in
h200-memory-facts.json: memory held after a backward minus after a forward).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from simulator.report.atomic import write_json_atomic
from workloads import memory
from workloads.builder import build_graph
from workloads.model_def import catalog_models, load_model

FACTS = Path("measurements/h200-memory-facts.json")
TARGET = 0.10  # median absolute error of the allocated peak, per network


def zoo_steps(path: Path) -> list[dict[str, Any]]:
    """The GPU steps of the zoo whose network is in the catalog."""
    doc = json.loads(path.read_text())
    ours = set(catalog_models())
    return [r for r in doc["records"] if r.get("device") == "gpu" and r.get("status") == "ok"
            and r["model"] in ours and "max_memory_allocated_bytes" in r]


def leftover_workspace_bytes(facts: Path) -> float:
    cublas = json.loads(facts.read_text())["cublas"]
    return float(cublas["after_backward_bytes"] - cublas["after_forward_bytes"])


def predicted_rows(steps: list[dict[str, Any]], leftover: float) -> list[dict[str, Any]]:
    rows = []
    for r in steps:
        graph = build_graph(load_model(r["model"]), r["batch"], r["mode"], r["precision"],
                            input_place="device")
        allocated = graph.memory["peak_bytes"] + (leftover if r["mode"] == "infer" else 0.0)
        rows.append({"model": r["model"], "mode": r["mode"], "batch": r["batch"],
                     "precision": r["precision"], "predicted_allocated_bytes": allocated,
                     "measured_allocated_bytes": r["max_memory_allocated_bytes"],
                     "measured_reserved_bytes": r["max_memory_reserved_bytes"],
                     "error": allocated / r["max_memory_allocated_bytes"] - 1.0})
    return rows


def fit_reserve(rows: list[dict[str, Any]]) -> float:
    """The median measured reserved / allocated ratio."""
    return statistics.median(r["measured_reserved_bytes"] / r["measured_allocated_bytes"]
                             for r in rows)


def reserve_errors(rows: list[dict[str, Any]]) -> None:
    """Each row's reserve predicted in sample and with the ratio fitted without its network."""
    everything = fit_reserve(rows)
    for network in {r["model"] for r in rows}:
        ratio = fit_reserve([r for r in rows if r["model"] != network])
        for r in (r for r in rows if r["model"] == network):
            for key, fitted in (("reserve_error", everything), ("reserve_error_held_out", ratio)):
                r[key] = fitted * r["predicted_allocated_bytes"] / r["measured_reserved_bytes"] - 1


def summary(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, float]]:
    """Median and worst absolute error per network, and over all rows."""
    groups: dict[str, list[float]] = {}
    for r in rows:
        groups.setdefault(r["model"], []).append(abs(r[key]))
    groups["all"] = [abs(r[key]) for r in rows]
    return {g: {"rows": len(v), "median": statistics.median(v), "worst": max(v)}
            for g, v in groups.items()}


def _print_table(title: str, stats: dict[str, dict[str, float]]) -> None:
    print(title)
    print(f"  {'network':14s} {'rows':>5s} {'median':>8s} {'worst':>8s}")
    for group, s in stats.items():
        print(f"  {group:14s} {s['rows']:5d} {s['median']:8.1%} {s['worst']:8.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("measurements", nargs="?", default="measurements/h200-torch-zoo.json")
    parser.add_argument("--facts", default=str(FACTS))
    parser.add_argument("--fit", action="store_true", help="print the fitted reserve ratio")
    parser.add_argument("--json", default=None, help="also write the rows and summaries here")
    args = parser.parse_args()
    leftover = leftover_workspace_bytes(Path(args.facts))
    rows = predicted_rows(zoo_steps(Path(args.measurements)), leftover)
    reserve_errors(rows)
    allocated = summary(rows, "error")
    _print_table(f"allocated peak vs max_memory_allocated, {len(rows)} steps (nothing fitted)",
                 allocated)
    _print_table(f"reserve vs max_memory_reserved, ratio {memory.RESERVED_PER_ALLOCATED} in "
                 "sample", summary(rows, "reserve_error"))
    _print_table("reserve, leave one network out", summary(rows, "reserve_error_held_out"))
    worst = max((s["median"] for g, s in allocated.items() if g != "all"))
    print(f"allocated: worst per-network median {worst:.1%} (target {TARGET:.0%}: "
          f"{'met' if worst <= TARGET else 'NOT met'})")
    print("largest errors:")
    for r in sorted(rows, key=lambda r: -abs(r["error"]))[:8]:
        print(f"  {r['model']:13s} {r['mode']:5s} b{r['batch']:<4d} {r['precision']:11s} "
              f"{r['error']:+7.1%} ({r['predicted_allocated_bytes'] / 1e9:.2f} GB predicted, "
              f"{r['measured_allocated_bytes'] / 1e9:.2f} GB measured)")
    fitted = fit_reserve(rows)
    if args.fit:
        print(f"RESERVED_PER_ALLOCATED = {fitted:.3f}")
    if args.json:
        write_json_atomic(Path(args.json), {"rows": rows, "allocated": allocated,
                                            "reserve_ratio_fitted": fitted})


if __name__ == "__main__":
    main()

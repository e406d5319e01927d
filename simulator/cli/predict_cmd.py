"""`python -m simulator predict`: one prediction as JSON or as a readable table."""

from __future__ import annotations

import json
import sys
from typing import Any

from simulator.core.errors import UserError
from simulator.api.predict import predict

OUT_OF_MEMORY_EXIT = 3


def _check(opts: dict[str, Any]) -> None:
    if opts["model"] is None and opts["collective"] is None:
        raise UserError("predict needs --model (or --collective)")
    if opts["batch"] < 1:
        raise UserError(f"--batch must be a positive integer, got {opts['batch']}")
    if opts["devices"] < 1:
        raise UserError(f"--devices must be a positive integer, got {opts['devices']}")


def _table(result: dict[str, Any]) -> str:
    lines = [f"{result['model']} on {result['hardware']}: {result['mode']}, batch "
             f"{result['batch']}, {result['precision']} ({result['calibration']} profile)"]
    if result["status"] != "ok":
        return "\n".join(lines + [result["error"]])
    lines.append(f"  step time      {result['step_time_s'] * 1e3:12.3f} ms")
    lines.append(f"  throughput     {result['samples_per_s']:12.1f} samples/s")
    lines.append(f"  FLOPs          {result['flops'] / 1e9:12.1f} GFLOP")
    lines.append(f"  memory peak    {result['memory_peak_bytes'] / 1e9:12.2f} GB "
                 f"of {result['memory_capacity_bytes'] / 1e9:.1f} GB")
    lines.append(f"  utilisation    {result['utilisation'] * 100:12.1f} % of peak")
    lines.append("  breakdown:")
    step = result["step_time_s"]
    for cat, t in result["breakdown"].items():
        lines.append(f"    {cat:14s} {t * 1e3:10.3f} ms  {100 * t / step:5.1f} %")
    for row in result.get("layers", []):
        lines.append(f"    {row['layer']:>24s} {row['phase']:10s} {row['time_s'] * 1e3:10.3f} ms")
    return "\n".join(lines)


def run_predict(**opts: Any) -> None:
    _check(opts)
    if opts["collective"] is not None or opts["devices"] > 1:
        from simulator.cli.cluster_cmd import run_cluster_predict

        run_cluster_predict(opts)
        return
    result = predict(opts["model"], opts["hardware"], opts["batch"], opts["precision"],
                     opts["mode"], opts["optimizer"], opts["per_layer"], opts["spec_sheet"],
                     opts["sync_input"], opts["conv_algorithm"], opts["framework"])
    print(json.dumps(result, sort_keys=True) if opts["json_out"] else _table(result))
    if result["status"] == "out_of_memory":
        sys.exit(OUT_OF_MEMORY_EXIT)

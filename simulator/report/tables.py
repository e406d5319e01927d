"""Console tables of one prediction: a step (one device or many) and a collective alone."""

from __future__ import annotations

from typing import Any


def step_table(result: dict[str, Any]) -> str:
    """A readable summary of one step's result (the `predict` command without --json)."""
    lines = [f"{result['model']} on {result['hardware']}: {result['mode']}, batch "
             f"{result['batch']:g} per device (global {result['global_batch']}), "
             f"{result['precision']} ({result['calibration']} profile)"]
    if "parallel" in result:
        lines.append(f"  {result['devices']} devices ({result['nodes']} nodes x "
                     f"{result['devices_per_node']}), {result['parallel']} parallel, "
                     f"{result['simulated']} simulation")
    if result["status"] != "ok":
        return "\n".join(lines + [result["error"]])
    lines += _timing_lines(result)
    if "parallel" in result:
        lines.append(f"  communication  {result['communication_s'] * 1e3:12.3f} ms")
        lines.append(f"  scaling eff.   {result['scaling_efficiency'] * 100:12.1f} %")
    return "\n".join(lines)


def _timing_lines(result: dict[str, Any]) -> list[str]:
    step = result["step_time_s"]
    band = ""
    if result.get("step_time_p10_s") is not None:
        band = (f"  (10-90%: {result['step_time_p10_s'] * 1e3:.3f} - "
                f"{result['step_time_p90_s'] * 1e3:.3f} ms)")
    lines = [f"  step time      {step * 1e3:12.3f} ms{band}",
             f"  throughput     {result['samples_per_s']:12.1f} samples/s",
             f"  FLOPs          {result['flops'] / 1e9:12.1f} GFLOP",
             f"  memory peak    {result['memory_peak_bytes'] / 1e9:12.2f} GB "
             f"of {result['memory_capacity_bytes'] / 1e9:.1f} GB",
             f"  utilisation    {result['utilisation'] * 100:12.1f} % of peak",
             "  breakdown:"]
    for cat, t in result["breakdown"].items():
        lines.append(f"    {cat:14s} {t * 1e3:10.3f} ms  {100 * t / step:5.1f} %")
    for row in result.get("layers", []):
        lines.append(f"    {row['layer']:>24s} {row['phase']:10s} {row['time_s'] * 1e3:10.3f} ms")
    return lines


def collective_table(result: dict[str, Any]) -> str:
    title = (f"{result['collective']} of {result['bytes']:.0f} bytes on {result['devices']} x "
             f"{result['hardware']} ({result['nodes']} nodes, intra {result['intra_link']}, "
             f"inter {result['inter_link']})")
    return "\n".join([
        title,
        f"  time           {result['time_s'] * 1e3:12.3f} ms",
        f"  algbw          {result['algorithm_bandwidth_bytes_per_s'] / 1e9:12.2f} GB/s",
        f"  busbw          {result['bus_bandwidth_bytes_per_s'] / 1e9:12.2f} GB/s",
    ])

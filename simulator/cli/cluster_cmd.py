"""`python -m simulator predict` for many devices (`--devices N`) or one collective alone
(`--collective NAME --bytes S`): JSON or a readable table.

Defaults: devices_per_node = min(devices, 8); the intra-node link is NVLink on SXM boards
(nvlink4 for h100-sxm and h200, nvlink3 for a100-sxm4) and the device's host link
otherwise; the inter-node link is ib-ndr.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from hardware_models.catalog_io import make_device
from simulator.cli.predict_cmd import OUT_OF_MEMORY_EXIT, _table
from simulator.api.cluster import predict_cluster, predict_collective
from simulator.core.errors import UserError
from simulator.results.metrics import per_layer
from workloads.model_def import load_model

MAX_DEVICES_PER_NODE = 8


def _devices_per_node(opts: dict[str, Any]) -> int:
    per_node = opts.get("devices_per_node")
    if per_node is None:
        return min(opts["devices"], MAX_DEVICES_PER_NODE)
    if per_node < 1:
        raise UserError(f"--devices-per-node must be a positive integer, got {per_node}")
    return per_node


def _check(opts: dict[str, Any]) -> None:
    if opts["collective"] is not None and opts.get("bytes_") is None:
        raise UserError("--collective needs --bytes (the message size in bytes)")
    if opts["collective"] is None and opts.get("bytes_") is not None:
        raise UserError("--bytes is the size of a --collective; give --collective too")
    if opts.get("bytes_") is not None and not opts["bytes_"] > 0:
        raise UserError(f"--bytes must be a positive number, got {opts['bytes_']:g}")
    if opts.get("sync_input"):
        raise UserError("--sync-input is for single-device predict; drop it with --devices")
    if opts["devices"] % _devices_per_node(opts):
        raise UserError(f"--devices ({opts['devices']}) must be a multiple of --devices-per-node "
                        f"({_devices_per_node(opts)})")


def _collective_table(result: dict[str, Any]) -> str:
    title = (f"{result['collective']} of {result['bytes']:.0f} bytes on {result['devices']} x "
             f"{result['hardware']} ({result['nodes']} nodes, intra {result['intra_link']}, "
             f"inter {result['inter_link']})")
    return "\n".join([
        title,
        f"  time           {result['time_s'] * 1e3:12.3f} ms",
        f"  algbw          {result['algorithm_bandwidth_bytes_per_s'] / 1e9:12.2f} GB/s",
        f"  busbw          {result['bus_bandwidth_bytes_per_s'] / 1e9:12.2f} GB/s",
    ])


def _cluster_table(result: dict[str, Any]) -> str:
    text = _table(result)
    if result["status"] != "ok":
        return text
    head = (f"  {result['devices']} devices ({result['nodes']} nodes x {result['devices_per_node']}),"
            f" {result['parallel']} parallel, {result['simulated']} simulation")
    tail = [f"  communication  {result['communication_s'] * 1e3:12.3f} ms",
            f"  scaling eff.   {result['scaling_efficiency'] * 100:12.1f} %"]
    lines = text.splitlines()
    return "\n".join(lines[:1] + [head] + lines[1:] + tail)


def run_cluster_predict(opts: dict[str, Any]) -> None:
    """Called by `predict` when --devices > 1 or --collective is given."""
    _check(opts)
    device = make_device(opts["hardware"], spec_sheet=opts.get("spec_sheet", False))
    links = {"devices": opts["devices"], "devices_per_node": _devices_per_node(opts),
             "intra_link": opts.get("intra_link"), "inter_link": opts.get("inter_link")}
    if opts["collective"] is not None:
        result, _trace = predict_collective(opts["collective"], opts["bytes_"], device, **links)
        print(json.dumps(result, sort_keys=True) if opts["json_out"] else _collective_table(result))
        return
    pred = predict_cluster(load_model(opts["model"]), device, parallel=opts["parallel"],
                           batch=opts["batch"], precision=opts["precision"], mode=opts["mode"],
                           optimizer=opts["optimizer"], **links)
    result = pred.result
    if opts.get("per_layer") and pred.trace is not None:
        result["layers"] = per_layer(pred.trace)
    print(json.dumps(result, sort_keys=True) if opts["json_out"] else _cluster_table(result))
    if result["status"] == "out_of_memory":
        sys.exit(OUT_OF_MEMORY_EXIT)

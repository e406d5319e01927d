"""`python -m simulator predict`: one step (one device or many) or one collective alone, as
JSON or as a readable table. The flags become the same typed request an experiment file's
scenario is (`simulator.config.request`), so every check is the config layer's."""

from __future__ import annotations

import math
import sys
from typing import Any

from simulator.api.build import hardware_device
from simulator.api.cluster import predict_collective
from simulator.api.predict import predict_scenario
from simulator.config.request import scenario_request, validated
from simulator.config.schema import Hardware
from simulator.core.errors import UserError
from simulator.report.atomic import dumps_json
from simulator.report.tables import collective_table, step_table

OUT_OF_MEMORY_EXIT = 3
MAX_COLLECTIVE_BYTES = 1e15  # a petabyte: far beyond any device's memory
REQUEST_FLAGS = ("batch", "global_batch", "precision", "mode", "optimizer", "sync_input", "input",
                 "conv_algorithm", "framework", "threads", "spec_sheet", "devices",
                 "devices_per_node", "intra_link", "inter_link", "seq_len",
                 "unsupported_as_elementwise")


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """`--option KEY=VALUE` pairs: the strategy options of YAML's `parallel.options`."""
    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--option: expected KEY=VALUE, got {pair!r}")
        options[key] = _scalar(text)
    return options


def _scalar(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text, text)


def _print(result: dict[str, Any], as_json: bool, table: str) -> None:
    print(dumps_json(result, "--json", indent=None).rstrip("\n") if as_json else table)


def parse_stragglers(pairs: list[str] | None) -> list[dict[str, Any]]:
    """`--straggler DEVICE=SLOWDOWN` pairs: YAML's `hardware.stragglers`."""
    stragglers = []
    for pair in pairs or []:
        device, sep, slowdown = pair.partition("=")
        if not sep or not device or not slowdown:
            raise UserError(f"--straggler: expected DEVICE=SLOWDOWN (e.g. 3=1.5), got {pair!r}")
        stragglers.append({"device": _scalar(device), "slowdown": _scalar(slowdown)})
    return stragglers


def parse_link_faults(pairs: list[str] | None) -> list[dict[str, Any]]:
    """`--link-fault A,B=FRACTION` (or `=failed`) pairs: YAML's `hardware.link_faults`."""
    faults = []
    for pair in pairs or []:
        ends, sep, what = pair.partition("=")
        a, comma, b = ends.partition(",")
        if not sep or not comma or not a or not b or not what:
            raise UserError(f"--link-fault: expected A,B=FRACTION or A,B=failed (e.g. "
                            f"d0,n0.fabric=0.5), got {pair!r}")
        state = {"failed": True} if what == "failed" else {"bandwidth_fraction": _scalar(what)}
        faults.append({"between": [a, b], **state})
    return faults


# flags of a step that mean nothing to a collective timed alone (given: an error, not ignored)
STEP_ONLY = {"model": "--model", "straggler": "--straggler", "global_batch": "--global-batch",
             "per_layer": "--per-layer", "link_fault": "--link-fault"}


def run_predict(**opts: Any) -> None:
    if opts["collective"] is not None:
        given = [flag for key, flag in STEP_ONLY.items() if opts.get(key)]
        if given:
            raise UserError(f"{given[0]}: a step's option, but --collective times one "
                            "collective alone; drop one of them")
        _run_collective(opts)
        return
    if opts.get("bytes_") is not None:
        raise UserError("--bytes is the size of a --collective; give --collective too")
    if opts["model"] is None:
        raise UserError("predict needs --model (or --collective)")
    request = scenario_request(opts["model"], opts["hardware"], parallel=opts["parallel"],
                               options=parse_options(opts["option"]),
                               stragglers=parse_stragglers(opts["straggler"]),
                               link_faults=parse_link_faults(opts["link_fault"]),
                               **{k: opts[k] for k in REQUEST_FLAGS})
    result = predict_scenario(request, opts["per_layer"]).result
    _print(result, opts["json_out"], step_table(result))
    if result["status"] == "out_of_memory":
        sys.exit(OUT_OF_MEMORY_EXIT)


def _run_collective(opts: dict[str, Any]) -> None:
    size = opts.get("bytes_")
    if size is None:
        raise UserError("--collective needs --bytes (the message size in bytes)")
    if not (math.isfinite(size) and size > 0) or size > MAX_COLLECTIVE_BYTES:
        raise UserError(f"--bytes: must be a finite positive number of at most "
                        f"{MAX_COLLECTIVE_BYTES:.0e} bytes, got {size:g}")
    hw = validated(Hardware, {"device": opts["hardware"], "count": opts["devices"],
                              "devices_per_node": opts["devices_per_node"],
                              "intra_link": opts["intra_link"], "inter_link": opts["inter_link"],
                              "spec_sheet": opts["spec_sheet"]})
    result, _trace = predict_collective(
        opts["collective"], opts["bytes_"], hardware_device(hw), devices=hw.count,
        devices_per_node=hw.per_node, intra_link=hw.intra_link, inter_link=hw.inter_link,
        options=parse_options(opts["option"]))
    _print(result, opts["json_out"], collective_table(result))

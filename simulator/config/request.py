"""One typed request for `predict`, `run` and the Python API.

`scenario_request(...)` builds, from keyword options (the CLI's flags, `simulator.predict`'s
arguments), the same `Scenario` an experiment file holds, validated by the same models, so
every check is written once (here, in the config layer) and a bad value is one line naming
the option: `--batch: must be an integer greater than 0, got 0`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from simulator.config.errors import first_error
from simulator.config.schema import Scenario
from simulator.core.errors import UserError

# where a field of the Scenario comes from on the command line
FLAG_OF_FIELD: dict[tuple[str, ...], str] = {
    ("workload", "model"): "--model", ("workload", "batch"): "--batch",
    ("workload", "global_batch"): "--global-batch", ("workload", "precision"): "--precision",
    ("workload", "mode"): "--mode", ("workload", "optimizer"): "--optimizer",
    ("workload", "sync_input"): "--sync-input", ("workload", "input"): "--input",
    ("workload", "conv_algorithm"): "--conv-algorithm", ("workload", "seq_len"): "--seq-len",
    ("workload", "unsupported_as_elementwise"): "--unsupported-as-elementwise",
    ("hardware", "device"): "--hardware", ("hardware", "count"): "--devices",
    ("hardware", "devices_per_node"): "--devices-per-node",
    ("hardware", "intra_link"): "--intra-link", ("hardware", "inter_link"): "--inter-link",
    ("hardware", "spec_sheet"): "--spec-sheet", ("hardware", "framework"): "--framework",
    ("hardware", "threads"): "--threads", ("hardware", "stragglers"): "--straggler",
    ("hardware", "link_faults"): "--link-fault",
    ("parallel", "strategy"): "--parallel", ("parallel", "options"): "--option",
}


def validated(cls: type[BaseModel], data: dict[str, Any]) -> Any:
    """`cls` validated from `data`; the first problem is one UserError line naming the flag."""
    try:
        return cls.model_validate(data)
    except ValidationError as err:
        loc, message = first_error(err, cls)
        flag = FLAG_OF_FIELD.get(tuple(str(p) for p in loc[:2]))
        where = flag or ".".join(map(str, loc)) or cls.__name__
        if flag and len(loc) > 2:  # a field inside the flag's value (a list of tables)
            where = f"{flag} ({'.'.join(map(str, loc))})"
        raise UserError(f"{where}: {message}") from None


def scenario_request(model: Any, hardware: Any, *, batch: int | None = 1,
                     global_batch: int | None = None, precision: str = "fp32",
                     mode: str = "train", optimizer: str = "sgd", sync_input: bool = False,
                     input: str = "pinned", seq_len: int | None = None,
                     unsupported_as_elementwise: bool = False,
                     conv_algorithm: str = "implicit_gemm", framework: str = "pytorch",
                     threads: int | None = None,
                     stragglers: list[dict[str, Any]] | None = None,
                     spec_sheet: bool = False, devices: int = 1,
                     devices_per_node: int | None = None, intra_link: str | None = None,
                     inter_link: str | None = None, parallel: str | None = None,
                     options: dict[str, Any] | None = None,
                     groups: list[dict[str, Any]] | None = None,
                     topology: dict[str, Any] | None = None,
                     link_faults: list[dict[str, Any]] | None = None) -> Scenario:
    """The Scenario for one prediction, from the options `predict` takes; `groups`,
    `topology` and `link_faults` are the experiment file's `hardware` fields (the devices
    and links of `groups` or `topology` replace `hardware`, `devices` and the links)."""
    workload = {"model": model, "batch": None if global_batch is not None else batch,
                "global_batch": global_batch, "precision": precision, "mode": mode,
                "optimizer": optimizer, "sync_input": sync_input, "input": input,
                "conv_algorithm": conv_algorithm, "seq_len": seq_len,
                "unsupported_as_elementwise": unsupported_as_elementwise}
    hw = {"device": hardware, "count": devices, "devices_per_node": devices_per_node,
          "intra_link": intra_link, "inter_link": inter_link, "spec_sheet": spec_sheet,
          "framework": framework, "threads": threads, "stragglers": list(stragglers or []),
          "link_faults": list(link_faults or [])}
    if groups is not None:  # the devices, their counts and links come from the groups
        for key in ("device", "count", "devices_per_node", "intra_link"):
            del hw[key]
        hw["groups"] = groups
    if topology is not None:  # the count and the links come from the graph
        for key in ("count", "devices_per_node", "intra_link", "inter_link"):
            del hw[key]
        hw["topology"] = topology
    data: dict[str, Any] = {"name": "predict", "workload": workload, "hardware": hw}
    if parallel is not None or options:
        data["parallel"] = {"strategy": parallel or "data", "options": dict(options or {})}
    return validated(Scenario, data)

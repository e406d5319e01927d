"""One results row per scenario: the prediction's numbers plus what an experiment adds.

Added here: the global batch, the time to work through the dataset
(`time_to_train_s = epochs * ceil(dataset_size / global_batch) * step_time_s`), cores
engaged, the cluster's purchase and cloud cost, power and energy (simulator.results.costs,
over the time to train when a dataset is given, else over one step), and the published numbers with
the ratio simulated / published for every number both sides have; with a `faults` section,
the expected time to train under failures beside `time_to_train_s` (simulator.results.faults).
Every row has the same keys (None where a number is unknown or does not apply, e.g. the link
fields of a one-device scenario), so results.csv has one column set.
"""

from __future__ import annotations

import math
from typing import Any

from simulator.config.schema import Scenario
from simulator.results.costs import cost_fields
from simulator.results.faults import fault_fields
from simulator.results.prediction import Prediction

FROM_RESULT = ("status", "model", "hardware", "calibration", "step_time_s", "step_time_p10_s",
               "step_time_p90_s", "samples_per_s",
               "breakdown", "bottleneck", "utilisation", "memory_peak_bytes",
               "memory_capacity_bytes", "flops", "bytes", "params", "error")
CLUSTER_FIELDS = ("nodes", "devices_per_node", "intra_link", "inter_link", "collective",
                  "communication_s", "single_device_step_time_s", "scaling_efficiency")


def global_batch(scenario: Scenario, result: dict[str, Any]) -> int:
    """Samples per step over all devices: as the model reports it, else as throughput shows."""
    for key in ("global_batch", "samples_per_step"):
        if result.get(key):
            return int(result[key])
    if result.get("step_time_s") and result.get("samples_per_s"):
        return round(result["samples_per_s"] * result["step_time_s"])
    data_like = scenario.strategy in ("data", "parameter_server")
    batch = scenario.workload.batch
    assert batch is not None  # a workload with global_batch has it in the result (above)
    return batch * (scenario.hardware.count if data_like else 1)


def dataset_fields(scenario: Scenario, step_s: float | None, batch: int) -> dict[str, Any]:
    work = scenario.workload
    epochs = work.epochs or (1 if work.dataset_size else None)
    steps = epochs * math.ceil(work.dataset_size / batch) if work.dataset_size and epochs else None
    return {"dataset_size": work.dataset_size, "epochs": epochs, "steps": steps,
            "time_to_train_s": steps * step_s if steps is not None and step_s else None}


def published_fields(scenario: Scenario, row: dict[str, Any]) -> dict[str, Any]:
    """The published numbers as given, and simulated / published where both are numbers."""
    published = dict(scenario.published or {})
    ratio = {key: row[key] / value for key, value in published.items()
             if not isinstance(value, str) and isinstance(row.get(key), (int, float))
             and not isinstance(row.get(key), bool)}
    return {"published": published or None, "simulated_over_published": ratio or None}


def scenario_row(scenario: Scenario, prediction: Prediction) -> dict[str, Any]:
    """The JSON-ready results row of one scenario (see the module docstring)."""
    result, work, hw = prediction.result, scenario.workload, scenario.hardware
    row: dict[str, Any] = {"name": scenario.name, "description": scenario.description}
    row.update({key: result.get(key) for key in FROM_RESULT})
    row.update(devices=hw.count, strategy=scenario.strategy, batch=result.get("batch", work.batch),
               precision=work.precision, mode=work.mode,
               optimizer=work.optimizer if work.mode == "train" else None,
               sync_input=work.sync_input,
               global_batch=global_batch(scenario, result),
               fits=result.get("fits", result.get("status") != "out_of_memory"))
    row.update({key: result.get(key) for key in CLUSTER_FIELDS})
    row.update(dataset_fields(scenario, row["step_time_s"], row["global_batch"]))
    row.update(fault_fields(scenario, result, row["time_to_train_s"]))
    row.update(cost_fields(scenario, prediction.device, {**row, "cores": result.get("cores")}))
    row.update(published_fields(scenario, row))
    row["layers"] = result.get("layers")
    return row

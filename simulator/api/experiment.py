"""Running an experiment: each scenario's model and device are built and simulated, in order.

One device runs through `predict_single`; several go to `simulator.cluster_api.predict_cluster`
(imported only when a scenario needs it). Nothing here writes files: a run returns the
predictions and the results rows, and `simulator.report` writes them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hardware_models.catalog_io import build_device, default_profile, load_spec, make_device
from hardware_models.profile import spec_sheet_profile
from hardware_models.spec import CPUSpec, GPUSpec
from simulator.config.schema import Experiment, Scenario
from simulator.config.refs import DerivedDevice
from simulator.core.errors import UserError
from simulator.api.predict import Prediction, predict_single
from simulator.results.metrics import per_layer
from simulator.results.scenario import scenario_row
from workloads.model_def import ModelDef, load_model

CLUSTER_MODULE = "simulator.api.cluster"


@dataclass
class ScenarioRun:
    """One scenario's prediction (result, graph, trace, device) and its results row."""

    scenario: Scenario
    prediction: Prediction
    row: dict[str, Any]


def scenario_model(scenario: Scenario) -> ModelDef:
    model = scenario.workload.model
    return load_model(model) if isinstance(model, str) else model


def _derived_device(ref: DerivedDevice, spec_sheet: bool) -> Any:
    """The modified spec with the base device's profile: same efficiencies, new peaks."""
    base = load_spec(ref.base)
    profile = spec_sheet_profile(ref.base) if spec_sheet else default_profile(base)
    profile = profile.model_copy(update={"device": ref.display,
                                         "origin": f"{profile.origin}, of {ref.base}"})
    return build_device(ref.spec, profile)


def scenario_device(scenario: Scenario) -> Any:
    """A ready device model for the scenario's hardware (catalog, modified or inline)."""
    hw = scenario.hardware
    if isinstance(hw.device, str):
        return make_device(hw.device, spec_sheet=hw.spec_sheet)
    if isinstance(hw.device, DerivedDevice):
        return _derived_device(hw.device, hw.spec_sheet)
    spec: CPUSpec | GPUSpec = hw.device
    return build_device(spec, spec_sheet_profile(spec.name) if hw.spec_sheet
                        else default_profile(spec))


def _cluster_api(experiment: Experiment, index: int) -> Callable[..., Prediction]:
    try:
        from simulator.api.cluster import predict_cluster
    except ModuleNotFoundError as err:
        if err.name != CLUSTER_MODULE:
            raise
        raise experiment.error(("scenarios", index, "hardware", "count"),
                               "scenarios with more than one device need simulator.api.cluster, "
                               "which this installation does not have yet; use count: 1") from None
    return predict_cluster


def predict_scenario(experiment: Experiment, index: int) -> Prediction:
    """Simulate one scenario (or report it out of memory) and add its per-layer times."""
    scenario = experiment.scenarios[index]
    work, hw = scenario.workload, scenario.hardware
    model, device = scenario_model(scenario), scenario_device(scenario)
    if hw.count == 1:
        pred = predict_single(model, device, work.batch, work.precision, work.mode,
                              work.optimizer, sync_input=work.sync_input)
    else:
        options = scenario.parallel.options if scenario.parallel is not None else {}
        predict_cluster = _cluster_api(experiment, index)
        extra = {"sync_input": True} if work.sync_input else {}
        if extra and "sync_input" not in inspect.signature(predict_cluster).parameters:
            raise experiment.error(("scenarios", index, "workload", "sync_input"),
                                   "not supported for multi-device scenarios yet")
        pred = predict_cluster(
            model, device, devices=hw.count, devices_per_node=hw.devices_per_node or hw.count,
            intra_link=hw.intra_link, inter_link=hw.inter_link, parallel=scenario.strategy,
            batch=work.batch, precision=work.precision, mode=work.mode,
            optimizer=work.optimizer, options=dict(options), **extra)
    if pred.trace is not None and "layers" not in pred.result:
        pred.result["layers"] = per_layer(pred.trace)
    return pred


def check_runnable(experiment: Experiment) -> None:
    """Fail before anything runs if a scenario needs a part this installation lacks."""
    for index, scenario in enumerate(experiment.scenarios):
        if scenario.hardware.count > 1:
            _cluster_api(experiment, index)


def run_experiment(experiment: Experiment,
                   on_done: Callable[[int, ScenarioRun], None] | None = None) -> list[ScenarioRun]:
    """Simulate every scenario in order; `on_done(index, run)` reports progress."""
    check_runnable(experiment)
    runs: list[ScenarioRun] = []
    for index, scenario in enumerate(experiment.scenarios):
        try:
            prediction = predict_scenario(experiment, index)
        except UserError as err:  # e.g. a strategy option the cluster model rejects
            raise experiment.error(("scenarios", index), str(err)) from None
        run = ScenarioRun(scenario, prediction, scenario_row(scenario, prediction))
        runs.append(run)
        if on_done is not None:
            on_done(index, run)
    return runs

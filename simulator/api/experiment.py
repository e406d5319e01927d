"""Running an experiment: each scenario goes through the one prediction path, in order.

Nothing here writes files: a run returns the predictions and the results rows, and
`simulator.report` writes them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from simulator.api.predict import predict_scenario
from simulator.config.schema import Experiment, Scenario
from simulator.core.errors import UserError
from simulator.results.prediction import Prediction
from simulator.results.scenario import scenario_row


@dataclass
class ScenarioRun:
    """One scenario's prediction (result, graph, trace, device) and its results row."""

    scenario: Scenario
    prediction: Prediction
    row: dict[str, Any]


def run_experiment(experiment: Experiment,
                   on_done: Callable[[int, ScenarioRun], None] | None = None) -> list[ScenarioRun]:
    """Simulate every scenario in order; `on_done(index, run)` reports progress."""
    runs: list[ScenarioRun] = []
    for index, scenario in enumerate(experiment.scenarios):
        try:
            prediction = predict_scenario(scenario, per_layer_times=True)
        except UserError as err:  # e.g. a strategy option the cluster model rejects
            raise experiment.error(("scenarios", index), str(err)) from None
        run = ScenarioRun(scenario, prediction, scenario_row(scenario, prediction))
        runs.append(run)
        if on_done is not None:
            on_done(index, run)
    return runs

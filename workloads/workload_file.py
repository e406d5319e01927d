"""A workload file by path: a model (a layer list) or a task graph (a file with `kind:`).

Both are read by the one YAML reader, so both get its limits and located errors.
"""

from __future__ import annotations

from pathlib import Path

from simulator.core.yaml_source import read_yaml_source
from workloads.generators import task_workload
from workloads.model_def import EMPTY_MODEL, ModelDef, load_model, parse_model
from workloads.task_graph import TaskGraph


def load_workload(path: str) -> ModelDef | TaskGraph:
    """The model or task graph in the YAML file at `path`; a bad file is one UserError."""
    source = read_yaml_source(Path(path), empty=EMPTY_MODEL)
    if isinstance(source.data, dict) and "kind" in source.data:
        return task_workload(source.data, source.where, source)
    if isinstance(source.data, dict):
        return parse_model(source.data, source.where, source)
    return load_model(path)  # says what a model file must be

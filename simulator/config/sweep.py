"""The sweep section of an experiment: many scenarios from one, with objectives and constraints.

A sweep file has `title`, `description`, `sweep` and `outputs` (instead of `scenarios`):

    sweep:
      base: {workload: {...}, hardware: {...}, parallel: {...}}   # a scenario without a name
      grid: {hardware.device: [a100-sxm4, h100-sxm], hardware.count: [8, 16]}   # every combination
      zip: {hardware.inter_link: [ib-hdr, ib-ndr], hardware.nics_per_node: [...]}  # side by side
      objectives: [time_to_train_s, cloud_cost_usd, energy_j]
      constraints: {deadline_s: 86400, fits_in_memory: true}

A key of `grid` or `zip` is the dotted path of a scenario field (`workload.batch`,
`hardware.device`, `parallel.strategy`, `parallel.options.micro_batches`, `workload.model`);
the points are the product of the grid's lists, times the zipped lists taken side by side.
The section's shape is checked when the file loads; each point is then validated exactly as
a hand-written scenario (`point_scenario`), and a bad one is one line naming the point and
the line of its value: `FILE:LINE: sweep point 3 (batch=0): workload.batch: must be ...`.
A point's `key` is the sha256 of its resolved configuration and the package version: a
finished point is found again by it when the sweep runs again.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, ValidationError, model_validator

from simulator.config.errors import first_error, invalid
from simulator.config.schema import (
    Faults,
    Hardware,
    Name,
    Outputs,
    Parallel,
    PositiveNumber,
    Scenario,
    Workload,
    _Strict,
    read_validated,
)
from simulator.core.errors import UserError, unknown_name
from simulator.core.version import VERSION
from simulator.core.yaml_source import YamlSource, read_yaml_source

MAX_POINTS = 100_000  # a sweep larger than this is refused when the file loads
SECTIONS: dict[str, type[BaseModel]] = {"workload": Workload, "hardware": Hardware,
                                        "parallel": Parallel, "faults": Faults}
# what each objective asks for; the names are fields of a results row
OBJECTIVES: dict[str, Literal["min", "max"]] = {
    "time_to_train_s": "min", "step_time_s": "min", "hardware_cost_usd": "min",
    "cloud_cost_usd": "min", "energy_j": "min", "samples_per_s": "max",
    "samples_per_s_per_usd": "max"}
Objective = Literal["time_to_train_s", "step_time_s", "hardware_cost_usd", "cloud_cost_usd",
                    "energy_j", "samples_per_s", "samples_per_s_per_usd"]
DEFAULT_OBJECTIVES: tuple[Objective, ...] = ("time_to_train_s", "hardware_cost_usd", "energy_j")


def _field_path(path: Any) -> Any:
    """A dotted path to a scenario field: section.field (parallel.options.KEY goes deeper)."""
    parts = path.split(".") if isinstance(path, str) else []
    if len(parts) < 2 or parts[0] not in SECTIONS:
        raise invalid(f"'{path}' is not a scenario field: write section.field with a section of "
                      f"{', '.join(SECTIONS)} (e.g. hardware.count)")
    fields = list(SECTIONS[parts[0]].model_fields)
    if parts[1] not in fields:
        raise invalid(str(unknown_name(f"{parts[0]} field", parts[1], fields)))
    deeper = parts[:2] == ["parallel", "options"] and len(parts) == 3
    if len(parts) > 2 and not deeper:
        raise invalid(f"'{path}' is too deep: only parallel.options.KEY names a part of a field")
    return path


def _axes(value: Any) -> Any:
    if not isinstance(value, dict):
        return value  # pydantic says what it must be
    for path, values in value.items():
        _field_path(path)
        if not isinstance(values, list) or not values:
            raise invalid("must be a non-empty list of values", (path,))
    return value


Axes = Annotated[dict[str, list[Any]], BeforeValidator(_axes)]


class Constraints(_Strict):
    """What a configuration must satisfy to count for `best` (infeasible points stay in the
    table, marked)."""

    deadline_s: PositiveNumber | None = Field(None, description="time_to_train_s at most this")
    budget_usd: PositiveNumber | None = Field(None, description="hardware_cost_usd at most this")
    cloud_budget_usd: PositiveNumber | None = Field(None,
                                                    description="cloud_cost_usd at most this")
    power_cap_w: PositiveNumber | None = Field(None, description="power_peak_w at most this")
    fits_in_memory: Literal[True] = Field(True, description="always: a point that does not "
                                          "fit in device memory is not simulated")


class SweepFigure(_Strict):
    """One chart of the sweep: `y` against the swept field `x`, a line per value of the swept
    field `series`, a panel per value of the swept field `facet`."""

    x: str
    y: Objective = "time_to_train_s"
    series: str | None = None
    facet: str | None = None


class Sweep(_Strict):
    """A base scenario, the fields to vary, and what to optimise."""

    base: dict[str, Any] = Field(description="a scenario without a name (the fields not swept)")
    grid: Axes = Field(default_factory=dict, description="dotted field -> values: every "
                       "combination")
    zip: Axes = Field(default_factory=dict, description="dotted field -> values, lists of one "
                      "length taken side by side")
    objectives: list[Objective] = Field(
        default_factory=lambda: list(DEFAULT_OBJECTIVES),
        min_length=1, description="what `best` reports, each under the constraints")
    constraints: Constraints = Constraints()
    figure: SweepFigure | None = Field(None, description="an extra chart of one number "
                                       "against one swept field")

    @model_validator(mode="after")
    def _figure_axes(self) -> Sweep:
        swept = [*self.grid, *self.zip]
        for name in ("x", "series", "facet"):
            path = getattr(self.figure, name, None)
            if path is not None and path not in swept:
                raise invalid(str(unknown_name("swept field", path, swept)), ("figure", name))
        return self

    @model_validator(mode="after")
    def _shape(self) -> Sweep:
        both = sorted(set(self.grid) & set(self.zip))
        if both:
            raise invalid(f"'{both[0]}' is in both grid and zip; put it in one", ("zip", both[0]))
        lengths = {len(v) for v in self.zip.values()}
        if len(lengths) > 1:
            first = next(iter(self.zip))
            odd = next(k for k, v in self.zip.items() if len(v) != len(self.zip[first]))
            raise invalid(f"zipped lists must have one length: {first} has "
                          f"{len(self.zip[first])}, {odd} has {len(self.zip[odd])}", (odd,))
        if self.size > MAX_POINTS:
            raise invalid(f"{self.size:,} points; a sweep has at most {MAX_POINTS:,}", ("grid",))
        return self

    @property
    def size(self) -> int:
        zipped = len(next(iter(self.zip.values()))) if self.zip else 1
        return math.prod(len(v) for v in self.grid.values()) * zipped


class SweepExperiment(_Strict):
    """A titled sweep and what to write about it."""

    title: Name
    description: str = ""
    sweep: Sweep
    outputs: Outputs = Outputs()

    @model_validator(mode="after")
    def _slides(self) -> SweepExperiment:
        if self.outputs.style != "slides":
            raise invalid("a sweep's figures are drawn as slides only (16:9); leave style out",
                          ("outputs", "style"))
        return self


@dataclass(frozen=True)
class SweepPoint:
    """One point: its place in the sweep, the values it sets, and its scenario mapping."""

    index: int
    values: tuple[tuple[str, Any], ...]  # (dotted path, value) in the order of the file
    positions: tuple[tuple[str, str, int], ...]  # (axis kind, path, index in its list)
    data: dict[str, Any]

    @property
    def label(self) -> str:
        return label_of(self.values)


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("name") or value.get("base") or json.dumps(value, sort_keys=True))
    return str(value)


def label_of(values: tuple[tuple[str, Any], ...]) -> str:
    """`device=h100-sxm count=8`: the last part of each path (the whole path where two
    paths end alike)."""
    ends = [path.rsplit(".", 1)[-1] for path, _ in values]
    return " ".join(f"{end if ends.count(end) == 1 else path}={_shown(value)}"
                    for end, (path, value) in zip(ends, values, strict=True))


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        node[part] = child = dict(child) if isinstance(child, dict) else {}
        node = child
    node[parts[-1]] = copy.deepcopy(value)


def sweep_points(sweep: Sweep) -> list[SweepPoint]:
    """Every point, in order: the grid's product (last key fastest), then the zipped lists."""
    grid_axes = [[("grid", path, i, v) for i, v in enumerate(vs)] for path, vs in
                 sweep.grid.items()]
    zipped = [list(zip(*[[("zip", path, i, v) for i, v in enumerate(vs)]
                         for path, vs in sweep.zip.items()], strict=True))] if sweep.zip else []
    points = []
    for index, combo in enumerate(itertools.product(*grid_axes, *zipped)):
        chosen = [c for item in combo for c in (item if isinstance(item[0], tuple) else [item])]
        data = copy.deepcopy(sweep.base)
        for _, path, _, value in chosen:
            _set(data, path, value)
        label = label_of(tuple((path, value) for _, path, _, value in chosen))
        data["name"] = (label or f"point {index}")[:120]
        points.append(SweepPoint(index, tuple((p, v) for _, p, _, v in chosen),
                                 tuple((k, p, i) for k, p, i, _ in chosen), data))
    return points


def _value_line(point: SweepPoint, loc: tuple[Any, ...], source: YamlSource | None) -> str:
    """FILE:LINE of the swept value the error is about (else of the base's field)."""
    if source is None:
        return ""
    dotted = ".".join(map(str, loc))
    for kind, path, i in point.positions:
        if dotted == path or dotted.startswith(path + "."):
            return f"{source.where}:{source.line_of(('sweep', kind, path, i))}: "
    return f"{source.where}:{source.line_of(('sweep', 'base', *loc))}: "


def point_scenario(point: SweepPoint, base_dir: Path | None,
                   source: YamlSource | None = None) -> Scenario:
    """The point validated as a hand-written scenario; a problem is one UserError line."""
    try:
        return Scenario.model_validate(point.data, context={"base_dir": base_dir})
    except ValidationError as err:
        loc, message = first_error(err, Scenario)
        where = ".".join(map(str, loc)) or "scenario"
        raise UserError(f"{_value_line(point, loc, source)}sweep point {point.index} "
                        f"({point.label}): {where}: {message}") from None


def _sha256(doc: Any) -> str:
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def scenario_key(scenario: Scenario) -> str:
    """sha256 of the resolved configuration (what is simulated, not its name) and version."""
    config = scenario.model_dump(mode="json", exclude={"name", "description", "published"})
    return _sha256({"config": config, "version": VERSION})


def raw_key(point: SweepPoint) -> str:
    """The key of a point that does not validate: its mapping as written, and the version."""
    return _sha256({"invalid": {k: v for k, v in point.data.items() if k != "name"},
                    "version": VERSION})


def is_sweep_file(path: str | Path) -> bool:
    """Whether an experiment file holds a `sweep` section (run by `sweep`, not `run`)."""
    source = read_yaml_source(Path(path))
    return isinstance(source.data, dict) and "sweep" in source.data


def load_sweep(path: str | Path) -> tuple[SweepExperiment, YamlSource]:
    """Read and validate a sweep file's shape (its points are validated one by one later)."""
    source = read_yaml_source(Path(path))
    return read_validated(source, SweepExperiment, Path(path).parent), source

"""The experiment schema: what `python -m simulator run EXPERIMENT.yaml` reads.

An Experiment has a title, scenarios and output options; a Scenario is a workload on some
hardware (optionally parallelised) with optional published numbers to compare against.
Every model forbids unknown keys, numbers must be finite and positive where they count
something, top-level keys starting with `x-` hold YAML anchors for reuse and are otherwise
ignored, and names are checked against the catalog while loading, so a bad file fails
before anything runs. `load_experiment(path)` reports the first problem as one line:
`FILE:LINE: field.path: what is wrong`. docs/experiments.md documents every field.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from hardware_models.costs import Server, server_names
from hardware_models.failures import device_failure_rate, failure_rate_names
from simulator.config.cluster import (
    MAX_DEVICES,
    MAX_DEVICES_PER_NODE,
    Device,
    DeviceCount,
    DeviceGroup,
    LinkFault,
    LinkName,
    TopologyGraph,
    check_link_faults,
    device_label,
)
from simulator.config.errors import check_finite, first_error, invalid, nested, one_of
from simulator.config.refs import DerivedDevice, model_ref
from simulator.core import plugins
from simulator.core.errors import UserError, unknown_name
from simulator.core.yaml_source import PathPart, YamlSource, read_yaml_source
from workloads.importers import resolve_model
from workloads.model_def import ModelDef
from workloads.optimizers import OPTIMIZERS
from workloads.precision import PRECISIONS
from workloads.resolve import CONV_ALGORITHMS
from workloads.task_graph import TaskGraph

STRATEGIES = ("single", "data", "model", "pipeline", "parameter_server")
FigureFormat = Literal["png", "svg", "pdf"]
FigureStyle = Literal["slides", "paper"]
FigureWidth = Literal["one-column", "two-column"]  # a paper's: 3.5 in, 7.16 in
FRAMEWORKS = ("pytorch", "cupy", "numpy")  # whose kernels run (selects per-library rates)
ANCHOR_PREFIX = "x-"  # top-level keys for YAML anchors only (as in docker compose), not read


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise invalid(f"must be a number, got {value!r}")
    return value


PositiveCount = Annotated[int, Field(strict=True, gt=0)]
MAX_SEQ_LEN = 2**20  # tokens per sample
SeqLen = Annotated[int, Field(strict=True, gt=0, le=MAX_SEQ_LEN)]
MAX_SAMPLES = 10**15  # samples of a dataset: 10^6 x the largest public image-text sets (5e9)
MAX_EPOCHS = 10**6
PositiveNumber = Annotated[float, BeforeValidator(_no_bool), Field(gt=0, allow_inf_nan=False)]
Name = Annotated[str, Field(strict=True, min_length=1, max_length=120, pattern=r"^[^\r\n\t]+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Workload(_Strict):
    """What runs: a model, a batch per device, precision, mode, optimizer, optional dataset."""

    model: str | ModelDef | TaskGraph
    batch: PositiveCount | None = Field(default=None, description="samples each device "
                                        "processes per step (give this or global_batch)")
    global_batch: PositiveCount | None = Field(default=None, description="samples the whole "
                                               "cluster processes per step (instead of batch)")
    precision: str = "fp32"
    mode: Literal["train", "infer"] = "train"
    optimizer: str = "sgd"
    input: Literal["device", "pinned", "pageable"] = Field(
        "pinned", description="where the batch lives: on the device (synthetic data), in pinned "
        "host memory (DataLoader pin_memory=True) or in pageable host memory")
    conv_algorithm: str = Field("implicit_gemm", description="implicit_gemm (cuDNN) or im2col "
                                "(explicit lowering: Caffe, Torch nn, CuPy)")
    dataset_size: Annotated[int, Field(strict=True, gt=0, le=MAX_SAMPLES)] | None = Field(
        default=None, description="samples in one epoch")
    epochs: Annotated[int, Field(strict=True, gt=0, le=MAX_EPOCHS)] | None = Field(default=None,
                                         description="passes over the dataset (default 1)")
    sync_input: Annotated[bool, Field(strict=True)] = Field(
        False, description="the first layer waits for the input copy (latency of one request); "
                           "default: the copy of the next batch overlaps the step (prefetch)")
    seq_len: SeqLen | None = Field(default=None, description="tokens per sample of a model "
                                   "whose input_shape has seq_len (default: the model's)")
    unsupported_as_elementwise: Annotated[bool, Field(strict=True)] = Field(
        False, description="an imported model's operators without a formula are costed as "
                           "memory-bound elementwise kernels (with a warning naming them)")

    @field_validator("model", mode="before")
    @classmethod
    def _model(cls, value: Any, info: ValidationInfo) -> str | ModelDef | TaskGraph:
        return model_ref(value, (info.context or {}).get("base_dir"))

    @field_validator("precision", "optimizer", mode="before")
    @classmethod
    def _named(cls, value: Any, info: ValidationInfo) -> Any:
        valid = list(PRECISIONS if info.field_name == "precision" else OPTIMIZERS)
        if value not in valid:
            raise invalid(str(unknown_name(str(info.field_name), str(value), valid)))
        return value

    @field_validator("conv_algorithm", mode="before")
    @classmethod
    def _conv_algorithm(cls, value: Any) -> Any:
        return one_of("conv algorithm", value, CONV_ALGORITHMS)

    @model_validator(mode="after")
    def _one_batch(self) -> Workload:
        if isinstance(self.model, TaskGraph):  # runs once: no samples
            for key in ("batch", "global_batch"):
                if getattr(self, key) not in (None, 1):
                    raise invalid(f"a task graph runs once: leave {key} out (or give 1), got "
                                  f"{getattr(self, key)}", (key,))
            return self
        if self.batch is None and self.global_batch is None:
            raise invalid("missing: give batch (samples per device) or global_batch", ("batch",))
        if self.batch is not None and self.global_batch is not None:
            raise invalid("give batch (samples per device) or global_batch, not both",
                          ("global_batch",))
        return self

    @model_validator(mode="after")
    def _model_takes_its_options(self) -> Workload:
        """An imported model imports (with seq_len bound); seq_len needs a sequence."""
        if isinstance(self.model, TaskGraph):
            if self.seq_len is not None or self.unsupported_as_elementwise:
                raise invalid("seq_len and unsupported_as_elementwise apply to a model, not "
                              "to a task graph", ("seq_len",))
            return self
        try:
            resolve_model(self.model, self.seq_len, self.unsupported_as_elementwise)
        except UserError as err:
            raise invalid(str(err).removeprefix("seq_len: "), ("seq_len",) if str(err)
                          .startswith("seq_len: ") else ("model",)) from None
        return self

    @model_validator(mode="after")
    def _epochs_need_dataset(self) -> Workload:
        if self.epochs is not None and self.dataset_size is None:
            raise invalid("epochs needs dataset_size (samples per epoch)", ("epochs",))
        return self

    @property
    def model_name(self) -> str:
        return self.model if isinstance(self.model, str) else self.model.name

    @property
    def is_task_graph(self) -> bool:
        return isinstance(self.model, TaskGraph)


class Straggler(_Strict):
    """One device that runs its kernels `slowdown` times slower than the rest (throttling,
    a degraded part): simulated device by device, so the step waits for it as a real
    synchronous step does."""

    device: Annotated[int, Field(strict=True, ge=0, le=MAX_DEVICES)] = Field(
        description="its index in the cluster, 0 to count - 1")
    slowdown: Annotated[float, BeforeValidator(_no_bool), Field(ge=1, le=1e6,
                                                                allow_inf_nan=False)] = Field(
        description="kernel time factor, at least 1 (1.5 = 50% slower)")


COUNTS_OF_A_GROUP = ("device", "count", "devices_per_node", "intra_link")
SHAPED_BY_THE_GRAPH = ("groups", "devices_per_node", "intra_link", "inter_link")


class Hardware(_Strict):
    """Where it runs: a device (catalog or inline), how many, and how they are connected;
    or groups of several device kinds; or a topology graph (simulator/config/cluster.py)."""

    groups: list[DeviceGroup] | None = Field(
        None, min_length=1, max_length=MAX_DEVICES, description="a mixed cluster: nodes of "
        "each group's device kind (instead of device and count)")
    topology: TopologyGraph | None = Field(None, description="the cluster as a graph of "
                                           "devices, switches, NICs and links")
    link_faults: list[LinkFault] = Field(default_factory=list, max_length=MAX_DEVICES,
                                         description="degraded or failed links")
    device: Device
    count: DeviceCount = 1
    devices_per_node: DeviceCount | None = None
    intra_link: LinkName = None
    inter_link: LinkName = None
    spec_sheet: Annotated[bool, Field(strict=True)] = False
    framework: str = Field("pytorch", description="whose kernels run: pytorch, cupy or numpy "
                           "(selects the per-library kernel rates of a profile)")
    threads: PositiveCount | None = Field(None, description="CPU: threads each op runs on "
                                          "(default: every core)")
    stragglers: list[Straggler] = Field(default_factory=list, max_length=MAX_DEVICES,
                                        description="devices slower than the rest")
    server: str | Server | None = Field(
        None, description="the server around each node's devices, for its price and power: a "
        "name in hardware_models/catalog/costs.yaml or a mapping of the same fields; default: "
        "the catalog's server for the device, if any")
    pue: Annotated[float, BeforeValidator(_no_bool), Field(ge=1, le=10, allow_inf_nan=False)] \
        | None = Field(None, description="power usage effectiveness of the site: energy_j and "
                       "power_w are the machines' times this (default 1.0)")

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any) -> Any:
        """Groups stand for device and count (the first group's device is `device`); a
        graph gives the count (its devices) and the links."""
        if not isinstance(data, dict):
            return data
        groups, graph = data.get("groups"), data.get("topology")
        if groups is not None:
            given = [key for key in COUNTS_OF_A_GROUP if key in data]
            if given:
                raise invalid("give the devices as groups or as device and count, not both "
                              f"(each group has its own {given[0]})", (given[0],))
            if isinstance(groups, list) and groups and isinstance(groups[0], dict):
                counts = [g.get("count") for g in groups if isinstance(g, dict)]
                data = {**data, "device": groups[0].get("device")}
                total = sum(c for c in counts if isinstance(c, int))
                if all(type(c) is int for c in counts) and total <= MAX_DEVICES:
                    data["count"] = total  # (more: refused naming groups, below)
        if isinstance(graph, dict):
            for key in SHAPED_BY_THE_GRAPH:
                if key in data:
                    raise invalid(f"{key} does not apply with a topology: the graph gives "
                                  "the nodes and links", (key,))
            if "count" not in data:
                data = {**data, "count": _graph_devices(graph)}
            nodes = graph.get("nodes")
            if "device" not in data and isinstance(nodes, list) and nodes \
                    and isinstance(nodes[0], dict) and "device" in nodes[0]:
                data = {**data, "device": nodes[0]["device"]}
        return data

    @field_validator("framework", mode="before")
    @classmethod
    def _framework(cls, value: Any) -> Any:
        return one_of("framework", value, FRAMEWORKS)

    @field_validator("server", mode="before")
    @classmethod
    def _server(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return nested(Server, value)
        return value if value is None else one_of("server", value, server_names())

    @model_validator(mode="after")
    def _cluster_fits(self) -> Hardware:
        if self.topology is not None and len(self.topology.device_names) != self.count:
            raise invalid(f"the topology has {len(self.topology.device_names)} devices, "
                          f"count is {self.count}; leave count out", ("count",))
        if self.groups is not None and sum(g.count for g in self.groups) > MAX_DEVICES:
            raise invalid(f"at most {MAX_DEVICES} devices in all, got "
                          f"{sum(g.count for g in self.groups)}", ("groups",))
        check_link_faults(self.link_faults, self.topology, self.count)
        return self

    @model_validator(mode="after")
    def _node_fits(self) -> Hardware:
        if self.groups is not None or self.topology is not None:
            return self._stragglers_fit()
        if self.devices_per_node is not None and self.devices_per_node > self.count:
            raise invalid(f"must be at most count ({self.count}), got {self.devices_per_node}",
                          ("devices_per_node",))
        if self.count % self.per_node:
            raise invalid(f"count ({self.count}) must be a multiple of devices_per_node "
                          f"({self.per_node})", ("devices_per_node",))
        return self._stragglers_fit()

    def _stragglers_fit(self) -> Hardware:
        seen: set[int] = set()
        for i, straggler in enumerate(self.stragglers):
            if straggler.device >= self.count:
                raise invalid(f"device {straggler.device} is not in a cluster of {self.count} "
                              f"(devices 0 to {self.count - 1})", ("stragglers", i, "device"))
            if straggler.device in seen:
                raise invalid(f"device {straggler.device} is listed twice",
                              ("stragglers", i, "device"))
            seen.add(straggler.device)
        return self

    @property
    def per_node(self) -> int:
        """Devices per node: as given, else up to MAX_DEVICES_PER_NODE (one DGX-like node);
        of a mixed cluster, its largest node's; of a graph, its largest node's."""
        if self.groups is not None:
            return max(g.per_node for g in self.groups)
        if self.topology is not None:
            return max([len(n.devices) for n in self.topology.nodes] or [1])
        return self.devices_per_node or min(self.count, MAX_DEVICES_PER_NODE)

    @property
    def mixed(self) -> bool:
        """Whether devices of more than one kind run the job."""
        kinds = {repr(d) for d, _ in self.device_counts()}
        return len(kinds) > 1

    def device_counts(self) -> list[tuple[Any, int]]:
        """(device reference, how many), group by group or node by node."""
        if self.groups is not None:
            return [(g.device, g.count) for g in self.groups]
        if self.topology is not None:
            counts = [(n.device or self.device, len(n.devices)) for n in self.topology.nodes]
            return counts + ([(self.device, len(self.topology.devices))]
                             if self.topology.devices else [])
        return [(self.device, self.count)]

    @property
    def slowdowns(self) -> dict[int, float]:
        """Device index -> kernel time factor, for the devices that straggle."""
        return {s.device: s.slowdown for s in self.stragglers if s.slowdown != 1.0}

    @property
    def device_name(self) -> str:
        """The device's name, or the mix: `4x h100-sxm + 4x a100-sxm4`."""
        if not self.mixed:
            return device_label(self.device)
        totals: dict[str, int] = {}
        for device, count in self.device_counts():
            totals[device_label(device)] = totals.get(device_label(device), 0) + count
        return " + ".join(f"{n}x {name}" for name, n in totals.items())


def _graph_devices(graph: dict[str, Any]) -> int:
    """How many devices a raw topology lists (0 where it is malformed: the graph's own
    validation says why)."""
    nodes = graph.get("nodes") or []
    listed = [node.get("devices") for node in nodes if isinstance(node, dict)] \
        if isinstance(nodes, list) else []
    listed.append(graph.get("devices") or [])
    return sum(len(x) for x in listed if isinstance(x, list)) or 1


class Parallel(_Strict):
    """How a multi-device scenario splits the work; `options` go to the strategy as is."""

    strategy: str = Field("data", description="a name of the strategy registry (plugins too)")
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("strategy", mode="before")
    @classmethod
    def _strategy(cls, value: Any) -> Any:
        if not isinstance(value, str) or value not in plugins.strategy:
            raise invalid(str(unknown_name("strategy", str(value), plugins.strategy.names())))
        return value

    @field_validator("options", mode="before")
    @classmethod
    def _options(cls, value: Any) -> Any:
        check_finite(value)
        return value


NonNegativeNumber = Annotated[float, BeforeValidator(_no_bool), Field(ge=0, allow_inf_nan=False)]
DEFAULT_STORAGE_BYTES_PER_S = 10.0e9  # assumed: one node writing over ~100 Gb/s
DEFAULT_RESTART_S = 600.0  # assumed: detect, reschedule, reload (docs/reliability.md)


class Faults(_Strict):
    """Device failures, checkpoints and restarts of a training job: the expected time to
    train under failures (simulator/results/faults.py, docs/reliability.md)."""

    device_mtbf_hours: PositiveNumber | None = Field(
        None, description="mean time between job-interrupting failures of one device; default: "
        "the catalog's rate for the device (hardware_models/catalog/failures.yaml)")
    checkpoint_bytes: PositiveNumber | None = Field(
        None, description="bytes one checkpoint writes; default: weights + optimizer state "
        "from the prediction's memory")
    storage_bandwidth_bytes_per_s: PositiveNumber = Field(
        DEFAULT_STORAGE_BYTES_PER_S, description="rate a checkpoint is written at")
    checkpoint_interval_s: PositiveNumber | None = Field(
        None, description="training time between checkpoints; default: the optimum by "
        "interval_rule")
    interval_rule: Literal["young", "daly"] = Field(
        "daly", description="the optimal interval: Young 1974 or Daly 2006 (higher order)")
    restart_s: NonNegativeNumber = Field(
        DEFAULT_RESTART_S, description="wall time from a failure to training again")
    straggler_slowdown: NonNegativeNumber = Field(
        0.0, description="mean slowdown of one device per step (0.01 = 1%, exponential); a "
        "synchronous step waits for the slowest device")


def failure_rate_device(device: Any) -> str:
    """The catalog name whose failure rate a device takes (a modified device: its base)."""
    if isinstance(device, str):
        return device
    return device.base if isinstance(device, DerivedDevice) else str(device.name)


class Scenario(_Strict):
    """One workload on one hardware setup: one row of results."""

    name: Name
    description: str = ""
    workload: Workload
    hardware: Hardware
    parallel: Parallel | None = None
    faults: Faults | None = Field(None, description="failures, checkpoints and restarts")
    published: dict[str, float | str] | None = Field(
        None, description="published numbers shown beside the simulated ones; 'source' says where")

    @model_validator(mode="after")
    def _faults_fit(self) -> Scenario:
        if self.faults is None:
            return self
        if self.workload.mode != "train":
            raise invalid("faults model checkpoints of a training job; this workload has "
                          "mode: infer", ("faults",))
        for device, _ in self.hardware.device_counts():
            name = failure_rate_device(device)
            if self.faults.device_mtbf_hours is None and device_failure_rate(name) is None:
                raise invalid(f"the catalog has no failure rate for '{name}' (it has: "
                              f"{', '.join(failure_rate_names())}); give device_mtbf_hours",
                              ("faults", "device_mtbf_hours"))
        return self

    @field_validator("published", mode="before")
    @classmethod
    def _published(cls, value: Any) -> Any:
        for key, item in (value.items() if isinstance(value, dict) else ()):
            if isinstance(item, bool) or not isinstance(item, (int, float, str)):
                raise invalid(f"must be a number or a text, got {item!r}", (key,))
            if not isinstance(item, str) and not (math.isfinite(item) and item > 0):
                raise invalid(f"must be a finite number greater than 0, got {item!r}", (key,))
        return value

    @model_validator(mode="after")
    def _task_graph_strategy(self) -> Scenario:
        """Strategies that cut a network's layers or batch do not apply to a task graph; a
        strategy says it places tasks with the attribute `task_graphs = True`."""
        takes_tasks = getattr(plugins.strategy.get(self.strategy), "task_graphs", False)
        if takes_tasks and not self.workload.is_task_graph:
            raise invalid(f"strategy '{self.strategy}' places the tasks of a task graph; "
                          f"{self.workload.model_name} is a network", ("parallel", "strategy"))
        if not self.workload.is_task_graph or self.strategy == "single":
            return self
        if not getattr(plugins.strategy.get(self.strategy), "task_graphs", False):
            takes = [n for n in plugins.strategy.names()
                     if getattr(plugins.strategy.get(n), "task_graphs", False)]
            use = " or ".join(takes) if takes else "one device (count: 1)"
            raise invalid(f"strategy '{self.strategy}' splits a network's layers or batch, "
                          f"not a task graph; run it on {use}", ("parallel", "strategy"))
        return self

    @model_validator(mode="after")
    def _strategy_mixes(self) -> Scenario:
        """Only a strategy that says so (`mixes_devices = True`) runs on a mix of kinds."""
        if self.hardware.mixed and not getattr(plugins.strategy.get(self.strategy),
                                               "mixes_devices", False):
            takes = [n for n in plugins.strategy.names()
                     if getattr(plugins.strategy.get(n), "mixes_devices", False)]
            raise invalid(f"strategy '{self.strategy}' cannot run on a mix of device kinds "
                          f"({self.hardware.device_name}); use {' or '.join(takes)}, or one "
                          "kind", ("parallel", "strategy"))
        return self

    @model_validator(mode="after")
    def _strategy_fits(self) -> Scenario:
        if self.parallel is not None and self.parallel.strategy == "single" \
                and self.hardware.count > 1:
            raise invalid(f"'single' runs on one device but hardware.count is "
                          f"{self.hardware.count}; choose data, model, pipeline or "
                          "parameter_server", ("parallel", "strategy"))
        return self

    @property
    def strategy(self) -> str:
        if self.hardware.count == 1:
            return "single"
        return self.parallel.strategy if self.parallel is not None else "data"


def _all_formats() -> list[FigureFormat]:
    return ["png", "svg"]


class Outputs(_Strict):
    """What a run writes beside results.json and results.csv."""

    figures: Annotated[bool, Field(strict=True)] = True
    trace: Annotated[bool, Field(strict=True)] = True
    formats: list[FigureFormat] = Field(default_factory=_all_formats, min_length=1)
    style: FigureStyle = "slides"
    width: FigureWidth | None = Field(default=None, description="paper only (default two-column)")
    timeline: list[str] | None = Field(default=None, description="scenarios to draw timelines for")
    top_layers: Annotated[int, Field(strict=True, gt=0, le=10_000)] = 12

    @model_validator(mode="after")
    def _width(self) -> Outputs:
        if self.width is not None and self.style != "paper":
            raise invalid(f"{self.width} is a paper's width; add style: paper (slides are "
                          "16:9)", ("width",))
        return self


AT_EQUAL_WORK = ("time_to_train_s", "energy_j")  # totals over the dataset: same work only


class Comparison(_Strict):
    """The ratio of one number of two scenarios (`of` / `over`), beside a published ratio."""

    name: Name
    quantity: Literal["time_to_train_s", "step_time_s", "samples_per_s", "hardware_cost_usd",
                      "energy_j"]
    of: Name
    over: Name
    published: PositiveNumber | None = None
    source: str = ""


def samples_trained(scenario: Scenario) -> int | None:
    """dataset_size x epochs (default 1): the work a time to train is for."""
    work = scenario.workload
    return work.dataset_size * (work.epochs or 1) if work.dataset_size else None


class Experiment(_Strict):
    """A titled list of scenarios and what to write about them."""

    title: Name
    description: str = ""
    scenarios: list[Scenario] = Field(min_length=1)
    outputs: Outputs = Outputs()  # frozen, so one shared default is safe
    comparisons: list[Comparison] = Field(default_factory=list, description="ratios between "
                                          "scenarios, beside published ratios")
    assumptions: list[str] = Field(default_factory=list, description="stated in the "
                                   "published table (e.g. the number of passes)")
    _source: YamlSource | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _comparisons(self) -> Experiment:
        by_name = {s.name: s for s in self.scenarios}
        for i, comp in enumerate(self.comparisons):
            for side in ("of", "over"):
                if getattr(comp, side) not in by_name:
                    raise invalid(str(unknown_name("scenario", getattr(comp, side),
                                                   list(by_name))), ("comparisons", i, side))
            work = [samples_trained(by_name[comp.of]), samples_trained(by_name[comp.over])]
            if comp.quantity in AT_EQUAL_WORK and (None in work or work[0] != work[1]):
                raise invalid(f"compares unlike work: {comp.of} trains {work[0]} samples, "
                              f"{comp.over} {work[1]}; give both the same dataset_size and "
                              "epochs", ("comparisons", i, "quantity"))
        return self

    @model_validator(mode="after")
    def _names(self) -> Experiment:
        first: dict[str, int] = {}
        for i, scenario in enumerate(self.scenarios):
            if scenario.name in first:
                raise invalid(f"duplicate scenario name '{scenario.name}' (also "
                              f"scenarios[{first[scenario.name]}]); names must be unique",
                              ("scenarios", i, "name"))
            first[scenario.name] = i
        for i, name in enumerate(self.outputs.timeline or []):
            if name not in first:
                raise invalid(str(unknown_name("scenario", name, list(first))),
                              ("outputs", "timeline", i))
        return self

    def error(self, path: tuple[PathPart, ...], what: str) -> UserError:
        """A located error about this experiment's file, for problems found after loading."""
        if self._source is None:
            return UserError(f"{'.'.join(map(str, path))}: {what}")
        return self._source.error(path, what)


def read_validated(source: YamlSource, cls: type[Any], base_dir: Path) -> Any:
    """`cls` validated from a file's data (top-level `x-` keys left out); the first problem
    is one UserError line `FILE:LINE: field: what is wrong`."""
    if not isinstance(source.data, dict):
        raise source.error((), "an experiment must be a mapping with 'title' and 'scenarios' "
                               f"(or 'sweep'), got {type(source.data).__name__}")
    data = {k: v for k, v in source.data.items() if not str(k).startswith(ANCHOR_PREFIX)}
    try:
        return cls.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as err:
        loc, message = first_error(err, cls)
        raise source.error(loc, message) from None


def load_experiment(path: str | Path) -> Experiment:
    """Read and validate an experiment file; any problem is one UserError line."""
    source = read_yaml_source(Path(path))
    if isinstance(source.data, dict) and "sweep" in source.data:
        raise source.error(("sweep",), "this experiment is a sweep: run it with "
                                       f"`python -m simulator sweep {path}`")
    experiment: Experiment = read_validated(source, Experiment, Path(path).parent)
    experiment._source = source
    return experiment

"""The one prediction path: a Scenario (from an experiment file, the CLI's flags or the
Python arguments of `predict`) -> one `Prediction`.

`predict_step` is the path itself: the strategy (`single` for one device) turns the step
into a plan over the topology, the engine runs it, `simulator.results.metrics` measures it.
The result dict is the contract other tools rely on: `step_time_s`, `samples_per_s`,
`global_batch`, `flops`, `bytes`, `memory_peak_bytes`, `breakdown` (seconds by category)
and, on request, `layers`; a parallel strategy adds `devices`, `nodes`, `communication_s`,
`scaling_efficiency` (throughput / (devices x the throughput of one device running one
replica's batch)) and its own fields. A configuration that does not fit in device memory
is never simulated: the result says `status: out_of_memory` with the numbers.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hardware_models.topology import Topology
from simulator.api import build
from simulator.config.request import scenario_request, validated
from simulator.config.schema import Scenario, Workload
from simulator.core.gc_pause import gc_paused
from simulator.core.held_cache import HeldCache
from simulator.engine.loop import simulate
from simulator.engine.plan import single_device_plan
from simulator.parallel import ClusterPlan, Job, strategy
from simulator.parallel.collectives import collective
from simulator.results.interval import step_interval
from simulator.results.metrics import per_layer, step_metrics
from simulator.results.prediction import Prediction
from workloads.memory import beside_peak, fits, required_bytes
from workloads.task_graph import TaskGraph

__all__ = ["Prediction", "forget_cached", "predict", "predict_full", "predict_on",
           "predict_scenario", "predict_step"]


def predict_scenario(scenario: Scenario, per_layer_times: bool = False) -> Prediction:
    """The prediction of one scenario, whatever its number of devices."""
    model, device = build.scenario_parts(scenario)
    options = dict(scenario.parallel.options) if scenario.parallel is not None else {}
    kinds = build.hardware_kinds(scenario.hardware, device)
    topo = build.hardware_topology(scenario.hardware, device, options.pop("nics_per_node", 1),
                                   kinds)
    pred = predict_step(scenario.workload, model, device, topo, scenario.strategy, options,
                        scenario.hardware.slowdowns, kinds)
    if per_layer_times and pred.trace is not None:
        pred.result["layers"] = _with_algorithms(per_layer(pred.trace), pred.graph)
    return pred


def _with_algorithms(layers: list[dict[str, Any]], graph: Any) -> list[dict[str, Any]]:
    """Each convolution's (layer, phase) entry names the algorithm its kernel runs."""
    chosen = {(op.layer, op.phase): op.attr("algorithm") for op in graph.ops()
              if op.attr("algorithm")}
    return [{**row, "algorithm": chosen[key]} if (key := (row["layer"], row["phase"])) in chosen
            else row for row in layers]


def _job(workload: Workload, model: Any, device: Any, topo: Topology,
         options: dict[str, Any], slowdowns: dict[int, float],
         kinds: tuple[Any, ...] = ()) -> Job:
    batch = 1 if workload.is_task_graph else workload.batch  # a task graph runs once
    return Job(model, device, topo, batch, build.graph_factory(model, workload),
               build.layers_factory(model, workload), workload.precision, workload.mode,
               workload.optimizer, options.pop("collective", "allreduce"), options,
               workload.global_batch, dict(slowdowns), kinds)


# The steps predicted last, by everything a step depends on: the model, device and topology
# objects (held in the entry, so that their ids are not reused while it lives; catalog
# models, devices and clusters are built once per process, so the points of a sweep that
# differ only in what a step does not read - the dataset size, the epochs, the PUE, a
# constraint - share one simulation), the strategy, its options, the stragglers and every
# workload field but the model and NOT_OF_THE_STEP. A hit is a copy of the result with the
# same graph and trace (never changed after a prediction). A trace of more than
# STEP_CACHE_MAX_SPANS spans (a large cluster's) is not kept.
STEP_CACHE_MAX_SPANS = 20_000
NOT_OF_THE_STEP = {"model", "dataset_size", "epochs"}
_steps = HeldCache(64)


# The largest batch that fits, by the same keys as a step less the batch: bisection finds
# the one boundary of a memory that never falls as the batch grows, whatever batch it starts
# from (in whole samples; a pipeline's micro-batches round the batch it starts from, so it is
# not kept), so the points of a sweep over batch sizes that do not fit share one bisection.
NOT_OF_THE_LARGEST = NOT_OF_THE_STEP | {"batch", "global_batch"}
_largest = HeldCache(64)


def _step_key(workload: Workload, strategy_name: str, options: dict[str, Any] | None,
              slowdowns: dict[int, float] | None, exclude: set[str] = NOT_OF_THE_STEP) -> str:
    fields = workload.model_dump(exclude=exclude)
    return repr((strategy_name, sorted(fields.items()), sorted((options or {}).items()),
                 sorted((slowdowns or {}).items())))


def _json_copy(value: Any) -> Any:
    """A copy of a JSON-ready value (new dicts and lists, the numbers and strings shared)."""
    if type(value) is dict:
        return {k: _json_copy(v) for k, v in value.items()}
    if type(value) is list:
        return [_json_copy(v) for v in value]
    return value


def _copy(pred: Prediction) -> Prediction:
    return Prediction(_json_copy(pred.result), pred.graph, pred.trace, pred.device)


def predict_step(workload: Workload, model: Any, device: Any, topo: Topology,
                 strategy_name: str = "single",
                 options: dict[str, Any] | None = None,
                 slowdowns: dict[int, float] | None = None,
                 kinds: tuple[Any, ...] = ()) -> Prediction:
    """One step of `workload` on `topo` (one device or many) under `strategy_name`;
    `slowdowns` (device index -> kernel time factor) makes devices straggle; `kinds` (each
    device's model) makes a mixed cluster."""
    held = (model, device, topo, *_distinct(kinds))
    key = _step_key(workload, strategy_name, options, slowdowns) + _kinds_key(kinds)
    found: Prediction | None = _steps.get(held, key)
    if found is not None:
        return _copy(found)
    with gc_paused():
        pred = _predict_step(workload, model, device, topo, strategy_name, options,
                             slowdowns or {}, kinds)
    if pred.trace is None or len(pred.trace.spans) <= STEP_CACHE_MAX_SPANS:
        _steps.put(held, key, _copy(pred))
    return pred


def _distinct(kinds: tuple[Any, ...]) -> list[Any]:
    """The device models of a mix, each once, in order of first use."""
    return list({id(k): k for k in kinds}.values())


def _kinds_key(kinds: tuple[Any, ...]) -> str:
    """Which of the distinct models (held beside the entry) each device of a mix is."""
    order = [id(k) for k in _distinct(kinds)]
    return repr([order.index(id(k)) for k in kinds]) if kinds else ""


def forget_cached() -> None:
    """Empty the caches of what points compute from their batch and options: predicted
    steps, graphs, resolved layers and layer costs (a benchmark's cold start)."""
    _steps.clear()
    _largest.clear()
    build.forget_built()


def _predict_step(workload: Workload, model: Any, device: Any, topo: Topology,
                  strategy_name: str, options: dict[str, Any] | None,
                  slowdowns: dict[int, float], kinds: tuple[Any, ...]) -> Prediction:
    plan_fn = strategy.get(strategy_name, field="parallel")
    job = _job(workload, model, device, topo, dict(options or {}), slowdowns, kinds)
    collective.get(job.collective, field="options.collective")
    cplan = plan_fn(job)
    result = _header(job, strategy_name, cplan)
    if not result["fits"]:
        largest_key = _step_key(workload, strategy_name, options, slowdowns, NOT_OF_THE_LARGEST)
        return Prediction(_out_of_memory(result, cplan, job, plan_fn, largest_key), cplan.graph,
                          None, device)
    trace = simulate(cplan.plan)
    dtype = _gemm_dtype(cplan)
    peak = sum(device.peak_flops(dtype) * n for device, n in _counts(job))
    timing = step_metrics(trace, cplan.plan, cplan.samples_per_step, cplan.flops_per_step, peak)
    timing.update(step_interval(timing["step_time_s"], timing["breakdown"], device))
    if strategy_name == "single":
        timing.pop("communication_s")
    else:
        timing.update(_scaling(job, cplan, timing["samples_per_s"]))
    result.update(timing)
    return Prediction(result, cplan.graph, trace, device)


def _gemm_dtype(cplan: ClusterPlan) -> str:
    return next((op.dtype for op in cplan.graph.ops() if op.kind == "gemm"), "fp32")


def _counts(job: Job) -> list[tuple[Any, int]]:
    """(device model, how many) of the job's cluster: one kind, or each kind of a mix."""
    if not job.kinds:
        return [(job.device, job.topo.size)]
    return [(k, sum(1 for d in job.kinds if d is k)) for k in _distinct(job.kinds)]


def _scaling(job: Job, cplan: ClusterPlan, samples_per_s: float) -> dict[str, float]:
    """Each kind of device running one replica's batch alone, through the same graph
    factory: the efficiency is the throughput over what every device would do alone (for a
    mix, the sum over its kinds); the single-device time is the slowest kind's."""
    alone = [(simulate(single_device_plan(cplan.graph, d)).end_s, n) for d, n in _counts(job)]
    ideal = sum(n * cplan.graph.batch / single_s for single_s, n in alone)
    return {"single_device_step_time_s": max(single_s for single_s, _ in alone),
            "scaling_efficiency": samples_per_s / ideal}


def _header(job: Job, strategy_name: str, cplan: ClusterPlan) -> dict[str, Any]:
    device, topo, graph = job.device, job.topo, cplan.graph
    peak = cplan.memory["peak_bytes"]
    workers = cplan.sample_devices or topo.size
    counts = _counts(job)
    origins = [getattr(getattr(d, "profile", None), "origin", "ideal") for d, _ in counts]
    result = {
        "model": job.model.name,
        "hardware": " + ".join(f"{n}x {d.name}" for d, n in counts) if job.kinds else device.name,
        "batch": job.batch if job.batch is not None else cplan.samples_per_step / workers,
        "global_batch": cplan.samples_per_step, "precision": job.precision, "mode": job.mode,
        "devices": topo.size, "cores": sum(n * d.cores for d, n in counts),
        "calibration": "; ".join(dict.fromkeys(origins)),
        "flops": cplan.flops_per_step,
        "bytes": graph.bytes * cplan.samples_per_step / graph.batch, "params": graph.params,
        "memory_peak_bytes": peak,
        "memory_capacity_bytes": min(d.memory_bytes for d, _ in counts),
        "memory": {**cplan.memory, **beside_peak(cplan.memory, _is_gpu(device))},
        "fits": _short_of_memory(cplan.memory, job) is None,
    }
    if strategy_name != "single":
        result.update(_cluster_fields(job, strategy_name, cplan))
    return result


def _short_of_memory(memory: dict[str, float], job: Job) -> Any:
    """The first kind of device the step does not fit on (None: it fits on every one)."""
    return next((d for d, _ in _counts(job)
                 if not fits(memory, d.memory_bytes, _is_gpu(d))), None)


def _is_gpu(device: Any) -> bool:
    """Whether the device holds a CUDA context (GPUs; not CPUs or the ideal device)."""
    return getattr(device, "kind", None) == "gpu"


def _cluster_fields(job: Job, strategy_name: str, cplan: ClusterPlan) -> dict[str, Any]:
    topo = job.topo
    return {"nodes": topo.nodes, "devices_per_node": topo.devices_per_node,
            "parallel": strategy_name, "collective": job.collective,
            "simulated": "symmetric" if cplan.plan.replicas > 1 else "full",
            "intra_link": topo.intra.name if topo.intra is not None else None,
            "inter_link": topo.inter.name if topo.inter is not None else None,
            "samples_per_step": cplan.samples_per_step, **cplan.extra}


def _out_of_memory(result: dict[str, Any], cplan: ClusterPlan, job: Job,
                   plan_fn: Any, largest_key: str) -> dict[str, Any]:
    """Not simulated: the memory numbers and the largest batch per device that fits (on
    every kind of a mix: the error names the kind that is short)."""
    device, memory = _short_of_memory(cplan.memory, job) or job.device, cplan.memory
    if isinstance(job.model, TaskGraph):  # no batch to shrink: the data do not fit
        result.update(status="out_of_memory", step_time_s=None, samples_per_s=None,
                      largest_batch_that_fits=None,
                      error=(f"out of memory: task graph {job.model.name} needs "
                             f"{required_bytes(memory, _is_gpu(device)) / 1e9:.2f} GB, "
                             f"{device.name} has {device.memory_bytes / 1e9:.2f} GB"))
        return result
    per_device = " per device" if job.topo.size > 1 else ""
    held = (job.model, job.device, job.topo, *_distinct(job.kinds))
    largest_key += _kinds_key(job.kinds)
    kept = int(job.options.get("micro_batches", 1)) == 1
    largest = _largest.get(held, largest_key) if kept else None
    if largest is None:
        largest = _largest_batch_that_fits(job, plan_fn, result["batch"])
        if kept:
            _largest.put(held, largest_key, largest)
    gpu = _is_gpu(device)
    context = beside_peak(memory, gpu)["cuda_context_bytes"]
    result.update(status="out_of_memory", step_time_s=None, samples_per_s=None,
                  largest_batch_that_fits=largest,
                  error=(f"out of memory: needs {required_bytes(memory, gpu) / 1e9:.2f} GB"
                         f"{per_device} "
                         f"({memory['peak_bytes'] / 1e9:.2f} GB allocated at the peak + "
                         f"{context / 1e9:.2f} GB CUDA context), {device.name} has "
                         f"{device.memory_bytes / 1e9:.2f} GB; the largest batch that fits is "
                         f"{largest}{per_device}"))
    return result


def _largest_batch_that_fits(job: Job, plan_fn: Any, batch: float) -> int:
    """Bisection on the batch per device through the strategy's own memory estimate (memory
    never falls as the batch grows); a pipeline's batch stays a whole number of its
    micro-batches. 0: not even one sample fits."""
    unit = int(job.options.get("micro_batches", 1))

    def fits_at(units: int) -> bool:
        trial = replace(job, batch=units * unit, global_batch=None, options=dict(job.options))
        return _short_of_memory(plan_fn(trial).memory, job) is None

    lo, hi = 0, max(1, int(batch) // unit)  # lo fits (0 trivially), hi does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits_at(mid) else (lo, mid)
    return lo * unit


def predict_on(model: Any, device: Any, topo: Topology, strategy_name: str = "single",
               options: dict[str, Any] | None = None,
               slowdowns: dict[int, float] | None = None, **workload: Any) -> Prediction:
    """`predict_step` for objects already built (a device model, a topology of any shape):
    `workload` holds the fields of the experiment schema's `workload` (batch, precision,
    mode, optimizer, sync_input, conv_algorithm, global_batch)."""
    request = validated(Workload, {"model": model, **workload})
    return predict_step(request, build.workload_model(request), device, topo, strategy_name,
                        options, slowdowns)


def predict_full(model: Any, hardware: Any, per_layer_times: bool = False,
                 **options: Any) -> Prediction:
    """`predict` with the objects behind the result (graph, trace, device)."""
    return predict_scenario(scenario_request(model, hardware, **options), per_layer_times)


def predict(model: Any, hardware: Any, batch: int | None = 1, precision: str = "fp32",
            mode: str = "train", optimizer: str = "sgd", per_layer: bool = False,
            **options: Any) -> dict[str, Any]:
    """Predict one step; the keyword options are those of `scenario_request` (devices,
    parallel, options, spec_sheet, sync_input, conv_algorithm, framework, global_batch,
    links, stragglers). See the module docstring for the fields."""
    return predict_full(model, hardware, per_layer, batch=batch, precision=precision,
                        mode=mode, optimizer=optimizer, **options).result

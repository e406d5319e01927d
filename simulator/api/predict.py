"""`predict`: one step of one model on one device (or a cluster), as a JSON-ready dict.

This is the contract other tools rely on: `step_time_s`, `samples_per_s`, `flops`, `bytes`,
`memory_peak_bytes`, `breakdown` (seconds by category) and, on request, `layers`.
A configuration that does not fit in device memory is never simulated: the result says
`status: out_of_memory` with the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hardware_models.catalog_io import make_device
from simulator.engine.loop import simulate
from simulator.core.errors import UserError
from simulator.engine.plan import single_device_plan
from simulator.results.metrics import breakdown, bottleneck, per_layer
from simulator.engine.trace import Trace
from workloads.builder import build_graph
from workloads.model_def import ModelDef, load_model
from workloads.ops import OpGraph


FRAMEWORKS = ("pytorch", "cupy", "numpy")  # whose kernels run (selects per-library rates)


@dataclass
class Prediction:
    """The result dict plus the objects behind it (for reports and traces)."""

    result: dict[str, Any]
    graph: OpGraph
    trace: Trace | None
    device: Any


def _memory_fields(graph: OpGraph, device: Any) -> dict[str, Any]:
    peak = graph.memory["peak_bytes"]
    return {"memory_peak_bytes": peak, "memory_capacity_bytes": device.memory_bytes,
            "memory": dict(graph.memory), "fits": peak <= device.memory_bytes}


def predict_single(model: ModelDef, device: Any, batch: int, precision: str, mode: str,
                   optimizer: str = "sgd", sync_input: bool = False,
                   conv_algorithm: str = "implicit_gemm") -> Prediction:
    graph = build_graph(model, batch, mode, precision, optimizer, sync_input, conv_algorithm)
    result: dict[str, Any] = {
        "model": model.name, "hardware": device.name, "batch": batch, "precision": precision,
        "mode": mode, "devices": 1, "cores": device.cores,
        "calibration": getattr(getattr(device, "profile", None), "origin", "ideal"),
        "flops": graph.flops, "bytes": graph.bytes, "params": graph.params,
        **_memory_fields(graph, device),
    }
    if not result["fits"]:
        result.update(status="out_of_memory", step_time_s=None, samples_per_s=None,
                      error=(f"out of memory: needs {graph.memory['peak_bytes'] / 1e9:.2f} GB, "
                             f"{device.name} has {device.memory_bytes / 1e9:.2f} GB"))
        return Prediction(result, graph, None, device)
    trace = simulate(single_device_plan(graph, device))
    parts = breakdown(trace)
    step = trace.end_s
    gemm_dtype = next((op.dtype for op in graph.ops() if op.kind == "gemm"), "fp32")
    result.update(
        status="ok", step_time_s=step, samples_per_s=batch / step, breakdown=parts,
        bottleneck=bottleneck(parts),
        utilisation=graph.flops / (step * device.peak_flops(gemm_dtype)),
        achieved_flops_per_s=graph.flops / step,
    )
    return Prediction(result, graph, trace, device)


def predict_full(model: str | ModelDef, hardware: str, batch: int = 1, precision: str = "fp32",
                 mode: str = "train", optimizer: str = "sgd", per_layer_times: bool = False,
                 spec_sheet: bool = False, sync_input: bool = False,
                 conv_algorithm: str = "implicit_gemm", framework: str = "pytorch") -> Prediction:
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise UserError(f"batch must be a positive integer, got {batch}")
    if framework not in FRAMEWORKS:
        raise UserError(f"unknown framework '{framework}'; valid: {', '.join(FRAMEWORKS)}")
    model_def = load_model(model) if isinstance(model, str) else model
    device = make_device(hardware, spec_sheet=spec_sheet, framework=framework)
    pred = predict_single(model_def, device, batch, precision, mode, optimizer, sync_input,
                          conv_algorithm)
    if per_layer_times and pred.trace is not None:
        pred.result["layers"] = per_layer(pred.trace)
    return pred


def predict(model: str | ModelDef, hardware: str, batch: int = 1, precision: str = "fp32",
            mode: str = "train", optimizer: str = "sgd", per_layer: bool = False,
            spec_sheet: bool = False, sync_input: bool = False,
            conv_algorithm: str = "implicit_gemm", framework: str = "pytorch") -> dict[str, Any]:
    """Predict one training or inference step; see the module docstring for the fields."""
    return predict_full(model, hardware, batch, precision, mode, optimizer, per_layer,
                        spec_sheet, sync_input, conv_algorithm, framework).result

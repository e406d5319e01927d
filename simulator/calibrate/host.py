"""Fitting a framework's host profile (`hardware_models.host.HostProfile`) from measured
training and inference steps, and judging it out of sample (leave one network out).

The host-bound rows, where the GPU waits for the host thread (batch 1, and the MLP at any
batch), measure the host: their step time is the host's issue time of the step. The host's
time is linear in what the step issues (our own OpGraph of the same step, on the GPU it ran
on): forward kernels, backward kernels, autocast's dtype casts, the NCHW <-> NHWC transposes
cuDNN launches around tensor-core convolutions, parameter tensors of the optimizer step, and
one step's Python by mode. A non-negative least-squares fit on relative errors gives the seven
terms (the casts from the difference of bf16 and fp32 steps of the same network, the
transposes from that of fp32 and fp32-strict ones).
Held-out error: each network's rows (all of them, host-bound or not) simulated with a
profile fitted without it.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from hardware_models.catalog_io import build_device, device_profile, load_spec
from hardware_models.gpu import GPU
from hardware_models.host import HostProfile, with_host
from hardware_models.profile import Profile
from hardware_models.topology import build_cluster
from simulator.calibrate.conv_layers import fit_conv_layers, load_layer_files
from simulator.core.errors import UserError
from simulator.core.json_source import read_json_object, record_list
from simulator.report.atomic import write_text_atomic
from simulator.results.interval import band
from workloads.builder import build_graph
from workloads.model_def import catalog_models, load_model
from workloads.ops import OpGraph

TERMS = ("launch_s", "backward_launch_s", "optimizer_tensor_s", "step_train_s", "step_infer_s",
         "cast_launch_s", "transpose_launch_s")
BACKWARD = ("bwd_data", "bwd_weight")
HOST_BOUND_MODELS = ("mlp",)


def gpu_step_records(path: Path) -> list[dict[str, Any]]:
    """The GPU step records of a zoo file (schema simulator.torch-zoo/1) that ran, with their
    data on the device."""
    data = read_json_object(path, "step measurements")
    return [r for r in record_list(data, path) if r.get("device") == "gpu"
            and r.get("status") == "ok" and r.get("input", "device") == "device"]


def step_records(path: Path) -> list[dict[str, Any]]:
    """The GPU step records of a zoo file for catalog models: what the host is fitted on."""
    known = set(catalog_models())
    return [r for r in gpu_step_records(path) if r.get("model") in known]


def median_of_runs(runs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One record per configuration (model, mode, batch, precision, input) of several runs of
    the same zoo: the median over the runs of its step and host issue times (the host's
    time drifts by up to 2x between runs of an hour apart), in the first run's order."""
    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        return (r["model"], r["mode"], r["batch"], r["precision"], r.get("input", "device"))

    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for run in runs:
        for rec in run:
            groups.setdefault(key(rec), []).append(rec)
    out = []
    for recs in groups.values():
        merged = dict(recs[0], runs=len(recs))
        for field in ("median_s", "issue_median_s"):
            values = [float(r[field]) for r in recs if field in r]
            if values:
                merged[field] = statistics.median(values)
        out.append(merged)
    return out


def is_host_bound(record: dict[str, Any]) -> bool:
    return record["batch"] == 1 or record["model"] in HOST_BOUND_MODELS


def step_graph(record: dict[str, Any]) -> OpGraph:
    return build_graph(load_model(record["model"]), record["batch"], record["mode"],
                       record["precision"], input_place=record.get("input", "device"))


def features(graph: OpGraph, device: GPU) -> np.ndarray:
    """What the step makes the host issue on `device`, in the order of TERMS."""
    ops = list(graph.ops())
    casts = sum(op.kernels for op in ops if op.attr("kernel") == "cast")
    ops = [op for op in ops if op.attr("kernel") != "cast"]
    backward = sum(op.kernels for op in ops if op.phase in BACKWARD)
    forward = sum(op.kernels for op in ops if op.phase not in BACKWARD and op.kind != "copy")
    tensors = sum(float(op.attr("tensors", 0)) for op in ops if op.kind == "optimizer")
    train = graph.mode == "train"
    transposes = sum(device.layout_s(op)[1] for op in ops)
    return np.array([forward, backward, tensors, float(train), float(not train), casts,
                     transposes])


def nnls(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Least squares with every coefficient >= 0 (active set: drop the most negative, refit)."""
    free = list(range(a.shape[1]))
    while True:
        x = np.zeros(a.shape[1])
        x[free] = np.linalg.lstsq(a[:, free], b, rcond=None)[0]
        negative = [i for i in free if x[i] < 0]
        if not negative:
            return x
        free.remove(min(negative, key=lambda i: x[i]))


def fit_device(device_name: str) -> GPU:
    """The GPU the host-bound steps ran on (its rules say which kernels a step launches)."""
    spec = load_spec(device_name)
    device = build_device(spec, device_profile(spec))
    if not isinstance(device, GPU):
        raise UserError(f"--hardware {device_name}: the host fit needs the GPU the steps ran on")
    return device


def fit_host(records: list[dict[str, Any]], host: str, fitted_from: list[str],
             device_name: str) -> HostProfile:
    """The host profile that best explains the host-bound rows (relative least squares)."""
    rows = [r for r in records if is_host_bound(r)]
    if len(rows) < len(TERMS):
        raise UserError(f"host fit needs at least {len(TERMS)} host-bound steps, got {len(rows)}")
    measured = np.array([r["median_s"] for r in rows])
    device = fit_device(device_name)
    a = np.array([features(step_graph(r), device) for r in rows]) / measured[:, None]
    x = nnls(a, np.ones(len(rows)))
    residual = a @ x - 1.0
    return HostProfile(
        framework="pytorch", host=host, origin=f"fitted on {len(rows)} host-bound steps",
        launch_s=float(x[0]), backward_launch_s=float(x[1]), optimizer_tensor_s=float(x[2]),
        step_s={"train": float(x[3]), "infer": float(x[4])}, cast_launch_s=float(x[5]),
        transpose_launch_s=float(x[6]),
        fitted_from=fitted_from,
        fit_error={"median_abs": float(np.median(np.abs(residual))),
                   "max_abs": float(np.max(np.abs(residual)))})


def host_folds(records: list[dict[str, Any]], host: str, fitted_from: list[str],
               device_name: str) -> Callable[[str], HostProfile]:
    """network -> the host profile fitted on `records` without that network's steps (for
    judging, out of sample, another device's steps that pay the same host terms: a CPU's)."""
    def fold(network: str) -> HostProfile:
        return fit_host([r for r in records if r["model"] != network], host, fitted_from,
                        device_name)
    return fold


def simulate_step(record: dict[str, Any], device_name: str, host: HostProfile,
                  profile: Profile | None = None) -> float:
    """The simulated step of `record` on the device, with `host` as the host profile (and
    `profile` as the device's, default its catalog profile)."""
    from simulator.api.predict import predict_on

    spec = load_spec(device_name)
    device = build_device(spec, with_host(profile or device_profile(spec), host))
    result = predict_on(record["model"], device, build_cluster(1, 1, None, None, None),
                        batch=record["batch"], mode=record["mode"],
                        precision=record["precision"], input=record.get("input", "device")).result
    return float(result["step_time_s"])


def held_out(records: list[dict[str, Any]], device_name: str, host: str,
             fitted_from: list[str], layers: dict[str, Any] | None = None
             ) -> list[dict[str, Any]]:
    """Every record predicted with a host profile fitted without its network; with `layers`
    (a conv-layers file), also with the device's convolution and batch-norm terms fitted
    without that network's layers."""
    rows = []
    for network in sorted({r["model"] for r in records}):
        profile = fit_host([r for r in records if r["model"] != network], host, fitted_from,
                           device_name)
        device = None
        if layers is not None:
            device = fit_conv_layers(layers, device_name, device_profile(load_spec(device_name)),
                                     exclude=network)
        for rec in (r for r in records if r["model"] == network):
            predicted = simulate_step(rec, device_name, profile, device)
            rows.append({**{k: rec[k] for k in ("model", "mode", "batch", "precision")},
                         "host_bound": is_host_bound(rec), "measured_s": rec["median_s"],
                         "predicted_s": predicted, "error": predicted / rec["median_s"] - 1})
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Median and worst absolute error per network and regime."""
    groups: dict[str, list[float]] = {}
    for row in rows:
        regime = "host-bound" if row["host_bound"] else "device"
        for key in (f"{row['model']} {regime}", f"all {regime}"):
            groups.setdefault(key, []).append(abs(row["error"]))
    return {k: {"median": statistics.median(v), "worst": max(v), "rows": len(v)}
            for k, v in sorted(groups.items())}


def host_yaml(profile: HostProfile) -> str:
    text = yaml.safe_dump(profile.model_dump(mode="json"), sort_keys=True)
    return "# fitted by `python -m simulator calibrate-host`; do not edit by hand\n" + text


def run_calibrate_host(measurements: list[str], host: str, hardware: str, out: str,
                       intervals: str | None = None, layers: list[str] | None = None) -> None:
    """`calibrate-host`: fit the framework's host profile from zoo step files (runs of the
    same configuration: their median), write it; with
    `intervals`, also the prediction intervals from the held-out residuals (with `layers`, a
    conv-layers file, the device's convolution terms refitted without each held-out network,
    as benchmarks/accuracy.py does)."""
    records = median_of_runs([step_records(Path(path)) for path in measurements])
    names = sorted({Path(p).as_posix() for p in measurements})
    profile = fit_host(records, host, names, hardware)
    write_text_atomic(Path(out), host_yaml(profile))
    print(f"wrote {out}: {profile.launch_s * 1e6:.1f} us per forward kernel, "
          f"{profile.backward_launch_s * 1e6:.1f} us per backward kernel, "
          f"{(profile.cast_launch_s or 0.0) * 1e6:.1f} us per autocast cast, "
          f"{(profile.transpose_launch_s or 0.0) * 1e6:.1f} us per cuDNN transpose, "
          f"{profile.optimizer_tensor_s * 1e6:.1f} us per parameter tensor, step "
          f"{ {k: round(v * 1e6, 1) for k, v in profile.step_s.items()} } us; "
          f"median fit error {profile.fit_error['median_abs']:.1%}")
    if intervals is not None:
        layer_data = load_layer_files([Path(p) for p in layers]) if layers else None
        rows = held_out(records, hardware, host, names, layer_data)
        names = sorted({*names, *(Path(p).as_posix() for p in layers or [])})
        write_text_atomic(Path(intervals), intervals_yaml(rows, names))
        print(f"wrote {intervals}: held-out 10-90% coverage {interval_coverage(rows):.0%}")


def residual_quantiles(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """The 10th and 90th percentiles of the relative error (predicted / measured - 1) of
    held-out rows, per regime: what a prediction interval is made of."""
    out = {}
    for regime, host_bound in (("host-bound", True), ("device", False)):
        errors = [r["error"] for r in rows if r["host_bound"] == host_bound]
        if errors:
            p10, p90 = np.percentile(errors, [10, 90])
            out[regime] = {"p10": float(p10), "p90": float(p90), "rows": len(errors)}
    return out


def interval_coverage(rows: list[dict[str, Any]]) -> float:
    """Nested leave-one-network-out: each row's 10-90% band from the residuals of the other
    networks' rows; the fraction of measured steps inside their band."""
    inside = []
    for network in sorted({r["model"] for r in rows}):
        quantiles = residual_quantiles([r for r in rows if r["model"] != network])
        for row in (r for r in rows if r["model"] == network):
            q = quantiles["host-bound" if row["host_bound"] else "device"]
            low, high = band(row["predicted_s"], q, q)
            inside.append(low <= row["measured_s"] <= high)
    return sum(inside) / len(inside)


def intervals_yaml(rows: list[dict[str, Any]], sources: list[str]) -> str:
    data = {"regimes": residual_quantiles(rows), "coverage_held_out": interval_coverage(rows),
            "fitted_from": sources,
            "method": "relative errors of leave-one-network-out predictions (calibrate-host)"}
    text = yaml.safe_dump(data, sort_keys=True)
    return "# written by `python -m simulator calibrate-host --intervals`; do not edit\n" + text

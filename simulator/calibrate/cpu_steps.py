"""Fitting a CPU's PyTorch profile from measured CPU steps and kernels, and judging it out
of sample (leave one network out).

Data: the `device: cpu` rows of a zoo file (`benchmarks/torch_zoo.py`: training and inference
steps of catalog networks at 1 thread and at all threads) and, where given, PyTorch's CPU
kernels timed one by one (`benchmarks/torch_cpu_kernels.py`: oneDNN convolutions of the
ResNets, MKL products of the MLP, square products per dtype, copies and elementwise ops, at
the same thread counts). Both are priced with the model `predict` uses (hardware_models.cpu:
a step on one CPU is the sum of its ops, which run one after another); the loss is the mean
squared log error of the steps plus that of the kernels.

The fitted numbers, each with a physical meaning (hardware_models.profile): the fraction of
the fp32 peak a full block of a matrix product and of a oneDNN convolution reaches and the
block intensity at which it halves, the time per page fault of a fresh output, the thread
contention, the DRAM bandwidth of all cores (a fraction of the spec's, at most 1) and of one
core, the cache speed-up, the dispatch time per op, the fork/join time per extra thread of
an op and of a oneDNN convolution; then, with those fixed, the fraction of the bf16 and fp16
peaks from the square products in those dtypes. The host's time per parameter tensor of the
optimizer and per training step are not fitted here: they are the framework's host terms (the
same Python, autograd and optimizer bookkeeping as on a GPU), taken from the host profile
(hardware_models/catalog/hosts/pytorch.yaml, fitted on GPU steps by `calibrate-host`). Held
out: each network's steps are predicted with a profile fitted without them, its rows and the
kernels of its layers left out, and with host terms fitted without its GPU steps where the
caller gives them (`host_fold`; benchmarks/accuracy_cpu.py does), else the host profile's.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from hardware_models.cpu import CPU
from hardware_models.host import HostProfile, catalog_host
from hardware_models.profile import Profile, spec_sheet_profile
from hardware_models.spec import CPUSpec
from simulator.calibrate.fit import fit, msle
from simulator.core.errors import UserError
from simulator.core.json_source import read_json_object
from workloads.builder import build_graph
from workloads.model_def import catalog_models, load_model
from workloads.ops import Gemm, Op

STEP_SCHEMA = "simulator.torch-zoo/1"
KERNEL_SCHEMA = "simulator.torch-cpu-kernels/1"
Case = tuple[Counter[Op], int, float, frozenset[str]]  # ops, threads, measured s, networks


def read_json(path: Path) -> dict[str, Any]:
    return read_json_object(path, "measurements")


def is_cpu_step_or_kernel_file(path: str) -> bool:
    schemas = (STEP_SCHEMA, KERNEL_SCHEMA)
    return Path(path).is_file() and read_json(Path(path)).get("schema") in schemas


def step_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The CPU step records of a zoo file for catalog networks."""
    known = set(catalog_models())
    return [r for r in data.get("records", []) if r.get("device") == "cpu"
            and r.get("status") == "ok" and r.get("model") in known]


def _grouped(ops: list[Op]) -> Counter[Op]:
    """Ops that cost the same (same work, differently named) counted once each."""
    return Counter(replace(op, name="", layer="") for op in ops if op.kind != "copy")


def step_case(rec: dict[str, Any]) -> Case:
    graph = build_graph(load_model(rec["model"]), rec["batch"], rec["mode"], rec["precision"],
                        input_place="device")
    networks = frozenset({rec["model"]})
    return _grouped(list(graph.ops())), int(rec["threads"]), rec["median_s"], networks


def _gemm_op(g: Gemm, dtype: str, kernel: str = "") -> Op:
    size = 2 if dtype in ("fp16", "bf16") else 4
    return Op("k", "gemm", "fwd", "k", g.flops, size * (g.m * g.k + g.k * g.n), size * g.m * g.n,
              dtype, g.m * g.n, param_bytes=size * g.k * g.n, gemm=g,
              attrs=(("kernel", kernel),) if kernel else ())


def kernel_op(rec: dict[str, Any]) -> tuple[Op, frozenset[str]] | None:
    """A kernel record as the op the builder makes of it, and the networks that run it."""
    op, dtype = rec["op"], rec.get("dtype", "fp32")
    if op in ("linear", "gemm"):
        used = frozenset({"mlp"}) if op == "linear" else frozenset()
        return _gemm_op(Gemm(rec["m"], rec["n"], rec["k"]), dtype), used
    if op == "conv2d_fwd":
        out = (rec["height"] + 2 * rec["padding"] - rec["kernel"]) // rec["stride"] + 1
        g = Gemm(rec["batch"] * out * out, rec["out_channels"],
                 rec["in_channels"] * rec["kernel"] ** 2)
        conv = _gemm_op(g, dtype, "conv")
        act_in = 4 * rec["batch"] * rec["in_channels"] * rec["height"] * rec["width"]
        conv = replace(conv, bytes_read=act_in + conv.param_bytes)
        return conv, frozenset(rec.get("models", {}))
    if op in ("relu", "add", "copy"):
        n = int(rec["elements"])
        if op == "copy":  # copy_ writes in place: an op with no fresh output
            return Op("k", "elementwise", "fwd", "k", float(n), 8.0 * n, 0.0, dtype, n,
                      attrs=(("kernel", op),)), frozenset()
        moved = 4.0 * n * (3 if op == "add" else 2)
        return Op("k", "elementwise", "fwd", "k", float(n), moved * 2 / 3, moved / 3, dtype, n,
                  attrs=(("kernel", op),)), frozenset()
    return None


def kernel_cases(data: dict[str, Any], dtypes: tuple[str, ...] = ("fp32",)) -> list[Case]:
    cases = []
    for rec in data.get("records", []):
        made = kernel_op(rec) if rec.get("dtype", "fp32") in dtypes else None
        if made is not None:
            cases.append((Counter({made[0]: 1}), int(rec["threads"]), rec["median_s"], made[1]))
    return cases


def case_s(device: CPU, case: Case) -> float:
    ops, threads, _, _ = case
    dev = device if threads == device.threads else device.with_threads(threads)
    return sum(dev.op_cost(op).duration_s * n for op, n in ops.items())


def _host_terms(host: HostProfile | None) -> dict[str, Any]:
    """The framework's host terms a CPU step pays as a GPU step does (none without a host)."""
    if host is None:
        return {}
    return {"optimizer_tensor_s": host.optimizer_tensor_s, "step_s": dict(host.step_s)}


def _update(p: dict[str, float]) -> dict[str, Any]:
    return {"gemm_efficiency": {"fp32": p["eff"], "conv.fp32": p["conv_eff"]},
            "gemm_half_dim": p["half"],
            "thread_contention": p["contention"], "memory_efficiency": p["mem"],
            "core_bandwidth_bytes_per_s": p["core_bw"], "cache_speedup": p["cache"],
            "kernel_overhead_s": p["dispatch"],
            "fork_join_s": {"default": p["fj"], "conv": p["fj_conv"]},
            "page_fault_s": p["pf"]}


def bounds(spec: CPUSpec) -> dict[str, tuple[float, float]]:
    """Efficiencies at most 1; one core streams at most what the socket does."""
    return {"eff": (1e-3, 1.0), "conv_eff": (1e-3, 1.0), "half": (0.1, 512.0),
            "contention": (1e-4, 1.0), "mem": (0.01, 1.0),
            "core_bw": (1e8, spec.memory_bandwidth_bytes_per_s),
            "cache": (1.0, 30.0), "dispatch": (1e-7, 1e-4), "fj": (1e-9, 1e-5),
            "fj_conv": (1e-9, 1e-4), "pf": (1e-9, 1e-4)}


def _loss(spec: CPUSpec, base: Profile, steps: list[Case], kernels: list[Case],
          update: Any) -> Any:
    def loss(p: dict[str, float]) -> float:
        device = CPU(spec, base.model_copy(update=update(p)))
        total = msle([(case_s(device, c), c[2]) for c in steps])
        return total + (msle([(case_s(device, c), c[2]) for c in kernels]) if kernels else 0.0)
    return loss


def _dtype_update(effs: dict[str, float], dtype: str) -> Any:
    def upd(p: dict[str, float]) -> dict[str, Any]:
        return {"gemm_efficiency": {**effs, dtype: p["eff"]}}
    return upd


def fit_profile(spec: CPUSpec, steps: list[Case], kernels: list[Case],
                dtype_kernels: list[Case], host: HostProfile | None) -> Profile:
    """The fp32 terms from the steps and fp32 kernels, then the bf16/fp16 GEMM efficiency;
    the host's per-tensor and per-step terms are `host`'s."""
    base = spec_sheet_profile(spec.name).model_copy(
        update={"origin": "calibrated", "kernel_rates_backend": "pytorch",
                "units": dict(spec.flops_per_cycle_per_core), **_host_terms(host)})
    params = fit(bounds(spec), _loss(spec, base, steps, kernels, _update), sweeps=3, iters=30)
    profile = base.model_copy(update=_update(params))
    for dtype in sorted({op.dtype for c in dtype_kernels for op in c[0]} - {"fp32"}):
        mine = [c for c in dtype_kernels if next(iter(c[0])).dtype == dtype]
        upd = _dtype_update(dict(profile.gemm_efficiency), dtype)
        best = fit({"eff": (1e-4, 1.0)}, _loss(spec, profile, [], mine, upd), sweeps=2)
        profile = profile.model_copy(update=upd(best))
    return profile


def _split(data: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    steps = [d for d in data if d.get("schema") == STEP_SCHEMA]
    kernels = [d for d in data if d.get("schema") == KERNEL_SCHEMA]
    return steps, kernels


def cases(paths: list[str]) -> tuple[list[dict[str, Any]], list[Case], list[Case], list[Case]]:
    docs = [read_json(Path(p)) for p in paths]
    step_docs, kernel_docs = _split(docs)
    rows = [r for d in step_docs for r in step_rows(d)]
    if not rows:
        raise UserError(f"{', '.join(paths)}: no CPU step records (zoo rows with device: cpu)")
    kernels = [c for d in kernel_docs for c in kernel_cases(d)]
    dtype_kernels = [c for d in kernel_docs for c in kernel_cases(d, ("bf16", "fp16"))
                     if next(iter(c[0])).kind == "gemm"]
    return rows, [step_case(r) for r in rows], kernels, dtype_kernels


def held_out(spec: CPUSpec, rows: list[dict[str, Any]], steps: list[Case], kernels: list[Case],
             dtype_kernels: list[Case],
             host_fold: Callable[[str], HostProfile | None] | None = None
             ) -> list[dict[str, Any]]:
    """Each network's steps predicted with a profile fitted without its steps and kernels,
    and the host terms `host_fold(network)` (default: the framework's host profile)."""
    out = []
    for network in sorted({r["model"] for r in rows}):
        train = [c for c in steps if network not in c[3]]
        host = host_fold(network) if host_fold else catalog_host("pytorch")
        profile = fit_profile(spec, train, [c for c in kernels if network not in c[3]],
                              dtype_kernels, host)
        device = CPU(spec, profile)
        for rec, case in zip(rows, steps, strict=True):
            if rec["model"] == network:
                predicted = case_s(device, case)
                keys = ("model", "mode", "batch", "precision", "threads")
                out.append({**{k: rec[k] for k in keys},
                            "measured_s": rec["median_s"], "predicted_s": predicted,
                            "error": predicted / rec["median_s"] - 1})
    return out


def per_network(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Median, mean and worst absolute error per network, and over all rows."""
    groups: dict[str, list[float]] = {"all": []}
    for row in rows:
        groups.setdefault(row["model"], []).append(abs(row["error"]))
        groups["all"].append(abs(row["error"]))
    return {k: {"rows": len(v), "median": statistics.median(v), "mean": statistics.fmean(v),
                "worst": max(v)} for k, v in sorted(groups.items())}


def calibrate_cpu_steps(paths: list[str], spec: CPUSpec) -> Profile:
    """The profile fitted on everything, with the held-out errors per network in fit_error."""
    if spec.kind != "cpu":
        raise UserError(f"CPU step files calibrate a CPU, not the {spec.kind} {spec.name}")
    rows, steps, kernels, dtype_kernels = cases(paths)
    profile = fit_profile(spec, steps, kernels, dtype_kernels, catalog_host("pytorch"))
    device = CPU(spec, profile)
    fitted = per_network([{"model": r["model"], "error": case_s(device, c) / c[2] - 1}
                          for r, c in zip(rows, steps, strict=True)])
    held = per_network(held_out(spec, rows, steps, kernels, dtype_kernels))
    errors = {f"steps.{k}": round(v["median"], 4) for k, v in fitted.items()}
    errors.update({f"held_out.{k}": round(v["median"], 4) for k, v in held.items()})
    errors.update({f"held_out_worst.{k}": round(v["worst"], 4) for k, v in held.items()})
    if kernels:
        errors["kernels"] = round(statistics.median(abs(case_s(device, c) / c[2] - 1)
                                                    for c in kernels), 4)
    return profile.model_copy(update={"fitted_from": sorted(Path(p).name for p in paths),
                                      "fit_error": errors})

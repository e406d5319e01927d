"""Fitting a GPU's convolution, batch-norm and pooling terms from layers timed alone
(`benchmarks/torch_conv_layers.py`, schema simulator.conv-layers/1), by algorithm:

  conv.DTYPE                  implicit-GEMM tensor-core convolution kernels (cuDNN): fraction
                              of the tensor-core peak, on the base profile's tile fill
  conv_dgrad.DTYPE, conv_wgrad.DTYPE  the same for the data- and weight-gradient kernels,
                              each pass at a rate of its own (and conv_gemm_dgrad/_wgrad)
  layout_efficiency           NCHW <-> NHWC transposes around them, fraction of bandwidth
  conv_gemm.DTYPE             1x1 convolutions run as GEMMs (cuBLAS)
  depthwise(_dgrad|_wgrad).DTYPE  PyTorch's depthwise kernels per pass, fraction of the fp32
                              vector peak per tap and a cost per element (item_flops)
  batchnorm(_bwd|_infer).DTYPE  batch norm in training, forward and backward, and in eval
                              mode (one affine pass): a rate and the
                              bytes per second of one channel's thread block
                              (cta_bandwidth_bytes_per_s)
  maxpool2d(_bwd).DTYPE, avgpool2d(_bwd).DTYPE  pooling, fraction of the fp32 vector peak per
                              window tap (forward) or input element (backward), and where the
                              records' windows differ in size a cost per output element
                              (item_flops: max pooling's index arithmetic and index store)

Every record is priced with the ops the builder makes of that layer (`layer_ops`), so the
fit and `predict` use one model. `exclude` drops the layers of one network (every layer
that occurs in it), for leave-one-network-out. Efficiencies are fractions of a peak (at
most 1), fitted as the mean squared log error of the per-call device times (the sum of the
profiled kernels of one call: the harness's event times of small layers are the host's).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hardware_models.catalog_io import build_device, load_spec
from hardware_models.profile import PASS_RATES, SAME_WIDTH, Profile
from simulator.calibrate.fit import fit, msle
from simulator.core.errors import UserError
from simulator.core.json_source import read_json_object
from simulator.report.atomic import write_text_atomic
from workloads.builder import work_op
from workloads.layers import (
    SMALL_CHANNEL_KERNELS,
    LayerCost,
    Work,
    avgpool2d,
    batchnorm2d,
    conv2d,
    maxpool2d,
)
from workloads.ops import Op
from workloads.precision import get_precision

SCHEMA = "simulator.conv-layers/1"
POOL_GROUPS = ("maxpool2d", "maxpool2d_bwd", "avgpool2d", "avgpool2d_bwd")
# window loops: a rate per tap, and a cost per element where the records' windows differ
WINDOW_GROUPS = ("depthwise", "depthwise_dgrad", "depthwise_wgrad", *POOL_GROUPS)
TABLES = {"conv": "conv", "batchnorm": "norm", "pool": "pool"}  # record layer -> its table
# the H200's layer files (in measurements/): the zoo's conv, batch-norm and pooling layers, and
# depthwise, batch-norm and pooling layers of networks beyond it
LAYER_FILES = ("h200-conv-layers.json", "h200-conv-layers-extra.json", "h200-norm-layers.json",
               "h200-pool-layers-zoo.json", "h200-pool-layers-extra.json")
PASS_FITTED = ("conv", "conv_gemm")  # the kernels fitted at a rate per pass
FITTED_KERNELS = (*PASS_FITTED, *(f"{k}_{suffix}" for k in PASS_FITTED
                                  for suffix in PASS_RATES.values()),
                  "batchnorm", "batchnorm_bwd", "batchnorm_infer",
                  *SMALL_CHANNEL_KERNELS.values(), *WINDOW_GROUPS)
PASS_WORK = {"fwd": "fwd", "bwd_data": "bwd_data", "bwd_weight": "bwd_weight", "bwd": "bwd_data",
             "infer": "infer_fwd"}
# the builder's phase of each measured pass (a batch norm's backward is a data gradient)
PASS_PHASE = {"fwd": "fwd", "bwd_data": "bwd_data", "bwd_weight": "bwd_weight",
              "bwd": "bwd_data", "infer": "fwd"}


def load_layer_file(path: Path) -> dict[str, Any]:
    return read_json_object(path, "layer measurements", SCHEMA)


def load_layer_files(paths: list[Path]) -> dict[str, Any]:
    """Several conv-layers files as one: their layers side by side, each record pointing at
    its own file's layer (a layer keeps the networks it occurs in, for leave-one-out)."""
    merged: dict[str, Any] = {"schema": SCHEMA, "conv_layers": [], "norm_layers": [],
                              "pool_layers": [], "records": [], "sources": []}
    for path in paths:
        data = load_layer_file(path)
        offsets = {t: len(merged[f"{t}_layers"]) for t in TABLES.values()}
        for table in TABLES.values():
            merged[f"{table}_layers"] += data.get(f"{table}_layers", [])
        for i, rec in enumerate(data.get("records", [])):
            table = TABLES.get(rec.get("layer"), "norm")
            index, size = rec.get("index"), len(data.get(f"{table}_layers", []))
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size:
                raise UserError(f"{path}: records[{i}].index: must point at one of the "
                                f"{size} {table}_layers, got {index!r}")
            merged["records"].append({**rec, "index": index + offsets[table]})
        merged["sources"].append(path.name)
    return merged


def _conv_cost(c: dict[str, Any], batch: int) -> LayerCost:
    args = {"out_channels": c["out_channels"], "kernel": [c["kernel_h"], c["kernel_w"]],
            "stride": [c["stride_h"], c["stride_w"]], "padding": [c["pad_h"], c["pad_w"]],
            "groups": c["groups"], "bias": False}
    return conv2d([(c["in_channels"], c["height"], c["width"])], args, batch)


def _pool_cost(p: dict[str, Any], batch: int) -> LayerCost:
    args: dict[str, Any] = {"kernel": [p["kernel_h"], p["kernel_w"]],
                            "stride": [p["stride_h"], p["stride_w"]],
                            "padding": [p["pad_h"], p["pad_w"]]}
    if p.get("ceil_mode"):
        args["ceil_mode"] = True
    kind = maxpool2d if p["kind"] == "maxpool2d" else avgpool2d
    return kind([(p["channels"], p["height"], p["width"])], args, batch)


def _layer_cost(data: dict[str, Any], rec: dict[str, Any]) -> tuple[dict[str, Any], LayerCost]:
    """The measured layer of `rec` and what the layer kinds make of it at its batch."""
    table = TABLES.get(rec["layer"], "norm")
    shape = data[f"{table}_layers"][rec["index"]]
    if table == "conv":
        return shape, _conv_cost(shape, rec["batch"])
    if table == "pool":
        return shape, _pool_cost(shape, rec["batch"])
    return shape, batchnorm2d([(shape["channels"], shape["height"], shape["width"])], {},
                              rec["batch"])


def layer_ops(work: Work, precision: str, phase: str = "fwd") -> list[Op]:
    """The kernels of one measured pass, as the builder makes them."""
    prec = get_precision(precision)
    parts = [w for w in (work.prologue, work, work.epilogue) if w is not None]
    return [work_op(f"m{i}", phase, "measured", w, prec, prec.act_bytes)
            for i, w in enumerate(parts)]


def layer_records(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per measured pass: its ops, measured seconds, networks and fit group."""
    rows = []
    for rec in data.get("records", []):
        if rec.get("cudnn_benchmark") or "kernels" not in rec:
            continue  # cudnn.benchmark off, as the zoo's steps ran
        shape, cost = _layer_cost(data, rec)
        for name, kernels in rec["kernels"].items():
            seconds = sum(us for _, us in kernels) * 1e-6  # device time: no host in it
            work = getattr(cost, PASS_WORK[name]) or cost.fwd  # pooling: no inference pass
            assert work is not None
            ops = layer_ops(work, rec["precision"], PASS_PHASE[name])
            main = next(op for op in ops if op.attr("kernel") not in ("bias_add", "bias_grad"))
            group = str(main.attr("algorithm", main.attr("kernel", main.kind)))
            if group in ("small_channels", "depthwise"):  # a kernel of its own per pass
                group = str(main.attr("kernel"))
            rows.append({"ops": ops, "measured_s": float(seconds), "group": group,
                         "dtype": main.dtype, "networks": sorted(shape["networks"]),
                         "pass": name, "batch": rec["batch"], "precision": rec["precision"],
                         "shape": shape})
    return rows


def _pairs(device: Any, rows: list[dict[str, Any]]) -> list[tuple[float, float]]:
    return [(sum(device.op_cost(op).duration_s for op in r["ops"]), r["measured_s"])
            for r in rows]


def _fit_group(spec: Any, base: Profile, rows: list[dict[str, Any]],
               bounds: dict[str, tuple[float, float]],
               to_update: Callable[[dict[str, float], Profile], dict[str, Any]],
               sweeps: int = 3) -> Profile:
    """`base` updated with the parameters that best explain `rows` (`sweeps` rounds of line
    searches: 6 for a rate per pass and the transposes, which 3 leave short of the optimum)."""
    if not rows:
        return base

    def loss(p: dict[str, float]) -> float:
        return msle(_pairs(build_device(spec, base.model_copy(update=to_update(p, base))), rows))

    return base.model_copy(update=to_update(fit(bounds, loss, sweeps=sweeps, iters=30), base))


def _rate_update(table: str, key: str) -> Callable[[dict[str, float], Profile], dict[str, Any]]:
    def update(p: dict[str, float], prof: Profile) -> dict[str, Any]:
        return {table: {**getattr(prof, table), key: p["eff"]}}
    return update


def _pass_rates(kernel: str, dtype: str, p: dict[str, float]) -> dict[str, float]:
    """A kernel's fitted rates: the forward's ("eff") and one per backward pass fitted."""
    return {f"{kernel}.{dtype}": p["eff"],
            **{f"{kernel}_{suffix}.{dtype}": p[suffix] for suffix in PASS_RATES.values()
               if suffix in p}}


def _pass_bounds(rows: list[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """A rate per pass that `rows` measure (the forward's is "eff")."""
    phases = {PASS_PHASE[r["pass"]] for r in rows}
    return {"eff": (1e-4, 1.0), **{PASS_RATES[ph]: (1e-4, 1.0) for ph in sorted(phases)
                                   if ph in PASS_RATES}}


def _passes_update(table: str, kernel: str, dtype: str, layout: bool = False
                   ) -> Callable[[dict[str, float], Profile], dict[str, Any]]:
    def update(p: dict[str, float], prof: Profile) -> dict[str, Any]:
        out: dict[str, Any] = {table: {**getattr(prof, table), **_pass_rates(kernel, dtype, p)}}
        if layout:
            out["layout_efficiency"] = {**prof.layout_efficiency, dtype: p["layout"]}
        return out
    return update


def _norm_update(key: str) -> Callable[[dict[str, float], Profile], dict[str, Any]]:
    def update(p: dict[str, float], prof: Profile) -> dict[str, Any]:
        return {"vector_efficiency": {**prof.vector_efficiency, key: p["eff"]},
                "cta_bandwidth_bytes_per_s": {**prof.cta_bandwidth_bytes_per_s, key: p["cta"]},
                "item_flops": {**prof.item_flops, key: p["item"]}}
    return update


RATE_GROUPS = (("gemm", "gemm_efficiency", "conv_gemm"),
               *((k, "vector_efficiency", k) for k in SMALL_CHANNEL_KERNELS.values()))
# batch norm in training: its rate and the bytes per second of one channel's thread block
NORM_GROUPS = ("batchnorm", "batchnorm_bwd", "batchnorm_infer")


def _window_update(key: str) -> Callable[[dict[str, float], Profile], dict[str, Any]]:
    def update(p: dict[str, float], prof: Profile) -> dict[str, Any]:
        out: dict[str, Any] = {"vector_efficiency": {**prof.vector_efficiency, key: p["eff"]}}
        if "item" in p:
            out["item_flops"] = {**prof.item_flops, key: p["item"]}
        return out
    return update


def _window_bounds(rows: list[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """A rate, and a cost per output element where the rows' windows differ in size (with one
    window size the two are one parameter)."""
    taps = {round(op.flops / op.work_items, 6) for r in rows for op in r["ops"]}
    return {"eff": (1e-4, 1.0), **({"item": (0.01, 1000.0)} if len(taps) > 1 else {})}


def without_layer_terms(profile: Profile, keep: frozenset[str] = frozenset()) -> Profile:
    """`profile` without the terms `fit_conv_layers` fits (so that a held-out network's
    layers cannot reach a fold through a profile fitted on them), but those of the window
    kernels in `keep` (files that measure none of them: the profile's stay)."""
    def fitted(key: str) -> bool:
        kernel, _, dtype = key.rpartition(".")
        return kernel in FITTED_KERNELS and kernel not in keep and \
            not (kernel == "conv" and dtype == "fp32")

    return profile.model_copy(update={
        "gemm_efficiency": {k: v for k, v in profile.gemm_efficiency.items() if not fitted(k)},
        "vector_efficiency": {k: v for k, v in profile.vector_efficiency.items()
                              if not fitted(k)},
        "layout_efficiency": {},
        "item_flops": {k: v for k, v in profile.item_flops.items() if not fitted(k)},
        "cta_bandwidth_bytes_per_s": {k: v for k, v in profile.cta_bandwidth_bytes_per_s.items()
                                      if not fitted(k)}})


def fit_conv_layers(data: dict[str, Any], hardware: str, base: Profile,
                    exclude: str | None = None) -> Profile:
    """`base` with the convolution and batch-norm terms fitted to the layer file's records
    (without the layers of network `exclude`)."""
    spec = load_spec(hardware)
    measured = layer_records(data)
    rows = [r for r in measured if exclude not in r["networks"]]
    # window kernels the files do not measure at all (pooling in a file of convolutions)
    # keep the base profile's rates rather than running at the peak
    prof = without_layer_terms(base, frozenset(WINDOW_GROUPS) - {r["group"] for r in measured})

    def of(group: str, dtype: str) -> list[dict[str, Any]]:
        return [r for r in rows if r["group"] == group and r["dtype"] == dtype]

    dtypes = sorted({r["dtype"] for r in rows})
    # tensor-core kernels only: fp32's FFMA kernels read NCHW (no transposes) and keep the
    # rate of the base profile (fitted here, their rate on the small layers of ResNets and
    # MobileNet put a held-out VGG16 87% too slow; their backward passes' rates alone, VGG16's
    # training 6.0% -> 15.5%). The tile fill stays the base profile's
    # too: a free half-speed intensity per dtype ran off to its bound on the small layers.
    for dtype in (d for d in dtypes if d != "fp32"):
        group_rows = of("implicit_gemm", dtype)  # a rate per pass, and the transposes'
        prof = _fit_group(spec, prof, group_rows,
                          {**_pass_bounds(group_rows), "layout": (0.01, 1.0)},
                          _passes_update("gemm_efficiency", "conv", dtype, layout=True),
                          sweeps=6)
    for group, table, kernel in RATE_GROUPS:
        for dtype in dtypes:
            group_rows = of(group, dtype)
            if kernel in PASS_FITTED:
                prof = _fit_group(spec, prof, group_rows, _pass_bounds(group_rows),
                                  _passes_update(table, kernel, dtype), sweeps=6)
            else:
                prof = _fit_group(spec, prof, group_rows, {"eff": (1e-4, 1.0)},
                                  _rate_update(table, f"{kernel}.{dtype}"))
    for group in NORM_GROUPS:
        for dtype in dtypes:
            prof = _fit_group(spec, prof, of(group, dtype),
                              {"eff": (1e-4, 1.0), "cta": (1e8, 1e12), "item": (0.01, 1e6)},
                              _norm_update(f"{group}.{dtype}"))
    for group in WINDOW_GROUPS:
        for dtype in dtypes:
            group_rows = of(group, dtype)
            prof = _fit_group(spec, prof, group_rows, _window_bounds(group_rows),
                              _window_update(f"{group}.{dtype}"))
    return _same_width(prof, {r["dtype"] for r in rows})


def _same_width(prof: Profile, measured: set[str]) -> Profile:
    """A dtype without records takes the fitted terms of the dtype of the same width on the
    same tensor cores (fp16 <-> bf16), instead of a stale or a peak rate."""
    gemm = dict(prof.gemm_efficiency)
    vec = dict(prof.vector_efficiency)
    halves = {f"conv.{k}": v for k, v in prof.conv_half_dims.items()}
    layout = {f"conv.{k}": v for k, v in prof.layout_efficiency.items()}
    for table in (gemm, vec, halves, layout):
        for key in list(table):
            kernel, _, dtype = key.rpartition(".")
            twin = SAME_WIDTH.get(dtype)
            if kernel in FITTED_KERNELS and dtype in measured and twin and twin not in measured:
                table[f"{kernel}.{twin}"] = table[key]
    return prof.model_copy(update={
        "gemm_efficiency": gemm, "vector_efficiency": vec,
        "conv_half_dims": {k.split(".")[1]: v for k, v in halves.items()},
        "layout_efficiency": {k.split(".")[1]: v for k, v in layout.items()}})


def _errors(rows: list[dict[str, Any]], device: Any) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for row in rows:
        (pred, meas), = _pairs(device, [row])
        out.setdefault(f"{row['group']}.{row['dtype']}", []).append(abs(pred / meas - 1))
    return out


def _stats(errors: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {k: {"median": statistics.median(v), "worst": max(v), "rows": len(v)}
            for k, v in sorted(errors.items())}


def group_errors(data: dict[str, Any], hardware: str, profile: Profile
                 ) -> dict[str, dict[str, float]]:
    """Median and worst absolute error per (algorithm group, dtype) of the layer records."""
    return _stats(_errors(layer_records(data), build_device(load_spec(hardware), profile)))


def held_out_layers(data: dict[str, Any], hardware: str, base: Profile) -> dict[str, Any]:
    """Errors per (algorithm, dtype): `base` on every layer, and each network's layers
    predicted with the terms fitted without them."""
    rows = layer_records(data)
    held: dict[str, list[float]] = {}
    for network in sorted({n for r in rows for n in r["networks"]}):
        fold = fit_conv_layers(data, hardware, base, exclude=network)
        device = build_device(load_spec(hardware), fold)
        for key, errors in _errors([r for r in rows if network in r["networks"]],
                                   device).items():
            held.setdefault(key, []).extend(errors)
    return {"fitted": group_errors(data, hardware, base), "held_out": _stats(held)}


def run_calibrate_conv(measurements: list[str], hardware: str, base: str, out: str) -> None:
    """`calibrate-conv`: the profile `base` (a catalog profile name or a profile YAML) with
    its convolution and batch-norm terms fitted to conv-layers files measured on
    `hardware` (efficiencies are fractions of that device's peaks), written to `out`."""
    from simulator.calibrate.device import base_profile, profile_yaml

    data = load_layer_files([Path(m) for m in measurements])
    start = base_profile(base)
    profile = fit_conv_layers(data, hardware, start)
    sources = sorted({*profile.fitted_from, *data["sources"]})
    profile = profile.model_copy(update={"fitted_from": sources})
    write_text_atomic(Path(out), profile_yaml(profile))
    errors = group_errors(data, hardware, profile)
    print(f"wrote {out}: median error per algorithm " + ", ".join(
        f"{k} {v['median']:.0%}" for k, v in errors.items()))

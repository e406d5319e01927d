"""`calibrate`: fit a device profile from measured kernels.

The profile is a handful of numbers with a physical meaning, fitted family by family with
the same cost model `predict` uses (hardware_models.gpu / cpu):
  launch_s            host time per launch (GPU: CuPy's per-call dispatch, back to back)
  launch_s_by_kernel  host time per call of one library op, per kind of kernel (median of
                      the records' `host_s`, where the harness timed it)
  autograd_node_s     host time per backward node beyond one eager op (PyTorch's autograd)
  kernel_overhead_s,  fixed device time per kernel and achievable fraction of peak memory
  memory_efficiency   bandwidth, from elementwise kernels, reductions and pooling
  vector_efficiency   achievable fraction of the non-tensor FLOP rate, per kind and dtype
  cache_speedup       bandwidth multiplier when an op's bytes fit in the last-level cache
  gemm_efficiency     achievable fraction of peak per dtype for full waves of tiles,
  gemm_half_dim,        with the K depth at which a tile reaches half speed and the tile shape
  gemm_tile           (GPU), from GEMMs; on a GPU then per dtype where it fits better
  gemm_tiles, gemm_half_dims
  copy_efficiency     fraction of the host link's bandwidth, pinned and pageable, and a
  copy_overhead_s     fixed time per copy
Every efficiency is a fraction of a peak: its bound in the fit is 1. CPU profiles are
fitted to the measurements at every thread count (each record priced at its own threads),
with the per-core bandwidth, the thread contention and the fork/join time per thread of
hardware_models.cpu; numpy's elementwise kernels run on one thread (its ufuncs are not
threaded, only its BLAS is). Nothing is a lookup table of the measured points: each family
is a curve with two or three parameters.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from hardware_models.catalog_io import build_device, catalog_profile, load_profile_file, load_spec
from hardware_models.profile import Profile, spec_sheet_profile
from simulator.calibrate.fit import fit, msle
from simulator.calibrate.measured_ops import family, load_measurements, record_op, record_ops
from simulator.calibrate.new_device import calibration_target, options_from_cli
from simulator.core.errors import UserError
from simulator.report.atomic import write_text_atomic

GPU_TILES = ((128, 128), (128, 256), (256, 128), (256, 256))  # the largest tile allowed
HOST_LAUNCH_LABELS = ("cupy_ufunc.host", "torch_op.host")  # one eager op's host cost
AUTOGRAD_NODE_LABEL = "torch_autograd_bwd.host"  # host cost per backward node, its kernel included


def _at_threads(device: Any, record: dict[str, Any]) -> Any:
    """A CPU record is priced at the threads it ran on."""
    threads = record.get("threads")
    if device.kind != "cpu" or not threads or threads == device.threads:
        return device
    return device.with_threads(min(int(threads), device.cores))


def _pairs(device: Any, records: list[dict[str, Any]]) -> list[tuple[float, float]]:
    return [(sum(_at_threads(device, r).op_cost(op).duration_s for op in ops), r["median_s"])
            for r in records if (ops := record_ops(r))]


def _loss_for(spec: Any, base: Profile, records: list[dict[str, Any]],
              to_update: Callable[[dict[str, float]], dict[str, Any]],
              ) -> Callable[[dict[str, float]], float]:
    def loss(params: dict[str, float]) -> float:
        device = build_device(spec, base.model_copy(update=to_update(params)))
        return msle(_pairs(device, records))

    return loss


HOST_BOUND_FACTOR = 3.0


def device_bound(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop kernels timed back to back faster than 3 host launches, in pytorch files timed
    before the harness queued its calls behind a spin kernel (records without `host_s`):
    there the eager calls could not run ahead of the GPU, so those times measure the host's
    dispatch, which the engine's launch thread models, not the kernel."""
    launches = [r["median_s"] for r in records if r["label"] in HOST_LAUNCH_LABELS]
    if not launches or records[0]["backend"] != "pytorch":
        return records
    floor = HOST_BOUND_FACTOR * statistics.median(launches)
    return [r for r in records
            if r["op"] == "launch" or "host_s" in r or r["median_s"] >= floor]


def host_launch_by_kernel(records: list[dict[str, Any]]) -> dict[str, float]:
    """Median host seconds per call, per kind of kernel, from records that timed the host's
    enqueueing (`host_s`) of device kernels: the dispatch cost of one library op."""
    by: dict[str, list[float]] = {}
    for rec in records:
        ops = record_ops(rec) if "host_s" in rec and family(rec) not in ("copy", "launch") else []
        main = [op for op in ops if op.kind == "gemm"] or ops
        if main:
            kernel = str(main[0].attr("kernel", main[0].kind))
            by.setdefault(kernel, []).append(rec["host_s"])
            if rec["op"].startswith("conv2d_"):  # cuDNN's three calls differ: per pass too
                by.setdefault(f"{kernel}.{rec['op'][len('conv2d_'):]}", []).append(rec["host_s"])
    return {kernel: statistics.median(times) for kernel, times in sorted(by.items())}


def usable(records: list[dict[str, Any]], spec: Any) -> list[dict[str, Any]]:
    """GPU: the GPU backend's records; CPU: the all-threads records of the numpy backend (what
    validation compares; calibration fits every thread count, `cpu_records`)."""
    if spec.kind == "gpu":  # PyTorch's own kernels when measured, else CuPy's
        gpu = [r for r in records if r["backend"] in ("pytorch", "cupy")]
        preferred = "pytorch" if any(r["backend"] == "pytorch" for r in gpu) else "cupy"
        return device_bound([r for r in gpu if r["backend"] == preferred])
    cpu = [r for r in records if r["backend"] == "numpy"]
    most = max((r["threads"] or 1 for r in cpu), default=1)
    return [r for r in cpu if (r["threads"] or 1) == most]


def cpu_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The numpy backend's records at every thread count."""
    return [r for r in records if r["backend"] == "numpy"]


def _kernel_key(rec: dict[str, Any]) -> str | None:
    op = record_op(rec)
    return None if op is None else f"{op.attr('kernel', op.kind)}.{op.dtype}"


def _fit_elementwise(spec: Any, base: Profile, recs: list[dict[str, Any]],
                     rounds: int = 3) -> Profile:
    """Memory first: bandwidth, fixed overhead and cache speed-up with every kernel at the
    peak compute rate; then, kernel by kernel, a lower compute rate only where it explains
    that kernel's times better (numpy's float16 loops); then the memory terms again. A relu
    timed alone cannot tell a slow ALU from slow memory, and the memory explanation is the
    one that transfers to kernels that were never measured."""
    if not recs:
        return base
    keys = sorted({k for r in recs if (k := _kernel_key(r)) is not None})
    vec: dict[str, float] = {}

    one_core = base.vector_threads == 1  # numpy: one core streams, whatever the threads

    def upd_mem(p: dict[str, float]) -> dict[str, Any]:
        bandwidth = ({"core_bandwidth_bytes_per_s": p["core"]} if one_core
                     else {"memory_efficiency": p["mem"]})
        faults = {"page_fault_s": p["pf"]} if spec.kind == "cpu" else {}
        return {**bandwidth, **faults, "kernel_overhead_s": p["ovh"],
                "cache_speedup": p["cache"], "vector_efficiency": dict(vec)}

    bandwidth = ({"core": (1e8, spec.memory_bandwidth_bytes_per_s)} if one_core
                 else {"mem": (0.02, 1.0)})
    faults = {"pf": (1e-9, 1e-4)} if spec.kind == "cpu" else {}
    mem_bounds = {**bandwidth, **faults, "ovh": (1e-8, 1e-3), "cache": (1.0, 20.0)}
    for _ in range(rounds):
        mem_params = fit(mem_bounds, _loss_for(spec, base, recs, upd_mem))
        base = base.model_copy(update=upd_mem(mem_params))
        for key in keys:
            mine = [r for r in recs if _kernel_key(r) == key]

            def upd(p: dict[str, float], key: str = key) -> dict[str, Any]:
                return {"vector_efficiency": {**vec, key: p["vec"]}}

            loss = _loss_for(spec, base, mine, upd)
            best = fit({"vec": (1e-5, 1.0)}, loss, sweeps=2)["vec"]
            vec[key] = best if loss({"vec": best}) < 0.95 * loss({"vec": 1.0}) else 1.0
    # kernels never measured keep the peak rate: assumed memory-bound, as vectorised
    # elementwise kernels are
    return base.model_copy(update={"vector_efficiency": vec})


def _fit_gemm(spec: Any, base: Profile, recs: list[dict[str, Any]]) -> Profile:
    dtypes = sorted({r["dtype"] for r in recs})
    if not dtypes:
        return base

    cpu = spec.kind == "cpu"  # and the threads: contention, fork/join per thread

    def key(dtype: str) -> str:  # numpy's products in fp16 are its own loops (fp64: BLAS)
        return f"gemm.{dtype}" if cpu and dtype not in ("fp32", "fp64") else dtype

    def upd(p: dict[str, float]) -> dict[str, Any]:
        threads = {"thread_contention": p["contention"], "fork_join_s": {"default": p["fj"]},
                   "page_fault_s": p["pf"]} if cpu else {}
        return {"gemm_efficiency": {key(d): p[d] for d in dtypes}, "gemm_half_dim": p["half_dim"],
                **threads}

    best: tuple[float, Profile] | None = None
    for tile in GPU_TILES if spec.kind == "gpu" else (base.gemm_tile,):
        tiled = base.model_copy(update={"gemm_tile": tile})
        threads = {"contention": (1e-4, 1.0), "fj": (1e-9, 1e-4), "pf": (1e-9, 1e-4)} if cpu else {}
        bounds = {**{d: (1e-5, 1.0) for d in dtypes}, "half_dim": (0.1, 1024.0), **threads}
        loss = _loss_for(spec, tiled, recs, upd)
        params = fit(bounds, loss)
        candidate = tiled.model_copy(update=upd(params))
        if best is None or loss(params) < best[0]:
            best = (loss(params), candidate)
    assert best is not None
    return _fit_gemm_per_dtype(spec, best[1], recs) if spec.kind == "gpu" else best[1]


GPU_DTYPE_TILES = ((64, 128), (128, 64), (128, 128), (128, 256), (256, 128), (256, 256))
MIN_RECORDS_PER_DTYPE = 16


def _fit_gemm_per_dtype(spec: Any, base: Profile, recs: list[dict[str, Any]]) -> Profile:
    """GPU: each dtype's own largest tile, efficiency and half-speed intensity, where it has
    enough records and fits them better than the shared shape (libraries ship different
    tile configurations per operand width)."""
    effs, tiles = dict(base.gemm_efficiency), dict(base.gemm_tiles)
    halves = dict(base.gemm_half_dims)
    for dtype in sorted({r["dtype"] for r in recs}):
        mine = [r for r in recs if r["dtype"] == dtype]
        if len(mine) < MIN_RECORDS_PER_DTYPE:
            continue
        current = base.model_copy(update={"gemm_efficiency": effs, "gemm_tiles": tiles,
                                          "gemm_half_dims": halves})
        best: tuple[float, tuple[int, int] | None, dict[str, float]] = (
            msle(_pairs(build_device(spec, current), mine)), None, {})
        for tile in GPU_DTYPE_TILES:
            def upd(p: dict[str, float], tile: tuple[int, int] = tile,
                    dtype: str = dtype) -> dict[str, Any]:
                return {"gemm_efficiency": {**effs, dtype: p["eff"]},
                        "gemm_tiles": {**tiles, dtype: tile},
                        "gemm_half_dims": {**halves, dtype: p["half"]}}

            loss = _loss_for(spec, current, mine, upd)
            params = fit({"eff": (1e-5, 1.0), "half": (0.1, 1024.0)}, loss)
            if loss(params) < best[0]:
                best = (loss(params), tile, params)
        if best[1] is not None:
            effs[dtype], tiles[dtype], halves[dtype] = best[2]["eff"], best[1], best[2]["half"]
    return base.model_copy(update={"gemm_efficiency": effs, "gemm_tiles": tiles,
                                   "gemm_half_dims": halves})


def _fit_conv(spec: Any, base: Profile, recs: list[dict[str, Any]]) -> Profile:
    """cuDNN convolutions: their own achievable fraction of peak per dtype ("conv.bf16"),
    on the GEMM tiles and fill already fitted; it absorbs what cuDNN does around the math
    (implicit-GEMM index arithmetic, NCHW <-> NHWC transposes for tensor cores)."""
    dtypes = sorted({r["dtype"] for r in recs})
    if not dtypes:
        return base
    def upd(p: dict[str, float]) -> dict[str, Any]:
        return {"gemm_efficiency": {**base.gemm_efficiency,
                                    **{f"conv.{d}": p[d] for d in dtypes}},
                "conv_half_dim": p["half_dim"]}

    # a fraction of the peak like every efficiency (cuDNN's Winograd does fewer FLOPs than the
    # direct convolution counted, which a faster rate than the peak would stand for: not
    # allowed, the convolutions it speeds up are predicted slow instead)
    bounds = {**{d: (1e-3, 1.0) for d in dtypes}, "half_dim": (0.1, 1024.0)}
    params = fit(bounds, _loss_for(spec, base, recs, upd))
    return base.model_copy(update=upd(params))


def _fit_copies(spec: Any, base: Profile, recs: list[dict[str, Any]]) -> Profile:
    kinds = sorted({"pinned" if r["pinned"] else "pageable" for r in recs})
    if not kinds:
        return base
    def upd(p: dict[str, float]) -> dict[str, Any]:
        return {"copy_efficiency": {k: p[k] for k in kinds}, "copy_overhead_s": p["ovh"]}

    bounds = {**{k: (0.01, 1.0) for k in kinds}, "ovh": (1e-8, 1e-2)}
    return base.model_copy(update=upd(fit(bounds, _loss_for(spec, base, recs, upd))))


def calibrate_profile(records: list[dict[str, Any]], hardware: str | Any) -> Profile:
    """Fit the profile of `hardware` (a catalog name or a device spec) to `records` (see the
    module docstring)."""
    spec = load_spec(hardware) if isinstance(hardware, str) else hardware
    hardware = spec.name
    recs = cpu_records(records) if spec.kind == "cpu" else usable(records, spec)
    if not recs:
        raise UserError(f"no {spec.kind} measurements usable for {hardware}")

    def by(fam: str) -> list[dict[str, Any]]:
        return [r for r in recs if family(r) == fam]

    backends = sorted({r["backend"] for r in recs})
    profile = spec_sheet_profile(hardware).model_copy(
        update={"origin": "calibrated", "kernel_rates_backend": backends[0]})
    launches = [r["median_s"] for r in recs
                if r["op"] == "launch" and r["label"] in HOST_LAUNCH_LABELS]
    if launches:
        profile = profile.model_copy(update={"launch_s": statistics.median(launches),
                                             "launch_s_by_kernel": host_launch_by_kernel(recs)})
        nodes = [r["median_s"] for r in recs if r["label"] == AUTOGRAD_NODE_LABEL]
        if nodes:
            extra = statistics.median(nodes) - statistics.median(launches)
            profile = profile.model_copy(update={"autograd_node_s": max(0.0, extra)})
    if spec.kind == "cpu":
        profile = profile.model_copy(update={"threads": max(r["threads"] or 1 for r in recs),
                                             "vector_threads": 1 if backends == ["numpy"] else None,
                                             "units": dict(spec.flops_per_cycle_per_core)})
    profile = _fit_elementwise(spec, profile, by("elementwise"))
    profile = _fit_gemm(spec, profile, by("gemm"))
    if backends == ["pytorch"]:
        profile = _fit_conv(spec, profile, by("conv"))
    profile = _fit_copies(spec, profile, by("copy"))
    return profile


def fit_errors(profile: Profile, records: list[dict[str, Any]],
               spec: Any = None) -> dict[str, float]:
    """Median absolute relative error per family on `records` (for the profile's record);
    `spec` the device's entry (default: the catalog's of `profile.device`)."""
    spec = spec or load_spec(profile.device)
    device = build_device(spec, profile)
    out = {}
    for fam in ("gemm", "conv", "elementwise", "copy"):
        pairs = _pairs(device, [r for r in usable(records, spec) if family(r) == fam])
        if pairs:
            out[fam] = round(statistics.median(abs(p / m - 1) for p, m in pairs), 4)
    return out


def base_profile(base: str) -> Profile:
    """The profile a refit starts from (`--base`): a catalog profile name or a profile YAML."""
    start = catalog_profile(base) if not base.endswith((".yaml", ".yml")) else \
        load_profile_file(Path(base))
    if start is None:
        raise UserError(f"--base: no catalog profile '{base}' (a name or a profile YAML)")
    return start


PROFILE_HEADER = "# fitted by `python -m simulator calibrate`; do not edit by hand\n"


def profile_yaml(profile: Profile) -> str:
    data = profile.model_dump(mode="json")
    if data["device_file"] is None:  # a catalog device: named by `device` alone
        del data["device_file"]
    return PROFILE_HEADER + yaml.safe_dump(data, sort_keys=True)


def at_bound(profile: Profile) -> list[str]:
    """The fitted efficiencies at their bound of 1 (the peak they divide is then too low)."""
    found = [f"gemm_efficiency.{k}" for k, v in profile.gemm_efficiency.items() if v >= 1.0]
    found += [f"vector_efficiency.{k}" for k, v in profile.vector_efficiency.items() if v >= 1.0]
    return found + (["memory_efficiency"] if profile.memory_efficiency >= 1.0 else [])


def run_calibrate(measurements: list[str], hardware: str, out: str,
                  **new_device: Any) -> None:
    """`calibrate`: fit the profile of `hardware` and write it to `out`; `new_device` the
    options of a new device entry (`new_device.options_from_cli`)."""
    from simulator.calibrate.cpu_steps import calibrate_cpu_steps, is_cpu_step_or_kernel_file

    target = calibration_target(hardware, measurements, options_from_cli(**new_device))
    _check_out(Path(out), hardware)
    if any(is_cpu_step_or_kernel_file(m) for m in measurements):  # PyTorch on a CPU
        profile = calibrate_cpu_steps(measurements, target.spec)
        fitted = f"median errors {profile.fit_error}"
    else:
        records = load_measurements(measurements)
        profile = calibrate_profile(records, target.spec)
        profile = profile.model_copy(update={
            "fitted_from": sorted({r["file"] for r in records}),
            "fit_error": fit_errors(profile, records, target.spec)})
        fitted = f"median fit error {profile.fit_error}"
    if target.entry_path is not None and target.entry_yaml is not None:
        profile = profile.model_copy(update={"device_file": _relative(target.entry_path, out)})
        write_text_atomic(target.entry_path, target.entry_yaml)
        print(f"wrote {target.entry_path}: a new device entry for {profile.device} (what was "
              "read, derived and given: its sources and assumptions)")
    write_text_atomic(Path(out), profile_yaml(profile))
    print(f"wrote {out}: {profile.device}, {fitted}")
    if bound := at_bound(profile):
        print(f"note: fitted at their bound of 1 (what was measured reaches the peak they "
              f"divide; if that is not expected, check the clock and FLOPs per cycle): "
              f"{', '.join(bound)}")


def _check_out(out: Path, hardware: str) -> None:
    """The profile is written to a file of its own: not the device entry (`--hardware`), and
    not a file this program did not write (a profile it wrote starts with its header)."""
    if hardware.endswith((".yaml", ".yml")) and Path(hardware).resolve() == out.resolve():
        raise UserError(f"--out {out}: is the device entry's path (--hardware); the profile "
                        "needs a file of its own, e.g. NAME.profile.yaml")
    if out.is_file() and not out.read_text(errors="replace").startswith(PROFILE_HEADER):
        raise UserError(f"--out {out}: exists and is not a profile calibrate wrote; it is "
                        "never overwritten (give a new path)")


def _relative(entry: Path, out: str) -> str:
    """The entry's path as the profile at `out` names it: relative to the profile's folder."""
    return os.path.relpath(entry.resolve(), Path(out).resolve().parent)

"""Ground truth for the convolution-algorithm model: every distinct convolution and batch-norm
layer of the zoo's CNNs timed alone on one GPU, with the cuDNN kernels that ran (their names
say the algorithm: implicit_gemm, winograd, fft, gemm, depthwise...), and whole training and
inference steps at a device-bound batch profiled kernel by kernel. Standalone except for
benchmarks/torch_zoo.py beside it (models, precision flags, provenance). On a CUDA machine:

    PYTHONUNBUFFERED=1 python3 benchmarks/torch_conv_layers.py --out OUT/h200-conv-layers.json

Layers: each distinct Conv2d (input shape, out channels, kernel, stride, padding, groups) and
BatchNorm2d input shape of torchvision's resnet18, resnet50, vgg16, mobilenet_v2 and alexnet
(224x224 inputs), with the networks it occurs in. --only-pools: each distinct MaxPool2d and
AvgPool2d instead (kind, input shape, kernel, stride, padding, ceil_mode), fp32 and bf16, batch
128 and 32: forward in training (F.max_pool2d/avg_pool2d on an input that requires grad),
backward through autograd, and the forward under torch.inference_mode() ("infer").

Per batch (128, 32), precision (fp32-strict: no TF32; fp32: cuDNN TF32 on; bf16: bf16 tensors,
as autocast hands cuDNN) and cudnn.benchmark (off, as the zoo ran; on): aten.convolution (no
bias) for the forward pass, aten.convolution_backward with output_mask [True, False, False]
(data gradient) and [False, True, False] (weight gradient), NCHW contiguous tensors. Each pass:
warm-up calls, then 3 repeats of n back-to-back calls between CUDA events (n so that a repeat
is about 2 ms); median per call. One profiler pass per configuration records each kernel's name
and device time per call. Batch norm (training mode; bf16 activations with fp32 weights, as
autocast runs it): forward, and backward through autograd (data and weight gradients); and in
eval mode under torch.inference_mode() ("infer": one affine pass with the running statistics).

Steps: each network, train and infer, the three precisions, at batch 128 (--step-batches:
others, e.g. 1 8 32 to see which kernels the libraries choose for small batches): torch.profiler
over 3 steps, every kernel name with its count and device time per step, and every CUDA
runtime or driver call of the host thread (cudaLaunchKernel, ...) with its count and host time
per step (under the profiler, whose own cost per op is not in these calls). --only-steps: no
layers.

With --extra NAME..., only the layers that occur in those torchvision networks (each still
listing the zoo networks it also occurs in); --only-depthwise keeps only depthwise
convolutions, --benchmark-off-only only cudnn.benchmark off, --step-share 0 no steps.

Steps come first (a share of the budget), then the layers. --budget-s bounds the run: parts
stop early (the file says which) and the JSON is rewritten
after each part.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import torch
import torch_zoo
from torch.profiler import ProfilerActivity, profile

SCHEMA = "simulator.conv-layers/1"
NETWORKS = ("resnet18", "resnet50", "vgg16", "mobilenet_v2", "alexnet")
BATCHES = (128, 32)
PASSES = ("fwd", "bwd_data", "bwd_weight")
REPEAT_S = 2e-3


POOLS = (torch.nn.MaxPool2d, torch.nn.AvgPool2d)


def pool_key(mod: torch.nn.Module, c: int, h: int, w: int) -> tuple[tuple, tuple[str, ...]]:
    def two(v: Any) -> tuple[int, int]:
        return (v, v) if isinstance(v, int) else tuple(v)  # type: ignore[return-value]

    kind = "maxpool2d" if isinstance(mod, torch.nn.MaxPool2d) else "avgpool2d"
    key = (kind, c, h, w, *two(mod.kernel_size), *two(mod.stride), *two(mod.padding),
           bool(mod.ceil_mode))
    return key, ("kind", "channels", "height", "width", "kernel_h", "kernel_w", "stride_h",
                 "stride_w", "pad_h", "pad_w", "ceil_mode")


def layer_shapes(extra: tuple[str, ...] = ()) -> tuple[dict, dict, dict]:
    """Distinct conv, batch-norm and pooling layers of NETWORKS (and `extra`): key -> {fields,
    networks}. With `extra`, only the layers that occur in one of them, each still listing
    every network of NETWORKS it also occurs in (so leave-one-network-out can drop it)."""
    convs: dict[tuple, dict[str, Any]] = {}
    norms: dict[tuple, dict[str, Any]] = {}
    pools: dict[tuple, dict[str, Any]] = {}
    for name in NETWORKS + extra:
        model, sample, _ = torch_zoo.build_model(name)
        hooks = []

        def hook(mod: torch.nn.Module, inputs: tuple, _out: Any, name: str = name) -> None:
            c, h, w = inputs[0].shape[1:]
            if isinstance(mod, torch.nn.Conv2d):
                key = (c, h, w, mod.out_channels, *mod.kernel_size, *mod.stride, *mod.padding,
                       mod.groups)
                fields = ("in_channels", "height", "width", "out_channels", "kernel_h",
                          "kernel_w", "stride_h", "stride_w", "pad_h", "pad_w", "groups")
                entry = convs.setdefault(key, dict(zip(fields, key, strict=True), networks={}))
            elif isinstance(mod, POOLS):
                key, fields = pool_key(mod, c, h, w)
                entry = pools.setdefault(key, dict(zip(fields, key, strict=True), networks={}))
            else:
                key = (c, h, w)
                fields = ("channels", "height", "width")
                entry = norms.setdefault(key, dict(zip(fields, key, strict=True), networks={}))
            entry["networks"][name] = entry["networks"].get(name, 0) + 1

        for mod in model.modules():
            if isinstance(mod, (torch.nn.Conv2d, torch.nn.BatchNorm2d, *POOLS)):
                hooks.append(mod.register_forward_hook(hook))
        with torch.no_grad():
            model.eval()(torch.zeros(1, *sample))
        for h in hooks:
            h.remove()
    if extra:
        def keep(entry: dict[str, Any]) -> bool:
            return any(n in entry["networks"] for n in extra)
        convs = {k: v for k, v in convs.items() if keep(v)}
        norms = {k: v for k, v in norms.items() if keep(v)}
        pools = {k: v for k, v in pools.items() if keep(v)}
    return convs, norms, pools


def time_call(fn: Any) -> float:
    """Median seconds per call over 3 repeats of n back-to-back calls (CUDA events)."""
    fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    n = max(1, min(200, int(REPEAT_S / max(time.perf_counter() - t0, 1e-6))))
    times = []
    for _ in range(3):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(n):
            fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3 / n)
    return statistics.median(times)


def kernels_of(fns: list[Any], calls: int = 2) -> list[list[list[Any]]]:
    """Per fn: [name, device us per call] of each kernel it ran (profiled, `calls` calls;
    a sleep kernel separates the fns in the timeline)."""
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for fn in fns:
            torch.cuda._sleep(1000)
            for _ in range(calls):
                fn()
        torch.cuda._sleep(1000)
        torch.cuda.synchronize()
    events = sorted((e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA),
                    key=lambda e: e.time_range.start)
    groups: list[dict[str, float]] = []
    for ev in events:
        if "sleep" in ev.name or "spin" in ev.name:
            groups.append({})
        elif groups and not ev.name.startswith(("Memcpy", "Memset")):
            groups[-1][ev.name[:220]] = groups[-1].get(ev.name[:220], 0.0) + \
                ev.time_range.elapsed_us() / calls
    return [[[k, round(v, 3)] for k, v in g.items()] for g in groups[:len(fns)]]


def conv_passes(c: dict[str, Any], batch: int, dtype: torch.dtype) -> list[Any]:
    x = torch.randn(batch, c["in_channels"], c["height"], c["width"], device="cuda", dtype=dtype)
    w = torch.randn(c["out_channels"], c["in_channels"] // c["groups"], c["kernel_h"],
                    c["kernel_w"], device="cuda", dtype=dtype)
    stride, pad = [c["stride_h"], c["stride_w"]], [c["pad_h"], c["pad_w"]]
    y = torch.ops.aten.convolution(x, w, None, stride, pad, [1, 1], False, [0, 0], c["groups"])
    gy = torch.randn_like(y)

    def fwd() -> Any:
        return torch.ops.aten.convolution(x, w, None, stride, pad, [1, 1], False, [0, 0],
                                          c["groups"])

    def grad(mask: list[bool]) -> Any:
        return lambda: torch.ops.aten.convolution_backward(
            gy, x, w, None, stride, pad, [1, 1], False, [0, 0], c["groups"], mask)

    return [fwd, grad([True, False, False]), grad([False, True, False])]


def norm_passes(n: dict[str, Any], batch: int, dtype: torch.dtype) -> list[Any]:
    """Training forward and backward, and (with --norm-infer) the eval-mode forward."""
    bn = torch.nn.BatchNorm2d(n["channels"]).cuda().train()
    x = torch.randn(batch, n["channels"], n["height"], n["width"], device="cuda", dtype=dtype,
                    requires_grad=True)
    y = bn(x)
    gy = torch.randn_like(y)
    params = [x, bn.weight, bn.bias]
    bn_eval = torch.nn.BatchNorm2d(n["channels"]).cuda().eval()
    x_eval = x.detach()

    def infer() -> Any:
        with torch.inference_mode():
            return bn_eval(x_eval)

    return [lambda: bn(x), lambda: torch.autograd.grad(y, params, gy, retain_graph=True),
            infer]


def pool_passes(p: dict[str, Any], batch: int, dtype: torch.dtype) -> list[Any]:
    """Training forward (max pooling keeps its argmax indices) and backward, and the forward
    in inference mode."""
    kw = {"kernel_size": (p["kernel_h"], p["kernel_w"]), "stride": (p["stride_h"], p["stride_w"]),
          "padding": (p["pad_h"], p["pad_w"]), "ceil_mode": p["ceil_mode"]}
    fn = torch.nn.functional.max_pool2d if p["kind"] == "maxpool2d" else \
        torch.nn.functional.avg_pool2d
    x = torch.randn(batch, p["channels"], p["height"], p["width"], device="cuda", dtype=dtype,
                    requires_grad=True)
    y = fn(x, **kw)
    gy = torch.randn_like(y)
    x_eval = x.detach()

    def infer() -> Any:
        with torch.inference_mode():
            return fn(x_eval, **kw)

    return [lambda: fn(x, **kw), lambda: torch.autograd.grad(y, [x], gy, retain_graph=True),
            infer]


def timed_passes(rec: dict[str, Any], passes: Any, layer: dict[str, Any],
                 dtype: torch.dtype) -> dict[str, Any]:
    """`rec` with the median time and the kernels of each of the layer's three passes
    (forward, backward, inference: `passes(layer, batch, dtype)`), or the error that stopped
    them (recorded: the sweep goes on)."""
    names = ("fwd", "bwd", "infer")
    try:
        fns = passes(layer, rec["batch"], dtype)
        rec["median_s"] = dict(zip(names, map(time_call, fns), strict=True))
        rec["kernels"] = dict(zip(names, kernels_of(fns), strict=False))
    except Exception as exc:  # noqa: BLE001
        rec["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    return rec


def measure_pools(doc: dict[str, Any], pools: dict, deadline: float, write: Any) -> None:
    """Every pooling layer alone: batch 128 and 32, fp32 and bf16 (no TF32 question)."""
    doc["pool_layers"] = list(pools.values())
    for batch in BATCHES:
        for precision in ("fp32", "bf16"):
            for i, p in enumerate(pools.values()):
                if time.time() > deadline:
                    doc["stopped"].append(f"pool {i}.. b{batch} {precision}")
                    break
                rec: dict[str, Any] = {"layer": "pool", "index": i, "batch": batch,
                                       "precision": precision, "cudnn_benchmark": False}
                doc["records"].append(timed_passes(rec, pool_passes, p, DTYPES[precision]))
                torch.cuda.empty_cache()
    write()
    print(f"pools: {len(doc['pool_layers'])} layers, {deadline - time.time():.0f} s left")


DTYPES = {"fp32-strict": torch.float32, "fp32": torch.float32, "bf16": torch.bfloat16}


def measure_layers(doc: dict[str, Any], deadline: float, write: Any,
                   extra: tuple[str, ...] = (), benchmark_modes: tuple[bool, ...] = (False, True),
                   only_depthwise: bool = False, only_norms: bool = False,
                   only_pools: bool = False) -> None:
    convs, norms, pools = layer_shapes(extra)
    if only_pools:
        measure_pools(doc, pools, deadline, write)
        return
    if only_depthwise:
        convs = {k: v for k, v in convs.items()
                 if v["groups"] > 1 and v["groups"] == v["in_channels"]}
    if only_norms:
        convs = {}
    doc["conv_layers"], doc["norm_layers"] = list(convs.values()), list(norms.values())
    for bench in benchmark_modes:
        torch.backends.cudnn.benchmark = bench
        for batch in BATCHES:
            for precision in torch_zoo.PRECISIONS:
                if time.time() > deadline:
                    doc["stopped"].append(f"layers benchmark={bench} batch={batch} {precision}")
                    continue
                torch_zoo.set_precision(precision)
                for i, c in enumerate(convs.values()):
                    if time.time() > deadline:
                        doc["stopped"].append(f"conv {i}.. benchmark={bench} b{batch} {precision}")
                        break
                    rec: dict[str, Any] = {"layer": "conv", "index": i, "batch": batch,
                                           "precision": precision, "cudnn_benchmark": bench}
                    try:
                        fns = conv_passes(c, batch, DTYPES[precision])
                        rec["median_s"] = dict(zip(PASSES, map(time_call, fns), strict=True))
                        rec["kernels"] = dict(zip(PASSES, kernels_of(fns), strict=False))
                    except torch.cuda.OutOfMemoryError as exc:
                        rec["error"] = str(exc).splitlines()[0][:200]
                    doc["records"].append(rec)
                    torch.cuda.empty_cache()
                for i, n in enumerate(norms.values() if not bench else ()):
                    rec = {"layer": "batchnorm", "index": i, "batch": batch,
                           "precision": precision, "cudnn_benchmark": bench}
                    doc["records"].append(timed_passes(rec, norm_passes, n, DTYPES[precision]))
                write()
                print(f"layers benchmark={bench} batch={batch} {precision}: "
                      f"{len(doc['records'])} records, {deadline - time.time():.0f} s left")


def measure_steps(doc: dict[str, Any], deadline: float, write: Any,
                  batches: tuple[int, ...]) -> None:
    torch.backends.cudnn.benchmark = False
    for name in NETWORKS:
        model, sample, classes = torch_zoo.build_model(name)
        model = model.cuda()
        torch_zoo.remember_weights(model)
        for mode, precision, batch in ((m, p, b) for m in ("train", "infer")
                                       for p in torch_zoo.PRECISIONS for b in batches):
            if time.time() > deadline:
                doc["stopped"].append(f"step {name} {mode} {precision} {batch}")
                continue
            flags = torch_zoo.set_precision(precision)
            step, _ = torch_zoo.make_step(model, sample, classes, mode, precision, batch,
                                          "cuda")
            for _ in range(3):
                step()
            torch.cuda.synchronize()
            with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                for _ in range(3):
                    step()
                torch.cuda.synchronize()
            kernels: dict[str, list[float]] = {}
            runtime: dict[str, list[float]] = {}  # the host's CUDA runtime/driver calls
            for ev in prof.events():
                if ev.device_type == torch.autograd.DeviceType.CUDA:
                    entry = kernels.setdefault(ev.name[:220], [0.0, 0.0])
                elif ev.name.startswith("cu"):
                    entry = runtime.setdefault(ev.name[:120], [0.0, 0.0])
                else:
                    continue
                entry[0] += 1 / 3
                entry[1] += ev.time_range.elapsed_us() / 3
            doc["steps"].append({"model": name, "mode": mode, "precision": precision,
                                 "batch": batch, "flags": flags,
                                 "kernels_per_step": {k: [round(c, 2), round(t, 2)]
                                                      for k, (c, t) in kernels.items()},
                                 "runtime_calls_per_step": {
                                     k: [round(c, 2), round(t, 2)]
                                     for k, (c, t) in runtime.items()}})
        del model
        torch.cuda.empty_cache()
        write()
        print(f"steps {name}: {deadline - time.time():.0f} s left")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--budget-s", type=float, default=420.0)
    parser.add_argument("--step-share", type=float, default=0.2,
                        help="fraction of the budget kept for the step profiles (0: none)")
    parser.add_argument("--extra", nargs="*", default=[],
                        help="torchvision networks beyond the zoo: time only their layers")
    parser.add_argument("--only-depthwise", action="store_true",
                        help="of the convolutions, only the depthwise ones")
    parser.add_argument("--only-norms", action="store_true", help="no convolutions at all")
    parser.add_argument("--step-batches", type=int, nargs="+", default=[128],
                        help="batch sizes of the step profiles")
    parser.add_argument("--only-steps", action="store_true", help="no layers at all")
    parser.add_argument("--only-pools", action="store_true",
                        help="only the pooling layers (max and average), no steps")
    parser.add_argument("--benchmark-off-only", action="store_true",
                        help="cudnn.benchmark off only (as the zoo's steps ran)")
    args = parser.parse_args()
    from pathlib import Path

    start = time.time()
    doc = torch_zoo.provenance("python3 " + " ".join(sys.argv), SCHEMA)
    doc.update(steps=[], stopped=[], passes=list(PASSES))
    out = Path(args.out)

    def write() -> None:
        torch_zoo.write_json_atomic(out, doc)

    if (args.step_share > 0 or args.only_steps) and not args.only_pools:
        share = 1.0 if args.only_steps else args.step_share
        measure_steps(doc, start + args.budget_s * share, write, tuple(args.step_batches))
    if not args.only_steps:
            measure_layers(doc, start + args.budget_s, write, tuple(args.extra),
                       (False,) if args.benchmark_off_only else (False, True),
                       args.only_depthwise, args.only_norms, args.only_pools)
    write()
    print(f"done in {time.time() - start:.0f} s; stopped: {doc['stopped']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

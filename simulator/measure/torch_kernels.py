"""The `pytorch` measurement backend: the kernels PyTorch itself runs on a GPU.

cuBLAS matrix products (torch.mm), cuDNN convolutions of VGG16's layers in PyTorch's default
NCHW layout (forward, backward-data and backward-weight through aten.convolution_backward,
cudnn.benchmark on), PyTorch's vectorised elementwise kernels (relu, add), a reduction
(sum), max pooling with indices, host<->device copies and the host cost of one eager op.
dtypes: fp32 (no TF32), tf32 (TF32 allowed), bf16, fp16. The calls of each repetition are
queued behind a spin kernel, so CUDA events time the device alone; each record also has the
host's enqueue time per call (`host_s`); medians. Records follow simulator.measure.records
(backend "pytorch").
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from simulator.measure.provenance import nvidia_smi
from simulator.measure.records import make_record
from simulator.measure.shapes import vgg16_distinct_convs, vgg16_fcs, vgg16_pools

DTYPES = ("fp32", "tf32", "bf16", "fp16")
ITEM = {"fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2}


def _torch_dtype(torch: Any, dtype: str) -> Any:
    return {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16,
            "fp16": torch.float16}[dtype]


def _tf32(torch: Any, on: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on


_SPIN: dict[str, float] = {}


def _spin_cycles_per_s(torch: Any) -> float:
    """Clock of torch.cuda._sleep, the spin kernel the timed calls queue behind."""
    if "rate" not in _SPIN:
        cycles = 20_000_000
        torch.cuda._sleep(cycles)  # warm-up
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        torch.cuda._sleep(cycles)
        b.record()
        b.synchronize()
        _SPIN["rate"] = cycles / (a.elapsed_time(b) / 1e3)
    return _SPIN["rate"]


def _time(torch: Any, fn: Callable[..., Any], quick: bool,
          spin: bool = True) -> tuple[list[float], float]:
    """Per-call device seconds and the median host seconds per call; `fn` is called with no
    arguments (the callers' lambdas bind their loop values as defaults).

    Each repetition queues `inner` calls behind a spin kernel that outlasts their enqueueing,
    so the CUDA events around them time the kernels back to back on the device, without the
    gaps a slower host would leave; the host's enqueue time per call is timed alongside
    (it is what the engine's launch thread costs). `spin=False` for calls that wait for the
    device anyway (synchronous copies): they time as before, host gaps included."""
    for _ in range(2):
        fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    once = max(time.perf_counter() - start, 1e-6)
    inner = max(1, min(200, int(2e-3 / once)))
    rate = _spin_cycles_per_s(torch)
    host_per_call = once
    times, hosts = [], []
    for _ in range(3 if quick else 5):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        if spin:
            torch.cuda._sleep(int(rate * (2.0 * inner * host_per_call + 1e-4)))
        a.record()
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        host = time.perf_counter() - start
        b.record()
        b.synchronize()
        host_per_call = host / inner
        times.append(a.elapsed_time(b) / 1e3 / inner)
        hosts.append(host_per_call)
    return times, statistics.median(hosts)


def _record(op: str, dtype: str, label: str, shape: dict[str, Any], flops: float,
            nbytes: float, timed: tuple[list[float], float]) -> dict[str, Any]:
    times, host_s = timed
    record = make_record(op, dtype, None, label, shape, flops, nbytes, times)
    record["host_s"] = float(f"{host_s:.5g}")
    return record


def gemms(torch: Any, quick: bool) -> list[dict[str, Any]]:
    shapes = [("square", n, n, n) for n in (256, 512, 1024, 2048, 4096, 8192)]
    for batch in (16, 64):
        for name, fin, fout in vgg16_fcs():
            shapes += [(f"vgg16.{name}.fwd.b{batch}", batch, fout, fin),
                       (f"vgg16.{name}.bwd_weight.b{batch}", fout, fin, batch)]
    out = []
    for dtype in DTYPES:
        _tf32(torch, dtype == "tf32")
        for label, m, n, k in shapes[: 4 if quick else None]:
            a = torch.randn(m, k, device="cuda", dtype=_torch_dtype(torch, dtype))
            b = torch.randn(k, n, device="cuda", dtype=_torch_dtype(torch, dtype))
            out.append(_record("gemm", dtype, label, {"m": m, "n": n, "k": k},
                               2.0 * m * n * k, (m * k + k * n + m * n) * ITEM[dtype],
                               _time(torch, lambda a=a, b=b: torch.mm(a, b), quick)))
    return out


def convs(torch: Any, quick: bool) -> list[dict[str, Any]]:
    conv_bwd = torch.ops.aten.convolution_backward
    out = []
    layers = vgg16_distinct_convs()[:2] if quick else vgg16_distinct_convs()
    for dtype in DTYPES:
        _tf32(torch, dtype == "tf32")
        tdt = _torch_dtype(torch, dtype)
        for batch in (2,) if quick else (16, 64):
            for layer in layers:
                c, k, s = layer.in_channels, layer.out_channels, layer.size
                x = torch.randn(batch, c, s, s, device="cuda", dtype=tdt)
                w = torch.randn(k, c, 3, 3, device="cuda", dtype=tdt)
                g = torch.randn(batch, k, s, s, device="cuda", dtype=tdt)

                def fwd(x=x, w=w):
                    return torch.nn.functional.conv2d(x, w, None, 1, 1)

                def dgrad(g=g, x=x, w=w):
                    return conv_bwd(g, x, w, None, (1, 1), (1, 1), (1, 1),
                                    False, (0, 0), 1, (True, False, False))

                def wgrad(g=g, x=x, w=w):
                    return conv_bwd(g, x, w, None, (1, 1), (1, 1), (1, 1),
                                    False, (0, 0), 1, (False, True, False))

                shape = {"batch": batch, "in_channels": c, "out_channels": k, "height": s,
                         "width": s, "kernel": 3, "stride": 1, "padding": 1}
                flops = 2.0 * batch * k * s * s * c * 9
                nbytes = (batch * (c + k) * s * s + k * c * 9) * ITEM[dtype]
                for op, fn in (("conv2d_fwd", fwd), ("conv2d_bwd_data", dgrad),
                               ("conv2d_bwd_weight", wgrad)):
                    out.append(_record(op, dtype, f"vgg16.{layer.name}.{op[7:]}.b{batch}",
                                       shape, flops, nbytes, _time(torch, fn, quick)))
    _tf32(torch, False)
    return out


def elementwise(torch: Any, quick: bool) -> list[dict[str, Any]]:
    out = []
    for dtype in ("fp32", "bf16"):
        tdt = _torch_dtype(torch, dtype)
        for p in range(16, 20 if quick else 29, 2):
            n = 2**p
            x = torch.randn(n, device="cuda", dtype=tdt)
            y = torch.randn(n, device="cuda", dtype=tdt)
            z = torch.empty_like(x)
            cases = (("relu", lambda x=x, z=z: torch.clamp_min(x, 0, out=z), 2, 1),
                     ("add", lambda x=x, y=y, z=z: torch.add(x, y, out=z), 3, 1),
                     ("sum", lambda x=x: torch.sum(x), 1, 1))
            for op, fn, arrays, fl in cases:
                out.append(_record(op, dtype, "1d", {"elements": n}, float(fl * n),
                                   float(arrays * n * ITEM[dtype]), _time(torch, fn, quick)))
        for batch in (2,) if quick else (16, 64):
            for name, c, s in vgg16_pools():
                x = torch.randn(batch, c, s, s, device="cuda", dtype=tdt)

                def fn(x=x):
                    return torch.nn.functional.max_pool2d(x, 2, 2, return_indices=True)

                n_out = batch * c * (s // 2) ** 2
                shape = {"batch": batch, "channels": c, "height": s, "width": s, "kernel": 2,
                         "stride": 2}
                out.append(_record("maxpool2d", dtype, f"vgg16.{name}.b{batch}", shape,
                                   4.0 * n_out, (4 * n_out + n_out) * ITEM[dtype] + 8.0 * n_out,
                                   _time(torch, fn, quick)))
    return out


def layer_kernels(torch: Any, quick: bool) -> list[dict[str, Any]]:
    """The kernels PyTorch runs around cuDNN in a VGG layer: the broadcast bias add after a
    convolution, the bias-gradient reduction, and max pooling's backward (a scatter)."""
    out = []
    for dtype in ("fp32", "bf16"):
        tdt = _torch_dtype(torch, dtype)
        for batch in (2,) if quick else (16, 64):
            for name, c, s in vgg16_pools()[: 2 if quick else None]:
                n = batch * c * s * s
                y = torch.randn(batch, c, s, s, device="cuda", dtype=tdt)
                b = torch.randn(c, device="cuda", dtype=tdt)
                shape = {"elements": n, "channels": c}
                out.append(_record("bias_add", dtype, f"vgg16.{name}.b{batch}", shape,
                                   float(n), 2.0 * n * ITEM[dtype],
                                   _time(torch, lambda y=y, b=b, c=c: y.add_(b.view(1, c, 1, 1)),
                                         quick)))
                out.append(_record("bias_grad", dtype, f"vgg16.{name}.b{batch}", shape,
                                   float(n), n * ITEM[dtype] + 4.0 * c,
                                   _time(torch, lambda y=y: y.sum(dim=(0, 2, 3)), quick)))
                pooled, idx = torch.nn.functional.max_pool2d(y, 2, 2, return_indices=True)
                g = torch.randn_like(pooled)
                bwd = torch.ops.aten.max_pool2d_with_indices_backward
                n_out = pooled.numel()
                pshape = {"batch": batch, "channels": c, "height": s, "width": s, "kernel": 2,
                          "stride": 2}
                out.append(_record(
                    "maxpool2d_bwd", dtype, f"vgg16.{name}.b{batch}", pshape, float(n),
                    (n + n_out) * ITEM[dtype] + 8.0 * n_out,
                    _time(torch, lambda bwd=bwd, g=g, y=y, idx=idx: bwd(
                        g, y, [2, 2], [2, 2], [0, 0], [1, 1], False, idx), quick)))
    return out


def copies_and_launch(torch: Any, quick: bool) -> list[dict[str, Any]]:
    out = []
    for p in range(12, 24 if quick else 31, 3):
        n = 2**p
        for pinned in (True, False):
            host = torch.empty(n // 4, dtype=torch.float32, pin_memory=pinned)
            dev = torch.empty(n // 4, dtype=torch.float32, device="cuda")
            times, _ = _time(torch, lambda dev=dev, host=host: dev.copy_(host), quick,
                             spin=False)
            out.append(make_record("copy_h2d", "fp32", None, f"{n}B",
                                   {"bytes_moved": float(n), "pinned": pinned}, 0.0, float(n),
                                   times))
    one = torch.ones(1, device="cuda")
    per_op = []
    for _ in range(5):
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(2000):
            one.add_(1)
        per_op.append((time.perf_counter() - start) / 2000)
        torch.cuda.synchronize()
    out.append(make_record("launch", "fp32", None, "torch_op.host", {}, 0.0, 0.0, per_op))
    # the same tiny kernel timed on the device alone, back to back: its fixed device cost
    out.append(_record("launch", "fp32", "torch_op.device", {}, 0.0, 0.0,
                       _time(torch, lambda: one.add_(1), quick)))
    out += autograd_host(torch)
    return out


def autograd_host(torch: Any, depth: int = 200) -> list[dict[str, Any]]:
    """Host seconds per op of a chain of `depth` tiny multiplies recorded by autograd, and
    per node of its backward pass (each node launches one multiply): beyond a plain eager
    op, what the autograd engine costs the host in a training step."""
    x = torch.ones(1, device="cuda", requires_grad=True)

    def chain() -> Any:
        y = x
        for _ in range(depth):
            y = y * 1.0001
        return y

    fwd, bwd = [], []
    for rep in range(7):
        torch.cuda.synchronize()
        start = time.perf_counter()
        y = chain()
        middle = time.perf_counter()
        y.backward()
        end = time.perf_counter()
        torch.cuda.synchronize()
        x.grad = None
        if rep >= 2:  # warm-up
            fwd.append((middle - start) / depth)
            bwd.append((end - middle) / depth)
    return [make_record("launch", "fp32", None, "torch_autograd_fwd.host", {}, 0.0, 0.0, fwd),
            make_record("launch", "fp32", None, "torch_autograd_bwd.host", {}, 0.0, 0.0, bwd)]


def measure(quick: bool) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """All records and the software block."""
    import torch

    torch.backends.cudnn.benchmark = True
    records = gemms(torch, quick) + convs(torch, quick) + elementwise(torch, quick)
    records += layer_kernels(torch, quick)
    records += copies_and_launch(torch, quick)
    software = {"torch": torch.__version__, "cuda": torch.version.cuda,
                "cudnn": torch.backends.cudnn.version(), "cudnn_benchmark": True,
                "memory_format": "NCHW (contiguous)",
                "method": "calls queued behind a spin kernel (torch.cuda._sleep) that outlasts "
                          "their enqueueing, CUDA events around the loop (about 2 ms of calls), "
                          "5 times; per-call device seconds; host_s: perf_counter over the "
                          "enqueue loop, per call; copies (synchronous) without the spin; "
                          "eager-op host time over 2000 calls; autograd host time per op and "
                          "per backward node over a chain of 200 multiplies"}
    return records, software


# PyTorch's device properties where this version has them -> the names of provenance.gpu_info
_TORCH_PROPS = {"L2_cache_size": "l2_bytes", "memory_bus_width": "memory_bus_width_bits",
                "clock_rate": "clock_khz", "memory_clock_rate": "memory_clock_khz"}


def device_info(torch: Any) -> dict[str, Any]:
    """The GPU as provenance.gpu_info describes it (so `calibrate` can write a device entry
    from either file): what PyTorch's device properties hold, plus nvidia-smi's readings."""
    props = torch.cuda.get_device_properties(0)
    major, minor = torch.cuda.get_device_capability(0)
    info: dict[str, Any] = {"kind": "gpu", "name": props.name,
                            "sm_count": props.multi_processor_count,
                            "memory_bytes": props.total_memory,
                            "compute_capability": f"{major}.{minor}"}
    read = {ours: int(value) for attr, ours in _TORCH_PROPS.items()
            if isinstance(value := getattr(props, attr, None), int) and value > 0}
    info.update({k: v for k, v in read.items() if not k.endswith("_khz")})
    for khz in ("clock_khz", "memory_clock_khz"):
        if khz in read:
            info[khz.replace("_khz", "_mhz")] = read[khz] / 1000
    info["nvidia_smi"] = nvidia_smi()
    return info

"""Ground truth for leave-one-network-out fitting: PyTorch training and inference step times of a
zoo of networks on one GPU (and a few on its host CPU), with provenance.

Standalone (imports nothing from this repository, so it runs on a machine where the package is
not installed). Run on a machine with torch (torchvision optional) and a CUDA GPU:

    PYTHONUNBUFFERED=1 python3 benchmarks/torch_zoo.py --out-dir OUT [--budget-s 480]

writes OUT/h200-torch-zoo.json (timings), OUT/h200-torch-zoo-profiles.json (torch.profiler
summaries) and OUT/h200-zoo-env.txt (nvidia-smi -q header, lscpu, torch build config); the
prefix is --prefix. Both JSON files are rewritten (atomically) after every configuration, so a
run cut short still leaves what it measured.

Networks: "mlp" 784-1024-1024-10 with ReLU on 28x28 inputs (10 classes), and torchvision's
vgg16, resnet50, alexnet, resnet18, mobilenet_v2, densenet121 (weights=None, 1000 classes,
224x224 inputs, NCHW). Synthetic random inputs and labels already on the device.

mode "train": forward, cross-entropy loss, backward, SGD(lr=1e-4, momentum=0.9).step(),
zero_grad(set_to_none=True), each configuration from the same initial weights (with lr=1e-3
and no reset, VGG16 diverged to NaN weights in an earlier run); mode "infer": forward under
torch.inference_mode() in eval mode.
precision "fp32-strict": no TF32 anywhere; "fp32": PyTorch defaults (cuDNN TF32 on, matmul TF32
off); "bf16": torch.autocast(bfloat16) over the default flags. cudnn.benchmark is False.

Timing, per configuration: one step, then two timed warm-up steps (host clock, synchronised)
give an estimate; then R repeats of k back-to-back steps with device events around each
repeat's loop (k and R chosen so that the timed work is about --target-s seconds); the
per-step time of each repeat is elapsed/k; the record has their median, p10 and p90
(inclusive interpolation over the R values), the host wall time per step of the same loops
(synchronised), and the host issue time per step (loop start until the last step was issued,
before synchronising: a lower bound on host work, the whole of it only while the launch queue
does not fill). Peak memory: torch.cuda.max_memory_allocated / max_memory_reserved since the
configuration began (model weights, optimizer state, inputs and activations).

Batch-1 rows are the host-bound regime (GPU work small against host work). For batch 1 and 32
of each network (train and infer, fp32 and bf16) a torch.profiler run of 3 steps is
summarised: per host op (every CPU-side row of key_averages: aten ops, autograd nodes, CUDA
runtime calls) count and self/total CPU microseconds per step, kernel launches per step
(device-side kernel records, and runtime launch calls), memcpy/memset per step, kernel time
per step and the 25 most costly kernels. Profiler overhead inflates the host times.

CPU (the host, oneDNN): mlp train+infer at batch 1, 32, 256; resnet18 and resnet50 infer at
batch 1 and 8, train at batch 8; fp32; torch.set_num_threads(1) and all usable CPUs.

--budget-s bounds the whole run: a configuration that would not end inside the budget is
recorded with status "skipped_budget" and not run; CUDA out of memory gives status
"out_of_memory"; any other exception "error" (with its message). A step estimated over
--max-step-s seconds is "skipped_slow".
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

try:
    import torchvision
except ImportError:  # the script still runs the MLP without it
    torchvision = None

SCHEMA = "simulator.torch-zoo/1"
PROFILE_SCHEMA = "simulator.torch-zoo-profile/1"
PRECISIONS = ("fp32-strict", "fp32", "bf16")
_TF32 = {"fp32-strict": (False, False), "fp32": (True, False), "bf16": (True, False)}
GPU_MODELS = ("mlp", "resnet50", "vgg16", "alexnet", "resnet18", "mobilenet_v2")
LATE_GPU_MODELS = ("densenet121",)  # after the CPU part: only if time allows
TRAIN_BATCHES = (1, 8, 32, 128)
INFER_BATCHES = (1, 8, 32, 128, 256)
PROFILE_BATCHES = (1, 32)
PROFILE_PRECISIONS = ("fp32", "bf16")
PROFILE_STEPS = 3
CPU_CONFIGS = (
    [("mlp", mode, b) for mode in ("train", "infer") for b in (1, 32, 256)]
    + [(m, "infer", b) for m in ("resnet18", "resnet50") for b in (1, 8)]
    + [(m, "train", 8) for m in ("resnet18", "resnet50")]
)
_SIMD = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512_bf16", "avx512_fp16",
         "avx_vnni", "amx_bf16", "amx_tile")
_LAUNCH_CALLS = ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cuLaunchKernelEx",
                 "cudaLaunchCooperativeKernel", "cudaGraphLaunch")


# ---------------------------------------------------------------- provenance

def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return ""


def _sh(args: list[str], timeout: float = 30) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                              check=False).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unavailable: {exc}"


def cpu_info() -> dict[str, Any]:
    """Host CPU: model name, physical cores, usable logical CPUs, memory, SIMD flags."""
    name, flags, cores, physical = platform.processor() or platform.machine(), [], set(), ""
    for line in _read("/proc/cpuinfo").splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "model name":
            name = value
        elif key == "physical id":
            physical = value
        elif key == "core id":
            cores.add((physical, value))
        elif key == "flags" and not flags:
            flags = [f for f in _SIMD if f in value.split()]
    logical = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info: dict[str, Any] = {"kind": "cpu", "name": name, "cores": len(cores) or logical,
                            "logical_cpus": logical, "simd": flags, "machine": platform.machine()}
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            info["memory_bytes"] = int(line.split()[1]) * 1024
    return info


def gpu_info() -> dict[str, Any] | None:
    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    info: dict[str, Any] = {
        "kind": "gpu",
        "name": props.name,
        "sm_count": props.multi_processor_count,
        "memory_bytes": int(props.total_memory),
        "compute_capability": f"{props.major}.{props.minor}",
    }
    l2 = getattr(props, "L2_cache_size", None)
    if l2:
        info["l2_bytes"] = int(l2)
    fields = ("name", "driver_version", "clocks.max.sm", "clocks.max.memory", "clocks.sm",
              "clocks.mem", "power.limit", "memory.total", "persistence_mode", "compute_mode")
    out = _sh(["nvidia-smi", f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits",
               "-i", "0"])
    values = [v.strip() for v in out.strip().splitlines()[0].split(",")] if out.strip() else []
    if len(values) == len(fields) and not out.startswith("unavailable"):
        info["nvidia_smi"] = dict(zip(fields, values, strict=True))
        info["driver"] = info["nvidia_smi"]["driver_version"]
    return info


def read_flags() -> dict[str, Any]:
    flags: dict[str, Any] = {
        "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
        "matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
    }
    try:
        flags["float32_matmul_precision"] = torch.get_float32_matmul_precision()
    except RuntimeError as exc:
        flags["float32_matmul_precision"] = f"unreadable: {exc}"
    return flags


def provenance(command: str, schema: str) -> dict[str, Any]:
    gpu = gpu_info()
    device: dict[str, Any] = dict(gpu) if gpu else {"kind": "cpu", "name": cpu_info()["name"]}
    device["host"] = cpu_info()
    software = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": getattr(torchvision, "__version__", None),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "cudnn_benchmark": False,
        "default_flags": read_flags(),
        "default_num_threads": torch.get_num_threads(),
        "memory_format": "NCHW (contiguous)",
        "optimizer": "torch.optim.SGD(lr=1e-4, momentum=0.9), foreach default",
        "weights": "weights=None init; every configuration starts from the same initial weights",
        "loss": "cross_entropy",
        "zero_grad": "set_to_none=True",
        "inference": "model.eval() + torch.inference_mode()",
        "autocast": "torch.autocast(device_type, dtype=torch.bfloat16) for precision bf16",
        "platform": platform.platform(),
    }
    env = {k: os.environ[k] for k in ("CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS",
                                      "PYTORCH_CUDA_ALLOC_CONF", "CUDA_LAUNCH_BLOCKING")
           if k in os.environ}
    if env:
        software["env"] = env
    return {"schema": schema, "date": utc_now(), "command": command, "device": device,
            "software": software, "records": []}


def write_env_log(path: Path) -> None:
    smi_q = _sh(["nvidia-smi", "-q"]).splitlines()
    parts = [
        f"# date {utc_now()}",
        "# nvidia-smi -q (first 60 lines)", "\n".join(smi_q[:60]),
        "# nvidia-smi", _sh(["nvidia-smi"]),
        "# lscpu", _sh(["lscpu"]),
        "# uname -a", _sh(["uname", "-a"]),
        "# torch.__config__.show()", torch.__config__.show(),
        "# torch.__config__.parallel_info()", torch.__config__.parallel_info(),
    ]
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")


def write_json_atomic(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# ---------------------------------------------------------------- models and steps

def build_model(name: str) -> tuple[torch.nn.Module, tuple[int, ...], int]:
    """The module, the shape of one input sample and the number of classes."""
    if name == "mlp":
        model = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(784, 1024), torch.nn.ReLU(),
            torch.nn.Linear(1024, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 10))
        return model, (1, 28, 28), 10
    if name == "tinycnn":  # only to test this script quickly (conv, batch norm, pooling)
        model = torch.nn.Sequential(
            torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
            torch.nn.MaxPool2d(2), torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(32, 1000))
        return model, (3, 32, 32), 1000
    if torchvision is None:
        raise ModuleNotFoundError(f"torchvision is needed for {name}")
    return getattr(torchvision.models, name)(weights=None, num_classes=1000), (3, 224, 224), 1000


def remember_weights(model: torch.nn.Module) -> None:
    """Keep a host copy of the initial weights (host: it stays out of the GPU memory peaks)."""
    model._zoo_initial = {k: v.detach().to("cpu", copy=True)  # type: ignore[assignment]
                          for k, v in model.state_dict().items()}


def reset_weights(model: torch.nn.Module) -> None:
    """Back to the initial weights, so that no configuration runs on diverged (NaN) weights."""
    initial = getattr(model, "_zoo_initial", None)
    if initial is not None:
        with torch.no_grad():
            model.load_state_dict(initial)


def set_precision(precision: str) -> dict[str, Any]:
    cudnn_tf32, matmul_tf32 = _TF32[precision]
    torch.backends.cudnn.allow_tf32 = cudnn_tf32
    torch.backends.cuda.matmul.allow_tf32 = matmul_tf32
    return read_flags()


def make_step(model: torch.nn.Module, sample: tuple[int, ...], classes: int, mode: str,
              precision: str, batch: int, device: str) -> tuple[Callable[[], None], dict]:
    """One step on fixed random data on `device`; the dict holds the last loss."""
    dev_type = torch.device(device).type
    reset_weights(model)
    x = torch.randn(batch, *sample, device=device)
    y = torch.randint(0, classes, (batch,), device=device)
    state: dict[str, Any] = {"loss": None}

    def amp() -> contextlib.AbstractContextManager:
        if precision == "bf16":
            return torch.autocast(device_type=dev_type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    if mode == "infer":
        model.eval()

        def infer() -> None:
            with torch.inference_mode(), amp():
                state["loss"] = model(x)

        return infer, state
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)

    def train() -> None:
        with amp():
            loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        state["loss"] = loss.detach()

    return train, state


def _sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def quantile_summary(values: list[float]) -> dict[str, float]:
    med = statistics.median(values)
    if len(values) < 2:
        return {"median_s": med, "p10_s": med, "p90_s": med}
    q = statistics.quantiles(values, n=10, method="inclusive")
    return {"median_s": med, "p10_s": min(q[0], med), "p90_s": max(q[-1], med)}


def plan_repeats(est: float, target_s: float, max_reps: int, min_reps: int) -> tuple[int, int]:
    """(steps per repeat, repeats) so that the timed work is about target_s."""
    if est * max_reps >= target_s:
        return 1, max(min_reps, min(max_reps, int(target_s / max(est, 1e-9))))
    k = int(target_s / max_reps / max(est, 1e-9))
    return max(1, min(k, 400)), max_reps


def time_config(step: Callable[[], None], device: str, est: float, target_s: float,
                max_reps: int, min_reps: int) -> dict[str, Any]:
    """Per-step seconds of R repeats of k back-to-back steps (device events on CUDA)."""
    cuda = torch.device(device).type == "cuda"
    k, reps = plan_repeats(est, target_s, max_reps, min_reps)
    dev_times, walls, issues = [], [], []
    for _ in range(reps):
        _sync(device)
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
        t0 = time.perf_counter()
        for _ in range(k):
            step()
        t_issue = time.perf_counter()
        if cuda:
            end.record()
        _sync(device)
        t_wall = time.perf_counter()
        walls.append((t_wall - t0) / k)
        issues.append((t_issue - t0) / k)
        if cuda:
            dev_times.append(start.elapsed_time(end) / 1e3 / k)
    times = dev_times if cuda else walls
    out: dict[str, Any] = quantile_summary(times)
    out.update(
        reps=reps, steps_per_rep=k, times_s=[float(f"{t:.6g}") for t in times],
        timer="cuda_events" if cuda else "perf_counter",
        wall_median_s=statistics.median(walls), issue_median_s=statistics.median(issues),
    )
    return out


def _error_text(exc: BaseException) -> str:
    """The exception's type and the first line of its message (300 characters at most)."""
    first_line = str(exc).splitlines()[0][:300] if str(exc) else ""
    return f"{type(exc).__name__}: {first_line}"


def run_config(model: torch.nn.Module, spec: dict[str, Any], device: str, args: argparse.Namespace,
               deadline: float) -> dict[str, Any]:
    """Time one (mode, batch, precision) of a built model; never raises."""
    cuda = torch.device(device).type == "cuda"
    record = dict(spec)
    record["status"] = "error"
    try:
        if cuda:
            record["flags"] = set_precision(spec["precision"])
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        step, state = make_step(model, spec["sample_shape"], spec["classes"], spec["mode"],
                                spec["precision"], spec["batch"], device)
        step()  # first step: lazy initialisation, handles, kernel selection
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(args.warmup - 1):
            step()
        _sync(device)
        est = (time.perf_counter() - t0) / max(1, args.warmup - 1)
        record["warmup_steps"] = args.warmup
        record["estimate_s"] = est
        if est > args.max_step_s:
            record["status"] = "skipped_slow"
            return record
        _, reps = plan_repeats(est, args.target_s, args.max_reps, args.min_reps)
        if time.perf_counter() + est * max(reps, 1) * 1.2 + 0.5 > deadline:
            record["status"] = "skipped_budget"
            return record
        record.update(time_config(step, device, est, args.target_s, args.max_reps,
                                  args.min_reps))
        loss = state["loss"]
        record["output_finite"] = bool(torch.isfinite(loss.float()).all().item())
        if cuda:
            record["max_memory_allocated_bytes"] = int(torch.cuda.max_memory_allocated())
            record["max_memory_reserved_bytes"] = int(torch.cuda.max_memory_reserved())
        record["status"] = "ok"
    except torch.cuda.OutOfMemoryError as exc:
        record["status"] = "out_of_memory"
        record["error"] = str(exc).splitlines()[0][:300]
    except Exception as exc:  # noqa: BLE001 - recorded, the sweep goes on
        record["status"] = "error"
        record["error"] = _error_text(exc)
        traceback.print_exc()
    finally:
        if cuda:
            torch.cuda.synchronize()
    return record


def profile_config(model: torch.nn.Module, spec: dict[str, Any], device: str) -> dict[str, Any]:
    """torch.profiler summary of PROFILE_STEPS steps after warm-up; never raises."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    cuda = torch.device(device).type == "cuda"
    record = dict(spec)
    record["status"] = "error"
    try:
        if cuda:
            record["flags"] = set_precision(spec["precision"])
            torch.cuda.empty_cache()
        step, _ = make_step(model, spec["sample_shape"], spec["classes"], spec["mode"],
                            spec["precision"], spec["batch"], device)
        for _ in range(3):
            step()
        _sync(device)
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        with profile(activities=activities) as prof:
            t0 = time.perf_counter()
            for _ in range(PROFILE_STEPS):
                step()
            _sync(device)
            wall = (time.perf_counter() - t0) / PROFILE_STEPS
        n = PROFILE_STEPS
        ops: dict[str, dict[str, float]] = {}
        for avg in prof.key_averages():
            if getattr(avg, "device_type", DeviceType.CPU) != DeviceType.CPU:
                continue
            if avg.count == 0:
                continue
            ops[avg.key[:160]] = {
                "count": round(avg.count / n, 3),
                "self_cpu_us": round(avg.self_cpu_time_total / n, 2),
                "cpu_total_us": round(avg.cpu_time_total / n, 2),
            }
        kernels: dict[str, list[float]] = {}
        kernel_count = memcpy = memset = 0
        kernel_us = 0.0
        for ev in prof.events():
            if getattr(ev, "device_type", DeviceType.CPU) != DeviceType.CUDA:
                continue
            dur = float(ev.time_range.elapsed_us())
            if ev.name.startswith("Memcpy"):
                memcpy += 1
            elif ev.name.startswith("Memset"):
                memset += 1
            else:
                kernel_count += 1
                kernel_us += dur
                entry = kernels.setdefault(ev.name[:200], [0, 0.0])
                entry[0] += 1
                entry[1] += dur
        top = sorted(kernels.items(), key=lambda kv: -kv[1][1])[:25]
        launch_calls = sum(v["count"] for k, v in ops.items() if k in _LAUNCH_CALLS)
        aten = {k: v for k, v in ops.items() if k.startswith("aten::")}
        record.update(
            steps=n,
            wall_per_step_s=wall,
            host_self_cpu_us_per_step=round(sum(v["self_cpu_us"] for v in ops.values()), 2),
            aten_self_cpu_us_per_step=round(sum(v["self_cpu_us"] for v in aten.values()), 2),
            aten_calls_per_step=round(sum(v["count"] for v in aten.values()), 2),
            kernel_launches_per_step=round(kernel_count / n, 2),
            runtime_launch_calls_per_step=round(launch_calls, 2),
            memcpy_per_step=round(memcpy / n, 2),
            memset_per_step=round(memset / n, 2),
            kernel_time_us_per_step=round(kernel_us / n, 2),
            ops_per_step=ops,
            top_kernels_per_step={k: {"count": round(c / n, 2), "us": round(t / n, 2)}
                                  for k, (c, t) in top},
            status="ok",
        )
    except torch.cuda.OutOfMemoryError as exc:
        record["status"] = "out_of_memory"
        record["error"] = str(exc).splitlines()[0][:300]
    except Exception as exc:  # noqa: BLE001
        record["error"] = _error_text(exc)
        traceback.print_exc()
    return record


# ---------------------------------------------------------------- sweeps

def gpu_specs(name: str, sample: tuple[int, ...], classes: int, device: str) -> list[dict]:
    out = []
    for mode, batches in (("train", TRAIN_BATCHES), ("infer", INFER_BATCHES)):
        for precision in PRECISIONS:
            for batch in batches:
                out.append(_spec(name, mode, batch, precision, "gpu", None, sample, classes,
                                 device))
    return out


def _spec(name: str, mode: str, batch: int, precision: str, kind: str, threads: int | None,
          sample: tuple[int, ...], classes: int, device: str) -> dict[str, Any]:
    return {"model": name, "mode": mode, "batch": batch, "precision": precision, "device": kind,
            "threads": threads, "input": "device" if kind == "gpu" else "host",
            "torch_device": device, "sample_shape": list(sample), "classes": classes,
            "cudnn_benchmark": bool(torch.backends.cudnn.benchmark)}


class Sweep:
    def __init__(self, args: argparse.Namespace, command: str) -> None:
        self.args = args
        self.t_start = time.perf_counter()
        self.deadline = self.t_start + args.budget_s
        out = Path(args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.path = out / f"{args.prefix}-torch-zoo.json"
        self.profile_path = out / f"{args.prefix}-torch-zoo-profiles.json"
        self.doc = provenance(command, SCHEMA)
        self.doc["budget_s"] = args.budget_s
        self.profiles = provenance(command, PROFILE_SCHEMA)
        self.profiles["records"] = []
        self.flush()

    def flush(self) -> None:
        self.doc["elapsed_s"] = round(time.perf_counter() - self.t_start, 1)
        write_json_atomic(self.path, self.doc)
        write_json_atomic(self.profile_path, self.profiles)

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def log(self, rec: dict[str, Any], t0: float) -> None:
        if rec.get("status") == "ok" and "median_s" in rec:
            msg = (f"{rec['median_s'] * 1e3:9.3f} ms  [p10 {rec['p10_s'] * 1e3:.3f}, "
                   f"p90 {rec['p90_s'] * 1e3:.3f}] x{rec['reps']}x{rec['steps_per_rep']} "
                   f"issue {rec['issue_median_s'] * 1e3:.3f} ms")
            if "max_memory_allocated_bytes" in rec:
                msg += f" mem {rec['max_memory_allocated_bytes'] / 2**30:.2f} GiB"
        elif rec.get("status") == "ok":
            msg = (f"profile: {rec['kernel_launches_per_step']} kernels/step, host self "
                   f"{rec['host_self_cpu_us_per_step']:.0f} us/step, kernels "
                   f"{rec['kernel_time_us_per_step']:.0f} us/step")
        else:
            msg = f"{rec.get('status')} {rec.get('error', '')}"
        thr = f" t{rec['threads']}" if rec.get("threads") else ""
        print(f"[{time.perf_counter() - self.t_start:6.1f}s] {rec['device']} {rec['model']} "
              f"{rec['mode']} b{rec['batch']} {rec['precision']}{thr}: {msg} "
              f"({time.perf_counter() - t0:.1f} s)", flush=True)

    def skipped(self, spec: dict[str, Any], target: list) -> None:
        rec = dict(spec)
        rec["status"] = "skipped_budget"
        target.append(rec)

    def gpu_model(self, name: str, reserve_s: float) -> None:
        device = self.args.gpu_device
        try:
            model, sample, classes = build_model(name)
            model = model.to(device)
            remember_weights(model)
        except Exception as exc:  # noqa: BLE001
            print(f"{name}: cannot build: {exc}", flush=True)
            self.doc["records"].append({"model": name, "device": "gpu", "status": "error",
                                        "error": f"build: {type(exc).__name__}: {exc}"[:300]})
            self.flush()
            return
        specs = gpu_specs(name, sample, classes, device)
        for spec in specs:
            t0 = time.perf_counter()
            if self.left() - reserve_s <= 0:
                self.skipped(spec, self.doc["records"])
                continue
            rec = run_config(model, spec, device, self.args, self.deadline - reserve_s)
            self.doc["records"].append(rec)
            self.log(rec, t0)
            self.flush()
        if not self.args.no_profile:
            for mode in ("train", "infer"):
                for precision in PROFILE_PRECISIONS:
                    for batch in PROFILE_BATCHES:
                        spec = _spec(name, mode, batch, precision, "gpu", None, sample, classes,
                                     device)
                        t0 = time.perf_counter()
                        if self.left() - reserve_s <= self.args.profile_min_s:
                            self.skipped(spec, self.profiles["records"])
                            continue
                        rec = profile_config(model, spec, device)
                        self.profiles["records"].append(rec)
                        self.log(rec, t0)
                        self.flush()
        del model
        if torch.device(device).type == "cuda":
            torch.cuda.empty_cache()

    def cpu_part(self, reserve_s: float) -> None:
        all_cpus = cpu_info()["logical_cpus"] or os.cpu_count() or 1
        saved = torch.get_num_threads()
        built: dict[str, tuple[torch.nn.Module, tuple[int, ...], int] | None] = {}
        try:
            for threads in (1, all_cpus):
                torch.set_num_threads(threads)
                for name, mode, batch in CPU_CONFIGS:
                    t0 = time.perf_counter()
                    if name not in built:
                        try:
                            built[name] = build_model(name)
                            remember_weights(built[name][0])
                        except Exception as exc:  # noqa: BLE001
                            print(f"cpu {name}: cannot build: {exc}", flush=True)
                            built[name] = None
                            self.doc["records"].append(
                                {"model": name, "device": "cpu", "status": "error",
                                 "error": f"build: {type(exc).__name__}: {exc}"[:300]})
                            self.flush()
                    if built[name] is None:
                        continue
                    model, sample, classes = built[name]
                    spec = _spec(name, mode, batch, "fp32", "cpu", torch.get_num_threads(),
                                 sample, classes, "cpu")
                    spec["threads_requested"] = threads
                    if self.left() - reserve_s <= 0:
                        self.skipped(spec, self.doc["records"])
                        continue
                    rec = run_config(model, spec, "cpu", self.cpu_args, self.deadline - reserve_s)
                    self.doc["records"].append(rec)
                    self.log(rec, t0)
                    self.flush()
        finally:
            torch.set_num_threads(saved)

    def run(self) -> None:
        args = self.args
        gpu_models = [m for m in args.models if m not in LATE_GPU_MODELS]
        late = [m for m in args.models if m in LATE_GPU_MODELS]
        self.cpu_args = argparse.Namespace(**vars(args))
        self.cpu_args.target_s = args.cpu_target_s
        self.cpu_args.max_reps = args.cpu_max_reps
        self.cpu_args.min_reps = 2
        self.cpu_args.warmup = 2
        cpu_reserve = 0.0 if args.no_cpu else args.cpu_reserve_s
        for name in gpu_models:
            self.gpu_model(name, cpu_reserve)
        if not args.no_cpu:
            self.cpu_part(0.0)
        for name in late:
            self.gpu_model(name, 0.0)
        self.doc["finished"] = utc_now()
        self.flush()


def summary_table(doc: dict[str, Any]) -> str:
    lines = ["model         mode  b    prec         dev  thr   median_ms   p10     p90   status"]
    for r in doc["records"]:
        med = r.get("median_s")
        lines.append(
            f"{r['model']:<13} {r.get('mode', ''):<5} {r.get('batch', ''):<4} "
            f"{r.get('precision', ''):<12} {r['device']:<4} {r.get('threads') or ''!s:<4} "
            + (f"{med * 1e3:10.3f} {r['p10_s'] * 1e3:7.3f} {r['p90_s'] * 1e3:7.3f}"
               if med else f"{'':26}")
            + f"  {r.get('status')}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--prefix", default="h200")
    parser.add_argument("--budget-s", type=float, default=480.0)
    parser.add_argument("--cpu-reserve-s", type=float, default=75.0,
                        help="seconds kept for the CPU part while the main GPU models run")
    parser.add_argument("--models", nargs="+", default=list(GPU_MODELS + LATE_GPU_MODELS))
    parser.add_argument("--warmup", type=int, default=4, help="warm-up steps (>= 2)")
    parser.add_argument("--target-s", type=float, default=0.6, help="timed seconds per config")
    parser.add_argument("--max-reps", type=int, default=9)
    parser.add_argument("--min-reps", type=int, default=3)
    parser.add_argument("--cpu-target-s", type=float, default=0.5)
    parser.add_argument("--cpu-max-reps", type=int, default=5)
    parser.add_argument("--max-step-s", type=float, default=3.0)
    parser.add_argument("--profile-min-s", type=float, default=2.0)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--no-cpu", action="store_true")
    parser.add_argument("--no-env-log", action="store_true")
    parser.add_argument("--gpu-device", default="cuda",
                        help="torch device for the 'gpu' sweep (cpu only to test this script)")
    parser.add_argument("--train-batches", type=int, nargs="+", default=None)
    parser.add_argument("--infer-batches", type=int, nargs="+", default=None)
    parser.add_argument("--cpu-configs", default=None,
                        help="test hook: 'model:mode:batch,...' replaces the CPU list")
    args = parser.parse_args(argv)
    args.warmup = max(2, args.warmup)
    global TRAIN_BATCHES, INFER_BATCHES, CPU_CONFIGS
    if args.train_batches:
        TRAIN_BATCHES = tuple(args.train_batches)
    if args.infer_batches:
        INFER_BATCHES = tuple(args.infer_batches)
    if args.cpu_configs:
        CPU_CONFIGS = [(m, mo, int(b)) for m, mo, b in
                       (c.split(":") for c in args.cpu_configs.split(","))]
    if args.gpu_device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device: use --gpu-device cpu to test the script", file=sys.stderr)
        return 2
    torch.backends.cudnn.benchmark = False
    torch.manual_seed(0)
    command = " ".join(["python3"] + [sys.argv[0]] + (argv if argv is not None else sys.argv[1:]))
    if not args.no_env_log:
        Path(args.out_dir).mkdir(parents=True, exist_ok=True)
        write_env_log(Path(args.out_dir) / f"{args.prefix}-zoo-env.txt")
    sweep = Sweep(args, command)
    print(f"device {sweep.doc['device'].get('name')} torch {torch.__version__} "
          f"torchvision {sweep.doc['software']['torchvision']} budget {args.budget_s} s",
          flush=True)
    try:
        sweep.run()
    finally:
        sweep.flush()
        print(summary_table(sweep.doc), flush=True)
        counts: dict[str, int] = {}
        for r in sweep.doc["records"]:
            key = f"{r['device']}:{r['model']}:{r.get('status')}"
            counts[key] = counts.get(key, 0) + 1
        print(json.dumps(counts, sort_keys=True), flush=True)
        print(f"profiles: {sum(r.get('status') == 'ok' for r in sweep.profiles['records'])} ok "
              f"of {len(sweep.profiles['records'])}; elapsed "
              f"{time.perf_counter() - sweep.t_start:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

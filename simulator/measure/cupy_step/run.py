"""The measurement file of the CuPy VGG16 step: every configuration, with its checks.

Holds:
- `SCHEMA` ("simulator.cupy-steps/1") and `NOTES`, the method notes written into the file.
- `StepSettings`: what `benchmarks/cupy_vgg16_step.py` takes on its command line.
- `make_ops(backend)`: `CupyOps` or `NumpyOps`.
- `run_step_benchmark(settings, command)`: the graph check (optional), the kernel self-test
  (CuPy only), a separate fp32 loss check, then each (precision, batch) timed; the JSON
  file is rewritten (atomically) after each configuration.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.measure.cupy_step.checks import check_graph, self_test
from simulator.measure.cupy_step.layout import step_layers
from simulator.measure.cupy_step.model import MOMENTUM, VGGStep
from simulator.measure.cupy_step.reference_ops import NumpyOps
from simulator.measure.cupy_step.timed import loss_check, time_config
from simulator.measure.provenance import cpu_info, gpu_info, gpu_software, numpy_software, utc_now
from simulator.report.atomic import write_json_atomic

SCHEMA = "simulator.cupy-steps/1"
NOTES = [
    ("Activations NHWC; im2col is one kernel per conv (one thread per input element, writing "
     "its 9 taps of the (N*H*W, 9*C) patch matrix, columns ordered (kh, kw, c)); col2im is one "
     "gather kernel per conv (one thread per input element summing its 9 patch gradients)."),
    ("GEMMs via cupy.dot -> cublasGemmEx: fp32 with CUBLAS_COMPUTE_32F (CUPY_TF32 unset: no "
     "TF32), fp16 with fp32 accumulation on tensor cores; transposed operands by cuBLAS flags, "
     "no copies."),
    ("Conv backward-data is the explicit-lowering GEMM grad_cols = grad_out (N*H*W x Cout) @ "
     "W (Cout x 9*Cin), then col2im; the simulator lists this op with the implicit-GEMM dgrad "
     "shape (M=N*H*W, N=Cin, K=9*Cout): same FLOPs, different shape."),
    ("Conv and linear bias gradients are GEMMs with a ones vector (Caffe's way), timed under "
     "the simulator's .bwd_weight.epilogue (conv) or inside .bwd_weight (linear)."),
    ("Linear layers: GEMM then a separate bias-add kernel, both timed under the simulator's "
     "single fcN.fwd op (the simulator assumes the bias fused into the GEMM, as addmm does)."),
    ("Loss: forward is row max, row sum-exp, per-row loss and a mean (about 5 small kernels) "
     "under loss.fwd; backward is one kernel under loss.bwd (the simulator counts 2 and 2)."),
    ("Optimizer: SGD momentum 0.9, no weight decay, one fused elementwise kernel over a flat "
     "fp32 buffer of all 138M parameters (PyTorch's foreach path, which the simulator counts, "
     "launches 3 ops in several chunks). Gradients are overwritten each step (beta=0), so "
     "there is no zero_grad kernel."),
    ("fp16: no GradScaler: loss scaling, unscale and the inf/nan check are skipped (the "
     "simulator's fp16 mode counts 2 extra passes over the fp32 gradients in optimizer.step)."),
    ("Dropout: one kernel that draws a counter-based hash per element and writes the output "
     "and a bool mask (PyTorch's fused philox kernel does the same work)."),
    ("No host-to-device input copy: the batch is on the GPU already (the simulator's "
     "input.h2d is prefetched and overlaps the step, so it is not in its step time either)."),
    ("Timed steps run back to back with a CUDA event between consecutive steps (the host may "
     "run ahead); host_enqueue_s is the host time to issue one step, which shows whether "
     "Python launch overhead could be the limit."),
]


@dataclass(frozen=True)
class StepSettings:
    out: str
    backend: str = "cupy"  # "cupy" or "numpy"
    batches: str = "16,64"  # comma-separated
    precisions: str = "fp32,fp16"  # comma-separated
    image: int = 224
    lr: float = 1e-4
    warmup: int = 3
    steps: int = 10
    check_batch: int = 2  # batch of the separate fp32 loss check (0: skip)
    check_graph: bool = False  # compare the op sequence with the simulator's graph


def make_ops(backend: str) -> NumpyOps:
    """The step's kernels on `backend` ("cupy" imports CuPy; "numpy" is the CPU stand-in)."""
    if backend == "cupy":
        from simulator.measure.cupy_step.cupy_ops import CupyOps

        return CupyOps()
    return NumpyOps()


def dropout_p() -> float:
    """The dropout probability of the step's layers (one value for all)."""
    (p,) = {layer.args["p"] for layer in step_layers() if layer.kind == "dropout"}
    return p


def provenance(ops: NumpyOps, command: str) -> dict[str, Any]:
    if ops.name == "cupy":
        device, software = gpu_info(ops.xp), gpu_software(ops.xp)
    else:
        device, software = cpu_info(), numpy_software()
    return {"schema": SCHEMA, "date": utc_now(), "command": command, "device": device,
            "software": software, "notes": list(NOTES), "records": []}


def _graph_check(doc: dict[str, Any], settings: StepSettings) -> None:
    problems = []
    for precision in settings.precisions.split(","):
        problems += check_graph(2, precision, settings.image)
    doc["graph_check"] = problems or "same op sequence as build_graph(..., 'im2col')"
    print("graph check:", doc["graph_check"], flush=True)


def _kernel_self_test(doc: dict[str, Any], ops: NumpyOps) -> None:
    try:
        doc["kernel_self_test"] = self_test(ops)
    except Exception as exc:  # noqa: BLE001 - report it and time what still runs
        doc["kernel_self_test"] = {"all_ok": False, "error": f"{type(exc).__name__}: {exc}"}
    print("kernel self-test ok:", doc["kernel_self_test"]["all_ok"], flush=True)
    if not doc["kernel_self_test"]["all_ok"]:
        print(doc["kernel_self_test"], flush=True)


def _loss_check(doc: dict[str, Any], ops: NumpyOps, settings: StepSettings) -> None:
    ops.release()
    try:
        check = loss_check(VGGStep(ops, settings.check_batch, "fp32", settings.image,
                                   settings.lr))
    except Exception as exc:  # noqa: BLE001
        check = {"error": f"{type(exc).__name__}: {exc}"}
    check["batch"], check["precision"] = settings.check_batch, "fp32"
    doc["loss_check"] = check
    print("loss check:", check, flush=True)
    ops.release()


def _config_record(ops: NumpyOps, settings: StepSettings, batch: int,
                   precision: str) -> dict[str, Any]:
    try:
        return time_config(ops, batch, precision, settings.image, settings.lr,
                           settings.warmup, settings.steps)
    except Exception as exc:  # noqa: BLE001 - keep the other configurations
        ops.release()
        return {"model": "vgg16", "mode": "train", "batch": batch, "precision": precision,
                "conv_algorithm": "im2col", "error": f"{type(exc).__name__}: {exc}"}


def _print_record(record: dict[str, Any], seconds: float) -> None:
    ms = record.get("median_s", float("nan")) * 1e3
    print(f"vgg16 train b{record['batch']} {record['precision']}: {ms:.2f} ms/step, phases "
          f"{record.get('phases_median_s')}, host "
          f"{record.get('host_enqueue_median_s')}, loss "
          f"{record.get('loss_check', {}).get('losses')} "
          f"({seconds:.1f} s) {record.get('error', '')}", flush=True)


def run_step_benchmark(settings: StepSettings, command: str) -> dict[str, Any]:
    """Write the measurement file `settings.out` and return its document."""
    ops = make_ops(settings.backend)
    doc = provenance(ops, command)
    doc["settings"] = {"image": settings.image, "lr": settings.lr, "momentum": MOMENTUM,
                       "dropout_p": dropout_p(), "warmup": settings.warmup,
                       "steps": settings.steps, "layout": "NHWC"}
    out = Path(settings.out)
    if settings.check_graph:
        _graph_check(doc, settings)
    if ops.name == "cupy":
        _kernel_self_test(doc, ops)
    if settings.check_batch:
        _loss_check(doc, ops, settings)
    write_json_atomic(out, doc)
    for precision in settings.precisions.split(","):
        for batch in (int(b) for b in settings.batches.split(",")):
            t0 = time.perf_counter()
            doc["records"].append(_config_record(ops, settings, batch, precision))
            write_json_atomic(out, doc)
            _print_record(doc["records"][-1], time.perf_counter() - t0)
    return doc

"""Writer of docs/validation.md and docs/figures/validation-*.png from collected results.

The hand-written discussion lives in docs/validation-notes.md and is included verbatim, so
regenerating the numbers never overwrites the reasoning about them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simulator.report.atomic import write_bytes_atomic, write_text_atomic
from simulator.report.validation_report import figure_bytes


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:+.1f}%"


def _share(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.1f}%"


def _ms(x: float | None) -> str:
    return "OOM" if x is None else f"{x * 1e3:.2f}"


def _summary_table(summary: dict[str, dict[str, float]]) -> list[str]:
    lines = ["| op | n | MAPE | median abs error | worst |", "|---|---:|---:|---:|---:|"]
    for name, s in sorted(summary.items(), key=lambda kv: (kv[0] == "all", kv[0])):
        lines.append(f"| {name} | {int(s['n'])} | {s['mape'] * 100:.1f}% | "
                     f"{s['median_abs_error'] * 100:.1f}% | {s['worst'] * 100:.1f}% |")
    return lines


def _kernels(sections: list[dict[str, Any]], figures: Path) -> list[str]:
    lines = ["## 1. Kernels: predicted vs measured", ""]
    if not sections:
        return lines + ["No kernel measurements are committed yet.", ""]
    for sec in sections:
        fig = f"validation-{sec['file'].removesuffix('.json')}.png"
        write_bytes_atomic(figures / fig, figure_bytes(
            sec["rows"], f"{sec['hardware']}: predicted vs measured kernels", "png"))
        files = ", ".join(f"`measurements/{f}`" for f in sec.get("files", (sec["file"],)))
        lines += [f"### {sec['hardware']} ({files}, {sec['origin']} profile)",
                  "", "Profile fitted on all records, predictions of the same records:", ""]
        lines += _summary_table(sec["summary"])
        lines += ["", "Held out: profile fitted on one half (split by a hash of each record), "
                  "errors on the other half:", ""]
        lines += _summary_table(sec["held_out"])
        lines += ["", f"![{sec['hardware']}](figures/{fig})", ""]
    return lines


def _steps(title: str, rows: list[dict[str, Any]], note: str) -> list[str]:
    lines = [title, "", note, ""]
    if not rows:
        return lines + ["Not measured yet.", ""]
    lines += ["| model | mode | batch | precision | measured ms | predicted ms | error |",
              "|---|---|---:|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['mode']} | {r['batch']} | {r['precision']} | "
                     f"{_ms(r['measured_s'])} | {_ms(r['predicted_s'])} | {_pct(r['error'])} |")
    errs = sorted(abs(r["error"]) for r in rows if r["error"] is not None)
    if errs:
        lines += ["", f"Median absolute error {errs[len(errs) // 2] * 100:.1f}% over {len(errs)} "
                  f"configurations; worst {errs[-1] * 100:.1f}%.", ""]
    return lines


def _multi(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["## 3c. Two H200s over NVLink: DDP steps and NCCL all-reduces", "",
             "`measurements/h200x2-ddp-vgg16.json` (`benchmarks/torch_ddp_vgg16.py`) and "
             "`measurements/h200x2-nccl-allreduce.json` (`benchmarks/nccl_allreduce.py`); the "
             "nvlink4 link profile is fitted on the all-reduces of 1 MiB and more.", "",
             "| what | measured ms | predicted ms | error | scaling eff. measured | predicted |",
             "|---|---:|---:|---:|---:|---:|"]

    def eff(x: float | None) -> str:
        return "—" if x is None else f"{x:.3f}"

    for r in rows:
        lines.append(f"| {r['what']} | {r['measured_s'] * 1e3:.3f} | {r['predicted_s'] * 1e3:.3f}"
                     f" | {_pct(r['error'])} | {eff(r['measured_efficiency'])} | "
                     f"{eff(r['predicted_efficiency'])} |")
    return lines + [""]


def _published(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["## 4. Published timings (jcjohnson/cnn-benchmarks, batch 16, forward + backward)", "",
             "cuDNN rows are predicted with implicit-GEMM convolutions, Torch `nn` and CPU rows "
             "with im2col lowering; the optimizer step is excluded, as in the benchmark.", "",
             "| model | hardware | library | profile | published ms | predicted ms | error |",
             "|---|---|---|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['hardware']} | {r['library']} | {r['profile']} | "
                     f"{r['total_s'] * 1e3:.1f} | {_ms(r['predicted_s'])} | {_pct(r['error'])} |")
    return lines + [""]


def _generalisation(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["## 5. Transferring the H100 calibration to other GPUs", "",
             "VGG16 training step, batch 16, fp32: the spec-sheet model (peak rates) against the "
             "default profile (calibrated where measured, otherwise transferred from the "
             "H100).", "",
             "| GPU | profile | spec-sheet ms | default ms | change |", "|---|---|---:|---:|---:|"]
    for r in rows:
        change = None
        if r["spec_sheet_s"] and r["default_s"]:
            change = r["default_s"] / r["spec_sheet_s"] - 1
        lines.append(f"| {r['hardware']} | {r['profile']} | {_ms(r['spec_sheet_s'])} | "
                     f"{_ms(r['default_s'])} | {_pct(change)} |")
    return lines + [""]


def _zoo(zoo: dict[str, Any]) -> list[str]:
    if not zoo:
        return []
    runs = ", ".join(f"`measurements/{r}`" for r in zoo.get("runs", []))
    lines = ["## 0. PyTorch zoo on the H200, leave one network out", "",
             f"{zoo['rows']} training and inference steps of six networks (batch 1 to 256, "
             "fp32-strict, fp32, bf16, data on the device; each configuration's time the "
             f"median of {len(zoo.get('runs', []))} runs of the zoo: {runs}), each predicted "
             "with a host profile, and convolution and batch-norm rates (section 0b), fitted "
             "without its network (`benchmarks/accuracy.py`). Host-bound: batch 1, and the "
             "MLP at every batch; device: the rest.", "",
             "| network, regime | steps | median error | worst error |", "|---|---:|---:|---:|"]
    for group, stats in zoo["summary"].items():
        lines.append(f"| {group} | {stats['rows']} | {_share(stats['median'])} | "
                     f"{_share(stats['worst'])} |")
    return lines + ["", f"10-90% prediction intervals held out (nested): "
                        f"{_share(zoo['coverage'])} of the measured steps inside.", ""]


def _transformers(data: dict[str, Any]) -> list[str]:
    if not data:
        return []
    lines = ["## 0c. Transformers on the H200, nothing fitted on them", "",
             f"GPT-2 small and medium and BERT-base (`measurements/{data['file']}`, "
             "`benchmarks/torch_transformers.py`: Hugging Face transformers, PyTorch eager, "
             "AdamW, fp32 and bf16 autocast, batch 1 to 32, sequences of 128 to 1,024) "
             "predicted with the catalog's profiles (`benchmarks/accuracy_transformers.py`). "
             "Host-bound: the measured host issue time is at least 90% of the step.", "",
             "| network, precision, regime | steps | MAPE | median | worst |",
             "|---|---:|---:|---:|---:|"]
    for group, s in data["summary"].items():
        lines.append(f"| {group} | {s['rows']} | {_share(s['mape'])} | {_share(s['median'])} "
                     f"| {_share(s['worst'])} |")
    return lines + [""]


def _torchvision(data: dict[str, Any]) -> list[str]:
    if not data:
        return []
    files = ", ".join(f"`measurements/{f}`" for f in data["files"])
    refitted = ", ".join(data["refitted"]) or "none"
    lines = ["## 0d. Torchvision networks nobody fitted, on the H200 (held out)", "",
             "Networks outside the catalog, measured by `benchmarks/torch_zoo.py` (PyTorch "
             "eager, SGD with momentum, batch 1 to 256, fp32-strict, fp32, bf16 autocast, data "
             f"on the device; a configuration in several runs: their median; {files}), "
             "imported through torch.fx (`torchvision:NAME`) and predicted with the catalog's "
             "profiles as they are (`benchmarks/accuracy_torchvision.py`). The host profile is "
             "fitted on catalog networks' steps only; the convolution, batch-norm and pooling "
             "terms on layers timed alone, among them some of these networks' (section 0b): "
             "those "
             f"networks ({refitted}) are predicted with the terms refitted without their "
             "layers. Host-bound: the measured host issue time is at least 90% of the step.",
             "", "| network, mode, precision / regime | steps | MAPE | median | worst |",
             "|---|---:|---:|---:|---:|"]
    for group, s in data["summary"].items():
        lines.append(f"| {group} | {s['rows']} | {_share(s['mape'])} | {_share(s['median'])} "
                     f"| {_share(s['worst'])} |")
    lines.append("")
    for network, why in data["skipped"].items():
        lines.append(f"Not imported, so not predicted: {network} ({why}).")
    return lines + ([""] if data["skipped"] else [])


def _conv_layers(layers: dict[str, Any]) -> list[str]:
    if not layers:
        return []
    lines = ["## 0b. Convolution and batch-norm layers on the H200, by algorithm", "",
             "Every distinct conv and batch-norm layer of ResNet-18/50, VGG16, MobileNetV2 and "
             "AlexNet timed alone at batch 32 and 128 (`measurements/h200-conv-layers.json`, "
             "`benchmarks/torch_conv_layers.py`; device time of the profiled kernels), the "
             "depthwise and batch-norm layers of MNASNet, EfficientNet-B0, ShuffleNetV2 and "
             "ConvNeXt-T (`measurements/h200-conv-layers-extra.json`) and the zoo's batch norm "
             "in eval mode too (`measurements/h200-norm-layers.json`), "
             "predicted with the catalog profile (fitted on all of them by `calibrate-conv`) "
             "and held out: each network's layers with the terms fitted without them (a "
             "layer shared by two networks is held out with either). fp32 convolutions keep "
             "the H100 kernel fit.", "",
             "| algorithm.dtype | passes | median (fitted) | worst (fitted) | median (held out) "
             "| worst (held out) |", "|---|---:|---:|---:|---:|---:|"]
    for key, fitted in layers["fitted"].items():
        held = layers["held_out"].get(key, {})
        lines.append(f"| {key} | {fitted['rows']} | {_share(fitted['median'])} | "
                     f"{_share(fitted['worst'])} | {_share(held.get('median'))} | "
                     f"{_share(held.get('worst'))} |")
    return lines + [""]


def _task_graphs(sections: list[dict[str, Any]], tpu: list[dict[str, Any]]) -> list[str]:
    """Measured task graphs (LU, tiled GEMM) and the TPU against a published throughput."""
    lines = ["## 7. Beyond networks and GPUs: task graphs, and the TPU model", "",
             "Predicted out of sample (nothing fitted to these files): each measured case is "
             "the generator's task graph (`blocked_lu` in blocks of 256, panels; "
             "`tiled_gemm` at the measured tile) on the catalog device, with the measuring "
             "library's profile (`python benchmarks/linalg_tasks.py --compare FILE "
             "--hardware NAME`).", ""]
    for sec in sections:
        doc = sec["doc"]
        load = doc.get("load_average_before_after")
        where = f"; load average {load[0]:.1f} -> {load[1]:.1f} on 2 CPUs" if load else ""
        lines += [f"`measurements/{sec['file']}` on `{sec['hardware']}` "
                  f"({doc['device'].get('name', '?')}, {doc['backend']}, {doc['date'][:10]}"
                  f"{where}):", "",
                  "| case | measured (ms) | predicted (ms) | error | bottleneck |",
                  "|---|---:|---:|---:|---|"]
        for r in sec["rows"]:
            args = ", ".join(f"{k}={v}" for k, v in r["case"].items() if k != "kind")
            lines.append(f"| {r['case']['kind']} {args} | {_ms(r['measured_s'])} | "
                         f"{_ms(r['predicted_s'])} | {_pct(r['error'])} | {r['bottleneck']} |")
        errs = sorted(abs(r["error"]) for r in sec["rows"])
        lines += ["", f"Median absolute error {_share(errs[len(errs) // 2])}, worst "
                      f"{_share(errs[-1])} over {len(errs)} cases.", ""]
    if tpu:
        lines += ["TPU (`accelerators/tpu.py`, spec sheet only), "
                  "`experiments/tpu_resnet50.yaml`:",
                  "", "| scenario | published images/s | simulated | error |",
                  "|---|---:|---:|---:|"]
        lines += [f"| {r['scenario']} | {r['published']:,.0f} | {r['simulated']:,.0f} | "
                  f"{_pct(r['error'])} |" for r in tpu]
        lines += ["", f"Source: {tpu[0]['source']}", ""]
    return lines


def write_doc(out: Path, results: dict[str, Any]) -> None:
    figures = out / "figures"
    lines = ["# Validation", "",
             "Generated by `python -m simulator.validate.doc` from the files in `measurements/`; "
             "do not edit by hand (the discussion comes from `docs/validation-notes.md`).", ""]
    lines += _zoo(results.get("zoo", {}))
    lines += _conv_layers(results.get("conv_layers", {}))
    lines += _transformers(results.get("transformers", {}))
    lines += _torchvision(results.get("torchvision", {}))
    lines += _kernels(results["kernels"], figures)
    lines += _steps("## 2. End to end: VGG16 built from CuPy kernels on the H100",
                    results["cupy_step"], "im2col convolutions, predicted with "
                    "`conv_algorithm=im2col` (`measurements/h100-sxm-cupy-vgg16-step.json`).")
    lines += _steps("## 3. End to end: PyTorch on the H100", results["torch"],
                    "torchvision models, cuDNN, `measurements/h100-sxm-torch-vgg16.json`; "
                    "PyTorch's `fp32` default lets cuDNN use TF32 (see the notes).")
    lines += _steps("## 3b. End to end: PyTorch on the H200 (profile transferred from the H100)",
                    results["torch_h200"], "`measurements/h200-torch-vgg16.json`; the H200 has "
                    "no profile of its own in the catalog (see the notes).")
    lines += _multi(results["multi_device"])
    lines += _published(results["published"])
    lines += _generalisation(results["generalisation"])
    lines += _task_graphs(results.get("task_graphs", []), results.get("tpu", []))
    notes = out / "validation-notes.md"
    if notes.is_file():
        lines += [notes.read_text().rstrip(), ""]
    write_text_atomic(out / "validation.md", "\n".join(lines) + "\n")

"""`python -m simulator.validate.doc`: regenerate docs/validation.md and its figures from
the measurement files committed under measurements/.

Sections: per-kernel validation of each calibrated device, the held-out split (calibrate
on one half, predict the other), end-to-end steps (CuPy-built VGG16 and PyTorch VGG16 on
the H100), published timings of older GPUs and a CPU, and how the H100 calibration
transfers to the other catalog GPUs. Every number is computed here, from the files.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

from hardware_models.catalog_io import catalog_profile, device_names, load_spec, make_device
from simulator.api.predict import predict_full
from simulator.calibrate.measured_ops import load_measurements
from simulator.validate import beyond
from simulator.validate.compare import compare, summarise
from simulator.validate.holdout import held_out_errors

ROOT = Path(__file__).resolve().parents[2]  # the repository (simulator/validate/doc.py)
MEASURED = ROOT / "measurements"
# (files, catalog device they were taken on)
KERNEL_SETS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("h100-sxm-pytorch.json",), "h100-sxm"),
    (("h100-sxm-cupy.json", "h100-sxm-cupy-layer-kernels.json"), "h100-sxm"),
    (("h100-host-numpy.json",), "xeon-spr-16vcpu"),
    (("local-cpu-numpy.json",), "epyc-zen4-2vcpu"),
)
TORCH_PRECISION = {"fp32": "fp32", "fp32-strict": "fp32-strict", "tf32": "tf32", "bf16": "bf16",
                   "fp16": "fp16"}


def _load(name: str) -> dict[str, Any] | None:
    path = MEASURED / name
    return json.loads(path.read_text()) if path.is_file() else None


def kernel_validation() -> list[dict[str, Any]]:
    out = []
    for names, hardware in KERNEL_SETS:
        names = tuple(n for n in names if (MEASURED / n).is_file())
        if not names or hardware not in device_names():
            continue
        records = load_measurements([MEASURED / n for n in names])
        device = make_device(hardware, framework=records[0]["backend"])
        rows = compare(records, device)
        out.append({"file": names[0], "files": names, "hardware": hardware,
                    "origin": device.profile.origin,
                    "rows": rows, "summary": summarise(rows),
                    "held_out": held_out_errors(records, hardware)})
    return out


def _step_time(model: str, hardware: str, batch: int, precision: str, mode: str,
               exclude_update: bool = False, **options: Any) -> float | None:
    pred = predict_full(model, hardware, per_layer_times=True, batch=batch, precision=precision,
                        mode=mode, **options)
    step = pred.result["step_time_s"]
    if step is None:
        return None
    if exclude_update:
        step -= sum(r["time_s"] for r in pred.result["layers"] if r["phase"] == "update")
    return step


def end_to_end(file: str, hardware: str, precision_map: dict[str, str],
               **options: Any) -> list[dict[str, Any]]:
    data = _load(file)
    rows = []
    for rec in (data or {}).get("records", []):
        precision = precision_map.get(rec["precision"])
        if precision is None:
            continue
        predicted = _step_time(rec["model"], hardware, rec["batch"], precision, rec["mode"],
                               **options)
        rows.append({**{k: rec[k] for k in ("model", "mode", "batch", "precision")},
                     "measured_s": rec["median_s"], "predicted_s": predicted,
                     "error": None if predicted is None else predicted / rec["median_s"] - 1})
    return rows


def multi_device() -> list[dict[str, Any]]:
    """DDP steps and NCCL all-reduces on 2 x H200 against predict / predict_collective."""
    from simulator.api.cluster import predict_collective

    rows = []
    for rec in (_load("h200x2-ddp-vgg16.json") or {}).get("records", []):
        pred = predict_full(rec["model"], "h200", devices=2, intra_link="nvlink4",
                            parallel="data", batch=rec["batch"], precision=rec["precision"],
                            mode="train").result
        rows.append({"what": f"DDP vgg16 train b{rec['batch']} {rec['precision']}",
                     "measured_s": rec["median_s"], "predicted_s": pred["step_time_s"],
                     "measured_efficiency": rec["single_device_median_s"] / rec["median_s"],
                     "predicted_efficiency": pred["scaling_efficiency"]})
    for rec in (_load("h200x2-nccl-allreduce.json") or {}).get("records", []):
        result, _ = predict_collective("allreduce", rec["bytes"], make_device("h200"), devices=2,
                                       devices_per_node=2, intra_link="nvlink4", inter_link=None)
        rows.append({"what": f"all-reduce {rec['bytes']:,} B", "measured_s": rec["median_s"],
                     "predicted_s": result["time_s"], "measured_efficiency": None,
                     "predicted_efficiency": None})
    for r in rows:
        r["error"] = r["predicted_s"] / r["measured_s"] - 1
    return rows


def published() -> list[dict[str, Any]]:
    data = _load("published/jcjohnson-cnn-benchmarks.json")
    rows = []
    for rec in (data or {}).get("records", []):
        algorithm = "im2col" if rec["library"] in ("nn", "torch-cpu") else "implicit_gemm"
        predicted = _step_time(rec["model"], rec["hardware"], rec["batch"], "fp32", "train",
                               exclude_update=True, conv_algorithm=algorithm)
        rows.append({**rec, "conv_algorithm": algorithm, "predicted_s": predicted,
                     "error": predicted / rec["total_s"] - 1,
                     "profile": make_device(rec["hardware"]).profile.origin})
    return rows


def generalisation() -> list[dict[str, Any]]:
    rows = []
    for name in device_names():
        spec = load_spec(name)
        if spec.kind != "gpu":
            continue
        sheet = _step_time("vgg16", name, 16, "fp32", "train", spec_sheet=True)
        default = _step_time("vgg16", name, 16, "fp32", "train")
        rows.append({"hardware": name, "spec_sheet_s": sheet, "default_s": default,
                     "profile": make_device(name).profile.origin,
                     "calibrated": catalog_profile(name) is not None})
    return rows


def zoo() -> dict[str, Any]:
    """The H200 PyTorch zoo, every step predicted with its network held out of the host fit
    and of the fit of the convolution and batch-norm terms (as benchmarks/accuracy.py)."""
    from simulator.calibrate.host import (
        held_out,
        interval_coverage,
        median_of_runs,
        step_records,
        summary,
    )

    paths = [MEASURED / name for name in ZOO_RUNS if (MEASURED / name).is_file()]
    if not paths:
        return {}
    records = median_of_runs([step_records(p) for p in paths])
    rows = held_out(records, "h200", "the H200 lease machine", [p.name for p in paths],
                    _layer_data())
    return {"summary": summary(rows), "coverage": interval_coverage(rows), "rows": len(rows),
            "runs": [p.name for p in paths]}


ZOO_RUNS = ("h200-torch-zoo-run1.json", "h200-torch-zoo.json", "h200-run3-torch-zoo.json")


def transformers() -> dict[str, Any]:
    from simulator.validate.transformers import transformer_rows, transformer_summary

    path = MEASURED / "h200-torch-transformers.json"
    if not path.is_file():
        return {}
    return {"summary": transformer_summary(transformer_rows(path)), "file": path.name}


def torchvision_networks() -> dict[str, Any]:
    """Torchvision networks outside the catalog, imported through torch.fx and predicted with
    the catalog's profiles, held out of every fit (simulator/validate/torchvision_zoo.py)."""
    from simulator.validate.torchvision_zoo import (
        ZOO_FILES,
        heldout_records,
        heldout_rows,
        heldout_summary,
    )

    paths = [MEASURED / name for name in ZOO_FILES if (MEASURED / name).is_file()]
    records = heldout_records(paths)
    if not records:
        return {}
    rows, skipped = heldout_rows(records, _layer_data())
    refitted = sorted({r["model"] for r in rows if r["layers_refitted"]})
    return {"summary": heldout_summary(rows), "skipped": skipped, "refitted": refitted,
            "files": [p.name for p in paths if heldout_records([p])]}


def conv_layers() -> dict[str, Any]:
    """Conv and batch-norm layers timed alone on the H200, per algorithm: the catalog profile
    (fitted on all of them) and, per network, a fit without that network's layers."""
    from simulator.calibrate.conv_layers import held_out_layers

    data = _layer_data()
    return {} if data is None else held_out_layers(data, "h200", make_device("h200").profile)


def _layer_data() -> dict[str, Any] | None:
    """The H200's conv-layers files (the zoo's layers, and depthwise and batch-norm layers of
    networks beyond it), merged; None without them."""
    from simulator.calibrate.conv_layers import LAYER_FILES, load_layer_files

    paths = [MEASURED / name for name in LAYER_FILES if (MEASURED / name).is_file()]
    return load_layer_files(paths) if paths else None


def collect() -> dict[str, Any]:
    return {
        "zoo": zoo(),
        "conv_layers": conv_layers(),
        "transformers": transformers(),
        "torchvision": torchvision_networks(),
        "kernels": kernel_validation(),
        "torch": end_to_end("h100-sxm-torch-vgg16.json", "h100-sxm", TORCH_PRECISION),
        "torch_h200": end_to_end("h200-torch-vgg16.json", "h200", TORCH_PRECISION),
        "cupy_step": end_to_end("h100-sxm-cupy-vgg16-step.json", "h100-sxm",
                                {"fp32": "fp32-strict", "fp16": "fp16"}, conv_algorithm="im2col",
                                framework="cupy"),
        "multi_device": multi_device(),
        "published": published(),
        "generalisation": generalisation(),
        "task_graphs": beyond.task_graphs(MEASURED),
        "tpu": beyond.tpu_published(ROOT),
    }


def median_abs(rows: list[dict[str, Any]]) -> float | None:
    errs = [abs(r["error"]) for r in rows if r.get("error") is not None]
    return statistics.median(errs) if errs else None


def main(argv: list[str] | None = None) -> int:
    from simulator.report.validation_doc import write_doc

    out = Path(argv[0]) if argv else ROOT / "docs"
    write_doc(out, collect())
    print(f"wrote {out / 'validation.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Ground truth for the transformer models: PyTorch training and inference steps of GPT-2
small, GPT-2 medium and BERT-base (Hugging Face transformers, random weights from the
configs, no download) on one GPU, with provenance.

Run on a machine with torch, transformers and a CUDA GPU (nothing of this repository is
imported but benchmarks/torch_zoo.py beside it, for its timing and provenance):

    PYTHONUNBUFFERED=1 python3 benchmarks/torch_transformers.py --out-dir OUT [--budget-s 240]

writes OUT/h200-torch-transformers.json (schema simulator.torch-transformers/1), rewritten
atomically after every configuration; with --profile-only, OUT/h200-torch-transformers-profiles.json
(schema simulator.torch-transformers-profile/1): torch.profiler kernel summaries of the
configurations in PROFILED.

Models: GPT2LMHeadModel(GPT2Config()) (124,439,808 parameters, lm_head tied),
GPT2LMHeadModel(GPT2Config(n_embd=1024, n_layer=24, n_head=16)) (354,823,168), and
BertModel(BertConfig()) (109,482,240, with the pooler); attn_implementation "sdpa"
(F.scaled_dot_product_attention: flash attention for bf16, the memory-efficient kernel for
fp32); dropout as in the configs (0.1).
mode "train": GPT-2 forward with labels=input_ids (the library's shifted LM loss), BERT
forward, cross-entropy of the pooled output against random labels over its 768 features;
backward; torch.optim.AdamW(lr=1e-4) step (foreach default); zero_grad(set_to_none=True);
mode "infer": forward in eval mode under torch.inference_mode().
precision "fp32": PyTorch defaults (matmul TF32 off, cuDNN TF32 on); "bf16":
torch.autocast(bfloat16). Inputs: random token ids on the device (batch x seq_len).
Timing as benchmarks/torch_zoo.py's time_config (device events around repeats of
back-to-back steps; median, p10, p90; host issue time per step).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch_zoo as zoo  # beside this file (python puts the script's folder on the path)

SCHEMA = "simulator.torch-transformers/1"
MODELS = ("gpt2", "bert-base", "gpt2-medium")
PRECISIONS = ("fp32", "bf16")
SHAPES = {  # (batch, seq_len) per mode
    "train": ((1, 128), (8, 128), (4, 512), (8, 1024), (16, 512)),
    "infer": ((1, 128), (8, 128), (8, 512), (8, 1024), (32, 512)),
}


def build(name: str) -> tuple[torch.nn.Module, int]:
    """The module and its vocabulary size."""
    import transformers as tf

    if name == "bert-base":
        cfg = tf.BertConfig()
        return tf.BertModel(cfg, add_pooling_layer=True), cfg.vocab_size
    cfg = tf.GPT2Config() if name == "gpt2" else tf.GPT2Config(n_embd=1024, n_layer=24,
                                                               n_head=16)
    return tf.GPT2LMHeadModel(cfg), cfg.vocab_size


def make_step(model: torch.nn.Module, name: str, vocab: int, mode: str, precision: str,
              batch: int, seq: int) -> tuple[Callable[[], None], dict[str, Any]]:
    ids = torch.randint(0, vocab, (batch, seq), device="cuda")
    labels = torch.randint(0, 768, (batch,), device="cuda")
    state: dict[str, Any] = {"loss": None}

    def amp() -> contextlib.AbstractContextManager:
        if precision == "bf16":
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def loss_of() -> torch.Tensor:
        if name == "bert-base":
            pooled = model(input_ids=ids).pooler_output
            return torch.nn.functional.cross_entropy(pooled, labels)
        return model(input_ids=ids, labels=ids).loss

    if mode == "infer":
        model.eval()

        def infer() -> None:
            with torch.inference_mode(), amp():
                out = model(input_ids=ids)
                state["loss"] = out[0]

        return infer, state
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def train() -> None:
        with amp():
            loss = loss_of()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        state["loss"] = loss.detach()

    return train, state


def run_one(model: torch.nn.Module, spec: dict[str, Any], vocab: int, args: argparse.Namespace,
            deadline: float) -> dict[str, Any]:
    record = dict(spec, status="error")
    try:
        record["flags"] = zoo.set_precision(spec["precision"])
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        step, state = make_step(model, spec["model"], vocab, spec["mode"], spec["precision"],
                                spec["batch"], spec["seq_len"])
        step()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(args.warmup - 1):
            step()
        torch.cuda.synchronize()
        est = (time.perf_counter() - t0) / max(1, args.warmup - 1)
        record.update(warmup_steps=args.warmup, estimate_s=est)
        if est > args.max_step_s:
            record["status"] = "skipped_slow"
            return record
        _, reps = zoo.plan_repeats(est, args.target_s, args.max_reps, args.min_reps)
        if time.perf_counter() + est * max(reps, 1) * 1.2 + 0.5 > deadline:
            record["status"] = "skipped_budget"
            return record
        record.update(zoo.time_config(step, "cuda", est, args.target_s, args.max_reps,
                                      args.min_reps))
        record["output_finite"] = bool(torch.isfinite(state["loss"].float()).all().item())
        record["max_memory_allocated_bytes"] = int(torch.cuda.max_memory_allocated())
        record["max_memory_reserved_bytes"] = int(torch.cuda.max_memory_reserved())
        record["status"] = "ok"
    except torch.cuda.OutOfMemoryError as exc:
        record.update(status="out_of_memory", error=str(exc).splitlines()[0][:300])
    except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
        record["error"] = zoo._error_text(exc)
        traceback.print_exc()
    finally:
        torch.cuda.synchronize()
    return record


PROFILED = (("gpt2", "infer", 32, 512), ("gpt2", "train", 8, 1024),
            ("bert-base", "infer", 32, 512), ("gpt2-medium", "train", 16, 512))


def profile_one(model: torch.nn.Module, spec: dict[str, Any], vocab: int) -> dict[str, Any]:
    """torch.profiler over 3 steps after warm-up: kernel time per step, kernels per step and
    the 40 most costly kernels (name, calls and microseconds per step); never raises."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    record = dict(spec, status="error")
    try:
        zoo.set_precision(spec["precision"])
        step, _ = make_step(model, spec["model"], vocab, spec["mode"], spec["precision"],
                            spec["batch"], spec["seq_len"])
        for _ in range(3):
            step()
        torch.cuda.synchronize()
        steps = 3
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(steps):
                step()
            torch.cuda.synchronize()
        kernels: dict[str, list[float]] = {}
        for ev in prof.events():
            if getattr(ev, "device_type", DeviceType.CPU) != DeviceType.CUDA:
                continue
            entry = kernels.setdefault(ev.name[:200], [0, 0.0])
            entry[0] += 1
            entry[1] += float(ev.time_range.elapsed_us())
        top = sorted(kernels.items(), key=lambda kv: -kv[1][1])[:40]
        record.update(
            steps=steps, status="ok",
            kernel_time_us_per_step=round(sum(t for _, t in kernels.values()) / steps, 2),
            kernels_per_step=round(sum(c for c, _ in kernels.values()) / steps, 2),
            top_kernels_per_step={k: {"count": round(c / steps, 2), "us": round(t / steps, 2)}
                                  for k, (c, t) in top})
    except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
        record["error"] = zoo._error_text(exc)
        traceback.print_exc()
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--prefix", default="h200")
    parser.add_argument("--budget-s", type=float, default=240.0)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--target-s", type=float, default=0.5)
    parser.add_argument("--max-reps", type=int, default=7)
    parser.add_argument("--min-reps", type=int, default=3)
    parser.add_argument("--max-step-s", type=float, default=1.5)
    parser.add_argument("--profile-only", action="store_true",
                        help="only the torch.profiler summaries of PROFILED (both precisions)")
    args = parser.parse_args(argv)
    import transformers

    start = time.perf_counter()
    deadline = start + args.budget_s
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    suffix = "-profiles" if args.profile_only else ""
    path = out / f"{args.prefix}-torch-transformers{suffix}.json"
    doc = zoo.provenance(" ".join(["python3", *sys.argv]),
                         SCHEMA.replace("/", "-profile/") if args.profile_only else SCHEMA)
    doc["software"].update(
        transformers=transformers.__version__, attn_implementation="sdpa",
        optimizer="torch.optim.AdamW(lr=1e-4), foreach default",
        loss="GPT-2: the model's shifted LM loss (labels=input_ids); BERT: cross_entropy of "
             "pooler_output against random labels in [0, 768)",
        autocast="torch.autocast('cuda', dtype=torch.bfloat16) for precision bf16")
    doc["software"]["weights"] = "random init from the config (no pretrained weights)"
    doc["software"]["inference"] = "model.eval() + torch.inference_mode()"
    for name in args.models:
        torch.manual_seed(0)
        try:
            model, vocab = build(name)
            model = model.to("cuda")
        except Exception as exc:  # noqa: BLE001 - recorded, the next model goes on
            doc["records"].append({"model": name, "status": "error",
                                   "error": zoo._error_text(exc)})
            traceback.print_exc()
            continue
        params = sum(p.numel() for p in model.parameters())
        if args.profile_only:
            for _, mode, batch, seq in (p for p in PROFILED if p[0] == name):
                for precision in PRECISIONS:
                    spec = {"model": name, "mode": mode, "batch": batch, "seq_len": seq,
                            "precision": precision, "device": "gpu", "input": "device"}
                    doc["records"].append(profile_one(model, spec, vocab))
                    zoo.write_json_atomic(path, doc)
                    print(name, mode, batch, seq, precision, doc["records"][-1]["status"],
                          doc["records"][-1].get("kernel_time_us_per_step"), flush=True)
            del model
            torch.cuda.empty_cache()
            continue
        for mode, shapes in SHAPES.items():
            for batch, seq in shapes:
                if name == "bert-base" and seq > 512:
                    continue
                for precision in PRECISIONS:
                    spec = {"model": name, "mode": mode, "batch": batch, "seq_len": seq,
                            "precision": precision, "device": "gpu", "input": "device",
                            "parameters": params}
                    t0 = time.perf_counter()
                    rec = run_one(model, spec, vocab, args, deadline)
                    doc["records"].append(rec)
                    doc["elapsed_s"] = time.perf_counter() - start
                    zoo.write_json_atomic(path, doc)
                    med = rec.get("median_s")
                    print(f"{name} {mode} b{batch} s{seq} {precision}: {rec['status']} "
                          f"{'' if med is None else f'{med * 1e3:.2f} ms'} "
                          f"({time.perf_counter() - t0:.1f} s)", flush=True)
        del model
        torch.cuda.empty_cache()
    doc["finished"] = zoo.utc_now()
    zoo.write_json_atomic(path, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())

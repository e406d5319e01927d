"""Ground truth for the GEMM alignment rule: matrix products whose dimensions are and are not
multiples of 8 elements, timed alone on one GPU through PyTorch (cuBLAS), with the kernel
each one ran.

Run on a machine with torch and a CUDA GPU (standalone but for benchmarks/torch_zoo.py
beside it, for provenance):

    PYTHONUNBUFFERED=1 python3 benchmarks/torch_gemm_alignment.py --out-dir OUT

writes OUT/h200-gemm-alignment.json (schema simulator.gemm-alignment/1): per product
(m, n, k, dtype, layout) the median, p10 and p90 of the per-call device time (CUDA events
around 20 back-to-back calls, 7 repeats, after 5 warm-up calls) and the kernels one call
launched (torch.profiler). Layout "linear": F.linear(x[m, k], w[n, k]) (y = x w^T, as
nn.Linear and a tied LM head); "matmul": x[m, k] @ w[k, n] (as Hugging Face's Conv1D).
fp32 is without TF32 (PyTorch's default for matmul); bf16 is a bfloat16 product.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch
import torch_zoo as zoo  # beside this file (python puts the script's folder on the path)

SCHEMA = "simulator.gemm-alignment/1"
M = (16384, 4096)
PAIRS = ((768, 50257), (768, 50304), (1024, 50257), (1024, 50304), (768, 2304), (768, 2303),
         (767, 2304), (3072, 768), (3072, 767), (768, 30522), (768, 30528))
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


def kernels_of(fn: Any) -> list[str]:
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    return [ev.name[:160] for ev in prof.events()
            if getattr(ev, "device_type", None) == DeviceType.CUDA]


def time_call(fn: Any, calls: int = 20, reps: int = 7) -> dict[str, float]:
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(calls):
            fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3 / calls)
    return zoo.quantile_summary(times) | {"times_s": [float(f"{t:.6g}") for t in times]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--prefix", default="h200")
    args = parser.parse_args(argv)
    torch.backends.cuda.matmul.allow_tf32 = False
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc = zoo.provenance(" ".join(["python3", *sys.argv]), SCHEMA)
    doc["software"]["matmul"] = "torch.backends.cuda.matmul.allow_tf32 = False"
    path = out / f"{args.prefix}-gemm-alignment.json"
    for m in M:
        for k, n in PAIRS:
            for name, dtype in DTYPES.items():
                x = torch.randn(m, k, device="cuda", dtype=dtype)
                w = torch.randn(n, k, device="cuda", dtype=dtype)
                wt = torch.randn(k, n, device="cuda", dtype=dtype)
                for layout, fn in (("linear", lambda x=x, w=w: torch.nn.functional.linear(x, w)),
                                   ("matmul", lambda x=x, wt=wt: x @ wt)):
                    rec: dict[str, Any] = {"m": m, "n": n, "k": k, "dtype": name,
                                           "layout": layout, "status": "ok"}
                    try:
                        rec.update(time_call(fn))
                        rec["kernels"] = kernels_of(fn)
                        rec["tflops"] = 2 * m * n * k / rec["median_s"] / 1e12
                    except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
                        rec.update(status="error", error=zoo._error_text(exc))
                    doc["records"].append(rec)
                    print(m, n, k, name, layout, rec["status"],
                          f"{rec.get('tflops', 0):.0f} TFLOP/s", rec.get("kernels", [""])[:1],
                          flush=True)
                del x, w, wt
                torch.cuda.empty_cache()
    doc["finished"] = zoo.utc_now()
    zoo.write_json_atomic(path, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One configuration of the CuPy VGG16 step, trained briefly and timed.

Holds:
- `loss_check(model, steps)`: a few training steps on the fixed batch, and whether the loss
  went down (a check that backward is wired right).
- `time_config(ops, batch, precision, image, lr, warmup, steps)`: the record of one
  configuration: the loss check, back-to-back timed steps (median, min, per phase, host
  enqueue time) and one profiled step with a time for every op under its simulator name.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

from simulator.measure.cupy_step.model import VGGStep
from simulator.measure.cupy_step.reference_ops import NumpyOps


def finite(value: float) -> float | str:
    """A loss for JSON: rounded, or its name where it is not finite (nan, inf)."""
    return round(value, 5) if math.isfinite(value) else str(value)


def loss_check(model: VGGStep, steps: int = 5) -> dict[str, Any]:
    losses = [float(model.step()) for _ in range(steps)]
    all_finite = all(math.isfinite(v) for v in losses)
    return {"losses": [finite(v) for v in losses], "lr": model.lr,
            "loss_decreased": bool(all_finite and losses[-1] < losses[0])}


def _run_steps(model: VGGStep, steps: int) -> tuple[Any, list, list[float], Any]:
    """`steps` back-to-back steps: start stamp, (after forward, after backward, end) stamps
    per step, host seconds to issue each step, and the last loss."""
    ops = model.ops
    ops.sync()
    start = ops.stamp()
    rows, host = [], []
    loss = None
    for _ in range(steps):
        t0 = time.perf_counter()
        phases: list = []
        loss = model.step(phases=phases)
        end = ops.stamp()
        host.append(time.perf_counter() - t0)
        rows.append((phases[0], phases[1], end))
    ops.sync()
    return start, rows, host, loss


def _step_times(ops: NumpyOps, start: Any, rows: list) -> dict[str, list[float]]:
    """Seconds of each step and of its phases from the stamps of `_run_steps`."""
    times: dict[str, list[float]] = {"step": [], "forward": [], "backward": [], "update": []}
    prev = start
    for f, b, e in rows:
        times["step"].append(ops.elapsed(prev, e))
        times["forward"].append(ops.elapsed(prev, f))
        times["backward"].append(ops.elapsed(f, b))
        times["update"].append(ops.elapsed(b, e))
        prev = e
    return times


def _timed(model: VGGStep, warmup: int, steps: int) -> tuple[dict[str, Any], list[float]]:
    """Warm-up, then the timed steps' part of the record; and the host times."""
    for _ in range(warmup):
        model.step()
    start, rows, host, loss = _run_steps(model, steps)
    t = _step_times(model.ops, start, rows)
    times = t["step"]
    return {
        "median_s": statistics.median(times), "min_s": min(times), "reps": len(times),
        "warmup_steps": warmup, "times_s": [float(f"{v:.6g}") for v in times],
        "phases_median_s": {k: statistics.median(t[k]) for k in ("forward", "backward",
                                                                  "update")},
        "host_enqueue_median_s": statistics.median(host),
        "final_loss": finite(float(loss)) if loss is not None else None,
    }, host


def _profiled(model: VGGStep, spin_s: float) -> dict[str, Any]:
    """One step with an event after every op, its launches queued behind a spin kernel."""
    ops = model.ops
    ops.sync()
    ops.spin(spin_s)
    marks: list = [("start", ops.stamp())]
    model.step(marks=marks)
    ops.sync()
    op_times = {name: ops.elapsed(marks[i][1], t) for i, (name, t) in enumerate(marks[1:])}
    return {"ops_s": {k: float(f"{v:.6g}") for k, v in op_times.items()},
            "total_s": sum(op_times.values()), "op_count": len(op_times)}


def time_config(ops: NumpyOps, batch: int, precision: str, image: int, lr: float,
                warmup: int, steps: int) -> dict[str, Any]:
    record: dict[str, Any] = {"model": "vgg16", "mode": "train", "batch": batch,
                              "precision": precision, "conv_algorithm": "im2col",
                              "image": image, "backend": ops.name}
    ops.release()
    model = VGGStep(ops, batch, precision, image, lr)
    check = loss_check(model)
    record.update(loss_decreased=check["loss_decreased"], loss_check=check)
    timed, host = _timed(model, warmup, steps)
    record.update(timed)
    record["profiled_step"] = _profiled(model, min(0.5, 2.0 * max(host) + 0.01))
    pool = ops.pool_bytes()
    if pool is not None:
        record["memory_pool_bytes"] = pool
    del model
    ops.release()
    return record

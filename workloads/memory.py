"""Device memory of one step: weights, gradients, optimizer state, saved activations and the
largest transient tensors, the way a framework's caching allocator would hold them.

Training keeps every activation the backward pass needs (torchvision-style in-place ReLU
saves nothing extra; max pooling keeps int64 indices); inference holds one layer's input
and output at a time. CUDA context and library workspaces are not counted.
"""

from __future__ import annotations

import math
from workloads.model_def import ModelDef
from workloads.optimizers import Optimizer
from workloads.precision import Precision
from workloads.resolve import ResolvedLayer


def memory_estimate(layers: list[ResolvedLayer], batch: int, model: ModelDef, prec: Precision,
                    optimizer: Optimizer | None, params: int) -> dict[str, float]:
    """Bytes by category and the peak (`peak_bytes`)."""
    mb = prec.master_bytes
    input_bytes = batch * math.prod(model.input_shape) * model.input_bytes_per_element
    lowp_params = sum(l.cost.params for l in layers if l.cost.lowp) if prec.mixed else 0
    out_bytes = [batch * math.prod(l.cost.out_shape) * prec.act_bytes for l in layers]
    in_bytes = [sum(batch * math.prod(s) for s in l.in_shapes) * prec.act_bytes for l in layers]
    largest_pair = max(i + o for i, o in zip(in_bytes, out_bytes))
    parts = {
        "weights_bytes": float(params * mb),
        "weight_copies_bytes": float(lowp_params * prec.lowp_bytes),
        "input_bytes": float(input_bytes),
    }
    if optimizer is None:
        parts["activations_bytes"] = float(largest_pair)
    else:
        saved = sum(l.cost.saved_elems * prec.act_bytes + l.cost.saved_extra_bytes for l in layers)
        parts["gradients_bytes"] = float(params * mb)
        parts["optimizer_state_bytes"] = float(optimizer.state_per_param * params * mb)
        parts["activations_bytes"] = float(saved)
        parts["transient_bytes"] = float(largest_pair)  # gradient in flight of the largest layer
    parts["peak_bytes"] = float(sum(parts.values()))
    return parts

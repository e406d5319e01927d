"""Device memory of one step as PyTorch's eager mode and caching allocator hold it: each
tensor is allocated when its op runs and freed with its last reference; `peak_bytes` (what
`torch.cuda.max_memory_allocated` reports) is the highest instant, split by what was live.

Held all step: fp32 weights and batch-norm statistics, the input, the optimizer state (steady
state) and cuBLAS's workspaces, one per thread running GEMMs (forward; autograd's device thread
in training). Forward: each output (in-place ReLU and views allocate nothing), pooling indices,
dropout masks, autocast's copies, cuDNN's workspace (`conv_workspace_bytes`); a module's input
lives until the module returns (the caller's frame holds it), which torchvision's module paths
in layer names (`layer1.0.conv1`) show. Training keeps what autograd saves until that layer's
backward; backward adds activation and weight gradients. Inference (`inference_mode`) saves
nothing and autocast caches no cast there (aten/src/ATen/autocast_mode.cpp, cached_cast).
`beside_peak`: the CUDA context (measured) and the allocator's segments (fitted); `fits` needs
the peak plus the context. Facts: measurements/h200-memory-facts.json.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from simulator.core.held_cache import HeldCache
from workloads.model_def import ModelDef
from workloads.optimizers import Optimizer
from workloads.precision import Precision
from workloads.resolve import INPUT, ResolvedLayer

MIB = 1024 * 1024
# PyTorch's default cuBLAS workspace on sm90 (":4096:8"; 8.125 MiB on other GPUs), one per
# (handle, stream), so one per thread; cuBLASLt's CUBLASLT_WORKSPACE_SIZE default, 1024 KiB
# (aten/src/ATen/cuda/CublasHandlePool.cpp)
CUBLAS_WORKSPACE_BYTES = 32 * MIB
CUBLASLT_WORKSPACE_BYTES = 1 * MIB
# device memory in use outside the allocator (the CUDA context with the lazily loaded kernels
# of PyTorch, cuBLAS and cuDNN) after a training and an inference step of each zoo network,
# PyTorch 2.11 + CUDA 13.0 on an H200 (h200-memory-facts.json: context_after_steps; 552 MB
# right after the first tensor, before any library kernel is loaded)
CUDA_CONTEXT_BYTES = 822_935_552
# max_memory_reserved / max_memory_allocated, the median over the H200 zoo: printed by
# `python benchmarks/accuracy_memory.py --fit`; tests/test_memory_model.py checks it is current
RESERVED_PER_ALLOCATED = 1.174
# autograd's saved tensors (tools/autograd/derivatives.yaml): relu_'s derivative is written in
# its result; hardtanh_ (ReLU6) has none of its own and hardtanh's is written in its input,
# so autograd saves a clone of the original input (original_self, gen_variable_type.py)
IN_PLACE = ("relu", "relu6")  # torchvision's ReLU(inplace=True), ReLU6(inplace=True)
SAVES_NOTHING = ("add", "dropout", "flatten")  # add: nothing; dropout: its mask only
VIEWS = ("flatten",)
SAVES_OUTPUT = ("softmax", "tanh")  # their derivatives are written in their results
SAVES_STATISTICS = ("attention", "layernorm")
WINOGRAD_TILE_GROWTH = 36 / 16  # F(4x4, 3x3): a 6x6 tile for every 4x4 tile
# foreach temporaries of one optimizer step, per parameter (torch/optim/adam.py,
# _multi_tensor_adam: exp_avg_sq_sqrt = torch._foreach_sqrt(exp_avg_sqs))
STEP_TEMPORARIES = {"adam": 1, "adamw": 1}
CATEGORIES = ("weights", "weight_copies", "input", "activations", "gradients",
              "optimizer_state", "transient", "workspace")


@dataclass
class _Pool:
    """The bytes the caching allocator hands out, by category, with reference counts."""

    live: dict[int, tuple[float, str]] = field(default_factory=dict)
    refs: dict[int, int] = field(default_factory=dict)
    peak: float = -1.0
    at_peak: dict[str, float] = field(default_factory=dict)
    now: str = ""  # the running instant, "phase:layer"
    where: str = ""  # the instant of the peak
    # bytes live by category, kept as tensors come and go (sizes are whole bytes or quarter
    # bytes, so the running sums are exact and equal a sum over `live` in any order)
    totals: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0.0))
    total: float = 0.0  # the sum of `totals`, kept alike (exact as they are)

    def new(self, nbytes: float, category: str, refs: int = 1) -> int:
        tensor = len(self.refs)
        self.live[tensor], self.refs[tensor] = (float(nbytes), category), refs
        self.totals[category] += float(nbytes)
        self.total += float(nbytes)
        return tensor

    def hold(self, tensor: int, count: int = 1) -> None:
        self.refs[tensor] += count

    def drop(self, tensor: int) -> None:
        self.refs[tensor] -= 1
        if self.refs[tensor] <= 0:
            gone = self.live.pop(tensor, None)
            if gone is not None:
                self.totals[gone[1]] -= gone[0]
                self.total -= gone[0]

    def mark(self, extra: dict[str, float] | None = None) -> None:
        """An instant of the step: live tensors plus the transients of the running kernel
        (the split by category is made only for a new peak)."""
        total = self.total + sum(extra.values()) if extra else self.total
        if total > self.peak:
            now = dict(self.totals)
            for category, nbytes in (extra or {}).items():
                now[category] += nbytes
            self.peak, self.at_peak, self.where = sum(now.values()), now, self.now


@dataclass(frozen=True)
class _Step:
    layers: list[ResolvedLayer]
    batch: int
    model: ModelDef
    prec: Precision
    optimizer: Optimizer | None

    @property
    def train(self) -> bool:
        return self.optimizer is not None

    @property
    def args(self) -> dict[str, dict[str, Any]]:
        return _structure(self).args

    def out_bytes(self, layer: ResolvedLayer) -> float:
        act = self.prec.master_bytes if layer.cost.fp32 else self.prec.act_bytes
        return self.batch * math.prod(layer.cost.out_shape) * act

    def in_bytes(self, layer: ResolvedLayer, i: int = 0) -> float:
        return self.batch * math.prod(layer.in_shapes[i]) * self.prec.act_bytes

    def skipped(self, layer: ResolvedLayer) -> bool:
        """No kernel and no tensor of its own: a view, or dropout in eval mode."""
        return layer.kind in VIEWS or layer.cost.fwd is None or (
            layer.cost.train_only and not self.train)

    def lowp_copy(self, layer: ResolvedLayer) -> float:
        """autocast's low-precision copy of the layer's fp32 parameters."""
        mixed = self.prec.mixed and layer.cost.lowp
        return layer.cost.params * self.prec.lowp_bytes if mixed else 0.0


def _pair(value: Any) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else (int(value[0]), int(value[1]))


def conv_workspace_bytes(layer: ResolvedLayer, args: dict[str, Any], batch: int,
                         prec: Precision, backward: bool = False) -> float:
    """cuDNN's workspace for one convolution call (forward, or backward data and weight).
    On tensor cores (TF32 under PyTorch's default `cudnn.allow_tf32`, or bf16/fp16) cuDNN's
    kernels read NHWC with the channels padded to 16 bytes (4 TF32 or 8 bf16 values): for
    NCHW tensors it writes padded NHWC copies of the input and of the output, and the
    workspace holds both. A stride-1 1x1 convolution is a plain GEMM on NCHW and a grouped
    (depthwise) one runs on the CUDA cores: neither needs them. Without tensor cores the
    backward of a stride-1 3x3 convolution is Winograd's (non-fused, F(4x4, 3x3)), which keeps
    the input and the output gradient as 6x6 tiles of every 4x4 tile: 2.25 times their bytes.
    Explicit im2col lowering holds its patch matrix."""
    work, act = layer.cost.fwd, prec.act_bytes
    if work is not None and work.prologue is not None and work.prologue.kernel == "im2col":
        return work.prologue.act_write * act
    if layer.kind != "conv2d" or int(args.get("groups", 1)) > 1:
        return 0.0
    kernel, stride = _pair(args["kernel"]), _pair(args.get("stride", 1))
    shapes = (layer.in_shapes[0], layer.cost.out_shape)
    if not (prec.mixed or prec.conv_dtype == "tf32"):
        if backward and kernel == (3, 3) and stride == (1, 1):
            return WINOGRAD_TILE_GROWTH * sum(batch * math.prod(s) * act for s in shapes)
        return 0.0
    if kernel == (1, 1) and stride == (1, 1):
        return 0.0
    lanes = 16 // act
    return sum(batch * math.prod(s[1:]) * -(-s[0] // lanes) * lanes * act for s in shapes)


def _held_until(layers: list[ResolvedLayer]) -> dict[tuple[str, str], int]:
    """(producer, consumer) -> the layer index after which the producer's output is let go
    of: the end of the outermost module that the consumer opens (it is the module's first
    layer) and the producer is outside of; else the consumer itself."""
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for i, layer in enumerate(layers):
        parts = layer.name.split(".")
        for prefix in (".".join(parts[:n]) for n in range(1, len(parts))):
            first.setdefault(prefix, i)
            last[prefix] = i
    until = {}
    for i, layer in enumerate(layers):
        parts = layer.name.split(".")
        prefixes = [".".join(parts[:n]) for n in range(1, len(parts))]
        for src in layer.inputs:
            opened = [p for p in prefixes if first[p] == i and not src.startswith(p + ".")]
            until[(src, layer.name)] = last[opened[0]] if opened else i
    return until


class _Structure(NamedTuple):
    """What of a step's memory does not depend on its batch or precision."""

    args: dict[str, dict[str, Any]]  # layer -> its arguments (read, never changed)
    until: dict[tuple[str, str], int]  # `_held_until`
    users: dict[str, list[str]]  # layer -> the layers that read its output


# by the model (held) and its layers' names and inputs: every point of a sweep over batch
# sizes, precisions or devices walks the same layers
_structures = HeldCache(64)


def _structure(step: _Step) -> _Structure:
    key = tuple((layer.name, layer.inputs) for layer in step.layers)
    found: _Structure | None = _structures.get((step.model,), key)
    if found is None:
        users: dict[str, list[str]] = {}
        for layer in step.layers:
            for src in dict.fromkeys(layer.inputs):
                users.setdefault(src, []).append(layer.name)
        found = _Structure({layer.name: layer.args() for layer in step.model.layers},
                           _held_until(step.layers), users)
        _structures.put((step.model,), key, found)
    return found


def _saved(step: _Step, pool: _Pool, layer: ResolvedLayer, ins: list[int], result: int,
           args: dict[str, Any]) -> list[int]:
    """The tensors autograd keeps for the layer's backward, besides new ones it makes."""
    if not step.train or step.skipped(layer) or layer.kind in SAVES_NOTHING:
        return []
    if layer.kind == "relu":
        return [result]
    if layer.kind == "relu6":
        return [pool.new(step.in_bytes(layer), "activations", 0)]  # the clone of its input
    if layer.kind == "adaptive_avgpool2d" and _pair(args["output_size"]) == (1, 1):
        return []  # a mean over H and W, which keeps only the shape
    if layer.kind in SAVES_OUTPUT:
        return [result]
    if layer.kind in SAVES_STATISTICS:  # attention's probabilities (or the log-sum-exp and
        # the output of flash attention), layernorm's mean and 1/std
        stats = pool.new(layer.cost.saved_extra_bytes, "activations", 0)
        flash = args.get("implementation") == "flash"
        return [*ins, *([result] if flash else []), stats]
    return list(ins) if layer.kind in ("matmul", "bmm") else [ins[0]]


def _forward(step: _Step, pool: _Pool, x: int) -> tuple[dict[str, int], dict[str, list[int]]]:
    """The forward pass; returns each layer's output tensor and what each layer saved."""
    layers, prec = step.layers, step.prec
    args, until, users = _structure(step)
    release: dict[int, list[int]] = {}
    out: dict[str, int] = {INPUT: x}
    saved: dict[str, list[int]] = {}
    for i, layer in enumerate(layers):
        pool.now = f"forward:{layer.name}"
        ins, keep, extra = [out[src] for src in layer.inputs], [], {}
        if INPUT in layer.inputs and prec.mixed and layer.cost.lowp:  # autocast's cast
            cast = pool.new(step.in_bytes(layer) * prec.lowp_bytes / prec.act_bytes, "input")
            ins = [cast if t == x else t for t in ins]
            release.setdefault(i, []).append(cast)
        if step.skipped(layer) or layer.kind in IN_PLACE:
            result = ins[0]
        else:
            result = pool.new(step.out_bytes(layer), "activations", 0)
            extra["transient"] = conv_workspace_bytes(layer, args[layer.name], step.batch, prec)
        elements = step.batch * math.prod(layer.cost.out_shape)
        if layer.kind == "maxpool2d" and step.train:
            keep.append(pool.new(8.0 * elements, "activations", 0))  # int64 indices
        elif layer.kind == "maxpool2d":  # computed, then dropped (torch.max_pool2d)
            extra["transient"] = extra.get("transient", 0.0) + 8.0 * elements
        if layer.kind == "dropout" and step.train:
            keep.append(pool.new(elements, "activations", 0))  # the bool mask
        copy = step.lowp_copy(layer)
        if copy and step.train:
            keep.append(pool.new(copy, "weight_copies", 0))
        elif copy:
            extra["weight_copies"] = copy
        keep += _saved(step, pool, layer, ins, result, args[layer.name])
        for t in keep:
            pool.hold(t)
        saved[layer.name] = keep
        for user in users.get(layer.name, ()):
            pool.hold(result)
            release.setdefault(until[(layer.name, user)], []).append(result)
        pool.hold(result, 2 if i == len(layers) - 1 else 1)  # this frame's; the caller's
        pool.mark(extra)
        out[layer.name] = result
        for t in release.pop(i, []) + [result]:
            pool.drop(t)
    return out, saved


def _backward(step: _Step, pool: _Pool, out: dict[str, int], saved: dict[str, list[int]]) -> None:
    """The loss, then each layer in reverse order, as autograd's device thread runs them."""
    last, args = step.layers[-1], step.args
    log_probs = pool.new(step.batch * math.prod(last.cost.out_shape) * 4, "activations")
    pool.mark()
    pool.drop(out[last.name])  # the logits: log_softmax keeps its result, not its input
    grads = {last.name: pool.new(step.out_bytes(last), "transient")}
    pool.drop(log_probs)
    for layer in reversed(step.layers):
        pool.now = f"backward:{layer.name}"
        ins = [src for src in layer.inputs if src != INPUT]
        grad = grads.pop(layer.name, None)
        if grad is None:  # off the loss's path: no backward, nothing kept for it
            for t in saved[layer.name]:
                pool.drop(t)
            continue
        if step.skipped(layer) or layer.kind == "add":  # the gradient passes through
            new = [grad] * len(ins)
            pool.hold(grad, len(ins))
        else:
            new = [pool.new(step.in_bytes(layer, layer.inputs.index(s)), "transient") for s in ins]
            _weight_gradient(step, pool, layer, args[layer.name])
        for t in [grad, *saved[layer.name]]:
            pool.drop(t)
        if step.lowp_copy(layer):  # ToCopyBackward: the bf16 weight gradient beside the fp32
            pool.mark({"transient": step.lowp_copy(layer)})
        for src, t in zip(ins, new, strict=True):
            if src in grads:  # a second gradient of the same tensor is added in place
                pool.drop(t)
            else:
                grads[src] = t


def _weight_gradient(step: _Step, pool: _Pool, layer: ResolvedLayer, args: dict[str, Any]) -> None:
    """The backward kernels' instant: new gradients, cuDNN's workspace; under autocast the
    weight gradient comes in bf16 and is cast to fp32 after (kept from then on)."""
    lowp = step.lowp_copy(layer)
    if layer.cost.params and not lowp:
        pool.new(layer.cost.params * step.prec.master_bytes, "gradients")
    ws = conv_workspace_bytes(layer, args, step.batch, step.prec, backward=True)
    pool.mark({"transient": ws + lowp})
    if lowp:
        pool.new(layer.cost.params * step.prec.master_bytes, "gradients")


def _simulate(layers: list[ResolvedLayer], batch: int, model: ModelDef, prec: Precision,
              optimizer: Optimizer | None, params: int) -> _Pool:
    step, pool = _Step(layers, batch, model, prec, optimizer), _Pool()
    buffers = sum(layer.cost.params for layer in layers if layer.kind == "batchnorm2d")
    pool.new((params + buffers) * prec.master_bytes, "weights")  # + running mean, var
    threads = 2 if step.train else 1
    pool.new(threads * CUBLAS_WORKSPACE_BYTES + CUBLASLT_WORKSPACE_BYTES, "workspace")
    x = pool.new(batch * math.prod(model.shape) * model.input_bytes_per_element, "input")
    if optimizer is not None:
        pool.new(optimizer.state_per_param * params * prec.master_bytes, "optimizer_state")
    out, saved = _forward(step, pool, x)
    if optimizer is None:
        pool.drop(out[layers[-1].name])
        return pool
    _backward(step, pool, out, saved)
    pool.now = "optimizer.step"  # every gradient is live
    pool.mark({"transient": STEP_TEMPORARIES.get(optimizer.name, 0) * params * prec.master_bytes})
    return pool


def memory_estimate(layers: list[ResolvedLayer], batch: int, model: ModelDef, prec: Precision,
                    optimizer: Optimizer | None, params: int) -> dict[str, float]:
    """Bytes by category at the peak (`*_bytes`, summing to `peak_bytes`); `optimizer` None
    is inference."""
    pool = _simulate(layers, batch, model, prec, optimizer, params)
    return {**{f"{k}_bytes": v for k, v in pool.at_peak.items()}, "peak_bytes": pool.peak}


def peak_instant(layers: list[ResolvedLayer], batch: int, model: ModelDef, prec: Precision,
                 optimizer: Optimizer | None, params: int) -> str:
    """Where the peak of `memory_estimate` falls: "forward:LAYER", "backward:LAYER" or
    "optimizer.step"."""
    return _simulate(layers, batch, model, prec, optimizer, params).where


def beside_peak(memory: dict[str, float], gpu: bool = True) -> dict[str, float]:
    """What the device holds beside the allocated peak: the CUDA context (outside the
    allocator; a GPU's only) and the allocator's segments at their peak (`reserved_bytes`,
    fitted)."""
    return {"cuda_context_bytes": float(CUDA_CONTEXT_BYTES if gpu else 0),
            "reserved_bytes": RESERVED_PER_ALLOCATED * memory["peak_bytes"]}


def required_bytes(memory: dict[str, float], gpu: bool = True) -> float:
    """Device memory the step needs: the allocated peak plus, on a GPU, the CUDA context.
    The allocator's cached but unused segments are not needed: before it reports out of
    memory it frees them and retries (release_cached_blocks in
    c10/cuda/CUDACachingAllocator.cpp)."""
    return memory["peak_bytes"] + (CUDA_CONTEXT_BYTES if gpu else 0)


def fits(memory: dict[str, float], capacity_bytes: float, gpu: bool = True) -> bool:
    """Whether a step whose per-device memory is `memory` fits in `capacity_bytes`."""
    return required_bytes(memory, gpu) <= capacity_bytes

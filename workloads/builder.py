"""Builder: a model definition + batch + mode + precision -> OpGraph.

The input batch crosses PCIe on the copy engine unless it already lives on the device
(`input_place`: `device`, `pinned` (default: a DataLoader with pin_memory=True) or
`pageable`). It is prefetched, as such a data loader does: the copy of the next batch
overlaps this step, so it costs time only when it is longer than the step;
`sync_input=True` puts it in front of the first layer instead (latency of one request).
Inference is the forward pass. Training adds the loss, the backward pass in reverse layer
order (backward-data then backward-weight per layer, as autograd issues them), gradient
accumulation where a tensor feeds several layers, and one optimizer step. Program order is the
order a framework launches kernels.
"""

from __future__ import annotations

import math

from simulator.core.errors import UserError
from workloads.layers import Work
from workloads.memory import memory_estimate
from workloads.model_def import ModelDef
from workloads.ops import DTYPE_BYTES, AttrValue, Op, OpGraph
from workloads.optimizers import get_optimizer
from workloads.precision import Precision, get_precision
from workloads.resolve import CONV_ALGORITHMS, INPUT, ResolvedLayer, resolve_layers

__all__ = ["CONV_ALGORITHMS", "INPUT", "INPUT_PLACES", "MODES", "ResolvedLayer", "build_graph",
           "resolve_layers"]

MODES = ("train", "infer")
# where the batch lives: already on the device (synthetic-data benchmarks), in pinned host
# memory (a DataLoader with pin_memory=True), or in pageable host memory (`.to(device)`)
INPUT_PLACES = ("device", "pinned", "pageable")


def check_request(batch: int, mode: str) -> None:
    if not isinstance(batch, int) or batch < 1:
        raise UserError(f"batch must be a positive integer, got {batch}")
    if mode not in MODES:
        raise UserError(f"unknown mode '{mode}'; valid modes: {', '.join(MODES)}")


def work_op(name: str, phase: str, layer: str, work: Work, prec: Precision,
            act_bytes: int) -> Op:
    """Turn element counts into bytes for this precision; weights are read as cast copies.
    A GEMM whose strides are not 16-byte multiples in the dtype it runs in becomes what the
    libraries run instead, where the layer says (`Work.unaligned`)."""
    if work.unaligned is not None and \
            work.align * DTYPE_BYTES.get(_work_dtype(work, prec, act_bytes), 4) % 16:
        work = work.unaligned
    dtype = _work_dtype(work, prec, act_bytes)
    weight_bytes = prec.lowp_bytes if work.kind == "gemm" else prec.master_bytes
    read = work.act_read * act_bytes + work.weight_read * weight_bytes
    written = work.act_write * act_bytes + work.weight_write * weight_bytes
    read += work.extra_bytes / 2
    written += work.extra_bytes / 2
    return Op(name=name, kind=work.kind, phase=phase, layer=layer, flops=work.flops,  # type: ignore[arg-type]
              bytes_read=read, bytes_written=written, dtype=dtype,
              work_items=max(1, work.work_items),
              param_bytes=work.weight_read * weight_bytes, gemm=work.gemm,
              kernels=work.kernels, attrs=_attrs(work, act_bytes))


def _work_dtype(work: Work, prec: Precision, act_bytes: int) -> str:
    """The dtype `work` computes in under `prec`."""
    if work.kind == "gemm":
        dtype = prec.gemm_dtype
    else:
        dtype = "fp32" if act_bytes == 4 else prec.gemm_dtype
    if work.kernel == "conv" and prec.conv_dtype:  # cuDNN may use TF32 (PyTorch's default)
        dtype = prec.conv_dtype
    return dtype


def _attrs(work: Work, act_bytes: int) -> tuple[tuple[str, AttrValue], ...]:
    attrs: list[tuple[str, AttrValue]] = [("kernel", work.kernel)] if work.kernel else []
    if work.algorithm:
        attrs.append(("algorithm", work.algorithm))
    if work.layout:
        attrs.append(("layout_bytes", work.layout * act_bytes))
    if work.winograd_tiles:
        attrs.append(("winograd_tiles", work.winograd_tiles))
    if work.ctas:
        attrs.append(("ctas", work.ctas))
    if work.reread:
        attrs.append(("reread_bytes", work.reread * act_bytes))
    if work.align:
        attrs.append(("align", work.align))
    return tuple(attrs)


class _Builder:
    def __init__(self, model: ModelDef, batch: int, mode: str, prec: Precision, optimizer: str,
                 sync_input: bool = False, conv_algorithm: str = "implicit_gemm",
                 input_place: str = "pinned"):
        self.model, self.batch, self.mode, self.prec = model, batch, mode, prec
        self.sync_input, self.input_place = sync_input, input_place
        self.optimizer = get_optimizer(optimizer) if mode == "train" else None
        self.layers = resolve_layers(model, batch, conv_algorithm)
        self.g = OpGraph(model.name, batch, mode, prec.name)
        self.g.params = sum(layer.cost.params for layer in self.layers)
        self.g.layer_kinds = {layer.name: layer.kind for layer in self.layers}
        self.fwd_out: dict[str, list[str]] = {}  # layer -> ops that produce its output
        # autocast: the bytes per element a layer computes in and hands on (fp32 layers and
        # embeddings hand on fp32, products low precision, the rest their inputs' widest)
        self.layer_bytes: dict[str, int] = {}
        self.out_bytes: dict[str, int] = {INPUT: prec.master_bytes}
        self.input_casts: dict[str, list[tuple[str, float]]] = {}  # layer -> (source, elems)
        self.out_shapes = {INPUT: model.shape,
                           **{layer.name: layer.cost.out_shape for layer in self.layers}}
        self.consumers: dict[str, list[str]] = {}
        for layer in self.layers:
            for src in layer.inputs:
                self.consumers.setdefault(src, []).append(layer.name)

    def act_bytes(self, layer: ResolvedLayer) -> int:
        if layer.name in self.layer_bytes:
            return self.layer_bytes[layer.name]
        return self.prec.master_bytes if layer.cost.fp32 else self.prec.act_bytes

    def dtype_flow(self, layer: ResolvedLayer) -> list[tuple[str, float, int, int]]:
        """autocast's dtypes (mixed precision only): the bytes `layer` computes in, what it
        hands on, and the casts of its inputs it needs, as (source, elements, bytes read,
        bytes written per element). A product casts an fp32 input to the low dtype (every
        call: autocast caches weights, not activations), an fp32 layer (layer norm, softmax)
        casts a low-precision input up, an elementwise layer promotes to its widest input;
        an embedding hands on its fp32 table's rows. The model's input is fp32: a product
        that reads it casts it once (token ids go to an embedding, which casts nothing)."""
        hi, lo = self.prec.master_bytes, self.prec.lowp_bytes
        cost = layer.cost
        widths = [self.out_bytes.get(src, hi) for src in layer.inputs]
        casts: list[tuple[str, float, int, int]] = []
        if cost.lowp or cost.fp32:
            own = lo if cost.lowp else hi
            for src, width in zip(layer.inputs, widths, strict=True):
                once = src == INPUT and any(c[0] == INPUT for c in casts)  # attention(x, x, x)
                if width != own and not once:
                    elems = float(self.batch * math.prod(self.out_shapes[src]))
                    casts.append((src, elems, width, own))
            computed = handed = own
        elif cost.index_input:
            computed = handed = hi
        else:
            computed = handed = max(widths) if widths else lo
        self.layer_bytes[layer.name] = computed
        self.out_bytes[layer.name] = handed
        return casts

    def weight_cast(self, layer: ResolvedLayer, phase: str, after: list[str]) -> str | None:
        """autocast: fp32 weights -> low-precision copy in forward (once per step), and the
        low-precision weight gradient -> fp32 in backward; each a kernel of its own."""
        if not (self.prec.mixed and layer.cost.lowp and layer.cost.params):
            return None
        p, lo, hi = layer.cost.params, self.prec.lowp_bytes, self.prec.master_bytes
        read, written = (p * hi, p * lo) if phase == "fwd" else (p * lo, p * hi)
        name = f"{layer.name}.{'weight_cast' if phase == 'fwd' else 'grad_cast'}"
        return self.memop(name, phase, layer.name, read, written, p, after)

    def memop(self, name: str, phase: str, layer: str, read: float, written: float,
              items: float, after: list[str]) -> str:
        """A dtype cast autocast issues: a memory-bound elementwise kernel (kernel "cast")."""
        op = Op(name, "elementwise", phase, layer, float(items), read, written,  # type: ignore[arg-type]
                "fp32", max(1, int(items)), attrs=(("kernel", "cast"),))
        return self.g.add(op, after).name

    def add_work(self, name: str, phase: str, layer: ResolvedLayer, work: Work,
                 after: list[str]) -> str:
        """Prologue, main kernel and epilogue of a pass, in order (each may have its own:
        attention's chain of kernels); returns the last op's name."""
        if work.prologue is not None:
            after = [self.add_work(f"{name}.prologue", phase, layer, work.prologue, after)]
        op = work_op(name, phase, layer.name, work, self.prec, self.act_bytes(layer))
        last = self.g.add(op, after).name
        if work.epilogue is not None:
            last = self.add_work(f"{name}.epilogue", phase, layer, work.epilogue, [last])
        return last

    def build(self) -> OpGraph:
        self.fwd_out[INPUT] = []
        if self.input_place != "device":
            n_input = self.batch * math.prod(self.model.shape)
            size = n_input * self.model.input_bytes_per_element
            pinned = self.input_place == "pinned"
            self.g.add(Op("input.h2d", "copy", "input", "input", 0.0, size, size, "fp32", 1,
                          attrs=(("bytes_moved", size), ("pinned", pinned))))
            self.fwd_out[INPUT] = ["input.h2d"] if self.sync_input else []
        for layer in self.layers:
            self.forward(layer)
        if self.mode == "train":
            self.backward()
            self.update()
        self.g.mark(self.g.order[0], "step", self.mode)  # the op that opens the step
        self.g.memory = memory_estimate(self.layers, self.batch, self.model, self.prec,
                                        self.optimizer, self.g.params)
        return self.g

    def forward(self, layer: ResolvedLayer) -> None:
        deps = [op for src in layer.inputs for op in self.fwd_out[src]]
        casts = self.dtype_flow(layer) if self.prec.mixed else []
        work = layer.cost.fwd
        if self.mode != "train" and layer.cost.infer_fwd is not None:
            work = layer.cost.infer_fwd
        if work is None or (layer.cost.train_only and self.mode != "train"):
            self.fwd_out[layer.name] = deps
            return
        if casts:
            self.input_casts[layer.name] = [(src, n) for src, n, _, _ in casts if src != INPUT]
            deps = [self.memop("input.cast" if src == INPUT else f"{layer.name}.input_cast{i}",
                               "fwd", layer.name, n * rb, n * wb, n, deps)
                    for i, (src, n, rb, wb) in enumerate(casts)]
        cast = self.weight_cast(layer, "fwd", [])
        deps = deps + ([cast] if cast else [])
        self.fwd_out[layer.name] = [self.add_work(f"{layer.name}.fwd", "fwd", layer, work, deps)]

    def backward(self) -> None:
        from workloads.layers import softmax_cross_entropy

        last = self.layers[-1]
        loss = softmax_cross_entropy([last.cost.out_shape], {}, self.batch)
        assert loss.fwd is not None and loss.bwd_data is not None
        pb = self.prec.master_bytes
        self.g.add(work_op("loss.fwd", "loss", "loss", loss.fwd, self.prec, pb),
                   self.fwd_out[last.name])
        self.g.add(work_op("loss.bwd", "loss", "loss", loss.bwd_data, self.prec, pb), ["loss.fwd"])
        grad_in: dict[str, list[str]] = {}  # layer -> ops producing the gradient of its input
        self.bwd_weight_ops: list[str] = []
        for layer in reversed(self.layers):
            consumers = self.consumers.get(layer.name, [])
            sources = [grad_in[c] for c in consumers] if consumers else [["loss.bwd"]]
            grad_out = self.accumulate(layer, sources)
            grad_in[layer.name] = self.layer_backward(layer, grad_out)

    def accumulate(self, layer: ResolvedLayer, sources: list[list[str]]) -> list[str]:
        if len(sources) == 1:
            return sources[0]
        n = self.batch * math.prod(layer.cost.out_shape)
        work = Work("elementwise", float(n * (len(sources) - 1)), n * len(sources), n, n)
        op = work_op(f"{layer.name}.grad_accum", "bwd_data", layer.name, work, self.prec,
                 self.act_bytes(layer))
        return [self.g.add(op, [o for s in sources for o in s]).name]

    def layer_backward(self, layer: ResolvedLayer, grad_out: list[str]) -> list[str]:
        cost = layer.cost
        needs_input_grad = any(src != INPUT for src in layer.inputs)
        produced: list[str] = []
        if cost.bwd_data is not None and needs_input_grad:
            name = f"{layer.name}.bwd_data"
            produced.append(self.add_work(name, "bwd_data", layer, cost.bwd_data,
                                          grad_out + self.fwd_out[layer.name]))
            own = self.act_bytes(layer)
            for i, (src, n) in enumerate(self.input_casts.get(layer.name, [])):
                # the cast's backward: the input's gradient back to the input's dtype
                produced.append(self.memop(f"{layer.name}.grad_cast_in{i}", "bwd_data",
                                           layer.name, n * own, n * self.out_bytes[src], n,
                                           [produced[0]]))
        if cost.bwd_weight is not None:
            last = self.add_work(f"{layer.name}.bwd_weight", "bwd_weight", layer, cost.bwd_weight,
                                 grad_out + self.fwd_out[layer.name])
            self.bwd_weight_ops.append(self.weight_cast(layer, "bwd_weight", [last]) or last)
        return produced or grad_out  # views and adds hand the gradient straight through

    def update(self) -> None:
        opt, p = self.optimizer, self.g.params
        assert opt is not None
        mb = self.prec.master_bytes
        read, written = opt.reads_per_param * p * mb, opt.writes_per_param * p * mb
        kernels = opt.kernels(p)
        if self.prec.grad_scaler:  # unscale gradients in place and check for inf/nan
            read, written, kernels = read + p * mb, written + p * mb, kernels + 2
        op = Op("optimizer.step", "optimizer", "update", "optimizer", opt.flops_per_param * p,
                read, written, "fp32", max(1, p), param_bytes=p * mb, kernels=kernels,
                attrs=(("tensors", parameter_tensors(self.model, self.layers)),))
        self.g.add(op, self.bwd_weight_ops)


WEIGHT_AND_BIAS_KINDS = ("conv2d", "linear", "locally_connected")
WEIGHT_ONLY_KINDS = ("embedding", "elementwise")  # one tensor: the table, a learned tensor


def layer_parameter_tensors(model: ModelDef, layers: list[ResolvedLayer]) -> dict[str, int]:
    """Parameter tensors per layer that has parameters (what an optimizer's foreach lists,
    autograd's AccumulateGrad nodes and DDP's reducer go through): weight and bias, or the
    weight alone without a bias."""
    args = {layer.name: layer.args() for layer in model.layers}
    counts = {}
    for layer in layers:
        if layer.cost.params == 0:
            continue
        has_bias = layer.kind not in WEIGHT_ONLY_KINDS and (
            layer.kind not in WEIGHT_AND_BIAS_KINDS or args[layer.name].get("bias", True))
        counts[layer.name] = 2 if has_bias else 1
    return counts


def parameter_tensors(model: ModelDef, layers: list[ResolvedLayer]) -> int:
    """Parameter tensors of the model (`layer_parameter_tensors`, summed)."""
    return sum(layer_parameter_tensors(model, layers).values())


def build_graph(model: ModelDef, batch: int, mode: str = "train", precision: str = "fp32",
                optimizer: str = "sgd", sync_input: bool = False,
                conv_algorithm: str = "implicit_gemm", input_place: str = "pinned") -> OpGraph:
    """The OpGraph of one step of `model` at `batch` samples per device; `input_place` is
    where the batch lives (`INPUT_PLACES`)."""
    check_request(batch, mode)
    if input_place not in INPUT_PLACES:
        raise UserError(f"unknown input '{input_place}'; valid: {', '.join(INPUT_PLACES)}")
    return _Builder(model, batch, mode, get_precision(precision), optimizer, sync_input,
                    conv_algorithm, input_place).build()

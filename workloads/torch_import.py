"""PyTorch import through torch.fx: `--model torchvision:NAME` (any torchvision classification
constructor, random weights, nothing downloaded) and `--model FILE.py:FACTORY` (a function of
the user's file that returns an `nn.Module`, or `(module, input_shape)` with the per-sample
input shape, which may hold `seq_len`; default [3, 224, 224]) -> a ModelDef of our layer kinds
(`pip install 'simulator[torch]'`).

The module is traced symbolically (torch.fx) and run in eval mode on batches of one and of
two samples (ShapeProp): the axis that doubles is each tensor's batch axis (first or not,
as nn.MultiheadAttention's batch_first=False puts it), taken out to give per-sample shapes.
Nodes are mapped one by one (`workloads.torch_nodes`); views cost nothing, arithmetic and
copies are memory-bound elementwise kernels, computations on shapes are skipped; a learned
tensor that an elementwise operation reads (ViT's class token and position embedding,
ConvNeXt's layer scale) is that layer's parameter. The imported model must have torch's own
parameter count. A module that fx cannot trace (data-dependent control flow) is an error that
suggests ONNX export; operators without a formula are listed by name and count (or costed as
elementwise kernels where the user asks for it), as for ONNX.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

from simulator.core.errors import UserError
from workloads.importers import Importer, ImportOptions, ModelWarning, per_sample, require
from workloads.model_def import MODEL_INPUT, RESERVED_LAYER_NAMES, SEQ_LEN, ModelDef, parse_model
from workloads.resolve import resolve_layers
from workloads.torch_nodes import (
    PART_NAMES,
    SWIN_ARGS,
    Shape,
    Unsupported,
    einsum_transposes,
    function_layer,
    function_name,
    module_layer,
    multihead_attention,
    sdpa,
    sdpa_arguments,
    window_attention,
)

DEFAULT_INPUT = (3, 224, 224)
FACTORY_REF = re.compile(r"^(?P<file>.+\.py):(?P<factory>[A-Za-z_]\w*)$")
_TORCHVISION_OPS: list[Any] = []  # the fallback operator schemas, kept alive


def load_torchvision(torch: Any, ref: str) -> Any:
    """torchvision, also where its compiled operators do not load (a wheel built for another
    torch, as PyPI's CUDA build of torchvision beside a CPU torch): torchvision 0.28 then
    fails on import registering fake kernels for nms and qnms, which the classification
    models never call, so their schemas are defined for it and the import is tried again."""
    try:
        return require("torchvision", ref, "torch")
    except RuntimeError as err:
        if "torchvision::" not in str(err):
            raise
    for name in [m for m in sys.modules if m.split(".")[0] == "torchvision"]:
        del sys.modules[name]
    lib = torch.library.Library("torchvision", "FRAGMENT")
    for op in ("nms", "qnms"):
        lib.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _TORCHVISION_OPS.append(lib)
    return importlib.import_module("torchvision")


def _torch_module(torch: Any, ref: str) -> tuple[Any, tuple[int | str, ...]]:
    """The nn.Module a reference names, and its per-sample input shape."""
    if ref.startswith("torchvision:"):
        torchvision = load_torchvision(torch, ref)
        name = ref.split(":", 1)[1]
        models = torchvision.models.list_models(module=torchvision.models)
        if name not in models:
            raise UserError(f"unknown torchvision classification model '{name}'; "
                            f"valid: {', '.join(sorted(models))}")
        return torchvision.models.get_model(name, weights=None), DEFAULT_INPUT
    found = FACTORY_REF.match(ref)
    assert found is not None
    path = Path(found["file"])
    if not path.is_file():
        raise UserError(f"{path}: no such Python file")
    spec = importlib.util.spec_from_file_location(f"simulator_user_model_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        factory = getattr(module, found["factory"], None)
        if not callable(factory):
            raise UserError(f"{ref}: {path} has no function '{found['factory']}'")
        made = factory()
    except UserError:
        raise
    except Exception as err:  # the user's own code failed
        raise UserError(f"{ref}: {found['factory']}() raised "
                        f"{type(err).__name__}: {err}") from None
    made, shape = made if isinstance(made, tuple) else (made, DEFAULT_INPUT)
    if not isinstance(made, torch.nn.Module):
        raise UserError(f"{ref}: {found['factory']}() returned {type(made).__name__}, "
                        "not an nn.Module")
    return made, tuple(shape)


def _traced(torch: Any, module: Any, ref: str) -> Any:
    try:
        return torch.fx.symbolic_trace(module)
    except Exception as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
        raise UserError(f"{ref}: torch.fx cannot trace it ({type(err).__name__}: "
                        f"{first}), as with data-dependent control flow; export it with "
                        "torch.onnx.export and pass --model FILE.onnx") from None


def _example(torch: Any, gm: Any, shape: tuple[int, ...], batch: int) -> Any:
    """A batch: token ids where the input goes into an embedding, else floats."""
    modules = dict(gm.named_modules())
    first = next(n for n in gm.graph.nodes if n.op == "placeholder")
    ids = any(u.op == "call_module" and isinstance(modules.get(u.target), torch.nn.Embedding)
              for u in first.users)
    return torch.zeros((batch, *shape), dtype=torch.long if ids else torch.float32)


def _propagated(torch: Any, gm: Any, example: Any, ref: str) -> dict[Any, Shape]:
    """Every tensor-valued node's full shape for one run on `example`."""
    try:
        with torch.no_grad():
            torch.fx.passes.shape_prop.ShapeProp(gm).propagate(example)
    except Exception as err:
        raise UserError(f"{ref}: running it on an input of {list(example.shape)[1:]} failed: "
                        f"{type(err).__name__}: {str(err).splitlines()[0][:300]}") from None
    shapes = {}
    for node in gm.graph.nodes:
        shape = getattr(node.meta.get("tensor_meta"), "shape", None)
        if shape is not None:
            shapes[node] = tuple(int(d) for d in shape)
    return shapes


class _Mapper:
    """fx nodes -> our layer definitions, in graph order."""

    def __init__(self, torch: Any, gm: Any, shapes: dict[Any, Shape], as_elementwise: bool):
        self.torch, self.as_elementwise, self.shapes = torch, as_elementwise, shapes
        self.modules = dict(gm.named_modules())
        self.parameters = dict(gm.named_parameters())
        self.learned: dict[Any, set[str]] = {}  # a node computed from parameters only
        self.claimed: set[str] = set()
        self.producer: dict[Any, str] = {}
        self.parts: dict[Any, str] = {}  # a node of several tensors -> what its items are from
        self.layers: list[dict[str, Any]] = []
        self.expected: dict[str, Shape] = {}
        self.unsupported: Counter[str] = Counter()
        self.approximated: Counter[str] = Counter()

    def add(self, node: Any) -> None:
        if node.op == "placeholder":
            self.producer[node] = MODEL_INPUT
            return
        if node.op == "get_attr" and node.target in self.parameters:
            self.learned[node] = {node.target}
            return
        acts = [a for a in node.all_input_nodes if a in self.producer or a in self.parts]
        if node.op == "output" or not acts:
            learned = set().union(*(self.learned.get(a, set()) for a in node.all_input_nodes))
            if node.op == "call_module":  # a module on constants (Swin V2's position-bias MLP)
                learned |= {f"{node.target}.{n}"
                            for n, _ in self.modules[node.target].named_parameters()}
            if learned and node.op != "output":
                self.learned[node] = learned
            return  # parameters, shapes and their arithmetic, the graph's output
        if any(a in self.parts for a in acts):
            self._item(node, acts)
        elif self._what(node) in PART_NAMES or self._is_attention_module(node):
            self._several(node, acts)
        elif node in self.shapes:
            self._one(node, acts)
        elif node.meta.get("tensor_meta") is not None:  # tensors without one batch axis
            self.unsupported[f"{self._what(node)} (not one batched tensor)"] += 1

    def _what(self, node: Any) -> str:
        return (type(self.modules[node.target]).__name__ if node.op == "call_module"
                else function_name(node).strip("_"))

    def _is_attention_module(self, node: Any) -> bool:
        return node.op == "call_module" and isinstance(self.modules[node.target],
                                                       self.torch.nn.MultiheadAttention)

    def _is_identity(self, node: Any) -> bool:
        """nn.Identity, and a dropout of p = 0 (PyTorch returns its input: no kernel)."""
        nn, mod = self.torch.nn, self.modules.get(node.target) if node.op == "call_module" else None
        return isinstance(mod, nn.Identity) or (isinstance(mod, nn.Dropout) and mod.p == 0)

    def _one(self, node: Any, acts: list[Any]) -> None:
        out = self.shapes[node]
        if not out:
            self.unsupported[f"{self._what(node)} (not one batched tensor)"] += 1
            return
        if self._is_identity(node):
            self.producer[node] = self.producer[acts[0]]
            return
        if self._what(node) == "scaled_dot_product_attention":
            args = sdpa_arguments(node)  # q, k, v: the same node more than once
            acts = [args.get(a) for a in ("query", "key", "value")]
            if not all(a in self.producer for a in acts):
                self.unsupported["scaled_dot_product_attention (of a learned tensor)"] += 1
                return
        if self._what(node) == "einsum":
            self._einsum(node, out)
            return
        if self._what(node) == "shifted_window_attention":
            self._window_attention(node, out)
            return
        definition: dict[str, Any] | None
        try:
            definition = self._definition(node, acts, out)
        except Unsupported as err:
            definition = self._approximate(str(err), out)
        if definition is None:
            return
        self.producer[node] = self._append(node.name if node.op != "call_module"
                                           else str(node.target), definition, acts, out)

    def _definition(self, node: Any, acts: list[Any], out: Shape) -> dict[str, Any]:
        shapes = [self.shapes[a] for a in acts]
        if node.op == "call_module":
            return module_layer(self.torch, self.modules[node.target], shapes[0], out)
        if self._what(node) == "scaled_dot_product_attention":
            return sdpa(node, shapes)
        definition = function_layer(node, shapes, out)
        learned = set().union(*(self.learned.get(a, set()) for a in node.all_input_nodes))
        learned -= self.claimed
        if definition["kind"] == "layernorm":  # F.layer_norm: its weight and bias are its own
            self.claimed |= learned
        elif learned:
            if definition["kind"] != "elementwise":
                raise Unsupported(f"{self._what(node)} (of a learned tensor)")
            self.claimed |= learned
            definition["params"] = sum(self.parameters[p].numel() for p in sorted(learned))
        return definition

    def _window_attention(self, node: Any, out: Shape) -> None:
        """torchvision's shifted_window_attention (Swin) as its kernels (`window_attention`);
        the learned tensors it reads besides the projections' (the relative position bias
        table, V2's bias MLP and logit scale) are the position bias's `params`."""
        args = {**dict(zip(SWIN_ARGS, node.args, strict=False)), **node.kwargs}
        x, weight = args["input"], self.parameters.get(getattr(args["qkv_weight"], "target", ""))
        try:
            if x not in self.producer or weight is None:
                raise Unsupported("shifted_window_attention (of a learned tensor)")
            layers = window_attention(args, self.shapes[x], int(weight.shape[0]))
        except Unsupported as err:
            definition = self._approximate(str(err), out)
            if definition is not None:
                self.producer[node] = self._append(node.name, definition, [x], out)
            return
        learned = set().union(*(self.learned.get(a, set()) for a in node.all_input_nodes))
        own = {args[k].target for k in ("qkv_weight", "proj_weight", "qkv_bias", "proj_bias")
               if args.get(k) is not None}
        bias = learned - own - self.claimed
        self.claimed |= learned
        name = self.producer[x]
        for label, definition, shape in layers:
            if label == "position_bias":
                definition["params"] = sum(self.parameters[p].numel() for p in sorted(bias))
            name = self._append(f"{node.name}.{label}", definition, [], shape, [name])
        self.producer[node] = name

    def _einsum(self, node: Any, out: Shape) -> None:
        """torch.einsum as a batched product of two activations: `matmul`, after a view of
        the second operand as (..., k, j) where the equation transposes it (cuBLAS reads it
        transposed: no copy)."""
        operands = list(node.args[1:])
        try:
            if not all(a in self.producer for a in operands):
                raise Unsupported("einsum (of a learned tensor)")
            transposed = einsum_transposes(str(node.args[0]), len(operands))
        except Unsupported as err:
            definition = self._approximate(str(err), out)
            if definition is not None:
                self.producer[node] = self._append(node.name, definition, operands, out)
            return
        inputs = [self.producer[a] for a in operands]
        if transposed:
            b = self.shapes[operands[1]]
            view = (*b[:-2], b[-1], b[-2])
            inputs[1] = self._append(f"{node.name}.transposed", {"kind": "reshape",
                                     "shape": list(view)}, [], view, [inputs[1]])
        self.producer[node] = self._append(node.name, {"kind": "matmul"}, [], out, inputs)

    def _approximate(self, label: str, out: Shape) -> dict[str, Any] | None:
        if not self.as_elementwise:
            self.unsupported[label] += 1
            return None
        self.approximated[label] += 1
        return {"kind": "elementwise", "shape": list(out), "op": label.lower()[:60]}

    def _append(self, name: str, definition: dict[str, Any], acts: list[Any],
                out: Shape, inputs: list[str] | None = None) -> str:
        taken = {layer["name"] for layer in self.layers}
        if name in taken or name in RESERVED_LAYER_NAMES:
            name = f"{name}_{len(self.layers)}"
        name = name[:120]
        sources = inputs if inputs is not None else [self.producer[a] for a in acts]
        self.layers.append({"name": name, "inputs": sources, **definition})
        self.expected[name] = out
        return name

    def _several(self, node: Any, acts: list[Any]) -> None:
        """A node of several tensors: chunk/split (views of its input, one `slice` layer for
        each item used) or nn.MultiheadAttention (its layers; item 0 is the output)."""
        if not self._is_attention_module(node):
            self.parts[node] = self.producer[acts[0]]
            return
        try:
            layers = multihead_attention(self.modules[node.target], node, self.shapes)
        except Unsupported as err:
            self.unsupported[str(err)] += 1
            return
        *projections, attention, out_proj = layers
        t = self.shapes[acts[0]][:-1]
        projected = []
        for definition in projections:
            part, source = definition.pop("part"), definition.pop("source")
            if source not in self.producer:
                self.unsupported["MultiheadAttention (of a learned tensor)"] += 1
                return
            projected.append(self._append(f"{node.target}.{part}", definition, [],
                                          (*t, definition["out_features"]),
                                          [self.producer[source]]))
        attention.pop("part")
        d = out_proj["out_features"]
        name = self._append(str(node.target), attention, [], (*t, d), projected)
        self.parts[node] = self._append(f"{node.target}.{out_proj.pop('part')}", out_proj,
                                        [], (*t, d), [name])

    def _item(self, node: Any, acts: list[Any]) -> None:
        """An item of a node of several tensors."""
        if function_name(node) != "getitem" or len(acts) != 1:
            self.unsupported[f"{self._what(node)} (of several tensors)"] += 1
            return
        source = acts[0]
        if not node.users or node not in self.shapes:
            return  # an item nobody reads (attention weights not asked for)
        if self._is_attention_module(source):
            if node.args[1] != 0:
                self.unsupported["MultiheadAttention (its attention weights used)"] += 1
                return
            self.producer[node] = self.parts[source]
            return
        out = self.shapes[node]
        self.producer[node] = self._append(node.name, {"kind": "slice", "shape": list(out)},
                                           [], out, [self.parts[source]])


def _counted(counts: Counter[str]) -> str:
    return ", ".join(f"{op} x{n}" for op, n in sorted(counts.items()))


def load_torch(ref: str, options: ImportOptions) -> ModelDef:
    torch = require("torch", ref, "torch")
    module, spec_shape = _torch_module(torch, ref)
    if options.seq_len is not None and SEQ_LEN not in spec_shape:
        raise UserError(f"seq_len: {ref} has no seq_len in its input shape; leave it out")
    if SEQ_LEN in spec_shape and options.seq_len is None:
        raise UserError(f"{ref}: its input shape has seq_len: give --seq-len")
    shape = tuple(int(options.seq_len or 0) if d == SEQ_LEN else int(d) for d in spec_shape)
    gm = _traced(torch, module.eval(), ref)
    two = _propagated(torch, gm, _example(torch, gm, shape, 2), ref)
    example = _example(torch, gm, shape, 1)
    one = _propagated(torch, gm, example, ref)
    shapes = {n: s for n in one if (s := per_sample(one[n], two.get(n))) is not None}
    mapper = _Mapper(torch, gm, shapes, options.unsupported_as_elementwise)
    for node in gm.graph.nodes:
        mapper.add(node)
    if mapper.unsupported:
        raise UserError(f"{ref}: unsupported operators: {_counted(mapper.unsupported)} "
                        "(--unsupported-as-elementwise costs them as memory-bound elementwise "
                        "kernels)")
    model = _model(ref, shape, example, mapper)
    expected = _parameters_used(gm)
    counted = sum(layer.cost.params for layer in resolve_layers(model, 1))
    unused = sum(p.numel() for p in module.parameters()) - expected
    if unused:
        warnings.warn(f"{ref}: {unused:,} parameters of modules that its forward pass in eval "
                      "mode does not call are not counted", ModelWarning, stacklevel=2)
    if mapper.approximated:
        missing = f"; their {expected - counted:,} parameters are not counted" if (
            expected != counted) else ""
        warnings.warn(f"{ref}: costed as memory-bound elementwise kernels: "
                      f"{_counted(mapper.approximated)}{missing}", ModelWarning, stacklevel=2)
    elif counted != expected:
        raise UserError(f"{ref}: the imported layers have {counted:,} parameters, the module "
                        f"{expected:,}: a parameter is used in a way the import does not know")
    return model


def _parameters_used(gm: Any) -> int:
    """The elements of the parameters the traced graph reads (of the leaf modules it calls
    and the tensors it takes as attributes), each once: inception_v3's auxiliary classifier
    runs only in training."""
    modules = dict(gm.named_modules())
    used = {id(p): p.numel() for node in gm.graph.nodes if node.op == "call_module"
            for p in modules[node.target].parameters()}
    parameters = dict(gm.named_parameters())
    used.update({id(parameters[n.target]): parameters[n.target].numel()
                 for n in gm.graph.nodes if n.op == "get_attr" and n.target in parameters})
    return sum(used.values())


def _model(ref: str, shape: tuple[int, ...], example: Any, mapper: _Mapper) -> ModelDef:
    name = re.sub(r"[^\w.-]", "_", ref.rsplit(":", 1)[-1])[:120]
    data = {"name": name, "description": f"imported from {ref} through torch.fx",
            "input_shape": list(shape), "input_bytes_per_element": example.element_size(),
            "layers": mapper.layers}
    model = parse_model(data, ref)
    for layer in resolve_layers(model, 1):
        if layer.cost.out_shape != mapper.expected[layer.name]:
            raise UserError(f"{ref}: node {layer.name} ({layer.kind}) gives shape "
                            f"{list(layer.cost.out_shape)}, torch gives "
                            f"{list(mapper.expected[layer.name])}")
    return model


def _matches(ref: str) -> bool:
    return ref.startswith("torchvision:") or FACTORY_REF.match(ref) is not None


TORCH = Importer("torch", _matches, load_torch, "torch")

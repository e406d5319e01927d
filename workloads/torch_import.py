"""PyTorch import through torch.fx: `--model torchvision:NAME` (any torchvision classification
constructor, random weights, nothing downloaded) and `--model FILE.py:FACTORY` (a function of
the user's file that returns an `nn.Module`, or `(module, input_shape)` with the per-sample
input shape, which may hold `seq_len`; default [3, 224, 224]) -> a ModelDef of our layer kinds
(`pip install 'simulator[torch]'`).

The module is traced symbolically (torch.fx), run once on a batch of one sample in eval mode
to give every node its shape (ShapeProp), and mapped node by node: torch.nn leaf modules
(`MODULES`), functions and methods (`FUNCTIONS`); views cost nothing, arithmetic and copies
are memory-bound elementwise kernels, computations on shapes are skipped. A module that fx
cannot trace (data-dependent control flow) is an error that suggests ONNX export; operators
without a formula are listed by name and count (or costed as elementwise kernels where the
user asks for it), as for ONNX.
"""

from __future__ import annotations

import importlib.util
import re
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

from simulator.core.errors import UserError
from workloads.importers import Importer, ImportOptions, ModelWarning, require
from workloads.model_def import MODEL_INPUT, RESERVED_LAYER_NAMES, SEQ_LEN, ModelDef, parse_model
from workloads.resolve import resolve_layers

DEFAULT_INPUT = (3, 224, 224)
FACTORY_REF = re.compile(r"^(?P<file>.+\.py):(?P<factory>[A-Za-z_]\w*)$")
VIEW_NAMES = {"view", "reshape", "flatten", "squeeze", "unsqueeze", "permute", "transpose",
              "expand", "unflatten", "narrow", "select", "t", "getitem"}
ELEMENTWISE_NAMES = {"add", "sub", "mul", "truediv", "div", "iadd", "imul", "cat", "concat",
                     "contiguous", "mean", "sum", "sigmoid", "silu", "hardswish",
                     "hardsigmoid", "exp", "sqrt", "rsqrt", "pow", "neg", "clamp", "masked_fill",
                     "where", "pad", "layer_norm_stats", "interpolate", "amax", "to", "float"}


class _Unsupported(Exception):
    pass


def _torch_module(ref: str) -> tuple[Any, tuple[int | str, ...]]:
    """The nn.Module a reference names, and its per-sample input shape."""
    if ref.startswith("torchvision:"):
        torchvision = require("torchvision", ref, "torch")
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
    return made, tuple(shape)


def _traced(torch: Any, module: Any, ref: str) -> Any:
    try:
        return torch.fx.symbolic_trace(module)
    except Exception as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
        raise UserError(f"{ref}: torch.fx cannot trace it ({type(err).__name__}: "
                        f"{first}), as with data-dependent control flow; export it with "
                        "torch.onnx.export and pass --model FILE.onnx") from None


def _example(torch: Any, gm: Any, shape: tuple[int, ...]) -> Any:
    """One sample: token ids where the input goes into an embedding, else floats."""
    modules = dict(gm.named_modules())
    first = next(n for n in gm.graph.nodes if n.op == "placeholder")
    ids = any(u.op == "call_module" and isinstance(modules.get(u.target), torch.nn.Embedding)
              for u in first.users)
    return torch.zeros((1, *shape), dtype=torch.long) if ids else torch.zeros((1, *shape))


def _shape(node: Any) -> tuple[int, ...] | None:
    """The per-sample shape of a node's tensor (ShapeProp ran on one sample), else None."""
    shape = getattr(node.meta.get("tensor_meta"), "shape", None)
    return tuple(int(d) for d in shape)[1:] if shape is not None else None


def _pair(value: Any) -> list[int]:
    return [int(v) for v in value] if isinstance(value, (tuple, list)) else [int(value)] * 2


def _module_layer(torch: Any, mod: Any, out: tuple[int, ...]) -> dict[str, Any]:
    nn = torch.nn
    if isinstance(mod, nn.Conv2d):
        if _pair(mod.dilation) != [1, 1] or isinstance(mod.padding, str):
            raise _Unsupported("Conv2d (dilated or string padding)")
        return {"kind": "conv2d", "out_channels": mod.out_channels,
                "kernel": _pair(mod.kernel_size), "stride": _pair(mod.stride),
                "padding": _pair(mod.padding), "groups": mod.groups, "bias": mod.bias is not None}
    if isinstance(mod, nn.Linear):
        return {"kind": "linear", "out_features": mod.out_features, "bias": mod.bias is not None}
    if isinstance(mod, (nn.MaxPool2d, nn.AvgPool2d)):
        kernel = _pair(mod.kernel_size)
        return {"kind": "maxpool2d" if isinstance(mod, nn.MaxPool2d) else "avgpool2d",
                "kernel": kernel, "stride": _pair(mod.stride or kernel),
                "padding": _pair(mod.padding)}
    if isinstance(mod, nn.AdaptiveAvgPool2d):
        return {"kind": "adaptive_avgpool2d", "output_size": list(out[-2:])}
    if isinstance(mod, nn.Embedding):
        return {"kind": "embedding", "num_embeddings": mod.num_embeddings,
                "embedding_dim": mod.embedding_dim}
    if isinstance(mod, nn.Dropout):
        return {"kind": "dropout", "p": float(mod.p)}
    if isinstance(mod, nn.Flatten):
        return {"kind": "flatten"} if len(out) == 1 else {"kind": "reshape", "shape": list(out)}
    simple = [(nn.ReLU, "relu"), (nn.ReLU6, "relu6"), (nn.BatchNorm2d, "batchnorm2d"),
              (nn.LayerNorm, "layernorm"), (nn.GELU, "gelu"), (nn.Tanh, "tanh"),
              (nn.Softmax, "softmax")]
    for cls, kind in simple:
        if isinstance(mod, cls):
            return {"kind": kind}
    if isinstance(mod, (nn.SiLU, nn.Sigmoid, nn.Hardswish, nn.Hardsigmoid)):
        return {"kind": "elementwise", "shape": list(out), "op": type(mod).__name__.lower()}
    raise _Unsupported(type(mod).__name__)


def _function_name(node: Any) -> str:
    target = node.target
    return target if isinstance(target, str) else getattr(target, "__name__", str(target))


def _function_layer(node: Any, acts: list[Any], out: tuple[int, ...]) -> dict[str, Any]:
    name = _function_name(node).strip("_")
    same = len(acts) == 2 and _shape(acts[0]) == _shape(acts[1])
    if name in ("add", "iadd") and same:
        return {"kind": "add"}
    if name in ("matmul", "bmm") and len(acts) == 2:
        return {"kind": "matmul"}
    kinds = {"relu": "relu", "gelu": "gelu", "tanh": "tanh", "softmax": "softmax",
             "dropout": "dropout", "relu6": "relu6", "hardtanh": "relu6"}
    if name in kinds:
        return {"kind": kinds[name]}
    if name == "adaptive_avg_pool2d":
        return {"kind": "adaptive_avgpool2d", "output_size": list(out[-2:])}
    if name in VIEW_NAMES:
        return {"kind": "flatten"} if name == "flatten" and len(out) == 1 else {
            "kind": "reshape", "shape": list(out)}
    if name in ELEMENTWISE_NAMES:
        return {"kind": "elementwise", "shape": list(out), "op": name}
    raise _Unsupported(name)


class _Mapper:
    """fx nodes -> our layer definitions, in graph order."""

    def __init__(self, torch: Any, gm: Any, as_elementwise: bool):
        self.torch, self.as_elementwise = torch, as_elementwise
        self.modules = dict(gm.named_modules())
        self.producer: dict[Any, str] = {}
        self.layers: list[dict[str, Any]] = []
        self.expected: dict[str, tuple[int, ...]] = {}
        self.unsupported: Counter[str] = Counter()
        self.approximated: Counter[str] = Counter()

    def add(self, node: Any) -> None:
        if node.op == "placeholder":
            self.producer[node] = MODEL_INPUT
            return
        acts = [a for a in node.all_input_nodes if a in self.producer]
        meta, out = node.meta.get("tensor_meta"), _shape(node)
        if node.op in ("get_attr", "output") or not acts or meta is None:
            return  # parameters, shapes and their arithmetic, the graph's output
        if out is None or not out:  # several tensors (a tuple), or one without a sample axis
            what = (type(self.modules[node.target]).__name__ if node.op == "call_module"
                    else _function_name(node))
            self.unsupported[f"{what} (not one batched tensor)"] += 1
            return
        if node.op == "call_module" and isinstance(self.modules[node.target],
                                                   self.torch.nn.Identity):
            self.producer[node] = self.producer[acts[0]]
            return
        definition = self._definition(node, acts, out)
        if definition is None:
            return
        name = self._name(node)
        inputs = [self.producer[a] for a in acts]
        self.layers.append({"name": name, "inputs": inputs, **definition})
        self.expected[name] = out
        self.producer[node] = name

    def _definition(self, node: Any, acts: list[Any],
                    out: tuple[int, ...]) -> dict[str, Any] | None:
        try:
            if node.op == "call_module":
                return _module_layer(self.torch, self.modules[node.target], out)
            return _function_layer(node, acts, out)
        except _Unsupported as err:
            label = str(err)
            if not self.as_elementwise:
                self.unsupported[label] += 1
                return None
            self.approximated[label] += 1
            return {"kind": "elementwise", "shape": list(out), "op": label.lower()[:60]}

    def _name(self, node: Any) -> str:
        name = str(node.target) if node.op == "call_module" else node.name
        taken = {layer["name"] for layer in self.layers}
        if name in taken or name in RESERVED_LAYER_NAMES:
            name = f"{name}_{len(self.layers)}"
        return name[:120]


def _counted(counts: Counter[str]) -> str:
    return ", ".join(f"{op} x{n}" for op, n in sorted(counts.items()))


def load_torch(ref: str, options: ImportOptions) -> ModelDef:
    torch = require("torch", ref, "torch")
    module, spec_shape = _torch_module(ref)
    if options.seq_len is not None and SEQ_LEN not in spec_shape:
        raise UserError(f"seq_len: {ref} has no seq_len in its input shape; leave it out")
    if SEQ_LEN in spec_shape and options.seq_len is None:
        raise UserError(f"{ref}: its input shape has seq_len: give --seq-len")
    shape = tuple(int(options.seq_len or 0) if d == SEQ_LEN else int(d) for d in spec_shape)
    gm = _traced(torch, module.eval(), ref)
    example = _example(torch, gm, shape)
    try:
        with torch.no_grad():
            torch.fx.passes.shape_prop.ShapeProp(gm).propagate(example)
    except Exception as err:
        raise UserError(f"{ref}: running it on an input of {list(shape)} failed: "
                        f"{type(err).__name__}: {str(err).splitlines()[0][:300]}") from None
    mapper = _Mapper(torch, gm, options.unsupported_as_elementwise)
    for node in gm.graph.nodes:
        mapper.add(node)
    if mapper.unsupported:
        raise UserError(f"{ref}: unsupported operators: {_counted(mapper.unsupported)} "
                        "(--unsupported-as-elementwise costs them as memory-bound elementwise "
                        "kernels)")
    if mapper.approximated:
        warnings.warn(f"{ref}: costed as memory-bound elementwise kernels: "
                      f"{_counted(mapper.approximated)}", ModelWarning, stacklevel=2)
    return _model(ref, shape, example, mapper)


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

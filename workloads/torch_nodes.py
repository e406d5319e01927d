"""torch.fx nodes -> our layer definitions, for `workloads.torch_import`: torch.nn leaf
modules (`module_layer`), functions and tensor methods (`function_layer`), and attention —
nn.MultiheadAttention as its input projection, an `attention` layer and its output
projection; F.scaled_dot_product_attention as one fused `attention` layer.

Shapes are per sample (the batch axis taken out, wherever it is). A node we have no formula
for raises `Unsupported` with the name the error lists.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

Shape = tuple[int, ...]
VIEW_NAMES = {"view", "reshape", "flatten", "squeeze", "unsqueeze", "permute", "transpose",
              "swapaxes", "swapdims", "expand", "unflatten", "narrow", "select", "t", "getitem"}
PART_NAMES = {"chunk", "split", "unbind", "tensor_split"}  # several views of one tensor
ELEMENTWISE_NAMES = {"add", "sub", "mul", "truediv", "div", "iadd", "imul", "cat", "concat",
                     "contiguous", "mean", "sum", "sigmoid", "silu", "hardswish",
                     "hardsigmoid", "exp", "sqrt", "rsqrt", "pow", "neg", "clamp", "masked_fill",
                     "where", "pad", "layer_norm_stats", "interpolate", "amax", "to", "float",
                     "patch_merging_pad"}
ACTIVATIONS = {"relu": "relu", "gelu": "gelu", "tanh": "tanh", "softmax": "softmax",
               "dropout": "dropout", "relu6": "relu6", "hardtanh": "relu6"}
# F.max_pool2d's and F.avg_pool2d's positional parameters (they differ after padding)
POOL_ARGS = {"max_pool2d": ("input", "kernel_size", "stride", "padding", "dilation",
                            "ceil_mode", "return_indices"),
             "avg_pool2d": ("input", "kernel_size", "stride", "padding", "ceil_mode",
                            "count_include_pad", "divisor_override")}
SDPA_ARGS = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale",
             "enable_gqa")


class Unsupported(Exception):
    """A node without a formula (its operator, as the error lists it)."""


def _pair(value: Any) -> list[int]:
    return [int(v) for v in value] if isinstance(value, (tuple, list)) else [int(value)] * 2


def _pool(kind: str, kernel_size: Any, stride: Any, padding: Any,
          ceil_mode: Any = False) -> dict[str, Any]:
    kernel = _pair(kernel_size)
    layer = {"kind": kind, "kernel": kernel, "stride": _pair(stride or kernel),
             "padding": _pair(padding or 0)}
    return {**layer, "ceil_mode": True} if ceil_mode else layer


def _pool_function(node: Any, name: str) -> dict[str, Any]:
    """F.max_pool2d / F.avg_pool2d, as the modules."""
    args = {**dict(zip(POOL_ARGS[name], node.args, strict=False)), **node.kwargs}
    if _pair(args.get("dilation", 1)) != [1, 1] or args.get("return_indices") or args.get(
            "divisor_override"):
        raise Unsupported(f"{name} (dilation, indices or a divisor)")
    kind = "maxpool2d" if name == "max_pool2d" else "avgpool2d"
    return _pool(kind, args["kernel_size"], args.get("stride"), args.get("padding"),
                 args.get("ceil_mode", False))


def _affine(mod: Any, name: str) -> None:
    if getattr(mod, "weight", None) is None or getattr(mod, "bias", None) is None:
        raise Unsupported(f"{name} (without a learned scale and shift)")


def module_layer(torch: Any, mod: Any, shape: Shape, out: Shape) -> dict[str, Any]:
    """The layer an nn leaf module becomes (nn.MultiheadAttention: `multihead_attention`)."""
    nn = torch.nn
    if isinstance(mod, nn.Conv2d):
        if _pair(mod.dilation) != [1, 1] or isinstance(mod.padding, str):
            raise Unsupported("Conv2d (dilated or string padding)")
        return {"kind": "conv2d", "out_channels": mod.out_channels,
                "kernel": _pair(mod.kernel_size), "stride": _pair(mod.stride),
                "padding": _pair(mod.padding), "groups": mod.groups, "bias": mod.bias is not None}
    if isinstance(mod, nn.Linear):
        return {"kind": "linear", "out_features": mod.out_features, "bias": mod.bias is not None}
    if isinstance(mod, (nn.MaxPool2d, nn.AvgPool2d)):
        if _pair(getattr(mod, "dilation", 1)) != [1, 1]:
            raise Unsupported(f"{type(mod).__name__} (dilation)")
        kind = "maxpool2d" if isinstance(mod, nn.MaxPool2d) else "avgpool2d"
        return _pool(kind, mod.kernel_size, mod.stride, mod.padding, mod.ceil_mode)
    if isinstance(mod, nn.AdaptiveAvgPool2d):
        return {"kind": "adaptive_avgpool2d", "output_size": list(out[-2:])}
    if isinstance(mod, nn.Embedding):
        return {"kind": "embedding", "num_embeddings": mod.num_embeddings,
                "embedding_dim": mod.embedding_dim}
    if isinstance(mod, nn.Dropout):
        return {"kind": "dropout", "p": float(mod.p)}
    if isinstance(mod, nn.Flatten):
        return {"kind": "flatten"} if len(out) == 1 else {"kind": "reshape", "shape": list(out)}
    if isinstance(mod, (nn.BatchNorm2d, nn.LayerNorm)):
        _affine(mod, type(mod).__name__)
    simple = [(nn.ReLU, "relu"), (nn.ReLU6, "relu6"), (nn.BatchNorm2d, "batchnorm2d"),
              (nn.LayerNorm, "layernorm"), (nn.GELU, "gelu"), (nn.Tanh, "tanh"),
              (nn.Softmax, "softmax")]
    for cls, kind in simple:
        if isinstance(mod, cls):
            return {"kind": kind}
    if isinstance(mod, (nn.SiLU, nn.Sigmoid, nn.Hardswish, nn.Hardsigmoid)):
        return {"kind": "elementwise", "shape": list(out), "op": type(mod).__name__.lower()}
    raise Unsupported(type(mod).__name__)


def function_name(node: Any) -> str:
    target = node.target
    return target if isinstance(target, str) else getattr(target, "__name__", str(target))


def function_layer(node: Any, shapes: list[Shape], out: Shape) -> dict[str, Any]:
    """The layer a function or tensor method becomes (one activation input or more)."""
    name = function_name(node).strip("_")
    if name in ("add", "iadd") and len(shapes) == 2 and shapes[0] == shapes[1]:
        return {"kind": "add"}
    if name in ("matmul", "bmm") and len(shapes) == 2:
        return {"kind": "matmul"}
    if name in ACTIVATIONS:
        return {"kind": ACTIVATIONS[name]}
    if name == "stochastic_depth":
        return {"kind": "stochastic_depth", "p": float(_argument(node, 1, "p"))}
    if name == "layer_norm":
        if len(node.args) + len(node.kwargs) < 4 or _argument(node, 3, "bias") is None:
            raise Unsupported("layer_norm (without a learned scale and shift)")
        return {"kind": "layernorm"}
    if name == "adaptive_avg_pool2d":
        return {"kind": "adaptive_avgpool2d", "output_size": list(out[-2:])}
    if name in ("max_pool2d", "avg_pool2d"):
        return _pool_function(node, name)
    if name == "getitem":
        return _getitem(node, shapes[0], out)
    if name in VIEW_NAMES and math.prod(out) == math.prod(shapes[0]):
        return {"kind": "flatten"} if name == "flatten" and len(out) == 1 else {
            "kind": "reshape", "shape": list(out)}
    if name in ("narrow", "select"):
        return {"kind": "slice", "shape": list(out)}
    if name in ELEMENTWISE_NAMES:
        return {"kind": "elementwise", "shape": list(out), "op": name}
    raise Unsupported(name)


def einsum_transposes(equation: str, operands: int) -> bool:
    """An einsum that is a batched matrix product of two tensors, (..., i, k) x (..., k, j) or
    (..., i, k) x (..., j, k) -> (..., i, j) with the same leading subscripts throughout (as
    MaxViT's attention writes it): whether its second operand is transposed; any other
    einsum is Unsupported."""
    eq = equation.replace(" ", "")
    inputs, _, out = eq.partition("->")
    parts = inputs.split(",")
    if operands != 2 or len(parts) != 2 or len(out) < 2 or "." in eq or len(set(out)) != len(out):
        raise Unsupported("einsum (not a batched matrix product of two tensors)")
    a, b = parts
    lead, i, j = out[:-2], out[-2], out[-1]
    k = a[-1] if len(a) == len(out) else ""
    if k in out or a != lead + i + k or b not in (lead + k + j, lead + j + k):
        raise Unsupported("einsum (not a batched matrix product of two tensors)")
    return b == lead + j + k


SWIN_ARGS = ("input", "qkv_weight", "proj_weight", "relative_position_bias", "window_size",
             "num_heads", "shift_size", "attention_dropout", "dropout", "qkv_bias", "proj_bias",
             "logit_scale", "training")


def _copy(op: str, shape: Shape, label: str = "") -> tuple[str, dict[str, Any], Shape]:
    return label or op, {"kind": "elementwise", "shape": list(shape), "op": op}, shape


def window_attention(args: dict[str, Any], shape: Shape,
                     qkv_out: int) -> list[tuple[str, dict[str, Any], Shape]]:
    """torchvision's `shifted_window_attention` (Swin; torch.fx keeps it one call) on a
    (H, W, C) sample, as the kernels its eager code runs, each with its output shape: the pad
    to whole windows, the cyclic shift and the partition into windows (copies); the qkv
    projection; the query's scale (V2: both normalised, and the logit scale), the relative
    position bias and, shifted, the mask added to the scores (elementwise kernels, priced
    here at the size of the qkv tensor: the score matrices they touch are not a layer's
    output); `attention` in every window; the output projection; the copies back. Each as
    (label, layer, output shape)."""
    h, w, c = shape
    (wh, ww), heads = (int(v) for v in args["window_size"]), int(args["num_heads"])
    if qkv_out != 3 * c or c % heads or args.get("attention_dropout") or args.get("dropout"):
        raise Unsupported("shifted_window_attention (qkv of another width, or dropout)")
    ph, pw = h + -h % wh, w + -w % ww
    # torchvision shifts only along an axis longer than its window
    shifted = any(int(s) and win < size for s, size, win in
                  zip(args.get("shift_size") or (0, 0), (ph, pw), (wh, ww), strict=True))
    windows, t = (ph // wh) * (pw // ww), wh * ww
    padded = (ph, pw) != (h, w)
    layers = [_copy("pad", (ph, pw, c))] if padded else []
    layers += [_copy("roll", (ph, pw, c))] if shifted else []
    layers += [_copy("window_partition", (windows, t, c)),
               ("qkv", {"kind": "linear", "out_features": 3 * c,
                        "bias": args.get("qkv_bias") is not None}, (windows, t, 3 * c))]
    cosine = args.get("logit_scale") is not None
    scores = ["normalize_q", "normalize_k", "logit_scale"] if cosine else ["scale_q"]
    layers += [_copy(op, (windows, t, 3 * c))
               for op in [*scores, "position_bias", *(["shift_mask"] if shifted else [])]]
    layers += [("attention", {"kind": "attention", "heads": heads, "implementation": "unfused"},
                (windows, t, c)),
               ("proj", {"kind": "linear", "out_features": c,
                         "bias": args.get("proj_bias") is not None}, (windows, t, c)),
               _copy("window_reverse", (ph, pw, c))]
    layers += [_copy("roll", (ph, pw, c), "roll_back")] if shifted else []
    return layers + ([_copy("unpad", (h, w, c))] if padded else [])


def _argument(node: Any, position: int, name: str) -> Any:
    return node.args[position] if len(node.args) > position else node.kwargs.get(name)


def _getitem(node: Any, shape: Shape, out: Shape) -> dict[str, Any]:
    """Indexing a tensor: a view; x[:, i] (one position of a sample's first axis, a class
    token) is `select`, a smaller part `slice`."""
    index = node.args[1]
    if math.prod(out) == math.prod(shape):
        return {"kind": "reshape", "shape": list(out)}
    if (isinstance(index, tuple) and len(index) == 2 and index[0] == slice(None)
            and isinstance(index[1], int) and out == shape[1:]):
        return {"kind": "select", "index": index[1] % shape[0]}
    return {"kind": "slice", "shape": list(out)}


def sdpa_arguments(node: Any) -> dict[str, Any]:
    """F.scaled_dot_product_attention's arguments by name (query, key and value: fx nodes,
    the same node more than once for self-attention)."""
    return {**dict(zip(SDPA_ARGS, node.args, strict=False)), **node.kwargs}


def sdpa(node: Any, shapes: list[Shape]) -> dict[str, Any]:
    """F.scaled_dot_product_attention(q, k, v) on (batch, heads, seq, head_dim) or (batch,
    seq, dim): one fused attention kernel (`flash`), as SDPA runs on a GPU."""
    args = sdpa_arguments(node)
    if args.get("attn_mask") is not None:
        raise Unsupported("scaled_dot_product_attention (attn_mask)")
    if len(shapes) != 3 or len(set(shapes)) != 1 or len(shapes[0]) not in (2, 3):
        raise Unsupported("scaled_dot_product_attention (keys or values of another shape "
                          "than the queries)")
    heads = shapes[0][0] if len(shapes[0]) == 3 else 1
    return {"kind": "attention", "heads": heads, "causal": bool(args.get("is_causal", False)),
            "implementation": "flash"}


def multihead_attention(mod: Any, node: Any,
                        shape_of: dict[Any, Shape]) -> list[dict[str, Any]]:
    """nn.MultiheadAttention: the input projection (one packed linear layer for
    self-attention, one per query, key and value otherwise), `attention` and the output
    projection. need_weights=False runs it as SDPA (`flash`); need_weights=True (the default)
    as the eager product-softmax-product that returns the weights (`unfused`). Each layer
    carries `part` (its name's suffix) and `source` (the fx node a projection reads)."""
    call = inspect.signature(mod.forward).bind(*node.args, **node.kwargs).arguments
    query, key, value = call["query"], call["key"], call["value"]
    causal = bool(call.get("is_causal", False))
    if call.get("key_padding_mask") is not None or (
            call.get("attn_mask") is not None and not causal):
        raise Unsupported("MultiheadAttention (attn_mask or key_padding_mask)")
    if mod.bias_k is not None or mod.add_zero_attn or not mod._qkv_same_embed_dim:
        raise Unsupported("MultiheadAttention (add_bias_kv, add_zero_attn or kdim/vdim)")
    need_weights = bool(call.get("need_weights", True))
    if need_weights and mod.dropout > 0:
        raise Unsupported("MultiheadAttention (dropout on the weights it returns)")
    if len({shape_of.get(query), shape_of.get(key), shape_of.get(value)}) != 1:
        raise Unsupported("MultiheadAttention (keys or values of another shape than the "
                          "queries)")
    d, bias = mod.embed_dim, mod.in_proj_bias is not None
    same = query is key is value
    parts = {"in_proj": query} if same else {"q_proj": query, "k_proj": key, "v_proj": value}
    proj = [{"kind": "linear", "out_features": (3 if same else 1) * d, "bias": bias,
             "part": part, "source": source} for part, source in parts.items()]
    impl = "unfused" if need_weights else "flash"
    return [*proj, {"kind": "attention", "heads": mod.num_heads, "causal": causal,
                    "implementation": impl, "part": ""},
            {"kind": "linear", "out_features": d, "bias": mod.out_proj.bias is not None,
             "part": "out_proj"}]

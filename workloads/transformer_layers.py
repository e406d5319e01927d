"""Transformer layer kinds and their cost formulas: embedding (token or position), layernorm,
gelu, tanh, softmax, matmul/bmm between activations, attention (unfused or flash), select
(one position of a sequence) and the output head tied to an embedding.

Shapes are per sample, sequence first: token ids are (T,), hidden states (T, d). Work is in
elements, as in `workloads.layers`. Attention takes the packed q, k, v of one linear layer
((T, 3d), GPT-2's c_attn) or three inputs of (T, d) (BERT's query, key and value), `heads`
heads of d / heads each. `implementation: unfused` runs it as PyTorch's eager code does:
S = Q K^T (scaled in the GEMM), a mask and softmax kernel, O = P V, and a copy that
transposes the heads back; every T x T score matrix goes through memory. `flash` is one
fused kernel (FlashAttention-2, Dao 2023): the same multiply-adds, scores never stored, a
causal mask skips half of them, and its backward recomputes S (five T x T x d/h products
instead of four) from the saved log-sum-exp.
"""

from __future__ import annotations

import math
from typing import Any

from workloads.layers import LayerCost, Shape, Work, elementwise, layer_kinds, linear_on_last
from workloads.ops import Gemm

IMPLEMENTATIONS = ("unfused", "flash")


def _one(shapes: list[Shape], kind: str) -> Shape:
    if len(shapes) != 1:
        raise ValueError(f"{kind} needs one input, got {len(shapes)}")
    return shapes[0]


@layer_kinds.register("embedding")
def embedding(shapes: list[Shape], args: dict[str, Any], batch: int) -> LayerCost:
    """A table lookup: token ids (any shape) -> one row of `embedding_dim` per id; with
    `position: true` the rows 0..T-1 for a sequence of T (one copy for the whole batch, which
    the add after it broadcasts). Backward: the rows' gradients are summed into the table's
    (zeroed first): PyTorch's embedding_dense_backward sorts the ids and adds per row."""
    shape = _one(shapes, "embedding")
    rows_n, dim = int(args["num_embeddings"]), int(args["embedding_dim"])
    table = rows_n * dim
    if args.get("position", False):
        if shape[0] > rows_n:
            raise ValueError(f"a sequence of {shape[0]} is longer than the {rows_n} positions "
                             "of the position embedding")
        n = shape[0] * dim
        fwd = Work("elementwise", 0.0, 0, n, n, weight_read=n, kernel="embedding")
        bwd = Work("reduction", float(batch * n), batch * n, 0, n, weight_write=table,
                   kernel="embedding_bwd")
        return LayerCost((shape[0], dim), table, fwd, None, bwd, 0.0)
    ids = batch * math.prod(shape)
    n = ids * dim
    fwd = Work("elementwise", 0.0, 0, n, n, weight_read=n, extra_bytes=8.0 * ids,
               kernel="embedding")
    bwd = Work("elementwise", float(n), n, 0, n, weight_write=table + n, kernels=3,
               extra_bytes=8.0 * 3 * ids, kernel="embedding_bwd")
    return LayerCost((*shape, dim), table, fwd, None, bwd, 0.0, saved_extra_bytes=8.0 * ids,
                     index_input=True)


@layer_kinds.register("layernorm")
def layernorm(shapes: list[Shape], args: dict[str, Any], batch: int) -> LayerCost:
    """Normalise over the last dimension with a learned scale and shift (2 x d parameters);
    autocast runs it in fp32. Backward: the input gradient, then the scale and shift
    gradients reduced over every row."""
    shape = _one(shapes, "layernorm")
    d, n = shape[-1], batch * math.prod(shape)
    rows = n // d
    fwd = Work("reduction", 8.0 * n, n, n, rows, weight_read=2 * d, extra_bytes=8.0 * rows,
               kernel="layernorm")
    bwd_data = Work("reduction", 10.0 * n, 2 * n, n, rows, weight_read=d,
                    extra_bytes=8.0 * rows, kernel="layernorm_bwd")
    bwd_weight = Work("reduction", 4.0 * n, 2 * n, 0, d, weight_write=2 * d, kernels=2,
                      kernel="layernorm_bwd")
    return LayerCost(shape, 2 * d, fwd, bwd_data, bwd_weight, float(n),
                     saved_extra_bytes=8.0 * rows, fp32=True)


def _activation(shapes: list[Shape], batch: int, kernel: str, flops: float) -> LayerCost:
    """An out-of-place elementwise function: backward reads the gradient and what it saved."""
    shape = _one(shapes, kernel)
    n = batch * math.prod(shape)
    fwd = elementwise(n, n, flops, n, kernel)
    bwd = elementwise(2 * n, n, flops, n, f"{kernel}_bwd")
    return LayerCost(shape, 0, fwd, bwd, None, float(n))


GELU_IMPLEMENTATIONS = ("fused", "unfused_tanh")


@layer_kinds.register("gelu")
def gelu(shapes: list[Shape], args: dict[str, Any], batch: int) -> LayerCost:
    """GELU (the tanh approximation GPT-2 and BERT use: about 8 flops an element).
    `implementation: fused` (default) is one kernel (F.gelu); `unfused_tanh` is Hugging Face's
    NewGELUActivation as eager PyTorch runs it, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715
    x^3))): eight elementwise kernels forward (pow, three scalar multiplies, two adds, tanh,
    a product), about ten backward, each through memory, in fp32 under autocast (the H200
    profile of GPT-2 shows <float> pow, tanh and multiply kernels: measurements/
    h200-torch-transformers-profiles.json)."""
    impl = args.get("implementation", "fused")
    if impl not in GELU_IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {', '.join(GELU_IMPLEMENTATIONS)}, "
                         f"got {impl!r}")
    if impl == "fused":
        return _activation(shapes, batch, "gelu", 8.0)
    shape = _one(shapes, "gelu")
    n = batch * math.prod(shape)
    # forward: 6 kernels read one tensor, 2 read two (the adds of x and of the product)
    fwd = Work("elementwise", 8.0 * n, 10 * n, 8 * n, n, kernels=8, kernel="gelu_unfused")
    bwd = Work("elementwise", 12.0 * n, 20 * n, 10 * n, n, kernels=10,
               kernel="gelu_unfused_bwd")
    # autograd keeps x, x^3 and the tanh of the chain for the backward pass
    return LayerCost(shape, 0, fwd, bwd, None, 3.0 * n, fp32=True)


@layer_kinds.register("tanh")
def tanh(shapes: list[Shape], args: dict[str, Any], batch: int) -> LayerCost:
    return _activation(shapes, batch, "tanh", 4.0)


@layer_kinds.register("softmax")
def softmax(shapes: list[Shape], args: dict[str, Any], batch: int) -> LayerCost:
    """Softmax over the last dimension (fp32 under autocast); backward reads its output."""
    shape = _one(shapes, "softmax")
    n = batch * math.prod(shape)
    rows = n // shape[-1]
    fwd = Work("reduction", 5.0 * n, n, n, rows, kernel="softmax")
    bwd = Work("reduction", 4.0 * n, 2 * n, n, rows, kernel="softmax_bwd")
    return LayerCost(shape, 0, fwd, bwd, None, float(n), fp32=True)


def _product(a: Shape, b: Shape, batch: int) -> tuple[Shape, Gemm, Gemm, Gemm]:
    """The output and the three GEMMs (forward, dA = dC B^T, dB = A^T dC) of a @ b."""
    if len(a) < 2 or len(b) < 2 or a[:-2] != b[:-2] or a[-1] != b[-2]:
        raise ValueError(f"matmul needs inputs (..., m, k) and (..., k, n) with the same "
                         f"leading dimensions, got {list(a)} and {list(b)}")
    (m, k), n, lead = a[-2:], b[-1], a[:-2]
    count = batch * math.prod(lead)
    return (*lead, m, n), Gemm(m, n, k, count), Gemm(m, k, n, count), Gemm(k, n, m, count)


@layer_kinds.register("matmul")
def matmul(shapes: list[Shape], args: dict[str, Any], batch: int) -> LayerCost:
    """A batched matrix product of two activations (torch.matmul / bmm): no weights; the
    backward is two products, one for each input's gradient."""
    if len(shapes) != 2:
        raise ValueError(f"matmul needs two inputs, got {len(shapes)}")
    a, b = shapes
    out, fwd_g, da, db = _product(a, b, batch)
    n_a, n_b, n_out = batch * math.prod(a), batch * math.prod(b), batch * math.prod(out)
    fwd = Work("gemm", fwd_g.flops, n_a + n_b, n_out, n_out, gemm=fwd_g, kernel="bmm")
    grad_b = Work("gemm", db.flops, n_a + n_out, n_b, n_b, gemm=db, kernel="bmm")
    bwd = Work("gemm", da.flops, n_out + n_b, n_a, n_a, gemm=da, epilogue=grad_b, kernel="bmm")
    return LayerCost(out, 0, fwd, bwd, None, float(n_a + n_b), lowp=True)



def _qkv(shapes: list[Shape], heads: int) -> tuple[int, int, bool, Shape]:
    """(T, d) of attention's inputs: one packed (..., T, 3d) (leading dimensions: groups
    attended to apart, Swin's windows), three of (T, d) (query, key and value), or three of
    (heads, T, d / heads) (the heads split off, as SDPA takes them); whether they are split;
    the leading dimensions."""
    split = len(shapes) == 3 and len(set(shapes)) == 1 and len(shapes[0]) == 3
    if split and shapes[0][0] != heads:
        raise ValueError(f"attention's inputs {list(shapes[0])} have {shapes[0][0]} heads, "
                         f"not heads={heads}")
    if split:
        t, d = shapes[0][1], heads * shapes[0][2]
    elif len(shapes) == 1 and len(shapes[0]) >= 2 and shapes[0][-1] % 3 == 0:
        t, d = shapes[0][-2], shapes[0][-1] // 3
    elif len(shapes) == 3 and all(len(s) == 2 for s in shapes) and len(set(shapes)) == 1:
        t, d = shapes[0]
    else:
        raise ValueError(f"attention needs one packed (..., seq, 3 x d) input, three (seq, d) "
                         f"inputs (query, key, value) or three (heads, seq, d / heads), got "
                         f"{[list(s) for s in shapes]}")
    if d % heads:
        raise ValueError(f"the width {d} is not divisible by heads={heads}")
    return t, d, split, shapes[0][:-2] if len(shapes) == 1 else ()


@layer_kinds.register("attention")
def attention(shapes: list[Shape], args: dict[str, Any], batch: int) -> LayerCost:
    """Multi-head scaled dot-product attention (no weights: the projections are linear
    layers before and after it); `causal` masks the future, `implementation` is `unfused`
    (default) or `flash`. Split heads in give split heads out (no copy back to (T, d))."""
    heads, causal = int(args["heads"]), bool(args.get("causal", False))
    impl = args.get("implementation", "unfused")
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"unknown implementation '{impl}'; valid: {', '.join(IMPLEMENTATIONS)}")
    t, d, split, lead = _qkv(shapes, heads)
    batch *= math.prod(lead)  # every group (window) attends on its own
    bh, dh = batch * heads, d // heads
    qkv, out = 3 * batch * t * d, batch * t * d
    out_shape = shapes[0] if split else (*lead, t, d)
    if impl == "flash":
        return _flash(out_shape, t, bh, dh, qkv, out, causal)
    scores = bh * t * t
    qk, pv = Gemm(t, t, dh, bh), Gemm(t, dh, t, bh)  # S = Q K^T, O = P V
    back = None if split else elementwise(out, out, 0, out, "transpose")  # heads to (T, d)
    fwd = Work("reduction", 5.0 * scores, scores * (2 if causal else 1), scores, bh * t,
               kernels=2 if causal else 1, kernel="softmax",
               prologue=Work("gemm", qk.flops, 2 * out, scores, scores, gemm=qk, kernel="bmm"),
               epilogue=Work("gemm", pv.flops, scores + out, out, out, gemm=pv, kernel="bmm",
                             epilogue=back))
    # dP = dO V^T and dV = P^T dO; the softmax backward; dQ = dS K and dK = dS^T Q
    d_p = Work("gemm", qk.flops, 2 * out, scores, scores, gemm=qk, kernel="bmm")
    d_v = Work("gemm", pv.flops, scores + out, out, out, gemm=Gemm(t, dh, t, bh), kernel="bmm",
               prologue=d_p)
    d_k = Work("gemm", pv.flops, scores + out, out, out, gemm=Gemm(t, dh, t, bh), kernel="bmm")
    d_q = Work("gemm", pv.flops, scores + out, out, out, gemm=Gemm(t, dh, t, bh), kernel="bmm",
               epilogue=d_k)
    bwd = Work("reduction", 4.0 * scores, 2 * scores, scores, bh * t, kernel="softmax_bwd",
               prologue=d_v, epilogue=d_q)
    # autograd keeps q, k, v (the linear's output) and the fp32 probabilities
    return LayerCost(out_shape, 0, fwd, bwd, None, float(qkv), saved_extra_bytes=4.0 * scores,
                     lowp=True)


def _flash(out_shape: Shape, t: int, bh: int, dh: int, qkv: int, out: int,
           causal: bool) -> LayerCost:
    """One fused kernel: blocks of queries per SM, looping over the keys (half of them under
    a causal mask); the GEMM shape is the T x d/h output per head with a K of 2T (QK^T and
    PV) forward and 5T backward, so the tile model sees its parallelism and work."""
    half = 2 if causal else 1
    fwd_g, bwd_g = Gemm(t, dh, 2 * t // half, bh), Gemm(t, dh, 5 * t // half, bh)
    lse = 4.0 * bh * t  # the fp32 log-sum-exp of each row, saved for the backward
    fwd = Work("gemm", fwd_g.flops, qkv, out, out, gemm=fwd_g, extra_bytes=lse,
               kernel="flash_attention")
    # a kernel for rowsum(dO * O), then the main one, which writes dQ, dK and dV
    bwd = Work("gemm", bwd_g.flops, qkv + 2 * out, qkv, qkv, gemm=bwd_g, kernels=2,
               extra_bytes=2 * lse, kernel="flash_attention_bwd")
    return LayerCost(out_shape, 0, fwd, bwd, None, float(qkv + out), saved_extra_bytes=lse,
                     lowp=True)


@layer_kinds.register("select")
def select(shapes: list[Shape], args: dict[str, Any], batch: int) -> LayerCost:
    """One position of the first dimension (BERT's pooler takes the first token): a view;
    its backward writes the whole input gradient (zeros but one position)."""
    shape = _one(shapes, "select")
    index = int(args.get("index", 0))
    if len(shape) < 2 or not 0 <= index < shape[0]:
        raise ValueError(f"select index {index} needs an input of at least two dimensions "
                         f"and more than {index} positions, got {list(shape)}")
    n = batch * math.prod(shape)
    bwd = elementwise(0, n, 0, n, "select_bwd")
    return LayerCost(shape[1:], 0, None, bwd, None, 0.0)


@layer_kinds.register("tied_linear")
def tied_linear(shapes: list[Shape], args: dict[str, Any], batch: int) -> LayerCost:
    """An output head whose weight is an embedding's (`tied_to`, GPT-2's lm_head): a linear
    layer on the last dimension without a bias or parameters of its own, whose weight
    gradient is added to the embedding's."""
    return linear_on_last(shapes, args, batch, tied=True)

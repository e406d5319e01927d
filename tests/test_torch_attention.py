"""torch.fx import of attention: nn.MultiheadAttention (batch first or not, with or without
the weights it returns) and F.scaled_dot_product_attention on split heads come in with
torch's parameter counts and the FLOPs and bytes of the same network written with our own
`attention` layer; ViT-B/16 from torchvision the same. Patterns still without a formula are
one line naming them."""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from torch_helpers import torch_params  # noqa: E402

from simulator.core.errors import UserError  # noqa: E402
from workloads.builder import build_graph  # noqa: E402
from workloads.importers import per_sample, resolve_model  # noqa: E402
from workloads.model_def import parse_model  # noqa: E402

T, D, HEADS = 12, 64, 4

USER_FILE = textwrap.dedent(f'''
    import torch
    import torch.nn.functional as F
    from torch import nn

    T, D, HEADS = {T}, {D}, {HEADS}


    class Block(nn.Module):
        """Layer norm, self-attention through nn.MultiheadAttention, residual, head."""

        def __init__(self, batch_first, need_weights, cross=False, **call):
            super().__init__()
            self.batch_first, self.need_weights, self.cross, self.call = (
                batch_first, need_weights, cross, call)
            self.ln = nn.LayerNorm(D)
            self.attn = nn.MultiheadAttention(D, HEADS, batch_first=batch_first)
            self.head = nn.Linear(D, 10)

        def forward(self, x):
            y = self.ln(x)
            if not self.batch_first:
                y = y.transpose(0, 1)  # (seq, batch, d)
            kv = torch.tanh(y) if self.cross else y
            out, _ = self.attn(y, kv, kv, need_weights=self.need_weights, **self.call)
            if not self.batch_first:
                out = out.transpose(0, 1)
            return self.head(out + x)


    class WeightsUsed(Block):
        def forward(self, x):
            out, weights = self.attn(x, x, x)
            return self.head(out) + weights.sum()


    class Sdpa(nn.Module):
        """GPT-style attention on split heads through F.scaled_dot_product_attention."""

        def __init__(self):
            super().__init__()
            self.qkv = nn.Linear(D, 3 * D)
            self.proj = nn.Linear(D, D)

        def forward(self, x):
            b, t, d = x.shape
            q, k, v = self.qkv(x).view(b, t, 3, HEADS, d // HEADS).permute(2, 0, 3, 1, 4)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.proj(y.transpose(1, 2).reshape(b, t, d))


    class SdpaMasked(Sdpa):
        def __init__(self):
            super().__init__()
            self.register_buffer("mask", torch.ones(T, T, dtype=torch.bool))

        def forward(self, x):
            q = x.view(x.shape[0], T, HEADS, D // HEADS).transpose(1, 2)
            return F.scaled_dot_product_attention(q, q, q, attn_mask=self.mask)


    def mha(batch_first, need_weights):
        return lambda: (Block(batch_first, need_weights), [T, D])


    first_fused, first_weights = mha(True, False), mha(True, True)
    second_fused, second_weights = mha(False, False), mha(False, True)


    def cross():
        return Block(True, False, cross=True), [T, D]


    def masked():
        return Block(True, False, attn_mask=torch.zeros(T, T, dtype=torch.bool)), [T, D]


    def weights_used():
        return WeightsUsed(True, True), [T, D]


    def sdpa():
        return Sdpa(), [T, D]


    def sdpa_masked():
        return SdpaMasked(), [T, D]
''')


@pytest.fixture(scope="module")
def user_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("attention") / "attention_models.py"
    path.write_text(USER_FILE)
    return path



def _same_block(implementation: str, packed: bool = True) -> dict:
    """The Block written with our own layers: the projections are linear layers around
    an `attention` layer (the transposes of batch_first=False are views)."""
    if packed:
        projections = [{"name": "in_proj", "kind": "linear", "out_features": 3 * D}]
        into = ["in_proj"]
    else:
        projections = [{"name": "kv", "kind": "tanh", "inputs": ["ln"]},
                       {"name": "q", "kind": "linear", "out_features": D, "inputs": ["ln"]},
                       {"name": "k", "kind": "linear", "out_features": D, "inputs": ["kv"]},
                       {"name": "v", "kind": "linear", "out_features": D, "inputs": ["kv"]}]
        into = ["q", "k", "v"]
    return {"name": "block", "input_shape": [T, D], "layers": [
        {"name": "ln", "kind": "layernorm"}, *projections,
        {"name": "attn", "kind": "attention", "heads": HEADS, "inputs": into,
         "implementation": implementation},
        {"name": "out_proj", "kind": "linear", "out_features": D},
        {"name": "res", "kind": "add", "inputs": ["out_proj", "input"]},
        {"name": "head", "kind": "linear", "out_features": 10}]}


def _same_cost(imported, ours) -> None:
    for mode in ("train", "infer"):
        a, b = build_graph(imported, 2, mode, "bf16"), build_graph(ours, 2, mode, "bf16")
        assert (a.params, a.flops, a.bytes) == (b.params, b.flops, b.bytes), mode


@pytest.mark.parametrize("factory, implementation", [
    ("first_fused", "flash"), ("first_weights", "unfused"),
    ("second_fused", "flash"), ("second_weights", "unfused"),
])
def test_multihead_attention_costs_what_our_attention_costs(user_file, factory,
                                                            implementation):
    model = resolve_model(f"{user_file}:{factory}")
    (attn,) = [layer for layer in model.layers if layer.kind == "attention"]
    assert (attn.heads, attn.implementation, attn.causal) == (HEADS, implementation, False)
    ours = parse_model(_same_block(implementation), "test")
    assert build_graph(model, 1, "infer").params == torch_params(user_file, factory)
    _same_cost(model, ours)


def test_cross_attention_projects_query_key_and_value_apart(user_file):
    model = resolve_model(f"{user_file}:cross")
    assert build_graph(model, 1, "infer").params == torch_params(user_file, "cross")
    _same_cost(model, parse_model(_same_block("flash", packed=False), "test"))


def test_sdpa_on_split_heads_is_one_fused_causal_attention(user_file):
    model = resolve_model(f"{user_file}:sdpa")
    (attn,) = [layer for layer in model.layers if layer.kind == "attention"]
    assert (attn.heads, attn.implementation, attn.causal) == (HEADS, "flash", True)
    assert build_graph(model, 1, "infer").params == torch_params(user_file, "sdpa")
    # the same attention on the packed (seq, 3 x d) output of the same linear layer
    packed = parse_model({"name": "gpt", "input_shape": [T, D], "layers": [
        {"name": "qkv", "kind": "linear", "out_features": 3 * D},
        {"name": "attn", "kind": "attention", "heads": HEADS, "causal": True,
         "implementation": "flash"},
        {"name": "proj", "kind": "linear", "out_features": D}]}, "test")
    a, b = build_graph(model, 2, "train", "bf16"), build_graph(packed, 2, "train", "bf16")
    for phase in ("fwd", "bwd_data"):
        ours, theirs = a.op(f"{attn.name}.{phase}"), b.op(f"attn.{phase}")
        assert (ours.flops, ours.gemm) == (theirs.flops, theirs.gemm) and ours.flops > 0
    infer = build_graph(model, 2, "infer", "bf16")
    assert infer.flops == build_graph(packed, 2, "infer", "bf16").flops  # views: no FLOPs


@pytest.mark.parametrize("factory, message", [
    ("masked", r"MultiheadAttention \(attn_mask or key_padding_mask\) x1"),
    ("weights_used", r"MultiheadAttention \(its attention weights used\) x1"),
    ("sdpa_masked", r"scaled_dot_product_attention \(attn_mask\) x1"),
])
def test_unsupported_attention_patterns_are_named(user_file, factory, message, cli):
    with pytest.raises(UserError, match="unsupported operators: " + message):
        resolve_model(f"{user_file}:{factory}")
    out = cli("predict", "--model", f"{user_file}:{factory}", "--hardware", "h100-sxm")
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("one, two, sample", [
    ((1, 12, 64), (2, 12, 64), (12, 64)),  # batch first
    ((12, 1, 64), (12, 2, 64), (12, 64)),  # batch second (batch_first=False)
    ((12, 64), (24, 64), (12, 64)),  # the batch folded into the rows
    ((12, 64), (12, 64), None),  # no batch: a parameter
    ((1, 12, 1), (2, 12, 2), None),  # two axes follow the batch
])
def test_the_batch_axis_is_the_one_that_doubles(one, two, sample):
    assert per_sample(one, two) == sample


def _vit_b_16_as_layers() -> dict:
    """ViT-B/16 written with our own layers (torchvision's module names)."""
    d, tokens = 768, 197
    layers = [{"name": "conv_proj", "kind": "conv2d", "out_channels": d, "kernel": 16,
               "stride": 16},
              {"name": "reshape", "kind": "reshape", "shape": [d, 196]},
              {"name": "permute", "kind": "reshape", "shape": [196, d]},
              {"name": "cat", "kind": "elementwise", "shape": [tokens, d], "params": d},
              {"name": "add", "kind": "elementwise", "shape": [tokens, d],
               "params": tokens * d}]
    last = "add"  # torchvision's dropouts have p = 0: no kernel
    for i in range(12):
        p = f"encoder.layers.encoder_layer_{i}."
        layers += [
            {"name": p + "ln_1", "kind": "layernorm", "inputs": [last]},
            {"name": p + "in_proj", "kind": "linear", "out_features": 3 * d},
            {"name": p + "self_attention", "kind": "attention", "heads": 12,
             "implementation": "flash"},
            {"name": p + "out_proj", "kind": "linear", "out_features": d},
            {"name": p + "add1", "kind": "add", "inputs": [p + "out_proj", last]},
            {"name": p + "ln_2", "kind": "layernorm"},
            {"name": p + "mlp.0", "kind": "linear", "out_features": 4 * d},
            {"name": p + "mlp.1", "kind": "gelu"},
            {"name": p + "mlp.3", "kind": "linear", "out_features": d},
            {"name": p + "add2", "kind": "add", "inputs": [p + "mlp.3", p + "add1"]}]
        last = p + "add2"
    layers += [{"name": "encoder.ln", "kind": "layernorm"},
               {"name": "class_token", "kind": "select", "index": 0},
               {"name": "heads.head", "kind": "linear", "out_features": 1000}]
    return {"name": "vit_b_16", "input_shape": [3, 224, 224], "layers": layers}


def test_vit_b_16_through_fx_has_torchs_parameters_and_our_attention(torchvision):
    imported = resolve_model("torchvision:vit_b_16")
    vit = torchvision.models.vit_b_16(weights=None)
    expected = sum(p.numel() for p in vit.parameters())
    attention = [layer for layer in imported.layers if layer.kind == "attention"]
    assert [(a.heads, a.implementation) for a in attention] == [(12, "flash")] * 12
    ours = parse_model(_vit_b_16_as_layers(), "test")
    for mode in ("train", "infer"):
        a, b = build_graph(imported, 2, mode, "bf16"), build_graph(ours, 2, mode, "bf16")
        assert a.params == b.params == expected
        assert (a.flops, a.bytes) == (b.flops, b.bytes)

"""Transformer layer kinds (their formulas and invariants) and the catalog's GPT-2 and BERT
models: parameter counts of the reference implementations, sequence length as a workload
parameter, AdamW, and bad input."""

from __future__ import annotations

import json

import pytest

import simulator
from simulator.core.errors import UserError
from workloads.builder import build_graph
from workloads.model_def import load_model, parse_model
from workloads.optimizers import get_optimizer
from workloads.resolve import resolve_layers
from workloads.transformer_layers import attention, embedding, layernorm, matmul, softmax

# sum(p.numel() for p in model.parameters()) of Hugging Face's GPT2LMHeadModel (gpt2,
# gpt2-medium: the tied lm_head counted once) and BertModel (bert-base-uncased, pooler)
REFERENCE_PARAMS = {"gpt2": 124_439_808, "gpt2-medium": 354_823_168, "bert-base": 109_482_240}


def _params(model) -> int:
    return sum(layer.cost.params for layer in resolve_layers(model, 1))


@pytest.mark.parametrize("name", sorted(REFERENCE_PARAMS))
def test_parameter_counts_match_the_reference_implementations(name):
    assert _params(load_model(name)) == REFERENCE_PARAMS[name]


def test_gpt2_output_is_a_distribution_per_token_and_its_head_is_tied():
    layers = resolve_layers(load_model("gpt2").with_seq_len(128), 2)
    assert layers[-1].cost.out_shape == (128, 50257)
    assert layers[-1].kind == "tied_linear" and layers[-1].cost.params == 0
    assert layers[0].cost.params == 50257 * 768


def _chain(work):
    """A pass's kernels in launch order (prologues and epilogues nested)."""
    if work is None:
        return []
    return [*_chain(work.prologue), work, *_chain(work.epilogue)]


def _flops(work, kind: str | None = None) -> float:
    return sum(w.flops for w in _chain(work) if kind is None or w.kind == kind)


QKV = [(1024, 3 * 768)]


def test_unfused_attention_is_two_batched_products_around_a_softmax():
    cost = attention(QKV, {"heads": 12}, batch=2)
    kinds = [(w.kind, w.kernel) for w in _chain(cost.fwd)]
    assert kinds == [("gemm", "bmm"), ("reduction", "softmax"), ("gemm", "bmm"),
                     ("elementwise", "transpose")]
    # Q K^T and P V: 2 x (2 T^2 d) per sample, whatever the heads
    assert _flops(cost.fwd, "gemm") == 2 * 2 * 2 * 1024 * 1024 * 768
    assert _flops(cost.bwd_data, "gemm") == 2 * _flops(cost.fwd, "gemm")
    assert cost.out_shape == (1024, 768) and cost.params == 0 and cost.bwd_weight is None


def test_flash_attention_skips_the_score_matrix_and_half_of_it_when_causal():
    unfused = attention(QKV, {"heads": 12}, batch=2)
    flash = attention(QKV, {"heads": 12, "implementation": "flash"}, batch=2)
    causal = attention(QKV, {"heads": 12, "implementation": "flash", "causal": True}, batch=2)
    assert len(_chain(flash.fwd)) == 1 and flash.fwd.kernel == "flash_attention"
    assert flash.fwd.flops == _flops(unfused.fwd, "gemm")
    assert flash.fwd.flops == flash.fwd.gemm.flops and causal.fwd.flops == flash.fwd.flops / 2
    assert flash.bwd_data.flops == 2.5 * flash.fwd.flops  # S recomputed: 5 products, not 4
    moved = sum(w.act_read + w.act_write for w in _chain(unfused.fwd))
    assert flash.fwd.act_read + flash.fwd.act_write < moved / 10
    # the unfused mask costs a pass over the scores; its products stay whole
    masked = attention(QKV, {"heads": 12, "causal": True}, batch=2)
    assert _flops(masked.fwd, "gemm") == _flops(unfused.fwd, "gemm")
    assert masked.fwd.kernels == 2


def test_attention_takes_three_inputs_like_one_packed():
    three = attention([(64, 256)] * 3, {"heads": 4}, batch=3)
    packed = attention([(64, 768)], {"heads": 4}, batch=3)
    assert _flops(three.fwd) == _flops(packed.fwd) and three.out_shape == (64, 256)


@pytest.mark.parametrize("implementation", ["unfused", "flash"])
def test_attention_on_split_heads_keeps_them_split(implementation):
    """Three (heads, seq, head_dim) inputs, as SDPA takes them: the packed layer's products
    and softmax, no copy of the heads back to (seq, d), split heads out."""
    args = {"heads": 4, "implementation": implementation}
    split = attention([(4, 64, 64)] * 3, args, batch=3)
    packed = attention([(64, 768)], args, batch=3)
    assert split.out_shape == (4, 64, 64) and _flops(split.fwd) == _flops(packed.fwd)
    assert split.bwd_data == packed.bwd_data
    copies = 0 if implementation == "flash" else 1  # the transpose after P V
    kernels = [sum(w.kernels for w in _chain(c.fwd)) for c in (packed, split)]
    assert kernels[0] - kernels[1] == copies


@pytest.mark.parametrize("implementation", ["unfused", "flash"])
def test_attention_in_groups_is_attention_on_a_larger_batch(implementation):
    """A packed (..., seq, 3 x d) input: every group (Swin's windows) attends on its own."""
    args = {"heads": 3, "implementation": implementation}
    windows = attention([(2, 4, 49, 288)], args, batch=3)
    flat = attention([(49, 288)], args, batch=24)
    assert windows.out_shape == (2, 4, 49, 96)
    assert (windows.fwd, windows.bwd_data, windows.saved_elems) == (
        flat.fwd, flat.bwd_data, flat.saved_elems)


@pytest.mark.parametrize("shapes, args, message", [
    ([(64, 768)], {"heads": 5}, "not divisible by heads=5"),
    ([(64, 700)], {"heads": 4}, "packed"),
    ([(64, 256), (64, 256)], {"heads": 4}, "three"),
    ([(64, 768)], {"heads": 4, "implementation": "magic"}, "unknown implementation"),
    ([(2, 64, 32)] * 3, {"heads": 4}, "have 2 heads, not heads=4"),
    ([(4, 64, 32), (4, 32, 32), (4, 64, 32)], {"heads": 4}, "three"),
])
def test_attention_refuses_bad_shapes(shapes, args, message):
    with pytest.raises(ValueError, match=message):
        attention(shapes, args, batch=1)


def test_matmul_between_activations():
    cost = matmul([(12, 64, 32), (12, 32, 16)], {}, batch=2)
    assert cost.out_shape == (12, 64, 16) and cost.params == 0
    assert cost.fwd.gemm.batch == 24 and cost.fwd.flops == 2 * 24 * 64 * 16 * 32
    assert _flops(cost.bwd_data) == 2 * cost.fwd.flops  # one product per input's gradient
    with pytest.raises(ValueError, match="same leading dimensions"):
        matmul([(12, 64, 32), (12, 16, 16)], {}, batch=1)


def test_embedding_layernorm_softmax_formulas():
    tok = embedding([(128,)], {"num_embeddings": 1000, "embedding_dim": 64}, batch=4)
    assert tok.out_shape == (128, 64) and tok.params == 64_000 and tok.bwd_data is None
    assert tok.index_input and tok.fwd.flops == 0 and tok.fwd.act_write == 4 * 128 * 64
    pos = embedding([(128,)], {"num_embeddings": 256, "embedding_dim": 64, "position": True},
                    batch=4)
    assert pos.fwd.act_write == 128 * 64  # one copy for the whole batch
    with pytest.raises(ValueError, match="longer than the 100 positions"):
        embedding([(128,)], {"num_embeddings": 100, "embedding_dim": 64, "position": True}, 1)
    norm = layernorm([(128, 64)], {}, batch=4)
    assert norm.params == 128 and norm.fp32 and norm.fwd.work_items == 4 * 128
    soft = softmax([(12, 128, 128)], {}, batch=2)
    assert soft.fp32 and soft.fwd.work_items == 2 * 12 * 128


def test_flash_attention_is_faster_on_a_gpu_and_memory_holds_less():
    def step(impl: str) -> dict:
        model = {"name": "attn", "input_shape": [1024, 2304], "layers": [
            {"name": "sdpa", "kind": "attention", "heads": 12, "causal": True,
             "implementation": impl},
            {"name": "proj", "kind": "linear", "out_features": 768}]}
        return simulator.predict(model, "h100-sxm", batch=8, precision="bf16", input="device")

    flash, unfused = step("flash"), step("unfused")
    assert flash["step_time_s"] < unfused["step_time_s"]
    assert flash["memory_peak_bytes"] < unfused["memory_peak_bytes"]


def test_seq_len_scales_the_work_of_a_sequence_model():
    short = build_graph(load_model("gpt2").with_seq_len(256), 2, "train", "bf16", "adamw")
    full = build_graph(load_model("gpt2"), 2, "train", "bf16", "adamw")
    assert short.params == full.params == REFERENCE_PARAMS["gpt2"]
    assert 3.5 < full.flops / short.flops < 4.5  # linear layers x4, attention x16


def test_training_a_transformer_issues_every_pass():
    g = build_graph(load_model("gpt2").with_seq_len(64), 2, "train", "bf16", "adamw")
    phases = {(op.layer, op.phase) for op in g.ops()}
    assert ("transformer.h.0.attn.sdpa", "bwd_data") in phases
    assert ("transformer.h.0.ln_1", "bwd_weight") in phases
    assert ("transformer.wte", "bwd_weight") in phases and ("lm_head", "bwd_weight") in phases
    assert not any(op.name == "input.cast" for op in g.ops())  # token ids are not cast
    assert g.op("optimizer.step").attr("tensors") == 148  # torch's GPT2LMHeadModel: 148


def test_adamw_is_adam_plus_decoupled_weight_decay():
    adam, adamw = get_optimizer("adam"), get_optimizer("adamw")
    assert adamw.foreach_ops == adam.foreach_ops + 1 and adamw.state_per_param == 2


def test_cli_predicts_gpt2_training_with_seq_len(cli):
    out = cli("predict", "--model", "gpt2", "--hardware", "h100-sxm", "--batch", "8",
              "--seq-len", "512", "--precision", "bf16", "--optimizer", "adamw", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result == simulator.predict("gpt2", "h100-sxm", batch=8, seq_len=512,
                                       precision="bf16", optimizer="adamw")
    assert result["status"] == "ok" and result["step_time_s"] > 0


@pytest.mark.parametrize("args, message", [
    (["--model", "vgg16", "--seq-len", "16"], "--seq-len: model vgg16 has no sequence dimension"),
    (["--model", "gpt2", "--seq-len", "0"], "--seq-len: must be greater than 0"),
    (["--model", "gpt2", "--seq-len", "2048"], "longer than the 1024 positions"),
    (["--model", "gpt2", "--seq-len", str(2**21)], "--seq-len: must be less than or equal"),
])
def test_bad_seq_len_is_one_line(cli, args, message):
    out = cli("predict", *args, "--hardware", "h100-sxm")
    assert out.returncode == 2 and message in out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


def test_seq_len_in_a_model_file_and_its_problems():
    base = {"name": "m", "input_shape": ["seq_len"], "layers": [
        {"name": "tok", "kind": "embedding", "num_embeddings": 10, "embedding_dim": 4}]}
    with pytest.raises(UserError, match="seq_len: input_shape has seq_len: give seq_len"):
        parse_model(base, "m.yaml")
    model = parse_model({**base, "seq_len": 32}, "m.yaml")
    assert model.shape == (32,) and model.with_seq_len(7).shape == (7,)
    with pytest.raises(UserError, match="seq_len is the default of a seq_len dimension"):
        parse_model({**base, "input_shape": [5], "seq_len": 32}, "m.yaml")


@pytest.mark.parametrize("head, message", [
    ({"tied_to": "nowhere", "out_features": 10}, "not an earlier token embedding"),
    ({"tied_to": "tok", "out_features": 11}, "differs from the 10 rows"),
])
def test_a_tied_head_names_its_embedding(head, message):
    data = {"name": "m", "input_shape": ["seq_len"], "seq_len": 8, "layers": [
        {"name": "tok", "kind": "embedding", "num_embeddings": 10, "embedding_dim": 4},
        {"name": "head", "kind": "tied_linear", **head}]}
    with pytest.raises(UserError, match=message):
        parse_model(data, "m.yaml")

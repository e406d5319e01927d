"""The GEMM alignment rule (a tensor-core product whose feature sizes are not multiples of 16
bytes runs the library's narrow-load kernels), its fit from products timed alone
(`calibrate-alignment`), and Hugging Face's unfused GELU of GPT-2."""

from __future__ import annotations

import json

import pytest

from hardware_models.catalog_io import build_device, load_spec
from hardware_models.profile import Profile
from simulator.calibrate.gemm_alignment import fit_alignment, run_calibrate_alignment
from simulator.core.errors import UserError
from workloads.builder import build_graph
from workloads.layers import alignment, linear
from workloads.model_def import load_model, parse_model

PROFILE = Profile(device="h200", origin="test", gemm_efficiency={"bf16": 0.8, "fp32": 0.8},
                  gemm_alignment_efficiency={"2": 0.2, "4": 0.4})


def test_alignment_is_the_largest_power_of_two_dividing_every_size():
    assert alignment(768, 50304) == 64
    assert alignment(768, 50257) == 1
    assert alignment(768, 30522) == 2
    assert alignment(1024, 2304) == 64 and alignment(12, 8) == 4


def _head_op(vocab: int, dtype_precision: str):
    cost = linear([(512, 768)], {"out_features": vocab, "bias": False}, 32)
    from simulator.calibrate.conv_layers import layer_ops
    return layer_ops(cost.fwd, dtype_precision)[0]


@pytest.mark.parametrize(("vocab", "factor"), [(50257, 0.2), (30522, 0.4), (50304, 1.0)])
def test_a_misaligned_tensor_core_product_runs_at_its_alignment_factor(vocab, factor):
    h200 = build_device(load_spec("h200"), PROFILE)
    plain = build_device(load_spec("h200"),
                         PROFILE.model_copy(update={"gemm_alignment_efficiency": {}}))
    op = _head_op(vocab, "bf16")
    assert op.dtype == "bf16"
    main_loops = plain.gemm_s(op.gemm, "bf16")
    store = plain.op_cost(op).compute_s - main_loops
    assert h200.op_cost(op).compute_s == pytest.approx(store + main_loops / factor, rel=1e-9)


def test_the_fp32_units_do_not_care_about_alignment():
    h200 = build_device(load_spec("h200"), PROFILE)
    plain = build_device(load_spec("h200"),
                         PROFILE.model_copy(update={"gemm_alignment_efficiency": {}}))
    op = _head_op(50257, "fp32")
    assert op.dtype == "fp32"
    assert h200.op_cost(op).compute_s == plain.op_cost(op).compute_s


def _file(factors: dict[int, float]) -> dict:
    """Products as a GPU with these factors (by bytes) would time them."""
    records = []
    for n, k in ((50304, 768), (50257, 768), (30528, 768), (30522, 768), (2304, 768)):
        flops = 2.0 * 4096 * n * k
        rate = 600e12 * factors.get(alignment(n, k) * 2, 1.0)
        records.append({"m": 4096, "n": n, "k": k, "dtype": "bf16", "layout": "linear",
                        "status": "ok", "median_s": flops / rate})
        records.append({"m": 4096, "n": n, "k": k, "dtype": "fp32", "layout": "linear",
                        "status": "ok", "median_s": flops / 50e12})
    return {"schema": "simulator.gemm-alignment/1", "records": records}


def test_the_fit_recovers_the_factors_the_times_were_made_with(tmp_path):
    path = tmp_path / "gemm.json"
    assert fit_alignment(_file({2: 0.17, 4: 0.37}), path) == {
        "2": pytest.approx(0.17), "4": pytest.approx(0.37)}
    path.write_text(json.dumps(_file({2: 0.17, 4: 0.37})))
    out = tmp_path / "profile.yaml"
    run_calibrate_alignment(str(path), "h100-sxm", str(out))
    assert "gemm_alignment_efficiency" in out.read_text()
    path.write_text('{"schema": "other", "records": []}')
    with pytest.raises(UserError, match="schema"):
        run_calibrate_alignment(str(path), "h100-sxm", str(tmp_path / "x.yaml"))
    path.write_text(json.dumps({"schema": "simulator.gemm-alignment/1", "records": []}))
    with pytest.raises(UserError, match="no misaligned"):
        run_calibrate_alignment(str(path), "h100-sxm", str(tmp_path / "x.yaml"))
    assert not (tmp_path / "x.yaml").exists()


def test_gpt2_runs_hugging_faces_gelu_as_eight_fp32_kernels():
    graph = build_graph(load_model("gpt2").with_seq_len(64), 2, "train", "bf16",
                        input_place="device")
    act = graph.op("transformer.h.0.mlp.act.fwd")
    assert act.kernels == 8 and act.dtype == "fp32"
    n = 2 * 64 * 3072
    assert act.bytes == pytest.approx(18 * n * 4)
    bert = build_graph(load_model("bert-base").with_seq_len(64), 2, "train", "bf16",
                       input_place="device")
    assert bert.op("encoder.layer.0.intermediate.act.fwd").kernels == 1  # F.gelu, fused


def test_a_gelu_implementation_that_does_not_exist_is_named():
    model = {"name": "m", "input_shape": [4, 8],
             "layers": [{"name": "act", "kind": "gelu", "implementation": "flash"}]}
    with pytest.raises(UserError, match="fused, unfused_tanh"):
        build_graph(parse_model(model, "m.yaml"), 1, "infer", "fp32")


def test_autocast_keeps_the_residual_stream_fp32_and_casts_before_each_product():
    """autocast's dtypes flow through the graph: layer norm hands on fp32, a product casts
    its fp32 input down (every call), an add promotes to its widest input, an fp32 layer
    (the unfused GELU) casts its bf16 input up; a CNN has no activation casts at all."""
    graph = build_graph(load_model("gpt2").with_seq_len(64), 2, "train", "bf16",
                        input_place="device")
    n = 2 * 64 * 768
    cast = graph.op("transformer.h.0.attn.c_attn.input_cast0")
    assert cast.attr("kernel") == "cast"
    assert (cast.bytes_read, cast.bytes_written) == (4 * n, 2 * n)
    assert graph.op("transformer.h.0.add_1.fwd").bytes_written == 4 * n  # fp32 residual
    up = graph.op("transformer.h.0.mlp.act.input_cast0")
    assert (up.bytes_read, up.bytes_written) == (2 * 4 * n, 4 * 4 * n)  # 3072 = 4 x 768 wide
    assert "transformer.h.0.attn.c_attn.grad_cast_in0" in graph.order  # its backward
    cnn = build_graph(load_model("resnet18"), 2, "train", "bf16", input_place="device")
    assert not [name for name in cnn.order if ".input_cast" in name]
    fp32 = build_graph(load_model("gpt2").with_seq_len(64), 2, "train", "fp32",
                       input_place="device")
    assert not [name for name in fp32.order if "cast" in name]


@pytest.mark.parametrize(("field", "value", "message"), [
    ("median_s", "x", "records\\[0\\].median_s: must be a positive number"),
    ("median_s", -1.0, "records\\[0\\].median_s"),
    ("n", 2.5, "records\\[0\\].n: must be a whole number"),
    ("k", True, "records\\[0\\].k"),
])
def test_a_bad_record_is_named_by_index_and_field(tmp_path, field, value, message):
    data = _file({2: 0.2})
    data["records"][0][field] = value
    path = tmp_path / "gemm.json"
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match=message):
        run_calibrate_alignment(str(path), "h100-sxm", str(tmp_path / "x.yaml"))
    assert not (tmp_path / "x.yaml").exists()

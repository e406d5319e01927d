"""ONNX import: small models built here with onnx.helper come in with the parameter and FLOP
totals of the same network written as layers; symbolic sizes, unsupported operators and bad
files give one clear line."""

from __future__ import annotations

import json
import warnings

import pytest

onnx = pytest.importorskip("onnx")
np = pytest.importorskip("numpy")
from onnx import TensorProto, numpy_helper  # noqa: E402
from onnx import helper as h  # noqa: E402

import simulator  # noqa: E402
from simulator.core.errors import UserError  # noqa: E402
from workloads.builder import build_graph, resolve_layers  # noqa: E402
from workloads.importers import ModelWarning, resolve_model  # noqa: E402
from workloads.model_def import parse_model  # noqa: E402


def _weight(name: str, *shape: int, dtype=np.float32):
    return numpy_helper.from_array(np.zeros(shape, dtype), name)


def _save(path, nodes, inputs, outputs, weights, opset=17) -> str:
    graph = h.make_graph(nodes, "g", inputs, outputs, weights)
    onnx.save(h.make_model(graph, opset_imports=[h.make_opsetid("", opset)]), str(path))
    return str(path)


def _cnn(tmp_path) -> str:
    nodes = [h.make_node("Conv", ["x", "W1", "b1"], ["c1"], name="conv1", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1]),
             h.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             h.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2],
                         strides=[2, 2]),
             h.make_node("Flatten", ["p1"], ["f"], name="flat", axis=1),
             h.make_node("Gemm", ["f", "W2", "b2"], ["y"], name="fc", transB=1)]
    return _save(tmp_path / "cnn.onnx", nodes,
                 [h.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 32, 32])],
                 [h.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
                 [_weight("W1", 16, 3, 3, 3), _weight("b1", 16), _weight("W2", 10, 4096),
                  _weight("b2", 10)])


SAME_CNN = {"name": "cnn", "input_shape": [3, 32, 32], "layers": [
    {"name": "conv1", "kind": "conv2d", "out_channels": 16, "kernel": 3, "padding": 1},
    {"name": "relu1", "kind": "relu"}, {"name": "pool1", "kind": "maxpool2d", "kernel": 2},
    {"name": "flat", "kind": "flatten"}, {"name": "fc", "kind": "linear", "out_features": 10}]}


def test_an_onnx_cnn_costs_what_the_same_layers_cost(tmp_path):
    imported = resolve_model(_cnn(tmp_path))
    assert [layer.kind for layer in imported.layers] == [
        "conv2d", "relu", "maxpool2d", "flatten", "linear"]
    ours = parse_model(SAME_CNN, "test")
    for mode in ("train", "infer"):
        a, b = build_graph(imported, 8, mode, "bf16"), build_graph(ours, 8, mode, "bf16")
        assert a.params == b.params == 16 * 27 + 16 + 10 * 4096 + 10
        assert (a.flops, a.bytes, a.memory) == (b.flops, b.bytes, b.memory)


def _transformer(tmp_path, extra_nodes=(), opset=20) -> str:
    """ids -> embedding -> layernorm -> linear (MatMul + bias) -> scores = x x^T -> softmax
    -> gelu."""
    nodes = [h.make_node("Gather", ["emb", "ids"], ["e"], name="wte"),
             h.make_node("LayerNormalization", ["e", "g", "b"], ["n"], name="ln", axis=-1),
             h.make_node("MatMul", ["n", "W"], ["m"], name="proj"),
             h.make_node("Add", ["m", "bias"], ["p"], name="proj_bias"),
             h.make_node("Transpose", ["p"], ["pt"], name="pt", perm=[0, 2, 1]),
             h.make_node("MatMul", ["p", "pt"], ["s"], name="scores"),
             h.make_node("Softmax", ["s"], ["sm"], name="softmax", axis=-1),
             h.make_node("Gelu", ["sm"], ["y0"], name="act"), *extra_nodes]
    last = nodes[-1].output[0]
    return _save(tmp_path / "tr.onnx", nodes,
                 [h.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "sequence"])],
                 [h.make_tensor_value_info(last, TensorProto.FLOAT, ["batch", "sequence", None])],
                 [_weight("emb", 100, 32), _weight("g", 32), _weight("b", 32),
                  _weight("W", 32, 48), _weight("bias", 48)], opset)


def test_an_onnx_transformer_binds_the_sequence_to_seq_len(tmp_path):
    model = resolve_model(_transformer(tmp_path), seq_len=16)
    kinds = {layer.name: layer.kind for layer in model.layers}
    assert kinds == {"wte": "embedding", "ln": "layernorm", "proj": "linear",
                     "pt": "elementwise", "scores": "matmul", "softmax": "softmax",
                     "act": "gelu"}
    assert model.shape == (16,) and model.input_bytes_per_element == 8
    g = build_graph(model, 2, "train", "fp32", "adamw")
    assert g.params == 100 * 32 + 2 * 32 + 32 * 48 + 48  # the Add folded in as the bias
    scores = g.op("scores.fwd")
    assert scores.gemm.batch == 2 and scores.flops == 2 * 2 * 16 * 16 * 48
    longer = build_graph(resolve_model(_transformer(tmp_path), seq_len=32), 2, "train", "fp32")
    assert longer.op("scores.fwd").flops == 4 * scores.flops


def test_an_unbound_symbolic_dimension_is_a_clear_error(tmp_path, cli):
    path = _transformer(tmp_path)
    with pytest.raises(UserError, match="dimension 1 of input 'ids' is symbolic "
                                        r"\('sequence'\): give --seq-len"):
        resolve_model(path)
    out = cli("predict", "--model", path, "--hardware", "h100-sxm")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "give --seq-len" in out.stderr


def test_seq_len_for_an_onnx_model_without_a_sequence(tmp_path):
    with pytest.raises(UserError, match="no symbolic sequence dimension"):
        resolve_model(_cnn(tmp_path), seq_len=8)


UNSUPPORTED = (h.make_node("Celu", ["y0"], ["c1"], name="celu1"),
               h.make_node("Hardmax", ["c1"], ["hm"], name="hard"),
               h.make_node("Celu", ["hm"], ["y"], name="celu2"))


def test_unsupported_operators_are_listed_by_name_and_count(tmp_path, cli):
    path = _transformer(tmp_path, UNSUPPORTED)
    with pytest.raises(UserError, match=r"unsupported ONNX operators: Celu x2, Hardmax x1 "
                                        r"\(--unsupported-as-elementwise"):
        resolve_model(path, seq_len=8)
    out = cli("predict", "--model", path, "--seq-len", "8", "--hardware", "h100-sxm")
    assert out.returncode == 2 and "Celu x2, Hardmax x1" in out.stderr


def test_unsupported_as_elementwise_costs_them_with_a_warning(tmp_path, cli):
    path = _transformer(tmp_path, UNSUPPORTED)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = resolve_model(path, seq_len=8, unsupported_as_elementwise=True)
    assert [str(w.message).split(": ", 1)[1] for w in caught if w.category is ModelWarning] == [
        "costed as memory-bound elementwise kernels: Celu x2, Hardmax x1"]
    assert [layer.op for layer in model.layers if layer.op in ("celu", "hardmax")] == [
        "celu", "hardmax", "celu"]
    out = cli("predict", "--model", path, "--seq-len", "8", "--hardware", "h100-sxm",
              "--unsupported-as-elementwise", "--json")
    assert out.returncode == 0, out.stderr
    assert out.stderr.startswith("warning: ") and "Celu x2, Hardmax x1" in out.stderr
    assert json.loads(out.stdout)["status"] == "ok"


def test_the_flag_is_refused_for_a_layer_list_model():
    with pytest.raises(UserError, match="applies to an imported model"):
        simulator.predict("vgg16", "h100-sxm", unsupported_as_elementwise=True)


@pytest.mark.parametrize("content, message", [
    (b"not a protobuf at all", "not a valid ONNX model"),
    (None, "no such ONNX file"),
])
def test_bad_onnx_files(tmp_path, cli, content, message):
    path = tmp_path / "bad.onnx"
    if content is not None:
        path.write_bytes(content)
    out = cli("predict", "--model", str(path), "--hardware", "h100-sxm")
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr
    assert out.stderr.count("\n") == 1


def test_an_experiment_names_an_onnx_file_beside_it(tmp_path):
    _cnn(tmp_path)
    (tmp_path / "e.yaml").write_text(
        "title: t\nscenarios:\n  - name: a\n    workload: {model: cnn.onnx, batch: 4}\n"
        "    hardware: {device: h100-sxm}\n")
    from simulator.config.schema import load_experiment

    scenario = load_experiment(tmp_path / "e.yaml").scenarios[0]
    assert scenario.workload.model == str(tmp_path / "cnn.onnx")
    direct = simulator.predict(str(tmp_path / "cnn.onnx"), "h100-sxm", batch=4)
    assert direct["step_time_s"] > 0


def _const(name: str, value) -> object:
    return h.make_node("Constant", [], [name], name=name,
                       value=numpy_helper.from_array(np.asarray(value), name))


def _tokens(tmp_path, nodes, out: str, rank: int, weights=()) -> str:
    """A graph on x of (batch, 5 tokens, 8 features) ending in `out` of `rank` axes."""
    return _save(tmp_path / "tok.onnx", nodes,
                 [h.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 5, 8])],
                 [h.make_tensor_value_info(out, TensorProto.FLOAT, [None] * rank)],
                 list(weights))


def _same_totals(imported, layers: list[dict], shape) -> None:
    ours = parse_model({"name": "ours", "input_shape": shape, "layers": layers}, "test")
    for mode in ("train", "infer"):
        a, b = build_graph(imported, 4, mode, "bf16"), build_graph(ours, 4, mode, "bf16")
        assert (a.params, a.flops, a.bytes) == (b.params, b.flops, b.bytes), mode


@pytest.mark.parametrize("index, position", [(0, 0), (-1, 4)])
def test_gather_of_a_constant_position_is_select(tmp_path, index, position):
    """x[:, i] as torch.onnx.export writes it (ViT's class token): our select layer."""
    nodes = [_const("i", np.int64(index)),
             h.make_node("Gather", ["x", "i"], ["cls"], name="cls", axis=1),
             h.make_node("MatMul", ["cls", "W"], ["m"], name="head"),
             h.make_node("Add", ["m", "b"], ["y"], name="head_bias")]
    model = resolve_model(_tokens(tmp_path, nodes, "y", 2, [_weight("W", 8, 3),
                                                            _weight("b", 3)]))
    assert [(layer.kind, layer.index) for layer in model.layers][0] == ("select", position)
    _same_totals(model, [{"name": "cls", "kind": "select", "index": position},
                         {"name": "head", "kind": "linear", "out_features": 3}], [5, 8])


def test_gather_of_constant_indices_is_a_gather_kernel(tmp_path):
    nodes = [_const("i", np.array([0, 2], np.int64)),
             h.make_node("Gather", ["x", "i"], ["y"], name="pick", axis=2)]
    model = resolve_model(_tokens(tmp_path, nodes, "y", 3))
    (layer,) = model.layers
    assert (layer.kind, layer.op, layer.shape) == ("elementwise", "gather", (5, 2))


@pytest.mark.parametrize("nodes, rank, message", [
    ([h.make_node("ArgMax", ["x"], ["i"], name="am", axis=2, keepdims=0),
      h.make_node("Cast", ["i"], ["j"], name="c", to=TensorProto.INT64),
      h.make_node("Gather", ["x", "j"], ["y"], name="g", axis=1)], 4,
     r"Gather \(indices computed from the input\) x1"),
    ([_const("i", np.int64(0)), h.make_node("Gather", ["x", "i"], ["y"], name="g", axis=0)],
     2, r"Gather \(along the batch axis\) x1"),
])
def test_gathers_still_unsupported_are_named(tmp_path, nodes, rank, message, cli):
    path = _tokens(tmp_path, nodes, "y", rank)
    with pytest.raises(UserError, match=r"unsupported ONNX operators: (ArgMax x1, )?" + message):
        resolve_model(path)
    out = cli("predict", "--model", path, "--hardware", "h100-sxm")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "Gather (" in out.stderr


def test_learned_tensors_added_or_concatenated_are_parameters(tmp_path):
    """ViT's position embedding (an Add) and class token (an Expand to a shape the exporter
    computes with Where and Equal, which shape inference alone cannot size: folded)."""
    shape_nodes = [h.make_node("Shape", ["x"], ["x_shape"], name="x_shape", end=1),
                   _const("rest", np.array([1, 8], np.int64)),
                   h.make_node("Concat", ["x_shape", "rest"], ["target"], name="target", axis=0),
                   _const("three", np.array([3], np.int64)),
                   h.make_node("ConstantOfShape", ["three"], ["ones"], name="ones",
                               value=numpy_helper.from_array(np.array([1], np.int64))),
                   _const("minus", np.int64(-1)),
                   h.make_node("Mul", ["ones", "minus"], ["neg"], name="neg"),
                   h.make_node("Equal", ["target", "neg"], ["eq"], name="eq"),
                   h.make_node("Where", ["eq", "ones", "target"], ["size"], name="size")]
    nodes = [*shape_nodes, h.make_node("Expand", ["cls", "size"], ["cls_x"], name="expand"),
             h.make_node("Concat", ["cls_x", "x"], ["cat"], name="cat", axis=1),
             h.make_node("Add", ["cat", "pos"], ["y"], name="pos_add")]
    model = resolve_model(_tokens(tmp_path, nodes, "y", 3, [_weight("cls", 1, 1, 8),
                                                            _weight("pos", 1, 6, 8)]))
    assert [(layer.kind, layer.params, layer.shape) for layer in model.layers] == [
        ("elementwise", 8, (6, 8)), ("elementwise", 48, (6, 8))]
    assert build_graph(model, 2, "train", "fp32", "adamw").params == 8 + 48


def _attention_graph(tmp_path, causal: bool) -> str:
    """F.scaled_dot_product_attention(x, x, x) on (batch, 2 heads, 6 tokens, 4) as
    torch.onnx.export (opset 17) writes it: the scale on both sides, K transposed, a
    constant mask added for a causal one."""
    s = _const("s", np.float32(0.5 ** 0.5))
    nodes = [s, h.make_node("Transpose", ["x"], ["kt"], name="kt", perm=[0, 1, 3, 2]),
             h.make_node("Mul", ["x", "s"], ["qs"], name="qs"),
             h.make_node("Mul", ["kt", "s"], ["kts"], name="kts"),
             h.make_node("MatMul", ["qs", "kts"], ["scores"], name="scores")]
    last = "scores"
    if causal:
        mask = np.triu(np.full((6, 6), -np.inf, np.float32), 1)
        nodes += [_const("mask", mask),
                  h.make_node("Add", ["scores", "mask"], ["masked"], name="mask_add")]
        last = "masked"
    nodes += [h.make_node("Softmax", [last], ["p"], name="softmax", axis=-1),
              h.make_node("MatMul", ["p", "x"], ["y"], name="attention")]
    return _save(tmp_path / "sdpa.onnx", nodes,
                 [h.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 6, 4])],
                 [h.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 4)], [])


ATTENTION = {"name": "attention", "kind": "attention", "heads": 2,
             "inputs": ["input", "input", "input"]}


@pytest.mark.parametrize("causal", [False, True])
def test_the_exported_sdpa_pattern_is_our_attention(tmp_path, causal):
    model = resolve_model(_attention_graph(tmp_path, causal))
    (layer,) = model.layers
    assert (layer.kind, layer.heads, layer.causal, layer.implementation) == (
        "attention", 2, causal, "unfused")
    _same_totals(model, [{**ATTENTION, "causal": causal, "implementation": "unfused"}],
                 [2, 6, 4])


@pytest.mark.parametrize("causal", [0, 1])
def test_the_attention_operator_is_fused_attention(tmp_path, causal):
    node = h.make_node("Attention", ["x", "x", "x"], ["y"], name="attention",
                       is_causal=causal)
    path = _save(tmp_path / "attn.onnx", [node],
                 [h.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 6, 4])],
                 [h.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 4)], [], opset=23)
    model = resolve_model(path)
    _same_totals(model, [{**ATTENTION, "causal": bool(causal), "implementation": "flash"}],
                 [2, 6, 4])


def test_the_attention_operator_with_a_mask_is_named(tmp_path):
    node = h.make_node("Attention", ["x", "x", "x", "m"], ["y"], name="attention")
    path = _save(tmp_path / "attn.onnx", [node],
                 [h.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 6, 4])],
                 [h.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 4)],
                 [_weight("m", 6, 6)], opset=23)
    with pytest.raises(UserError, match=r"Attention \(attn_mask or past key and value\) x1"):
        resolve_model(path)


@pytest.mark.slow
def test_vit_b_16_exported_to_onnx_imports_as_through_fx(tmp_path, torchvision):
    """torchvision's ViT-B/16 through torch.onnx.export (dynamic batch): torch's parameter
    count, 12 attention layers, and within 1% of the FLOPs of its torch.fx import."""
    torch = pytest.importorskip("torch")
    vit = torchvision.models.vit_b_16(weights=None).eval()
    path = tmp_path / "vit.onnx"
    torch.onnx.export(vit, (torch.zeros(1, 3, 224, 224),), str(path), dynamo=False,
                      opset_version=17, input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    imported = resolve_model(str(path))
    attention = [layer for layer in imported.layers if layer.kind == "attention"]
    assert [(a.heads, a.implementation) for a in attention] == [(12, "unfused")] * 12
    a = build_graph(imported, 2, "train", "bf16")
    assert a.params == sum(p.numel() for p in vit.parameters())
    fx = build_graph(resolve_model("torchvision:vit_b_16"), 2, "train", "bf16")
    assert a.flops == pytest.approx(fx.flops, rel=0.01)


def _pools(tmp_path, size: int, **attrs) -> str:
    """x (4 x size x size) -> MaxPool 3/2 and AveragePool 2/2, each with `attrs` (opset 19:
    AveragePool's dilations)."""
    nodes = [h.make_node("MaxPool", ["x"], ["p"], name="max", kernel_shape=[3, 3],
                         strides=[2, 2], **attrs),
             h.make_node("AveragePool", ["p"], ["y"], name="avg", kernel_shape=[2, 2],
                         strides=[2, 2], **attrs)]
    return _save(tmp_path / "pools.onnx", nodes,
                 [h.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, size, size])],
                 [h.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, None, None])], [],
                 opset=19)


def test_ceil_mode_pooling_rounds_up_as_onnx_infers(tmp_path):
    """GoogLeNet's 112 -> 56 (floor: 55), then 56 -> 28 (tiled); without ceil_mode 55, 27."""
    ceil = resolve_model(_pools(tmp_path, 112, ceil_mode=1))
    assert [layer.ceil_mode for layer in ceil.layers] == [True, True]
    sizes = [layer.cost.out_shape for layer in resolve_layers(ceil, 1)]
    assert sizes == [(4, 56, 56), (4, 28, 28)]
    floor = resolve_model(_pools(tmp_path, 112))
    assert [layer.cost.out_shape for layer in resolve_layers(floor, 1)] == [(4, 55, 55),
                                                                          (4, 27, 27)]
    ours = parse_model({"name": "pools", "input_shape": [4, 112, 112], "layers": [
        {"name": "max", "kind": "maxpool2d", "kernel": 3, "stride": 2, "ceil_mode": True},
        {"name": "avg", "kind": "avgpool2d", "kernel": 2, "stride": 2, "ceil_mode": True}]},
        "test")
    a, b = build_graph(ceil, 4, "train"), build_graph(ours, 4, "train")
    assert (a.flops, a.bytes, a.memory) == (b.flops, b.bytes, b.memory)


def test_pooling_onnx_sizes_otherwise_than_its_spec_is_a_clear_error(tmp_path):
    """5 wide, kernel 2, stride 2, padding 1: the rounded-up last window would start in the
    right padding, which the spec (and PyTorch) drop; onnx 1.23's shape inference keeps it.
    The importer says so rather than cost a shape that differs from the graph's."""
    nodes = [h.make_node("MaxPool", ["x"], ["y"], name="max", kernel_shape=[2, 2],
                         strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)]
    path = _save(tmp_path / "edge.onnx", nodes,
                 [h.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 5, 5])],
                 [h.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, None, None])], [])
    inferred = onnx.shape_inference.infer_shapes(onnx.load(path))
    onnx_size = inferred.graph.output[0].type.tensor_type.shape.dim[2].dim_value
    if onnx_size == 3:  # an onnx whose inference follows its spec: the import agrees
        assert resolve_layers(resolve_model(path), 1)[0].cost.out_shape == (4, 3, 3)
        return
    with pytest.raises(UserError, match=r"node max \(maxpool2d\) gives shape \[4, 3, 3\], "
                                        r"onnx infers \[4, 4, 4\]"):
        resolve_model(path)


def test_a_dilated_pool_is_named(tmp_path):
    with pytest.raises(UserError, match=r"unsupported ONNX operators: AveragePool \(dilated\) "
                                        r"x1, MaxPool \(dilated\) x1"):
        resolve_model(_pools(tmp_path, 32, dilations=[2, 2]))

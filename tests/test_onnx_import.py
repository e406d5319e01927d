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
from workloads.builder import build_graph  # noqa: E402
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

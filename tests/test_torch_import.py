"""torch.fx import: a user's own nn.Module (`FILE.py:FACTORY`) and torchvision constructors
come in with torch's own parameter counts and the FLOPs of the same network written as
layers; untraceable modules and unsupported operators give one clear line. GPT-2 and BERT
from our layer definitions have the parameter counts of Hugging Face's implementation where
`transformers` is installed."""

from __future__ import annotations

import json
import textwrap
import warnings

import pytest

torch = pytest.importorskip("torch")

from torch_helpers import torch_params  # noqa: E402

import simulator  # noqa: E402
from simulator.core.errors import UserError  # noqa: E402
from workloads.builder import build_graph, resolve_layers  # noqa: E402
from workloads.importers import resolve_model  # noqa: E402
from workloads.model_def import load_model, parse_model  # noqa: E402

USER_FILE = textwrap.dedent('''
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 16, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(16)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.drop = nn.Dropout(0.2)
            self.fc = nn.Linear(16, 10)

        def forward(self, x):
            y = torch.relu(self.bn(self.conv(x)))
            y = y + torch.relu(y)
            return self.fc(self.drop(torch.flatten(self.pool(y), 1)))


    class Tokens(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(100, 32)
            self.ln = nn.LayerNorm(32)
            self.fc = nn.Linear(32, 64)
            self.act = nn.GELU()
            self.out = nn.Linear(64, 100)

        def forward(self, ids):
            return self.out(self.act(self.fc(self.ln(self.emb(ids)))))


    class Branchy(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x


    class Shuffle(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 12, 1)
            self.shuffle = nn.PixelShuffle(2)

        def forward(self, x):
            return self.shuffle(self.conv(x))


    def net():
        return Net(), [3, 32, 32]


    def tokens():
        return Tokens(), ["seq_len"]


    def branchy():
        return Branchy(), [4]


    def shuffle():
        return Shuffle(), [3, 8, 8]


    class Recurrent(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(8, 8, batch_first=True)

        def forward(self, x):
            return self.lstm(x)[0]


    def recurrent():
        return Recurrent(), [5, 8]


    class Pools(nn.Module):
        """Pooling as functions, and an auxiliary head that eval mode does not call."""

        def __init__(self, ceil=False):
            super().__init__()
            self.ceil = ceil
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.pool = nn.MaxPool2d(2, ceil_mode=True)  # 8 x 8: tiled, floor = ceil
            self.odd = nn.MaxPool2d(3, ceil_mode=True)  # 4 x 4 -> 2 x 2 rounded up
            self.aux = nn.Linear(8, 2)

        def forward(self, x):
            y = torch.nn.functional.max_pool2d(self.conv(x), 3, stride=2, padding=1)
            y = torch.nn.functional.avg_pool2d(y, kernel_size=2)
            if self.training:
                return self.aux(y.mean((2, 3)))
            if self.ceil:  # positional ceil_mode: F.max_pool2d's 6th, F.avg_pool2d's 5th
                y = torch.nn.functional.max_pool2d(self.odd(self.pool(y)), 2, 1, 0, 1, True)
                return torch.nn.functional.avg_pool2d(y, 2, 2, 0, True)
            return self.pool(y)


    def pools():
        return Pools(), [3, 32, 32]


    def ceil():
        return Pools(ceil=True), [3, 32, 32]
''')

SAME_NET = {"name": "net", "input_shape": [3, 32, 32], "layers": [
    {"name": "conv", "kind": "conv2d", "out_channels": 16, "kernel": 3, "padding": 1,
     "bias": False},
    {"name": "bn", "kind": "batchnorm2d"}, {"name": "relu", "kind": "relu"},
    {"name": "relu_1", "kind": "relu"},
    {"name": "add", "kind": "add", "inputs": ["relu", "relu_1"]},
    {"name": "pool", "kind": "adaptive_avgpool2d", "output_size": 1},
    {"name": "flatten", "kind": "flatten"}, {"name": "drop", "kind": "dropout", "p": 0.2},
    {"name": "fc", "kind": "linear", "out_features": 10}]}


@pytest.fixture()
def user_file(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text(USER_FILE)
    return path



def test_a_user_module_costs_what_the_same_layers_cost(user_file):
    imported = resolve_model(f"{user_file}:net")
    assert [layer.kind for layer in imported.layers] == [
        layer["kind"] for layer in SAME_NET["layers"]]
    ours = parse_model(SAME_NET, "test")
    for mode in ("train", "infer"):
        a, b = build_graph(imported, 4, mode, "bf16"), build_graph(ours, 4, mode, "bf16")
        assert a.params == b.params == torch_params(user_file, "net")
        assert (a.flops, a.bytes) == (b.flops, b.bytes)


def test_a_token_model_binds_seq_len(user_file):
    model = resolve_model(f"{user_file}:tokens", seq_len=12)
    assert model.shape == (12,) and model.input_bytes_per_element == 8
    g = build_graph(model, 2, "train", "fp32", "adamw")
    assert g.params == torch_params(user_file, "tokens")
    assert g.op("out.fwd").gemm.m == 2 * 12  # per token
    with pytest.raises(UserError, match="give --seq-len"):
        resolve_model(f"{user_file}:tokens")
    with pytest.raises(UserError, match="seq_len: .* has no seq_len in its input shape"):
        resolve_model(f"{user_file}:net", seq_len=4)


def test_an_untraceable_module_suggests_onnx_export(user_file, cli):
    out = cli("predict", "--model", f"{user_file}:branchy", "--hardware", "h100-sxm")
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "torch.fx cannot trace it" in out.stderr and "torch.onnx.export" in out.stderr


def test_unsupported_modules_are_listed_or_costed_as_elementwise(user_file):
    with pytest.raises(UserError, match=r"unsupported operators: PixelShuffle x1"):
        resolve_model(f"{user_file}:shuffle")
    with pytest.warns(UserWarning, match="costed as memory-bound elementwise kernels: "
                                         "PixelShuffle x1"):
        model = resolve_model(f"{user_file}:shuffle", unsupported_as_elementwise=True)
    assert model.layers[-1].kind == "elementwise"
    with pytest.raises(UserError, match=r"unsupported operators: LSTM \(not one batched "
                                        r"tensor\) x1"):
        resolve_model(f"{user_file}:recurrent")


@pytest.mark.parametrize("ref, message", [
    ("{dir}/mine.py:nothing", "has no function 'nothing'"),
    ("{dir}/absent.py:net", "no such Python file"),
])
def test_bad_references(user_file, ref, message):
    with pytest.raises(UserError, match=message):
        simulator.predict(ref.format(dir=user_file.parent), "h100-sxm")


def _reference_params(name: str) -> int:
    transformers = pytest.importorskip("transformers")
    if name == "bert-base":
        model = transformers.BertModel(transformers.BertConfig())
    else:
        medium = dict(n_embd=1024, n_layer=24, n_head=16) if name == "gpt2-medium" else {}
        model = transformers.GPT2LMHeadModel(transformers.GPT2Config(**medium))
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", ["gpt2", "gpt2-medium", "bert-base"])
def test_transformers_match_the_reference_implementation(name):
    ours = build_graph(load_model(name).with_seq_len(8), 1, "infer").params
    assert ours == _reference_params(name)


@pytest.mark.parametrize("name", ["vgg16", "resnet50", "mobilenet_v2"])
def test_torchvision_through_fx_matches_our_definitions(name, torchvision):
    imported = build_graph(resolve_model(f"torchvision:{name}"), 2, "train", "bf16")
    ours = build_graph(load_model(name), 2, "train", "bf16")
    assert imported.params == ours.params

    def gemm_flops(g):
        return sum(op.flops for op in g.ops() if op.kind == "gemm")

    assert gemm_flops(imported) == gemm_flops(ours)
    assert imported.flops == pytest.approx(ours.flops, rel=0.01)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mnasnet1_0", "efficientnet_b0", "shufflenet_v2_x1_0",
                                  "convnext_tiny", "vit_b_16"])
def test_torchvision_networks_import_and_predict(name, torchvision, cli):
    """Networks with channel shuffles (chunk), stochastic depth, layer scale and LayerNorm2d
    (F.layer_norm), and ViT's attention: torch's parameter count, and `predict` runs end to
    end."""
    module = torchvision.models.get_model(name, weights=None)
    graph = build_graph(resolve_model(f"torchvision:{name}"), 2, "train", "bf16")
    assert graph.params == sum(p.numel() for p in module.parameters())
    out = cli("predict", "--model", f"torchvision:{name}", "--hardware", "h100-sxm",
              "--batch", "4", "--precision", "bf16", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["status"] == "ok" and result["step_time_s"] > 0
    assert result["flops"] == build_graph(resolve_model(f"torchvision:{name}"), 4, "train",
                                          "bf16").flops


def test_an_unknown_torchvision_model_is_one_line(torchvision, cli):
    out = cli("predict", "--model", "torchvision:resnet_nope", "--hardware", "h100-sxm")
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "unknown torchvision classification model 'resnet_nope'" in out.stderr


def test_pooling_functions_cost_what_the_modules_cost(user_file):
    with pytest.warns(UserWarning, match="18 parameters of modules that its forward pass in "
                                         "eval mode does not call are not counted"):
        model = resolve_model(f"{user_file}:pools")
    ours = parse_model({"name": "pools", "input_shape": [3, 32, 32], "layers": [
        {"name": "conv", "kind": "conv2d", "out_channels": 8, "kernel": 3, "padding": 1},
        {"name": "max", "kind": "maxpool2d", "kernel": 3, "stride": 2, "padding": 1},
        {"name": "avg", "kind": "avgpool2d", "kernel": 2},
        {"name": "pool", "kind": "maxpool2d", "kernel": 2}]}, "test")
    for mode in ("train", "infer"):
        a, b = build_graph(model, 2, mode), build_graph(ours, 2, mode)
        assert (a.params, a.flops, a.bytes) == (b.params, b.flops, b.bytes)


def test_pooling_that_ceil_mode_rounds_up_has_torchs_sizes(user_file):
    """8 x 8 -> 4 x 4 (tiled), 3 x 3 by stride 3 rounded up to 2 x 2, then F.max_pool2d(2, 1,
    ceil_mode) to 1 x 1 and F.avg_pool2d(2, 2, ceil_mode) keeping 1 x 1: the importer checks
    each size against torch's."""
    with pytest.warns(UserWarning, match="not counted"):
        model = resolve_model(f"{user_file}:ceil")
    pools = [layer for layer in model.layers if "pool" in layer.kind]
    assert [layer.ceil_mode for layer in pools] == [None, None, True, True, True, True]
    assert [layer.cost.out_shape[1:] for layer in resolve_layers(model, 1)
            if "pool" in layer.kind] == [(16, 16), (8, 8), (4, 4), (2, 2), (1, 1), (1, 1)]


@pytest.mark.parametrize("name, params", [("googlenet", 6_624_904),
                                          ("squeezenet1_0", 1_248_424),
                                          ("squeezenet1_1", 1_235_496)])
def test_networks_with_ceil_mode_pooling_import(name, params, torchvision):
    """GoogLeNet and SqueezeNet pool with ceil_mode=True: torch's parameter count (GoogLeNet's
    without its auxiliary classifiers, which eval mode does not call) and torch's output."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's note on GoogLeNet's initialisation
        module = torchvision.models.get_model(name, weights=None)
        graph = build_graph(resolve_model(f"torchvision:{name}"), 2, "train", "bf16")
    counted = sum(p.numel() for n, p in module.named_parameters() if not n.startswith("aux"))
    assert graph.params == counted == params


EINSUM_FILE = textwrap.dedent('''
    import torch
    from torch import nn


    class Scores(nn.Module):
        """q k^T, softmax, times v: as einsums (MaxViT's way) or as matmuls."""

        def __init__(self, einsum):
            super().__init__()
            self.einsum = einsum
            self.qkv = nn.Linear(16, 48)

        def forward(self, x):
            q, k, v = self.qkv(x).view(x.shape[0], 10, 3, 2, 8).permute(2, 0, 3, 1, 4)
            if self.einsum:
                s = torch.einsum("B H I D, B H J D -> B H I J", q, k).softmax(-1)
                return torch.einsum("bhij,bhjd->bhid", s, v)
            return torch.matmul(torch.matmul(q, k.transpose(-2, -1)).softmax(-1), v)


    class Traced(nn.Module):
        def forward(self, x):
            return torch.einsum("bii->bi", x)


    def einsum():
        return Scores(True), [10, 16]


    def matmul():
        return Scores(False), [10, 16]


    def trace():
        return Traced(), [4, 4]
''')


@pytest.mark.parametrize("equation, transposed", [
    ("B G H I D, B G H J D -> B G H I J", True), ("B G H I J, B G H J D -> B G H I D", False),
    ("ik,kj->ij", False), ("bik,bjk->bij", True)])
def test_an_einsum_that_is_a_batched_product(equation, transposed):
    from workloads.torch_nodes import einsum_transposes

    assert einsum_transposes(equation, 2) is transposed


@pytest.mark.parametrize("equation, operands", [
    ("bii->bi", 1), ("bik,bkj->bji", 2), ("bik,bkj->bij", 3), ("bik,ckj->bij", 2),
    ("...ik,...kj->...ij", 2), ("bik,bkj", 2), ("bik,bik->bi", 2), ("bkk,bkj->bkj", 2)])
def test_other_einsums_are_unsupported(equation, operands):
    from workloads.torch_nodes import Unsupported, einsum_transposes

    with pytest.raises(Unsupported, match="einsum"):
        einsum_transposes(equation, operands)


def test_einsum_costs_what_the_same_matmuls_cost(tmp_path):
    path = tmp_path / "scores.py"
    path.write_text(EINSUM_FILE)
    imported, ours = resolve_model(f"{path}:einsum"), resolve_model(f"{path}:matmul")
    assert [layer.kind for layer in imported.layers].count("matmul") == 2
    for mode in ("train", "infer"):
        a, b = build_graph(imported, 4, mode, "bf16"), build_graph(ours, 4, mode, "bf16")
        assert a.params == b.params == 16 * 48 + 48
        assert (a.flops, a.bytes) == (b.flops, b.bytes)
        products = [op for op in a.ops() if op.attr("kernel") == "bmm" and op.phase == "fwd"]
        assert sorted(op.flops for op in products) == [4 * 2 * 2 * 10 * 10 * 8] * 2
    with pytest.raises(UserError, match=r"einsum \(not a batched matrix product of two "
                                        r"tensors\) x1"):
        resolve_model(f"{path}:trace")


@pytest.mark.slow
def test_maxvit_imports_with_torchs_parameter_count(torchvision):
    """MaxViT's attention is two einsums per block (44 in all), now batched products."""
    module = torchvision.models.get_model("maxvit_t", weights=None)
    graph = build_graph(resolve_model("torchvision:maxvit_t"), 2, "infer", "bf16")
    assert graph.params == sum(p.numel() for p in module.parameters()) == 30_919_624
    assert sum(1 for op in graph.ops() if op.attr("kernel") == "bmm") == 44


SWIN_FILE = textwrap.dedent('''
    from torch import nn
    from torchvision.models.swin_transformer import (PatchMerging, PatchMergingV2,
                                                     SwinTransformerBlock, SwinTransformerBlockV2)


    class Blocks(nn.Module):
        """A window block, a shifted one and a patch merging, on a 6 x 6 map: padded to whole
        4 x 4 windows."""

        def __init__(self, v2):
            super().__init__()
            block = SwinTransformerBlockV2 if v2 else SwinTransformerBlock
            self.plain = block(16, 2, [4, 4], [0, 0])
            self.shifted = block(16, 2, [4, 4], [2, 2])
            self.merge = (PatchMergingV2 if v2 else PatchMerging)(16)

        def forward(self, x):
            return self.merge(self.shifted(self.plain(x)))


    def v1():
        return Blocks(False), [6, 6, 16]


    def v2():
        return Blocks(True), [6, 6, 16]
''')


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_shifted_window_attention_is_its_kernels(version, tmp_path, torchvision):
    """torchvision's shifted_window_attention, which torch.fx keeps one call: padded to whole
    windows, shifted and back, the projections as linear layers, attention per window; the
    position bias table (V2: its MLP and logit scale) counted as parameters."""
    path = tmp_path / "swin.py"
    path.write_text(SWIN_FILE)
    model = resolve_model(f"{path}:{version}")
    parts = [layer.name.split(".", 1)[1] for layer in model.layers
             if layer.name.startswith("shifted_window_attention_1.")]
    scores = ["normalize_q", "normalize_k", "logit_scale"] if version == "v2" else ["scale_q"]
    assert parts == ["pad", "roll", "window_partition", "qkv", *scores, "position_bias",
                     "shift_mask", "attention", "proj", "window_reverse", "roll_back", "unpad"]
    layers = {layer.name: layer for layer in resolve_layers(model, 1)}
    window = layers["shifted_window_attention_1.attention"]
    assert window.cost.out_shape == (4, 16, 16)  # 8 x 8 padded: four windows of 16 positions
    assert layers["shifted_window_attention_1.unpad"].cost.out_shape == (6, 6, 16)
    graph = build_graph(model, 2, "train", "bf16")
    assert graph.params == torch_params(path, version)
    scores_fwd = graph.op("shifted_window_attention_1.attention.fwd.prologue")
    assert scores_fwd.gemm.batch == 2 * 4 * 2 and scores_fwd.flops == 2 * 4 * 2 * 2 * 16 * 16 * 8


@pytest.mark.slow
@pytest.mark.parametrize("name", ["swin_t", "swin_v2_t"])
def test_swin_imports_with_torchs_parameter_count(name, torchvision, cli):
    module = torchvision.models.get_model(name, weights=None)
    graph = build_graph(resolve_model(f"torchvision:{name}"), 2, "train", "bf16")
    assert graph.params == sum(p.numel() for p in module.parameters())
    out = cli("predict", "--model", f"torchvision:{name}", "--hardware", "h100-sxm",
              "--batch", "2", "--precision", "bf16", "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["step_time_s"] > 0, out.stderr

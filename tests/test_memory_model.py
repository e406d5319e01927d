"""The memory model (workloads/memory.py) against what PyTorch allocates: golden facts, the
committed H200 measurements held out, the allocator behaviours each rule rests on, and the
largest batch an out-of-memory result names."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

import simulator
from workloads import memory
from workloads.builder import build_graph
from workloads.model_def import load_model, parse_model
from workloads.precision import get_precision
from workloads.resolve import resolve_layers

ROOT = Path(__file__).resolve().parents[1]
MEASUREMENTS = ROOT / "measurements"
FACTS = json.loads((MEASUREMENTS / "h200-memory-facts.json").read_text())
ZOO = ("mlp", "alexnet", "vgg16", "resnet18", "resnet50", "mobilenet_v2")
VGG16_PARAMS = 138_357_544
FC6_PARAMS = 25088 * 4096 + 4096  # VGG16's largest layer


def step_memory(model: str, batch: int, mode: str, precision: str = "fp32") -> dict[str, float]:
    return build_graph(load_model(model), batch, mode, precision, input_place="device").memory


def test_vgg16_weights_are_its_parameters_in_fp32() -> None:
    for mode in ("train", "infer"):
        assert step_memory("vgg16", 8, mode)["weights_bytes"] == VGG16_PARAMS * 4
    mixed = step_memory("vgg16", 8, "train", "bf16")  # fp32 masters, bf16 copies beside them
    assert mixed["weights_bytes"] == VGG16_PARAMS * 4 and mixed["weight_copies_bytes"] > 0


@pytest.mark.parametrize("model", ZOO)
@pytest.mark.parametrize("precision", ["fp32-strict", "fp32", "bf16"])
def test_training_needs_more_than_inference(model: str, precision: str) -> None:
    train = step_memory(model, 32, "train", precision)
    infer = step_memory(model, 32, "infer", precision)
    assert train["peak_bytes"] > infer["peak_bytes"]
    for parts in (train, infer):
        assert sum(v for k, v in parts.items() if k != "peak_bytes") == pytest.approx(
            parts["peak_bytes"], rel=1e-12)


@pytest.mark.parametrize("model", ["resnet50", "mobilenet_v2", "vgg16"])
def test_memory_never_falls_as_the_batch_grows(model: str) -> None:
    for mode in ("train", "infer"):
        peaks = [step_memory(model, b, mode, "bf16")["peak_bytes"] for b in (1, 2, 3, 5, 8, 13)]
        assert peaks == sorted(peaks)


@pytest.fixture(scope="module")
def accuracy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """benchmarks/accuracy_memory.py on the zoo and on the batches it never measured."""
    out = {}
    for name in ("h200-torch-zoo.json", "h200-b16-b64-torch-zoo.json"):
        path = tmp_path_factory.mktemp("accuracy") / "rows.json"
        subprocess.run([sys.executable, "benchmarks/accuracy_memory.py", str(MEASUREMENTS / name),
                        "--json", str(path)], check=True, capture_output=True, cwd=ROOT,
                       timeout=300)
        out[name] = json.loads(path.read_text())
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", ["h200-torch-zoo.json", "h200-b16-b64-torch-zoo.json"])
def test_peak_as_measured_within_ten_percent_per_network(accuracy: dict, name: str) -> None:
    """Nothing of the allocated peak is fitted; b16-b64 holds batches no rule was chosen on."""
    stats = accuracy[name]["allocated"]
    assert set(ZOO) | {"all"} == set(stats)
    for network, s in stats.items():
        assert s["median"] <= 0.10, (network, s)
    assert stats["all"]["median"] <= 0.02


@pytest.mark.slow
def test_reserve_ratio_is_the_fit_and_holds_out(accuracy: dict) -> None:
    zoo = accuracy["h200-torch-zoo.json"]
    assert zoo["reserve_ratio_fitted"] == pytest.approx(memory.RESERVED_PER_ALLOCATED, abs=5e-4)
    held_out = [abs(r["reserve_error_held_out"]) for r in zoo["rows"]]
    assert statistics.median(held_out) <= 0.10


def test_workspaces_and_context_are_the_measured_ones() -> None:
    cublas, lt = memory.CUBLAS_WORKSPACE_BYTES, memory.CUBLASLT_WORKSPACE_BYTES
    assert FACTS["cublas"]["after_forward_bytes"] == cublas + lt
    assert FACTS["cublas"]["after_backward_bytes"] == 2 * cublas + lt  # autograd's thread
    assert FACTS["context_after_steps"]["context_bytes"] == memory.CUDA_CONTEXT_BYTES
    assert step_memory("mlp", 1, "infer")["workspace_bytes"] == cublas + lt
    assert step_memory("mlp", 1, "train")["workspace_bytes"] == 2 * cublas + lt


def test_relu6_keeps_a_copy_of_its_input_and_relu_does_not() -> None:
    """MobileNetV2 with ReLU6 against the same network with ReLU: training holds about one
    more tensor per ReLU6, its input (measured: the zoo's MobileNetV2 training)."""
    six = load_model("mobilenet_v2")
    plain = six.model_copy(update={"layers": [
        layer.model_copy(update={"kind": "relu"}) if layer.kind == "relu6" else layer
        for layer in six.layers]})
    extra = (build_graph(six, 32, "train").memory["peak_bytes"]
             - build_graph(plain, 32, "train").memory["peak_bytes"])
    clones = sum(32 * math.prod(layer.in_shapes[0]) * 4 for layer in resolve_layers(six, 32)
                 if layer.kind == "relu6")
    assert extra == pytest.approx(clones, rel=0.02)
    assert step_memory("mobilenet_v2", 32, "infer")["peak_bytes"] == \
        build_graph(plain, 32, "infer", input_place="device").memory["peak_bytes"]


def test_inference_under_autocast_holds_one_weight_copy_at_a_time() -> None:
    """inference_mode: autocast caches no cast, so VGG16's peak holds fc6's copy alone;
    training keeps each copy until its layer's backward (ResNet-50's peak, in the backward
    of layer4, still holds every convolution's)."""
    assert step_memory("vgg16", 1, "infer", "bf16")["weight_copies_bytes"] == FC6_PARAMS * 2
    layers = resolve_layers(load_model("resnet50"), 64)
    convs = sum(layer.cost.params for layer in layers if layer.kind == "conv2d")
    assert step_memory("resnet50", 64, "train", "bf16")["weight_copies_bytes"] == convs * 2


def test_a_module_input_lives_until_the_module_returns() -> None:
    """MobileNetV2's features.2 holds its input (16 x 112 x 112) while its expansion conv and
    batch norm (96 x 112 x 112 each) run: the inference peak."""
    model, prec = load_model("mobilenet_v2"), get_precision("fp32")
    layers = resolve_layers(model, 4)
    params = sum(layer.cost.params for layer in layers)
    assert memory.peak_instant(layers, 4, model, prec, None, params) == \
        "forward:features.2.conv.0.1"
    parts = memory.memory_estimate(layers, 4, model, prec, None, params)
    assert parts["activations_bytes"] == 4 * (16 + 96 + 96) * 112 * 112 * 4


@pytest.mark.parametrize("precision", ["fp32-strict", "fp32", "bf16"])
@pytest.mark.parametrize("backward", [False, True])
def test_convolution_workspace_against_each_measured_call(precision: str, backward: bool) -> None:
    """The distinct convolutions of the zoo, one call each (benchmarks/torch_memory_facts.py):
    the median error is under 15% of the call's input and output bytes."""
    key = "backward_workspace_bytes" if backward else "forward_workspace_bytes"
    errors = []
    for row in (r for r in FACTS["convolutions"] if r["precision"] == precision):
        conv = {"name": "c", "kind": "conv2d", "out_channels": row["out_channels"],
                "kernel": row["kernel"][0], "stride": row["stride"][0],
                "padding": row["padding"][0], "groups": row["groups"], "bias": row["bias"]}
        model = parse_model({"name": "c", "layers": [conv], "input_shape": [
            row["in_channels"], row["height"], row["width"]]}, "c.yaml")
        layer = resolve_layers(model, row["batch"])[0]
        predicted = memory.conv_workspace_bytes(layer, model.layers[0].args(), row["batch"],
                                                get_precision(precision), backward)
        errors.append(abs(predicted - row[key]) / (row["input_bytes"] + row["output_bytes"]))
    assert len(errors) > 100 and statistics.median(errors) <= 0.15


def test_fits_counts_the_cuda_context_and_not_the_cached_reserve() -> None:
    capacity = 80e9
    edge = {"peak_bytes": capacity - memory.CUDA_CONTEXT_BYTES}
    assert memory.fits(edge, capacity)
    assert not memory.fits({"peak_bytes": edge["peak_bytes"] + 1}, capacity)


def test_a_prediction_states_the_context_and_the_reserve_beside_the_peak() -> None:
    result = simulator.predict("resnet50", "h200", batch=32, mode="train", precision="bf16",
                               input="device")
    mem = result["memory"]
    assert result["memory_peak_bytes"] == mem["peak_bytes"] == \
        step_memory("resnet50", 32, "train", "bf16")["peak_bytes"]
    assert mem["cuda_context_bytes"] == memory.CUDA_CONTEXT_BYTES
    assert mem["reserved_bytes"] == pytest.approx(memory.RESERVED_PER_ALLOCATED * mem["peak_bytes"])
    assert result["fits"]


def test_largest_batch_that_fits_is_the_largest() -> None:
    big = simulator.predict("vgg16", "h100-sxm", batch=2000, mode="train")
    largest = big["largest_batch_that_fits"]
    assert big["status"] == "out_of_memory" and 1 < largest < 2000
    assert f"the largest batch that fits is {largest}" in big["error"]
    assert "\n" not in big["error"]
    assert simulator.predict("vgg16", "h100-sxm", batch=largest, mode="train")["status"] == "ok"
    over = simulator.predict("vgg16", "h100-sxm", batch=largest + 1, mode="train")
    assert over["status"] == "out_of_memory" and over["largest_batch_that_fits"] == largest
    # data parallel: the same per-device memory plus DDP's buckets (a second copy of the
    # fp32 gradients), so a smaller batch per device; with the gradients as bucket views
    # the same batch as one device
    ddp = simulator.predict("vgg16", "h100-sxm", batch=2000, mode="train", devices=2)
    fitting = ddp["largest_batch_that_fits"]
    assert fitting < largest and "per device" in ddp["error"]
    two = simulator.predict("vgg16", "h100-sxm", batch=fitting, mode="train", devices=2)
    assert two["status"] == "ok" and two["memory"]["ddp_buckets_bytes"] == 4 * 138_357_544
    assert simulator.predict("vgg16", "h100-sxm", batch=fitting + 1, mode="train",
                             devices=2)["status"] == "out_of_memory"
    viewed = simulator.predict("vgg16", "h100-sxm", batch=2000, mode="train", devices=2,
                               options={"gradient_as_bucket_view": True})
    assert viewed["largest_batch_that_fits"] == largest


def test_nothing_fits_is_a_largest_batch_of_zero() -> None:
    """VGG16's weights, gradients and momentum alone (1.66 GB) and the context overflow 2 GB."""
    result = simulator.predict("vgg16", "gtx-680", batch=1, mode="train")
    assert result["status"] == "out_of_memory" and result["largest_batch_that_fits"] == 0


def test_committed_memory_measurements_have_their_provenance() -> None:
    assert FACTS["schema"] == "simulator.memory-facts/1"
    assert {"date", "command", "device", "software", "convolutions"} <= set(FACTS)
    held_out = json.loads((MEASUREMENTS / "h200-b16-b64-torch-zoo.json").read_text())
    assert held_out["schema"] == "simulator.torch-zoo/1"
    assert {r["batch"] for r in held_out["records"]} == {16, 64}
    assert all(math.isfinite(r["max_memory_allocated_bytes"]) for r in held_out["records"])


def test_a_cpu_holds_no_cuda_context():
    """Regression: the CUDA context was counted on CPUs too."""
    from simulator.api.predict import predict

    result = predict("mlp", "xeon-spr-16vcpu", batch=1)
    assert result["memory"]["cuda_context_bytes"] == 0
    assert predict("mlp", "h200", batch=1)["memory"]["cuda_context_bytes"] > 0

"""The systolic-array device kind `tpu` (accelerators/tpu.py), a plugin registered through the
`simulator.hardware` entry point: geometry against published peaks, padding losses,
invariants, its catalog entries and its worked example in docs/plugins.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import simulator
from accelerators.tpu import TPU, utilisation
from hardware_models.catalog_io import device_kinds, device_names, load_spec, make_device
from simulator.core import plugins
from tests.conftest import run_cli
from workloads.builder import build_graph
from workloads.model_def import load_model
from workloads.ops import Gemm, Op

ROOT = Path(__file__).resolve().parents[1]
TPUS = ["tpu-v2", "tpu-v3", "tpu-v4", "tpu-v5e"]


def test_tpu_is_a_registered_kind_with_catalog_entries():
    assert plugins.hardware.get("tpu") is TPU and "tpu" in device_kinds()
    assert set(TPUS) <= set(device_names())


@pytest.mark.parametrize("name", TPUS)
def test_the_array_geometry_gives_the_published_peak(name):
    spec = load_spec(name)
    assert spec.matrix_flops_per_s == pytest.approx(spec.published_peak_flops["bf16"], rel=0.01)
    assert spec.sources and make_device(name).peak_flops("bf16") == spec.matrix_flops_per_s


def test_a_64_wide_product_wastes_most_of_a_128_array():
    tpu = make_device("tpu-v4")
    assert utilisation(tpu, Gemm(8192, 64, 64)) < 0.26  # a quarter of the cells hold weights
    assert utilisation(tpu, Gemm(8192, 1024, 1024)) > 0.9
    # k = 129 pads to two tiles of 128: barely more than half the work of k = 256 is useful
    assert tpu.matmul_s(Gemm(8192, 1024, 129), "bf16") == tpu.matmul_s(Gemm(8192, 1024, 256),
                                                                      "bf16")


def test_utilisation_never_exceeds_one_and_more_units_are_never_slower():
    small, big = make_device("tpu-v2"), make_device("tpu-v3")  # v3: twice the MXUs per core
    for g in (Gemm(1, 1, 1), Gemm(7, 300, 5000), Gemm(65536, 128, 128), Gemm(128, 128, 128, 64)):
        assert 0 < utilisation(small, g) <= 1 and 0 < utilisation(big, g) <= 1
        assert big.matmul_s(g, "bf16") <= small.matmul_s(g, "bf16")


def test_resnet50_trains_on_every_tpu():
    for name in TPUS:
        r = simulator.predict("resnet50", name, batch=128, precision="bf16", input="device")
        assert r["status"] == "ok" and r["calibration"] == "spec-sheet"
        assert 0 < r["utilisation"] <= 1


def test_chips_of_a_slice_talk_over_ici_by_default():
    r = simulator.predict("resnet50", "tpu-v4", batch=64, precision="bf16", devices=4,
                          devices_per_node=4, parallel="data", input="device")
    assert r["intra_link"] == "ici-v4" and r["communication_s"] > 0


def test_fp64_on_a_tpu_is_a_one_line_error():
    out = run_cli("predict", "--model", "blocked_lu:n=1024,block=128", "--hardware", "tpu-v4")
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "a TPU has no fp64 units" in out.stderr


def test_a_tpu_file_by_path_with_a_bad_field_is_one_line(tmp_path):
    text = (ROOT / "accelerators" / "catalog" / "tpu-v4.yaml").read_text()
    bad = tmp_path / "my-tpu.yaml"
    bad.write_text(text.replace("mxus_per_core: 4", "mxus_per_core: 0"))
    out = run_cli("predict", "--model", "mlp", "--hardware", str(bad))
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "mxus_per_core" in out.stderr


def test_the_worked_example_in_the_docs_is_this_file():
    doc = (ROOT / "docs" / "plugins.md").read_text()
    shown = dict(re.findall(r"File `([^`]+)`:\n\n```\w*\n(.*?)```", doc, re.DOTALL))
    assert set(shown) == {"accelerators/tpu.py", "accelerators/catalog/tpu-v4.yaml"}
    for path, text in shown.items():
        assert text == (ROOT / path).read_text(), path


def test_weight_tiles_are_double_buffered():
    """A tile's weights shift in while the one before computes: a tile costs the longer of
    its stream and the shift-in, and a product one pipeline fill (not one per tile)."""
    tpu = make_device("tpu-v2")  # 2 matrix units of 128 x 128
    rows, clock = tpu.spec.mxu_rows, tpu.spec.clock_hz
    # 8 tiles (k = 4 x 128, n = 2 x 128) over 2 units: 4 waves
    assert tpu.matmul_s(Gemm(1000, 256, 512), "bf16") * clock == pytest.approx(4 * 1000 + rows)
    assert tpu.matmul_s(Gemm(16, 256, 512), "bf16") * clock == pytest.approx(4 * rows + rows)


def test_a_1x1_convolution_is_one_nhwc_product_on_a_tpu():
    """Regression: the per-sample GEMMs cuDNN runs for a 1x1 convolution on NCHW tensors
    (Cout x HW for each sample) were mapped to the array as they are, streaming only Cout
    rows per weight tile; XLA runs the convolution over all pixels of all samples."""
    tpu = make_device("tpu-v2")
    graph = build_graph(load_model("resnet50"), 256, "train", "bf16", "sgd", False,
                        "implicit_gemm", "device")
    op = graph.op("layer1.0.conv3.fwd")  # 1x1, 64 -> 256 channels at 56 x 56
    assert op.attr("algorithm") == "gemm" and op.gemm == Gemm(256, 56 * 56, 64, 256)
    assert tpu.product(op) == Gemm(256 * 56 * 56, 256, 64)
    assert tpu.op_cost(op).compute_s == tpu.matmul_s(Gemm(256 * 56 * 56, 256, 64), "bf16")
    # at 7 x 7 (49 pixels: not a 16-byte stride) the graph has cuDNN's implicit GEMM, which
    # is the same NHWC product; per sample, the 49 pixels would be the array's width: 49 of
    # its 128 columns doing work
    small = graph.op("layer4.0.conv3.fwd")  # 1x1, 512 -> 2048 channels at 7 x 7
    assert tpu.product(small) == Gemm(256 * 7 * 7, 2048, 512)
    assert tpu.op_cost(small).compute_s < tpu.matmul_s(Gemm(2048, 7 * 7, 512, 256), "bf16") / 2


def test_an_elementwise_op_gets_its_producers_output_on_chip():
    """XLA fuses an elementwise op with its producer: one output-sized operand arrives on
    chip; an optimizer step's bytes all cross HBM."""
    tpu = make_device("tpu-v2")
    bandwidth, size = tpu.spec.memory_bandwidth_bytes_per_s, 1e9  # far beyond VMEM
    relu = Op("r", "elementwise", "fwd", "r", size, size, size, "bf16", 10**8)
    add = Op("a", "elementwise", "fwd", "a", size, 2 * size, size, "bf16", 10**8)
    step = Op("o", "optimizer", "update", "o", size, 3 * size, 2 * size, "fp32", 10**8)
    assert tpu.memory_s(relu) == pytest.approx(size / bandwidth)
    assert tpu.memory_s(add) == pytest.approx(2 * size / bandwidth)
    assert tpu.memory_s(step) == pytest.approx(5 * size / bandwidth)

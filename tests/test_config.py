"""The experiment schema: valid files load with their defaults and inline definitions;
every kind of bad input is one located message (file:line: field.path: what)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hardware_models.spec import GPUSpec
from simulator.config.refs import DerivedDevice
from simulator.config.schema import load_experiment
from simulator.config.sweep import is_sweep_file
from simulator.core.errors import UserError
from workloads.model_def import ModelDef

pytestmark = pytest.mark.usefixtures("yaml_loader")  # each test with both YAML loaders
BASE = """title: T
scenarios:
  - name: a
    workload:
      model: vgg16
      batch: 4
    hardware:
      device: gtx-1080
"""
TINY_MODEL = "{name: t, input_shape: [16], layers: [{name: fc, kind: linear, out_features: 4}]}"
SPEC = ("{kind: gpu, name: my-gpu, display_name: My GPU, sms: 10, cores_per_sm: 64, "
        "clock_hz: 1.5e+9, peak_flops: {fp32: 1.9e+12}, memory_bytes: 4.0e+9, "
        "memory_bandwidth_bytes_per_s: 2.0e+11, l2_bytes: 1048576.0, kernel_launch_s: 5.0e-6, "
        "host_link: pcie3-x16, sources: [hypothetical]}")


def write(tmp_path: Path, text: str, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_minimal_experiment_gets_documented_defaults(tmp_path):
    exp = load_experiment(write(tmp_path, BASE))
    s = exp.scenarios[0]
    assert (s.workload.precision, s.workload.mode, s.workload.optimizer) == ("fp32", "train", "sgd")
    assert s.hardware.count == 1 and s.strategy == "single" and s.published is None
    assert exp.outputs.formats == ["png", "svg"] and exp.outputs.figures and exp.outputs.trace


def test_anchors_under_x_keys_are_reused_and_not_read(tmp_path):
    text = ("title: T\nx-base: &w {model: alexnet, batch: 8, mode: infer}\nscenarios:\n"
            "  - {name: a, workload: *w, hardware: {device: i7-10510u}}\n"
            "  - {name: b, workload: {<<: *w, batch: 16}, hardware: {device: gtx-1080}}\n")
    exp = load_experiment(write(tmp_path, text))
    assert [s.workload.batch for s in exp.scenarios] == [8, 16]
    assert exp.scenarios[1].workload.mode == "infer"
    assert "x-base" not in exp.model_dump()


def test_inline_model_modified_device_and_full_spec(tmp_path):
    text = BASE.replace("model: vgg16", f"model: {TINY_MODEL}").replace(
        "device: gtx-1080",
        "device: {base: gtx-1080, overrides: {memory_bandwidth_bytes_per_s: 6.4e+11}}")
    text += (f"  - name: b\n    workload: {{model: mlp, batch: 2}}\n"
             f"    hardware: {{device: {SPEC}}}\n")
    exp = load_experiment(write(tmp_path, text))
    first, second = exp.scenarios
    assert isinstance(first.workload.model, ModelDef) and first.workload.model_name == "t"
    assert isinstance(first.hardware.device, DerivedDevice)
    assert first.hardware.device.spec.memory_bandwidth_bytes_per_s == 6.4e11
    assert first.hardware.device.spec.sms == 20  # the rest comes from the base device
    assert first.hardware.device_name == "gtx-1080-modified"
    assert isinstance(second.hardware.device, GPUSpec) and second.hardware.device_name == "my-gpu"


def test_model_file_is_read_relative_to_the_experiment(tmp_path):
    (tmp_path / "models").mkdir()
    write(tmp_path, "name: tiny\ninput_shape: [8]\nlayers:\n  - {name: fc, kind: linear, "
                    "out_features: 2}\n", "models/tiny.yaml")
    exp = load_experiment(write(tmp_path, BASE.replace("vgg16", "models/tiny.yaml")))
    assert exp.scenarios[0].workload.model.name == "tiny"


BAD = {  # name: (edit of BASE, line, field path, words in the message)
    "zero batch": (("batch: 4", "batch: 0"), 6, "scenarios[0].workload.batch", ["greater than 0"]),
    "negative batch": (("batch: 4", "batch: -4"), 6, "scenarios[0].workload.batch", ["-4"]),
    "text batch": (("batch: 4", "batch: two"), 6, "scenarios[0].workload.batch",
                   ["integer", "two"]),
    "fractional batch": (("batch: 4", "batch: 4.5"), 6, "scenarios[0].workload.batch", ["4.5"]),
    "boolean batch": (("batch: 4", "batch: yes"), 6, "scenarios[0].workload.batch", ["True"]),
    "unknown key": (("batch: 4", "batch: 4\n      bacth: 4"), 7, "scenarios[0].workload.bacth",
                    ["unknown field 'bacth'", "valid fields: model, batch"]),
    "missing key": (("      batch: 4\n", ""), 5, "scenarios[0].workload.batch", ["missing"]),
    "unknown model": (("vgg16", "vgg17"), 5, "scenarios[0].workload.model",
                      ["unknown model 'vgg17'", "vgg16", "resnet50"]),
    "unknown device": (("gtx-1080", "h1000"), 8, "scenarios[0].hardware.device",
                       ["unknown hardware 'h1000'", "h100-sxm", "ideal"]),
    "unknown precision": (("batch: 4", "batch: 4\n      precision: fp8"), 7,
                          "scenarios[0].workload.precision", ["fp8", "bf16"]),
    "unknown mode": (("batch: 4", "batch: 4\n      mode: fly"), 7, "scenarios[0].workload.mode",
                     ["'train' or 'infer'", "fly"]),
    "unknown optimizer": (("batch: 4", "batch: 4\n      optimizer: lion"), 7,
                          "scenarios[0].workload.optimizer", ["lion", "adam"]),
    "unknown link": (("device: gtx-1080", "device: gtx-1080\n      intra_link: nvlink9"), 9,
                     "scenarios[0].hardware.intra_link", ["nvlink9", "nvlink4"]),
    "nan override": (("device: gtx-1080",
                      "device: {base: gtx-1080, overrides: {memory_bandwidth_bytes_per_s: .nan}}"),
                     8, "scenarios[0].hardware.device.overrides.memory_bandwidth_bytes_per_s",
                     ["finite"]),
    "inf override": (("device: gtx-1080",
                      "device: {base: gtx-1080, overrides: {memory_bytes: .inf}}"),
                     8, "scenarios[0].hardware.device.overrides.memory_bytes", ["finite"]),
    "negative override": (("device: gtx-1080",
                           "device: {base: gtx-1080, overrides: {memory_bytes: -1}}"),
                          8, "scenarios[0].hardware.device.overrides.memory_bytes",
                          ["greater than 0"]),
    "unknown override": (("device: gtx-1080", "device: {base: gtx-1080, overrides: {bw: 1}}"),
                         8, "scenarios[0].hardware.device.overrides.bw",
                         ["'bw' cannot be overridden", "memory_bandwidth_bytes_per_s"]),
    "unknown base": (("device: gtx-1080", "device: {base: gtx-1081}"), 8,
                     "scenarios[0].hardware.device.base", ["gtx-1081", "gtx-1080"]),
    "bad spec kind": (("device: gtx-1080", "device: {kind: tpu}"), 8,
                      "scenarios[0].hardware.device.kind", ["'cpu' or 'gpu'"]),
    "incomplete spec": (("device: gtx-1080", "device: {kind: gpu, name: x}"), 8,
                        "scenarios[0].hardware.device.display_name", ["missing"]),
    "bad inline layer kind": (("model: vgg16", ("model: {name: t, input_shape: [16], layers: "
                                "[{name: fc, kind: lineer, out_features: 4}]}")), 5,
                              "scenarios[0].workload.model.layers[0]", ["lineer", "linear"]),
    "inline shape mismatch": (("model: vgg16", ("model: {name: t, input_shape: [16], layers: "
                                "[{name: fc, kind: linear, out_features: 4}, "
                                "{name: c, kind: conv2d, out_channels: 3, kernel: 3}]}")), 5,
                              "scenarios[0].workload.model.layers[1]", ["shape"]),
    "workload not a mapping": (("    workload:\n      model: vgg16\n      batch: 4\n",
                                "    workload: vgg16\n"), 4, "scenarios[0].workload",
                               ["mapping", "model, batch"]),
    "nan published": (("device: gtx-1080", "device: gtx-1080\n    published: {t_s: .nan}"), 9,
                      "scenarios[0].published.t_s", ["finite"]),
    "negative published": (("device: gtx-1080", "device: gtx-1080\n    published: {t_s: -3}"), 9,
                           "scenarios[0].published.t_s", ["greater than 0"]),
    "single on many": (("device: gtx-1080", ("device: gtx-1080\n      count: 2\n"
                         "    parallel: {strategy: single}")), 10,
                       "scenarios[0].parallel.strategy", ["single", "count is 2"]),
    "unknown strategy": (("device: gtx-1080", "device: gtx-1080\n    parallel: {strategy: magic}"),
                         9, "scenarios[0].parallel.strategy", ["magic", "pipeline"]),
    "nan option": (("device: gtx-1080", "device: gtx-1080\n    parallel: {options: {x: .inf}}"),
                   9, "scenarios[0].parallel.options.x", ["finite"]),
    "node larger than count": (("device: gtx-1080", ("device: gtx-1080\n      count: 2\n"
                                 "      devices_per_node: 4")), 10,
                               "scenarios[0].hardware.devices_per_node", ["at most count (2)"]),
    "epochs without dataset": (("batch: 4", "batch: 4\n      epochs: 2"), 7,
                               "scenarios[0].workload.epochs", ["dataset_size"]),
    "zero dataset": (("batch: 4", "batch: 4\n      dataset_size: 0"), 7,
                     "scenarios[0].workload.dataset_size", ["greater than 0"]),
    "unknown timeline scenario": (("device: gtx-1080",
                                   "device: gtx-1080\noutputs: {timeline: [zz]}"),
                                  9, "outputs.timeline[0]", ["unknown scenario 'zz'", "a"]),
    "unknown format": (("device: gtx-1080", "device: gtx-1080\noutputs: {formats: [jpg]}"), 9,
                       "outputs.formats[0]", ["'png', 'svg' or 'pdf'"]),
    "missing title": (("title: T\n", ""), 1, "title", ["missing"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_names_file_line_field_and_problem(tmp_path, case):
    (old, new), line, field, words = BAD[case]
    assert old in BASE
    path = write(tmp_path, BASE.replace(old, new))
    with pytest.raises(UserError) as err:
        load_experiment(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: {field}: "), message
    assert "\n" not in message
    for word in words:
        assert word in message


def test_duplicate_scenario_names(tmp_path):
    path = write(tmp_path, BASE + BASE[BASE.index("  - name"):])
    with pytest.raises(UserError, match=re.escape(f"{path}:9: scenarios[1].name: duplicate "
                                                  "scenario name 'a' (also scenarios[0])")):
        load_experiment(path)


def test_duplicate_key_in_a_mapping(tmp_path):
    path = write(tmp_path, BASE.replace("batch: 4", "batch: 4\n      batch: 8"))
    with pytest.raises(UserError, match=re.escape(f"{path}:7: duplicate key 'batch'")):
        load_experiment(path)


@pytest.mark.parametrize("text, expect", [
    ("", "the file is empty"),
    ("# only a comment\n", "the file is empty"),
    ("- a\n- b\n", ":1: (top level): an experiment must be a mapping"),
    ("title: T\nscenarios: []\n", ":2: scenarios: must have at least 1 item"),
    (BASE + "  - name: [unclosed\n", ":10: not valid YAML"),
    (BASE.replace("    hardware", "\thardware"), ":7: not valid YAML"),
])
def test_empty_non_mapping_and_syntax_errors(tmp_path, text, expect):
    path = write(tmp_path, text)
    with pytest.raises(UserError) as err:
        load_experiment(path)
    assert str(err.value).startswith(str(path)) and expect in str(err.value)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(UserError, match="nope.yaml: file does not exist"):
        load_experiment(tmp_path / "nope.yaml")
    with pytest.raises(UserError, match="is not a file"):
        load_experiment(tmp_path)


def test_every_experiment_in_the_repo_validates():
    files = sorted((Path(__file__).resolve().parents[1] / "experiments").glob("*.yaml"))
    assert files, "experiments/ has no YAML files"
    for path in files:
        if is_sweep_file(path):  # validated by test_sweep_experiments.py
            continue
        exp = load_experiment(path)
        assert exp.title and exp.scenarios


def _doc_example_experiment(block: str) -> str:
    """Wrap one YAML example of docs/experiments.md into a whole experiment."""
    if block.startswith("title:"):
        return block
    if block.startswith("x-"):
        return "title: Doc\n" + block
    scenario = {"workload": "workload: {model: mlp, batch: 4}",
                "hardware": "hardware: {device: gtx-1080}"}
    key = block.split(":", 1)[0]
    if key == "outputs":
        names = re.search(r"timeline: \[(.*)\]", block).group(1).split(", ")
        body = "".join(f"  - name: {n}\n    {scenario['workload']}\n    {scenario['hardware']}\n"
                       for n in names)
        return f"title: Doc\nscenarios:\n{body}{block}"
    scenario[key] = block
    lines = "\n".join(scenario.values()).replace("\n", "\n    ")
    return f"title: Doc\nscenarios:\n  - name: s\n    {lines}\n"


def test_every_example_in_the_docs_validates(tmp_path):
    text = (Path(__file__).resolve().parents[1] / "docs" / "experiments.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)
    assert len(blocks) >= 12
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "my_net.yaml").write_text(
        "name: my_net\ninput_shape: [8]\nlayers:\n  - {name: fc, kind: linear, out_features: 2}\n")
    for block in blocks:
        path = write(tmp_path, _doc_example_experiment(block))
        load_experiment(path)  # raises with the line of the example if it is wrong


def test_comparisons_name_scenarios_and_compare_equal_work(tmp_path):
    head = """title: t
scenarios:
  - {name: a, workload: {model: mlp, batch: 4, dataset_size: 100}, hardware: {device: gtx-1080}}
  - {name: b, workload: {model: mlp, batch: 4, dataset_size: 200}, hardware: {device: i7-10700}}
comparisons:
"""
    cases = [("  - {name: r, quantity: step_time_s, of: a, over: c}",
              ":6: comparisons[0].over: unknown scenario 'c'"),
             ("  - {name: r, quantity: time_to_train_s, of: a, over: b}",
              "compares unlike work: a trains 100 samples, b 200")]
    for body, message in cases:
        path = tmp_path / "e.yaml"
        path.write_text(head + body + "\n")
        with pytest.raises(UserError, match=re.escape(message)):
            load_experiment(path)
    path.write_text(head + "  - {name: r, quantity: step_time_s, of: a, over: b, published: 2}\n"
                    "assumptions: [one pass]\n")
    exp = load_experiment(path)
    assert exp.comparisons[0].published == 2.0 and exp.assumptions == ["one pass"]


def test_an_inline_server_is_validated_like_the_catalog_s(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text("title: t\nscenarios:\n  - name: a\n    workload: {model: mlp, batch: 4}\n"
                    "    hardware: {device: gtx-1080, server: {display_name: box}}\n")
    with pytest.raises(UserError, match=r"hardware\.server\.sources: required field"):
        load_experiment(path)
    path.write_text("title: t\nscenarios:\n  - name: a\n    workload: {model: mlp, batch: 4}\n"
                    "    hardware: {device: gtx-1080, server: dgx-9}\n")
    with pytest.raises(UserError, match="unknown server 'dgx-9'"):
        load_experiment(path)

"""Hostile input: every bad file or flag is one line `error: FILE:LINE: FIELD: what is wrong`,
exit status 2, in bounded time and memory, with nothing written (docs/reliability.md,
"Hostile input"). One regression test per defect of the reliability issue, a hypothesis
fuzz of the YAML reader and of the model loader, and the CLI run as a user would."""

from __future__ import annotations

import math
import pathlib
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.cli.list_cmd import run_list
from simulator.config.schema import load_experiment
from simulator.core.errors import MAX_MESSAGE_CHARS, UserError
from simulator.core.yaml_source import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_INT,
    MAX_NODES,
    parse_yaml_text,
    read_yaml_source,
)
from simulator.report.atomic import write_json_atomic
from workloads.builder import build_graph
from workloads.layers import LayerCost, Work, layer_kinds
from workloads.model_def import (
    MAX_SIZE,
    REQUIRED_ARGS,
    RESERVED_LAYER_NAMES,
    load_model,
    parse_model,
)
from workloads.resolve import MAX_BATCH, resolve_layers

pytestmark = pytest.mark.usefixtures("yaml_loader")  # each test with both YAML loaders
ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = """title: T
scenarios:
  - name: a
    workload: {model: mlp, batch: 1}
    hardware: {device: ideal}
"""
MODEL = """name: m
input_shape: [16]
layers:
  - {name: fc, kind: linear, out_features: 8}
"""
CONV = "name: c\ninput_shape: [3, 8, 8]\nlayers:\n  - {name: conv, kind: conv2d, " \
       "out_channels: 4, kernel: 3, padding: PAD}\n"


def bomb(levels: int = 9) -> str:
    """Billion laughs: 9 ** levels strings from a few hundred bytes, all under `x-` keys."""
    lines = ['x-a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        lines.append(f"x-a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


@contextmanager
def time_limit(seconds: float, cpu: bool = False) -> Iterator[None]:
    """Interrupt the block (a TimeoutError) if it runs longer than `seconds` of wall-clock
    time, or with `cpu` of this process's CPU time (a bound on the work that a loaded,
    shared machine does not break)."""

    def fire(signum: int, frame: object) -> None:
        raise TimeoutError(f"took longer than {seconds} s")

    timer, sig = (signal.ITIMER_PROF, signal.SIGPROF) if cpu else \
        (signal.ITIMER_REAL, signal.SIGALRM)
    previous = signal.signal(sig, fire)
    signal.setitimer(timer, seconds)
    try:
        yield
    finally:
        signal.setitimer(timer, 0)
        signal.signal(sig, previous)


def one_line(err: pytest.ExceptionInfo[UserError]) -> str:
    message = str(err.value)
    assert message.isprintable() and len(message) <= MAX_MESSAGE_CHARS, message
    return message


def write(tmp_path: Path, text: str | bytes, name: str = "hostile.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


# --- the YAML reader -------------------------------------------------------------------------


def test_an_alias_bomb_under_an_x_key_is_refused_at_once(tmp_path):
    path = write(tmp_path, bomb() + EXPERIMENT)
    with time_limit(5), pytest.raises(UserError) as err:
        load_experiment(path)
    assert f"{path}:5: x-a4: more than {MAX_NODES:,} YAML nodes" in one_line(err)


def test_an_alias_inside_the_node_it_names_is_refused(tmp_path):
    path = write(tmp_path, "x-loop: &loop [1, *loop]\n" + EXPERIMENT)
    with time_limit(5), pytest.raises(UserError) as err:
        load_experiment(path)
    assert f"{path}:1: x-loop[1]: an alias refers to" in one_line(err)


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x07", "\x7f", "\ufffe"])
def test_control_characters_are_one_line_naming_the_line(tmp_path, char):
    path = write(tmp_path, EXPERIMENT.replace("name: a", f"name: a{char}b"))
    with pytest.raises(UserError) as err:
        load_experiment(path)
    assert f"{path}:3: not valid YAML: control character" in one_line(err)


@pytest.mark.parametrize("text", ["title: " + "[" * 10_000 + "]" * 10_000 + "\n",
                                  "".join("  " * i + "a:\n" for i in range(700)),
                                  "- " * 10_000 + "x\n"])
def test_deep_nesting_is_one_line_not_a_recursion_error(tmp_path, text):
    path = write(tmp_path, text)
    with time_limit(5), pytest.raises(UserError) as err:
        load_experiment(path)
    assert f"nested deeper than {MAX_DEPTH} levels" in one_line(err)


def test_aliases_cannot_nest_deeper_than_the_limit(tmp_path):
    lines = ["x-0: &n0 [" + "[" * 40 + "1" + "]" * 40 + "]"]
    lines += [f"x-{i}: &n{i} [[[[[[[[[[[[[[[[[[[[[*n{i - 1}]]]]]]]]]]]]]]]]]]]]]"
              for i in range(1, 3)]
    path = write(tmp_path, "\n".join(lines) + "\n" + EXPERIMENT)
    with pytest.raises(UserError) as err:
        load_experiment(path)
    assert "deeper than 64 levels with its aliases expanded" in one_line(err)


def test_a_file_over_the_size_limit_is_refused_before_parsing(tmp_path):
    path = write(tmp_path, "title: T\nx-pad: '" + "a" * MAX_FILE_BYTES + "'\n")
    with time_limit(1), pytest.raises(UserError) as err:
        load_experiment(path)
    assert f"files are limited to {MAX_FILE_BYTES:,} bytes" in one_line(err)


@pytest.mark.parametrize("number, words", [
    ("9" * 400, ["integer too large (400 characters)"]),
    (str(MAX_INT + 1), ["integer too large", "2**53"]),
    ("-0x" + "f" * 20, ["integer too large"]),
])
def test_huge_integers_are_refused_where_they_are_written(tmp_path, number, words):
    path = write(tmp_path, EXPERIMENT.replace("batch: 1", f"batch: {number}"))
    with pytest.raises(UserError) as err:
        load_experiment(path)
    message = one_line(err)
    assert message.startswith(f"{path}:4: scenarios[0].workload.batch: ")
    assert all(word in message for word in words)


@pytest.mark.parametrize("number, words", [
    (".inf", ["must be a finite number, got .inf"]), ("-.inf", ["finite"]),
    (".nan", ["finite"]), ("1.0e+999", ["finite"]), ("1.0e-320", ["smallest normal float"]),
])
def test_numbers_must_be_finite_and_normal(tmp_path, number, words):
    device = "{base: gtx-1080, overrides: {memory_bandwidth_bytes_per_s: X}}"
    path = write(tmp_path, EXPERIMENT.replace("ideal", device.replace("X", number)))
    with pytest.raises(UserError) as err:
        load_experiment(path)
    message = one_line(err)
    assert message.startswith(f"{path}:5: scenarios[0].hardware.device.overrides."
                              "memory_bandwidth_bytes_per_s: ")
    assert all(word in message for word in words)


def test_bad_tagged_values_are_one_line(tmp_path):
    for text in ["a: !!int x12\n", "a: !!float abc\n", "a: !!timestamp 2020-13-45\n",
                 "a: !!python/object:os.system x\n", "a: !!binary QQ\n", "a: !!int\n"]:
        with pytest.raises(UserError) as err:
            parse_yaml_text(text, "t.yaml")
        assert one_line(err).startswith("t.yaml")


def test_messages_stay_on_one_line_whatever_they_quote():
    assert str(UserError("a\nb\x1b[31m")) == "a\\x0ab\\x1b[31m"
    assert len(str(UserError("k" * 10**6))) == MAX_MESSAGE_CHARS
    with pytest.raises(UserError) as err:
        parse_yaml_text('"a\\nb": 1\n"a\\nb": 2\n', "t.yaml")
    assert one_line(err).startswith("t.yaml:2: duplicate key")


# --- model files -----------------------------------------------------------------------------


def test_per_dimension_padding_is_a_valid_conv_padding():
    pair = parse_model(yaml.safe_load(CONV.replace("PAD", "[1, 1]")), "c.yaml")
    single = parse_model(yaml.safe_load(CONV.replace("PAD", "1")), "c.yaml")
    assert pair.layers[0].padding == (1, 1)
    assert resolve_layers(pair, 2)[0].cost == resolve_layers(single, 2)[0].cost
    with pytest.raises(UserError, match=r"padding: must be an integer or a list of two"):
        parse_model(yaml.safe_load(CONV.replace("PAD", "[1, -1]")), "c.yaml")


def test_model_files_fail_as_well_as_experiment_files(tmp_path, monkeypatch):
    dup = write(tmp_path, MODEL.replace("name: m\n", "name: m\nname: n\n"), "dup.yaml")
    with pytest.raises(UserError) as err:
        load_model(str(dup))
    assert one_line(err).startswith(f"{dup}:2: duplicate key 'name'")
    utf = write(tmp_path, MODEL.encode().replace(b"name: m", b"name: m\xff"), "utf.yaml")
    with pytest.raises(UserError) as err:
        load_model(str(utf))
    assert one_line(err) == f"{utf}:1: not valid UTF-8: byte 0xff at column 8; save the " \
                            "file as UTF-8"
    (tmp_path / "folder.yaml").mkdir()
    with pytest.raises(UserError, match=r"folder.yaml: is not a file \(it is a directory\)"):
        load_model(str(tmp_path / "folder.yaml"))
    locked = write(tmp_path, MODEL, "locked.yaml")

    def denied(self: pathlib.Path, *args: object, **kwargs: object) -> object:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(pathlib.Path, "open", denied)
    monkeypatch.setattr(pathlib.Path, "read_text", denied)
    with pytest.raises(UserError, match=r"locked.yaml: cannot be read: Permission denied"):
        load_model(str(locked))


def test_model_fields_are_located_and_bounded(tmp_path):
    cases = {
        MODEL.replace("out_features: 8", f"out_features: {MAX_SIZE + 1}"):
            ":4: layers[0].out_features: must be less than or equal to 16777216",
        MODEL.replace("out_features: 8", "out_features: 8, colour: red"):
            ":4: layers[0].colour: unknown field 'colour'",
        MODEL.replace("input_shape: [16]", "input_shape: [16]\ninput_bytes_per_element: .inf"):
            ":3: input_bytes_per_element: must be a finite number",
        MODEL.replace("[16]", "[0]"): ":2: input_shape[0]: must be greater than or equal to 1",
        MODEL.replace("kind: linear", "kind: linear, inputs: [zz]"):
            ":4: layers[0].inputs[0]: input 'zz' is not an earlier layer",
    }
    for text, expect in cases.items():
        path = write(tmp_path, text)
        with pytest.raises(UserError) as err:
            load_model(str(path))
        assert one_line(err).startswith(f"{path}{expect}"), str(err.value)


@pytest.mark.parametrize("name", RESERVED_LAYER_NAMES)
def test_reserved_layer_names_are_refused(tmp_path, name):
    path = write(tmp_path, MODEL.replace("name: fc", f"name: '{name}'"))
    with pytest.raises(UserError) as err:
        load_model(str(path))
    assert one_line(err).startswith(f"{path}:4: layers[0].name: layer name '{name}' is reserved")
    with pytest.raises(UserError, match="is reserved"):
        parse_model(yaml.safe_load(MODEL.replace("name: fc", f"name: '{name}'")), "m.yaml")


def test_a_plugin_layer_missing_an_argument_is_one_line(tmp_path, monkeypatch):
    def needs_kernel(shapes: list, args: dict, batch: int) -> LayerCost:
        n = batch * math.prod(shapes[0]) * args["kernel"]
        return LayerCost(shapes[0], 0, Work("elementwise", n, n, n, n), None, None, 0.0)

    layer_kinds.names()  # load the entry points first
    monkeypatch.setitem(layer_kinds._items, "needs_kernel", needs_kernel)
    path = write(tmp_path, MODEL.replace("kind: linear, out_features: 8", "kind: needs_kernel"))
    with pytest.raises(UserError) as err:
        resolve_layers(load_model(str(path)), 1)
    assert one_line(err) == (f"{path}:4: layers[0]: layer fc (needs_kernel): the layer needs "
                             "argument 'kernel'")


@pytest.mark.parametrize("batch", [10**400, MAX_BATCH + 1, 0, True, 2.0])
def test_batches_are_bounded_before_any_arithmetic(batch):
    with pytest.raises(UserError, match=r"batch: must be an integer from 1 to 2\*\*31"):
        resolve_layers(load_model("mlp"), batch)
    with pytest.raises(UserError, match="batch"):  # the whole step, as predict builds it
        build_graph(load_model("mlp"), batch, "train")


# --- writers and listings --------------------------------------------------------------------


def test_the_json_writer_refuses_non_finite_numbers_naming_the_field(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("{}\n")
    for bad in (math.inf, -math.inf, math.nan):
        with pytest.raises(UserError) as err:
            write_json_atomic(path, {"scenarios": [{"name": "a", "step_time_s": bad}]})
        assert one_line(err).startswith(f"results.json: scenarios[0].step_time_s: {bad} is "
                                        "not a finite number")
    assert path.read_text() == "{}\n" and [p.name for p in tmp_path.iterdir()] == [path.name]


def test_list_models_columns_line_up(capsys):
    run_list("models")
    header, *rows = capsys.readouterr().out.splitlines()
    params_end = header.index("params") + len("params")
    assert {row.index(" ", row.index(",")) for row in rows} == {params_end}
    assert any(row.startswith("mobilenet_v2 ") for row in rows)


def test_the_documented_limits_are_the_code_limits():
    text = (ROOT / "docs" / "reliability.md").read_text()
    section = text[text.index("## Hostile input"):]
    for number in (f"{MAX_FILE_BYTES:,}", f"{MAX_DEPTH}", f"{MAX_NODES:,}", "2**53",
                   f"{MAX_SIZE:,}", f"{MAX_BATCH:,}", f"{MAX_MESSAGE_CHARS:,}"):
        assert number in section, number


# --- fuzz: only UserError, on one line, in bounded time ----------------------------------


TOKENS = ["a", "b", ":", ": ", " ", "  ", "\n", "- ", "[", "]", "{", "}", ",", "&a ", "*a",
          "&b ", "*b", "<<: ", "!!int ", "!!float ", "!!timestamp ", "!!binary ", "!!str ",
          "!!python/object ", "!!set ", "'", '"', "\\", "#", "---\n", "...\n", "|", ">", "? ",
          "\t", "1", "0x", "_", "9" * 45, "1.0e-320", ".inf", ".nan", "~", "null", "yes",
          "2020-13-45", "\x00", "\x1b", "\x85", "é", "\ufeff", "%YAML 1.1\n", "!", "@", "`"]
YAMLISH = st.lists(st.sampled_from(TOKENS), max_size=60).map("".join)


def _reads_or_refuses(data: bytes, folder: Path) -> None:
    path = folder / "fuzz.yaml"
    path.write_bytes(data)
    try:
        with time_limit(2):
            read_yaml_source(path)
    except UserError as err:
        assert str(err).isprintable() and len(str(err)) <= MAX_MESSAGE_CHARS


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


# generation may be slow on a loaded machine; each example is still held to the deadline
FUZZ = settings(max_examples=150, deadline=1000, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(data=st.binary(max_size=300) | YAMLISH.map(str.encode))
def test_fuzz_the_yaml_reader(data, folder):
    _reads_or_refuses(data, folder)


@pytest.mark.slow
@settings(FUZZ, max_examples=2000)
@given(data=st.binary(max_size=2000) | YAMLISH.map(str.encode))
def test_fuzz_the_yaml_reader_long(data, folder):
    _reads_or_refuses(data, folder)


ODD = st.one_of(st.none(), st.booleans(), st.integers(-3, 9), st.integers(-2**80, 2**80),
                st.floats(), st.text(max_size=6), st.lists(st.integers(-2, 9), max_size=3))
SMALL = st.integers(1, 4)
PLAUSIBLE = {"out_channels": SMALL, "out_features": SMALL, "kernel": SMALL | st.lists(SMALL,
             min_size=2, max_size=2), "stride": SMALL, "padding": st.integers(0, 2) |
             st.lists(st.integers(0, 2), min_size=2, max_size=2), "groups": st.just(1),
             "bias": st.booleans(), "output_size": SMALL, "p": st.floats(0, 0.9),
             "inputs": st.lists(st.sampled_from(["l0", "l1", "l2"]), min_size=1, max_size=2)}
KINDS = st.sampled_from(["conv2d", "linear", "maxpool2d", "add", "flatten", "relu",
                         "adaptive_avgpool2d", "lcn", "locally_connected", "batchnorm2d",
                         "dropout", "softmax_cross_entropy", "nope"])
NAMES = st.sampled_from(["loss", "input", "l0", "a.fwd", "", "x" * 200, "a\tb"])
SHAPES = st.lists(st.integers(-1, 40) | st.just(2**40), max_size=4)


@st.composite
def models(draw: st.DrawFn) -> dict:
    """Model mappings that mostly resolve, with an odd value now and then (1 in 10)."""

    def odd(plausible: st.SearchStrategy, hostile: st.SearchStrategy = ODD) -> object:
        return draw(hostile if draw(st.integers(0, 9)) == 7 else plausible)

    layers = []
    for i in range(draw(st.integers(0, 5))):
        kind = draw(KINDS)
        args = draw(st.lists(st.sampled_from(sorted(PLAUSIBLE)), max_size=3, unique=True))
        args += odd(st.just(REQUIRED_ARGS.get(kind, ())), st.just(()))  # usually all it needs
        layer = {key: odd(PLAUSIBLE[key]) for key in args}
        layers.append({"name": odd(st.just(f"l{i}"), NAMES), "kind": kind, **layer})
    model = {"name": "m", "input_shape": odd(st.sampled_from([[3, 8, 8], [16], [2, 5, 5]]),
                                             SHAPES), "layers": layers}
    if draw(st.integers(0, 9)) == 7:
        model[draw(st.sampled_from(["input_bytes_per_element", "colour"]))] = draw(ODD)
    return model


MODELS = models()


def _loads_or_refuses(model: dict, folder: Path) -> None:
    path = folder / "fuzz_model.yaml"
    path.write_text(yaml.safe_dump(model))
    try:
        with time_limit(2):
            model = load_model(str(path))
            resolve_layers(model, 3)
            build_graph(model, 3, "train", "bf16")
    except UserError as err:
        assert str(err).isprintable() and len(str(err)) <= MAX_MESSAGE_CHARS


@FUZZ
@given(model=MODELS)
def test_fuzz_the_model_loader(model, folder):
    _loads_or_refuses(model, folder)


@pytest.mark.slow
@settings(FUZZ, max_examples=2000)
@given(model=MODELS)
def test_fuzz_the_model_loader_long(model, folder):
    _loads_or_refuses(model, folder)


@pytest.mark.slow
def test_the_worst_file_within_the_limits_parses_in_bounded_time():
    text = "a:\n" + "".join(f"  - {'v' * 8}{i:06d}\n" for i in range(MAX_NODES - 10))
    assert len(text) <= MAX_FILE_BYTES
    with time_limit(5, cpu=True):  # regression: 5 s of wall-clock failed at a load of 6
        assert len(parse_yaml_text(text, "big.yaml").data["a"]) == MAX_NODES - 10
    with pytest.raises(UserError, match="more than 50,000 YAML nodes"):
        parse_yaml_text("a: [" + "1, " * MAX_NODES + "]\n", "many.yaml")


# --- the CLI, as a hostile user runs it ------------------------------------------------------


CLI_CASES = {  # name: (file text, command with FILE, words in the one stderr line)
    "bomb": (bomb() + EXPERIMENT, ["run", "FILE"], ["more than 50,000 YAML nodes"]),
    "nul": (EXPERIMENT.replace("T", "T\x00"), ["run", "FILE"], [":1: not valid YAML"]),
    "reserved": (MODEL.replace("name: fc", "name: loss"),
                 ["predict", "--model", "FILE", "--hardware", "ideal"], ["is reserved"]),
    "deep": ("[" * 10_000, ["predict", "--model", "FILE", "--hardware", "ideal"],
             ["nested deeper"]),
    "integer": (EXPERIMENT.replace("batch: 1", "batch: " + "9" * 400), ["run", "FILE"],
                [":4: scenarios[0].workload.batch: integer too large"]),
    "calibrate": (bomb(), ["calibrate", "FILE", "--hardware", "ideal", "--out", "OUT/p.yaml"],
                  []),
    "validate": ("\x1b[2J", ["validate", "FILE", "--hardware", "h100-sxm", "--out", "OUT"], []),
}
SLOW_CLI = ("integer", "calibrate", "validate")


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if c in SLOW_CLI
                                  else c for c in CLI_CASES])
def test_the_cli_on_hostile_files_is_one_line_and_exit_2(tmp_path, case, cli):
    text, command, words = CLI_CASES[case]
    path = write(tmp_path, text)
    out = tmp_path / "out"
    args = [str(path) if a == "FILE" else a.replace("OUT", str(out)) for a in command]
    if command[0] == "run":
        args += ["--out", str(out)]
    result = cli(*args, cwd=tmp_path, timeout=60)
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: ")
    assert all(word in result.stderr for word in words), result.stderr
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == [path.name]



# --- JSON measurement files (calibrate-link, calibrate-host, calibrate, validate) ------------


JSON_CASES = {  # file text: words in the one line
    '{"schema": 1, "records": [}': ":1:27: not valid JSON",
    '{"a": NaN}': "NaN is not a JSON number",
    '{"a": Infinity}': "Infinity is not a JSON number",
    '{"a": 1, "a": 2}': "key 'a' appears twice",
    "[" * 100_000 + "]" * 100_000: "nested more than 64 levels",
    '[{"a": 1}]': "expected a JSON object",
    '"records"': "expected a JSON object",
}


@pytest.mark.parametrize("text", list(JSON_CASES), ids=range(len(JSON_CASES)))
def test_the_json_reader_refuses_in_one_line(tmp_path, text):
    from simulator.core.json_source import read_json_object
    path = write(tmp_path, text, "m.json")
    with pytest.raises(UserError) as err:
        read_json_object(path)
    assert JSON_CASES[text] in one_line(err) and str(path) in one_line(err)


def test_the_json_reader_refuses_bad_utf8_a_directory_and_a_missing_file(tmp_path):
    from simulator.core.json_source import read_json_object
    for path, words in [(write(tmp_path, b'{"a": "\xff"}', "u.json"), ":1: not valid UTF-8"),
                        (tmp_path, "is a directory"), (tmp_path / "no.json", "does not exist")]:
        with pytest.raises(UserError) as err:
            read_json_object(path)
        assert words in one_line(err)


@pytest.mark.parametrize("command, schema", [
    (["calibrate-link", "FILE", "--hardware", "h200", "--link", "nvlink4", "--out", "OUT/l.yaml"],
     "simulator.nccl-allreduce/1"),
    (["calibrate-host", "FILE", "--host", "x", "--hardware", "h200", "--out", "OUT/h.yaml"],
     "simulator.torch-zoo/1"),
    (["validate", "FILE", "--hardware", "h200", "--out", "OUT"], "simulator.torch-zoo/1"),
])
@pytest.mark.parametrize("body, words", [
    ('{"schema": "SCHEMA", "records": 7}', "records: expected a list"),
    ('{"schema": "SCHEMA", "records": [3]}', "records[0]: expected an object"),
    ('{"schema": "SCHEMA", "records": [1,', "not valid JSON"),
    ('{"schema": "SCHEMA", "records": [], "x": NaN}', "NaN is not a JSON number"),
])
def test_measurement_commands_on_hostile_json_are_one_line(tmp_path, cli, command, schema,
                                                           body, words):
    from simulator.calibrate.link import SCHEMA as LINK_SCHEMA
    schema = LINK_SCHEMA if command[0] == "calibrate-link" else schema
    path = write(tmp_path, body.replace("SCHEMA", schema), "m.json")
    out = tmp_path / "out"
    args = [str(path) if a == "FILE" else a.replace("OUT", str(out)) for a in command]
    result = cli(*args, cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: ")
    assert words in result.stderr, result.stderr
    assert not out.exists()


@settings(FUZZ, max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(["a", "A", "a-2", "a-3", "a 3", "A-2", "b"]), max_size=12))
def test_figure_names_from_scenario_names_never_collide(names):
    # regression: scenarios a, a-3 and A gave a, a-3 and a-3 (one figure overwritten)
    from simulator.report.figures import _unique_slugs
    stems = _unique_slugs(names)
    assert len(set(stems)) == len(stems) == len(names)


def test_inline_device_counts_are_not_booleans_and_dataset_sizes_are_bounded(tmp_path):
    # regression: `sms: true` became 1 SM; dataset_size and epochs had no upper bound
    from pydantic import ValidationError

    from simulator.config.schema import Scenario
    gpu = {"kind": "gpu", "name": "g", "display_name": "g", "sms": True, "cores_per_sm": 128,
           "clock_ghz": 1.0, "memory_bytes": 1e9, "memory_bandwidth_bytes_per_s": 1e11,
           "peak_flops": {"fp32": 1e12}, "sources": ["test"]}
    with pytest.raises(ValidationError, match="sms"):
        Scenario.model_validate({"name": "s", "workload": {"model": "mlp"},
                                 "hardware": {"device": gpu}})
    for field, value in (("dataset_size", 10**16), ("epochs", 10**7)):
        with pytest.raises(ValidationError, match=field):
            Scenario.model_validate({"name": "s", "hardware": {"device": "h200"}, "workload": {
                "model": "mlp", "dataset_size": 1000, field: value}})

"""The command line as a user runs it: the predict contract, listings, and bad input."""

from __future__ import annotations

import json

import pytest

from simulator import predict


def test_predict_json_contract(cli):
    out = cli("predict", "--model", "vgg16", "--hardware", "h100-sxm", "--batch", "64",
              "--precision", "fp32", "--mode", "train", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    for key in ("step_time_s", "samples_per_s", "flops", "bytes", "memory_peak_bytes", "breakdown"):
        assert key in result
    assert set(result["breakdown"]) == {"compute", "memory", "launch", "transfer",
                                        "communication", "idle"}
    assert result["samples_per_s"] == pytest.approx(64 / result["step_time_s"])
    assert "layers" not in result


def test_predict_per_layer_and_table(cli):
    out = cli("predict", "--model", "alexnet", "--hardware", "gtx-1080", "--batch", "16",
              "--mode", "infer", "--json", "--per-layer")
    rows = json.loads(out.stdout)["layers"]
    assert {"layer", "phase", "time_s"} <= set(rows[0])
    assert any(r["layer"] == "conv1" and r["phase"] == "fwd" for r in rows)
    table = cli("predict", "--model", "alexnet", "--hardware", "gtx-1080", "--batch", "16")
    assert table.returncode == 0 and "step time" in table.stdout


def test_python_api_matches_cli(cli):
    out = cli("predict", "--model", "mlp", "--hardware", "i7-10510u", "--batch", "32", "--json")
    assert json.loads(out.stdout) == json.loads(json.dumps(predict("mlp", "i7-10510u", batch=32)))


@pytest.mark.parametrize("args, words", [
    (["--model", "vgg17", "--hardware", "h100-sxm"], ["unknown model 'vgg17'", "vgg16"]),
    (["--model", "vgg16", "--hardware", "h1000"], ["unknown hardware 'h1000'", "h100-sxm"]),
    (["--model", "vgg16", "--hardware", "h100-sxm", "--batch", "0"], ["batch"]),
    (["--model", "vgg16", "--hardware", "h100-sxm", "--batch", "-4"], ["batch"]),
    (["--model", "vgg16", "--hardware", "h100-sxm", "--batch", "two"], ["--batch"]),
    (["--model", "vgg16", "--hardware", "h100-sxm", "--precision", "fp8"], ["precision", "bf16"]),
    (["--model", "vgg16", "--hardware", "h100-sxm", "--mode", "fly"], ["mode", "infer"]),
    (["--model", "vgg16", "--hardware", "h100-sxm", "--optimizer", "lion"], ["optimizer", "adam"]),
    (["--model", "missing.yaml", "--hardware", "h100-sxm"], ["missing.yaml", "does not exist"]),
    (["--model", "vgg16", "--hardware", "h100-sxm", "--framework", "jax"], ["framework", "cupy"]),
    (["--model", "vgg16", "--hardware", "h100-sxm", "--conv-algorithm", "fft"], ["im2col"]),
])
def test_bad_input_is_one_line_exit_2_no_traceback(cli, args, words):
    out = cli("predict", *args)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("error:")
    assert "Traceback" not in out.stderr
    for word in words:
        assert word in out.stderr


def test_out_of_memory_is_reported_with_numbers_not_simulated(cli):
    out = cli("predict", "--model", "vgg16", "--hardware", "gt-740m", "--batch", "256", "--json")
    assert out.returncode == 3
    result = json.loads(out.stdout)
    assert result["status"] == "out_of_memory" and result["step_time_s"] is None
    assert result["memory_peak_bytes"] > result["memory_capacity_bytes"]


@pytest.mark.parametrize("what, expect", [("hardware", "h100-sxm"), ("models", "vgg16"),
                                          ("links", "nvlink4")])
def test_list(cli, what, expect):
    out = cli("list", what)
    assert out.returncode == 0 and expect in out.stdout


def test_model_from_yaml_file(cli, tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text("name: tiny\ninput_shape: [16]\nlayers:\n"
                    "  - {name: fc, kind: linear, out_features: 4}\n")
    out = cli("predict", "--model", str(path), "--hardware", "ideal", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["params"] == 16 * 4 + 4


def test_output_piped_into_a_closed_pipe_is_not_a_traceback(monkeypatch):
    """Regression: `python -m simulator list hardware | head -1` printed a BrokenPipeError."""
    import simulator.cli.list_cmd
    import simulator.cli.main as cli_main

    def closed_pipe(what):
        raise BrokenPipeError(32, "Broken pipe")

    redirected = []
    monkeypatch.setattr(simulator.cli.list_cmd, "run_list", closed_pipe)
    monkeypatch.setattr(cli_main.os, "dup2", lambda a, b: redirected.append(b))
    monkeypatch.setattr(cli_main.sys, "stdout", type("Out", (), {"fileno": lambda self: 1})())
    assert cli_main.main(["list", "hardware"]) == 0
    assert redirected == [1]  # stdout now points at /dev/null, so the exit flush is quiet

"""Faults in the model (simulator/results/faults.py): Young's and Daly's intervals on
hand-computed and published cases, the expected time never below the fault-free time, more
devices never better, the Llama 3 job above 90%, the schema's one-line errors, determinism."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardware_models.failures import device_failure_rate, failure_rate_names
from simulator.config.schema import Faults, Scenario, load_experiment
from simulator.core.errors import UserError
from simulator.results import faults as F
from simulator.results.prediction import Prediction
from simulator.results.scenario import scenario_row

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = ROOT / "experiments" / "failures_at_scale.yaml"
LLAMA = "16,384 GPUs (Llama 3 405B)"
MINUTE, HOUR = 60.0, 3600.0
BASE = """title: T
scenarios:
  - name: a
    workload: {model: mlp, batch: 4, dataset_size: 1000}
    hardware: {device: h100-sxm, count: 16}
    faults:
      restart_s: 60.0
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


def scenario(tmp_path: Path, text: str = BASE) -> Scenario:
    return load_experiment(write(tmp_path, text)).scenarios[0]


# ---------------------------------------------------------------- the formulas

def test_young_interval_on_a_hand_computed_case():
    # C = 50 s, M = 10,000 s: sqrt(2 x 50 x 10,000) = sqrt(1,000,000) = 1,000 s
    assert F.young_interval_s(50.0, 10_000.0) == pytest.approx(1000.0, rel=1e-12)
    # C = 5 min, M = 24 h: sqrt(2 x 300 x 86,400) = 7,200 s
    assert F.young_interval_s(5 * MINUTE, 24 * HOUR) == pytest.approx(7200.0, rel=1e-12)


@pytest.mark.parametrize("mtbf_s, expect_min", [(24 * HOUR, 117.0), (6 * HOUR, 57.0),
                                                (15 * MINUTE, 9.1)])
def test_daly_interval_matches_the_papers_figures(mtbf_s, expect_min):
    """Daly 2006, figs. 3-5 (delta = 5 min): tau_opt = 117, 57 and 9.1 min."""
    assert F.daly_interval_s(5 * MINUTE, mtbf_s) / MINUTE == pytest.approx(expect_min, abs=0.5)


def test_daly_interval_is_the_mtbf_once_a_checkpoint_takes_twice_as_long():
    assert F.daly_interval_s(3000.0, 1000.0) == 1000.0
    assert F.daly_interval_s(2000.0, 1000.0) == 1000.0


def test_expected_time_to_first_order_is_half_a_segment_and_a_restart_per_failure():
    work, tau, ckpt, restart, mtbf = 1.0e6, 100.0, 1.0, 30.0, 1.0e6
    first_order = work * (1 + ckpt / tau) * (1 + ((tau + ckpt) / 2 + restart) / mtbf)
    assert F.expected_time_s(work, tau, ckpt, restart, mtbf) == pytest.approx(first_order,
                                                                              rel=1e-6)


def test_a_job_failures_keep_from_progressing_gets_zero_not_an_overflow():
    assert F.training_fraction(1000.0, 10.0, 1.0e6, 1.0) == 0.0
    assert F.expected_time_s(1.0, 1000.0, 10.0, 1.0e6, 1.0) == math.inf


POSITIVE = st.floats(min_value=1e-3, max_value=1e9, allow_nan=False, allow_infinity=False)


@settings(max_examples=1000, deadline=None)
@given(work=POSITIVE, device_mtbf=POSITIVE, ckpt=POSITIVE,
       restart=st.floats(min_value=0.0, max_value=1e6), devices=st.integers(1, 1_000_000),
       rule=st.sampled_from(sorted(F.INTERVAL_RULES)), given_tau=st.none() | POSITIVE)
def test_expected_time_is_never_below_the_fault_free_time(work, device_mtbf, ckpt, restart,
                                                          devices, rule, given_tau):
    mtbf = device_mtbf / devices
    tau = given_tau or F.INTERVAL_RULES[rule](ckpt, mtbf)
    expected = F.expected_time_s(work, tau, ckpt, restart, mtbf)
    assert expected >= work * (1 + ckpt / tau) * (1 - 1e-12)
    assert 0.0 <= F.training_fraction(tau, ckpt, restart, mtbf) <= 1.0


@settings(max_examples=1000, deadline=None)
@given(device_mtbf_h=st.floats(100.0, 1e6), ckpt=st.floats(0.01, 1000.0),
       restart=st.floats(0.0, 3600.0), tau=st.none() | st.floats(1.0, 1e5),
       small=st.integers(1, 100_000), factor=st.integers(2, 64))
def test_more_devices_never_train_a_larger_share_of_the_time(device_mtbf_h, ckpt, restart,
                                                             tau, small, factor):
    """At a fixed per-device MTBF: Daly's optimum, or any given interval."""
    def fraction(devices: int) -> float:
        mtbf = device_mtbf_h * HOUR / devices
        return F.training_fraction(tau or F.daly_interval_s(ckpt, mtbf), ckpt, restart, mtbf)
    assert fraction(small * factor) <= fraction(small) * (1 + 1e-9)


def test_stragglers_scale_the_step_by_the_expected_maximum_of_the_slowdowns():
    assert F.harmonic(1) == 1.0 and F.harmonic(4) == pytest.approx(25 / 12)
    assert F.straggler_factor(0.01, 4) == pytest.approx(1 + 0.01 * 25 / 12)
    assert F.straggler_factor(0.0, 65536) == 1.0
    # the asymptotic series continues the exact sum
    n = F.EXACT_HARMONIC_UP_TO
    assert F.harmonic(n + 1) == pytest.approx(F.harmonic(n) + 1 / (n + 1), rel=1e-12)


# ---------------------------------------------------------------- the catalog

def test_catalog_rates_have_sources_and_the_h100_rate_is_llama_3s():
    assert {"h100-sxm", "a100-sxm4"} <= set(failure_rate_names())
    for name in failure_rate_names():
        rate = device_failure_rate(name)
        assert rate is not None and rate.sources and rate.device_mtbf_hours > 0
    h100 = device_failure_rate("h100-sxm")
    assert h100 is not None
    assert h100.device_mtbf_hours == pytest.approx(16384 * 54 * 24 / 419, abs=1.0)
    # 16,384 GPUs: one interruption about every 3.1 h (published.md sec. 6)
    assert h100.device_mtbf_hours / 16384 == pytest.approx(3.09, abs=0.01)
    assert device_failure_rate("gtx-1080") is None


# ---------------------------------------------------------------- the experiment

def _row(s: Scenario, time_to_train_s: float = 1.0e6) -> dict:
    """The fault fields alone (they need the prediction's memory only, not its step)."""
    memory = {"weights_bytes": 1.0e9, "optimizer_state_bytes": 2.0e9}
    return F.fault_fields(s, {"memory": memory}, time_to_train_s)


def test_the_llama_3_job_trains_more_than_90_percent_of_the_time():
    s = next(s for s in load_experiment(EXPERIMENT).scenarios if s.name == LLAMA)
    row = _row(s)
    assert 0.9 < row["effective_training_time"] < 1.0
    assert row["system_mtbf_s"] / HOUR == pytest.approx(54 * 24 / 419, rel=1e-3)
    # 54 days of such a job: about Llama 3's 419 unexpected interruptions
    assert 54 * 24 * HOUR / row["system_mtbf_s"] == pytest.approx(419, rel=1e-3)


def test_the_curve_falls_with_cluster_size():
    rows = [_row(s) for s in load_experiment(EXPERIMENT).scenarios]
    shares = [r["effective_training_time"] for r in rows]
    assert shares == sorted(shares, reverse=True) and len(set(shares)) == len(shares)
    assert shares[0] > 0.98 and shares[-1] < 0.9


def test_expected_time_follows_the_row_time_to_train(tmp_path):
    row = _row(scenario(tmp_path), time_to_train_s=2.0e6)
    assert row["expected_time_to_train_s"] == pytest.approx(
        2.0e6 * row["straggler_factor"] / (row["effective_training_time"]
                                           * row["straggler_factor"]))
    assert row["expected_failures"] == pytest.approx(row["expected_time_to_train_s"]
                                                     / row["system_mtbf_s"])
    # data parallel: one copy of weights + optimizer state, written at 10 GB/s by default
    assert row["checkpoint_bytes"] == 3.0e9 and row["checkpoint_s"] == pytest.approx(0.3)
    assert row["checkpoint_interval_s"] == pytest.approx(
        F.daly_interval_s(0.3, row["system_mtbf_s"]))


def test_given_values_replace_the_defaults(tmp_path):
    text = BASE.replace("restart_s: 60.0", "restart_s: 60.0\n      device_mtbf_hours: 1000\n"
                        "      checkpoint_interval_s: 120\n      checkpoint_bytes: 1.0e+10\n"
                        "      interval_rule: young\n      straggler_slowdown: 0.02")
    row = _row(scenario(tmp_path, text))
    assert row["system_mtbf_s"] == pytest.approx(1000 * HOUR / 16)
    assert row["checkpoint_interval_s"] == 120 and row["checkpoint_bytes"] == 1.0e10
    assert row["straggler_factor"] == pytest.approx(1 + 0.02 * F.harmonic(16))
    assert row["effective_training_time"] < _row(scenario(tmp_path))["effective_training_time"]


def test_sharded_strategies_save_every_devices_part(tmp_path):
    text = BASE.replace("count: 16}", "count: 4}\n    parallel: {strategy: model}")
    assert _row(scenario(tmp_path, text))["checkpoint_bytes"] == 4 * 3.0e9


def test_a_modified_device_takes_its_bases_rate(tmp_path):
    text = BASE.replace("device: h100-sxm", "device: {base: h100-sxm, overrides: {tdp_w: 500}}")
    assert _row(scenario(tmp_path, text))["device_mtbf_hours"] == pytest.approx(50677.0)


def test_rows_without_faults_have_the_fault_keys_as_none(tmp_path):
    s = scenario(tmp_path, BASE.replace("    faults:\n      restart_s: 60.0\n", ""))
    assert s.faults is None
    assert _row(s) == dict.fromkeys(F.FAULT_KEYS)


def test_a_scenario_that_does_not_fit_gets_no_fault_numbers(tmp_path):
    result = {"status": "out_of_memory", "memory": {"weights_bytes": 1.0e9}}
    assert F.fault_fields(scenario(tmp_path), result, None) == dict.fromkeys(F.FAULT_KEYS)


def test_a_results_row_has_the_fault_keys_next_to_time_to_train(tmp_path):
    s = scenario(tmp_path, BASE.replace("count: 16", "count: 1"))
    result = {"status": "ok", "step_time_s": 0.01, "samples_per_s": 400.0,
              "memory": {"weights_bytes": 1.0e6, "optimizer_state_bytes": 1.0e6}}
    row = scenario_row(s, Prediction(result, None, None, None))  # type: ignore[arg-type]
    keys = list(row)
    at = keys.index("time_to_train_s")
    assert keys[at + 1:at + 1 + len(F.FAULT_KEYS)] == list(F.FAULT_KEYS)
    assert row["time_to_train_s"] == pytest.approx(250 * 0.01)
    assert row["expected_time_to_train_s"] > row["time_to_train_s"]


def test_same_input_same_numbers():
    first = [_row(s) for s in load_experiment(EXPERIMENT).scenarios]
    again = [_row(s) for s in load_experiment(EXPERIMENT).scenarios]
    assert first == again


def test_defaults_are_documented_values():
    faults = Faults()
    assert (faults.interval_rule, faults.restart_s, faults.straggler_slowdown) == ("daly", 600.0,
                                                                                   0.0)
    assert faults.storage_bandwidth_bytes_per_s == 10.0e9 and faults.device_mtbf_hours is None


# ---------------------------------------------------------------- bad input

BAD = {  # name: (edit of BASE, line, field path, words in the message)
    "negative mtbf": (("restart_s: 60.0", "device_mtbf_hours: -5"), 7,
                      "scenarios[0].faults.device_mtbf_hours", ["greater than 0", "-5"]),
    "zero bandwidth": (("restart_s: 60.0", "storage_bandwidth_bytes_per_s: 0"), 7,
                       "scenarios[0].faults.storage_bandwidth_bytes_per_s", ["greater than 0"]),
    "nan interval": (("restart_s: 60.0", "checkpoint_interval_s: .nan"), 7,
                     "scenarios[0].faults.checkpoint_interval_s", ["finite"]),
    "boolean bytes": (("restart_s: 60.0", "checkpoint_bytes: yes"), 7,
                      "scenarios[0].faults.checkpoint_bytes", ["number"]),
    "negative restart": (("restart_s: 60.0", "restart_s: -1"), 7,
                         "scenarios[0].faults.restart_s", ["greater than or equal to 0"]),
    "unknown key": (("restart_s: 60.0", "mtbf: 5"), 7, "scenarios[0].faults.mtbf",
                    ["unknown field 'mtbf'", "device_mtbf_hours"]),
    "unknown rule": (("restart_s: 60.0", "interval_rule: optimal"), 7,
                     "scenarios[0].faults.interval_rule", ["'young' or 'daly'"]),
    "no catalog rate": (("device: h100-sxm", "device: gtx-1080"), 7,
                        "scenarios[0].faults.device_mtbf_hours",
                        ["no failure rate for 'gtx-1080'", "h100-sxm"]),
    "inference": (("dataset_size: 1000}", "dataset_size: 1000, mode: infer}"), 7,
                  "scenarios[0].faults", ["training"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_faults_are_one_located_line(tmp_path, case):
    (old, new), line, field, words = BAD[case]
    assert old in BASE
    path = write(tmp_path, BASE.replace(old, new))
    with pytest.raises(UserError) as err:
        load_experiment(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: {field}: "), message
    assert "\n" not in message
    for word in words:
        assert word in message, message

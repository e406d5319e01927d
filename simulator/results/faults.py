"""Faults in the model: device failures, checkpoints, restarts and stragglers, and what they
cost a training job (docs/reliability.md).

A job on N devices, each failing in a way that stops the job with a mean time between
failures `device_mtbf` (the experiment's `faults.device_mtbf_hours`, else the catalog's rate,
hardware_models/catalog/failures.yaml), is interrupted every M = device_mtbf / N on average;
failures are independent and memoryless (a Poisson process), as in Young 1974 and Daly 2006.
After every tau seconds of training the job writes a checkpoint that takes
C = checkpoint bytes / storage bandwidth (the bytes: weights + optimizer state of the model,
from the prediction's memory, unless given); a failure costs a restart of R seconds and the
work since the last checkpoint.

- tau, the training time between checkpoints: given, or the optimum of
  Young (CACM 1974): tau = sqrt(2 C M), or of
  Daly (FGCS 2006, eq. 37): tau = sqrt(2 C M) [1 + sqrt(C/2M)/3 + (C/2M)/9] - C for C < 2M,
  else tau = M.
- Expected wall time W for T seconds of training, Daly 2006's complete model (failures also
  strike during checkpoints and restarts): W = M e^(R/M) (e^((tau + C)/M) - 1) T / tau.
  To first order W = T (1 + C/tau) (1 + ((tau + C)/2 + R) / M): the checkpoints' overhead
  C/tau, and per failure half a segment of lost work plus the restart. Since e^x - 1 >= x,
  W >= T (1 + C/tau) >= T always.
- Stragglers: every device of a synchronous step is slowed by an exponential fraction of
  mean s (`straggler_slowdown`); the step waits for the slowest, whose expected slowdown is
  s H_N (H_N the N-th harmonic number: the expected maximum of N exponentials), so T grows
  by the factor 1 + s H_N. Deterministic: an expectation, no sampling.
- effective_training_time = fault-free time to train / expected time (Llama 3's "effective
  training time", Kokolis et al. 2024's ETTR).
"""

from __future__ import annotations

import math
from typing import Any

from hardware_models.failures import device_failure_rate
from simulator.config.schema import Faults, Scenario, failure_rate_device

HOUR_S = 3600.0
EULER_GAMMA = 0.5772156649015329
EXACT_HARMONIC_UP_TO = 100_000
FAULT_KEYS = ("device_mtbf_hours", "system_mtbf_s", "checkpoint_bytes", "checkpoint_s",
              "checkpoint_interval_s", "restart_s", "straggler_factor", "expected_failures",
              "expected_time_to_train_s", "effective_training_time")
ONE_COPY = ("single", "data")  # every device holds the whole model: one copy is saved


def young_interval_s(checkpoint_s: float, mtbf_s: float) -> float:
    """Young 1974: the optimal training time between checkpoints, sqrt(2 C M)."""
    return math.sqrt(2.0 * checkpoint_s * mtbf_s)


def daly_interval_s(checkpoint_s: float, mtbf_s: float) -> float:
    """Daly 2006, eq. 37: Young's interval corrected to higher order; M once C >= 2M."""
    if checkpoint_s >= 2.0 * mtbf_s:
        return mtbf_s
    ratio = checkpoint_s / (2.0 * mtbf_s)
    return young_interval_s(checkpoint_s, mtbf_s) * (1.0 + math.sqrt(ratio) / 3.0
                                                     + ratio / 9.0) - checkpoint_s


INTERVAL_RULES = {"young": young_interval_s, "daly": daly_interval_s}


def _log_expm1(x: float) -> float:
    """log(e^x - 1) for x > 0, without overflow for large x."""
    return x + math.log(-math.expm1(-x))


def training_fraction(interval_s: float, checkpoint_s: float, restart_s: float,
                      mtbf_s: float) -> float:
    """T / W of Daly's complete model: the share of the wall time that trains. Computed in
    logarithms, so a job that failures keep from progressing gets 0.0, not an overflow."""
    log_w_over_t = (math.log(mtbf_s / interval_s) + restart_s / mtbf_s
                    + _log_expm1((interval_s + checkpoint_s) / mtbf_s))
    return math.exp(-log_w_over_t)


def expected_time_s(work_s: float, interval_s: float, checkpoint_s: float, restart_s: float,
                    mtbf_s: float) -> float:
    """Expected wall time for `work_s` of training (math.inf where it never finishes)."""
    fraction = training_fraction(interval_s, checkpoint_s, restart_s, mtbf_s)
    return work_s / fraction if fraction > 0.0 else math.inf


def harmonic(n: int) -> float:
    """H_n = 1 + 1/2 + ... + 1/n (exact sum, or the asymptotic series for large n)."""
    if n <= EXACT_HARMONIC_UP_TO:
        return math.fsum(1.0 / k for k in range(1, n + 1))
    return math.log(n) + EULER_GAMMA + 1.0 / (2 * n) - 1.0 / (12 * n * n)


def straggler_factor(slowdown: float, devices: int) -> float:
    """Step time of a synchronous job over the step without stragglers: 1 + s H_N."""
    return 1.0 + slowdown * harmonic(devices)


def device_mtbf_hours(scenario: Scenario, faults: Faults) -> float:
    """As given, else the catalog's rate (the schema checked that there is one); of a mixed
    cluster, the one rate that fails as often as the mix (rates add: N / sum(n_k / MTBF_k))."""
    if faults.device_mtbf_hours is not None:
        return faults.device_mtbf_hours
    failures_per_hour = 0.0
    for device, count in scenario.hardware.device_counts():
        name = failure_rate_device(device)
        rate = device_failure_rate(name)
        assert rate is not None, f"no failure rate for {name}: the schema lets none through"
        failures_per_hour += count / rate.device_mtbf_hours
    return scenario.hardware.count / failures_per_hour


def checkpoint_bytes(scenario: Scenario, faults: Faults, result: dict[str, Any]) -> float | None:
    """As given, else weights + optimizer state from the memory of the prediction: one copy
    where every device holds the whole model, else summed over the devices (exact for model
    and pipeline parallelism, an upper bound where devices hold copies)."""
    if faults.checkpoint_bytes is not None:
        return faults.checkpoint_bytes
    memory = result.get("memory") or {}
    if "weights_bytes" not in memory:
        return None
    per_device = memory["weights_bytes"] + memory.get("optimizer_state_bytes", 0.0)
    return per_device * (1 if scenario.strategy in ONE_COPY else scenario.hardware.count)


def fault_fields(scenario: Scenario, result: dict[str, Any],
                 time_to_train_s: float | None) -> dict[str, Any]:
    """The fault columns of a results row (FAULT_KEYS; all None without `faults`, and for a
    scenario that was not simulated because it does not fit in memory)."""
    fields: dict[str, Any] = dict.fromkeys(FAULT_KEYS)
    faults = scenario.faults
    if faults is None or result.get("status") == "out_of_memory":
        return fields
    size = checkpoint_bytes(scenario, faults, result)
    if size is None:
        return fields
    devices = scenario.hardware.count
    mtbf_h = device_mtbf_hours(scenario, faults)
    mtbf_s, ckpt_s = mtbf_h * HOUR_S / devices, size / faults.storage_bandwidth_bytes_per_s
    interval_s = faults.checkpoint_interval_s or INTERVAL_RULES[faults.interval_rule](ckpt_s,
                                                                                     mtbf_s)
    slow = straggler_factor(faults.straggler_slowdown, devices)
    fraction = training_fraction(interval_s, ckpt_s, faults.restart_s, mtbf_s)
    fields.update(device_mtbf_hours=mtbf_h, system_mtbf_s=mtbf_s, checkpoint_bytes=size,
                  checkpoint_s=ckpt_s, checkpoint_interval_s=interval_s,
                  restart_s=faults.restart_s, straggler_factor=slow,
                  effective_training_time=fraction / slow)
    if time_to_train_s and fraction > 0.0:
        expected = time_to_train_s * slow / fraction
        fields.update(expected_time_to_train_s=expected, expected_failures=expected / mtbf_s)
    return fields

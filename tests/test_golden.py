"""Every result the CLI prints stays as captured, except where a change says so (listed in
CHANGED with the reason and its own regression test): a refactor must not move a number.

The golden files are captured by `python tests/golden_capture.py tests/golden/before`.
"""

import json
import math
import pathlib

import golden_capture as capture
import pytest

from simulator.results.faults import FAULT_KEYS

HERE = pathlib.Path(__file__).parent / "golden"

# name -> keys whose value was changed on purpose by a defect fix (see the test named there)
# Re-captured on purpose when the model itself changes (the host profile, the input in pinned
# memory by default, ...); the commit that re-captures says why. The architecture refactor was
# checked against the outputs from before it (commit dcf8acc: the pipeline and model runs and
# Stanford's batch changed, by the per-device batch; Google's layers by the servers' task).
EVERYTHING = {"*"}
# A device without a published price says so in its basis ("not priced: no published price
# for NAME", not "devices only ..."): tests/test_costs.py::
# test_a_device_without_a_price_is_unknown_not_free_and_the_sweep_says_so; no number moved.
UNPRICED_BASIS = {"hardware_cost_basis"}
CHANGED: dict[str, set[str]] = {
    f"run-{name}": UNPRICED_BASIS
    for name in ("cpu_vs_gpu_mlp", "cpu_vs_gpu_vgg16", "lu_cpu_vs_gpu", "tpu_resnet50")}
# fields added on purpose: every prediction prints the global batch (test_one_path.py)
# and its 10-90% interval (test_host_model.py::test_prediction_interval...)
# and the fault model's columns, null in rows without `faults` (test_faults.py)
ADDED = {"global_batch", "step_time_p10_s", "step_time_p90_s", *FAULT_KEYS}


def _compare(before: object, after: object, where: str, skip: set[str]) -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        diffs = []
        for key in sorted(set(before) | set(after)):
            if key in skip or (key in ADDED and key not in before):
                continue
            if key not in after or key not in before:
                diffs.append(f"{where}.{key}: {'removed' if key not in after else 'added'}")
                continue
            diffs += _compare(before[key], after[key], f"{where}.{key}", skip)
        return diffs
    if isinstance(before, list) and isinstance(after, list):
        if len(before) != len(after):
            return [f"{where}: {len(before)} items became {len(after)}"]
        return [d for i, (b, a) in enumerate(zip(before, after, strict=True))
                for d in _compare(b, a, f"{where}[{i}]", skip)]
    if isinstance(before, float) and isinstance(after, (int, float)):
        if math.isclose(before, after, rel_tol=1e-9):
            return []
        return [f"{where}: {before} -> {after}"]
    return [] if before == after else [f"{where}: {before!r} -> {after!r}"]


@pytest.fixture(scope="module")
def outputs() -> dict[str, object]:
    return {**capture.predict_outputs(), **capture.run_outputs()}


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(HERE.glob("before/*.json")), ids=lambda p: p.stem)
def test_unchanged_since_refactor(path: pathlib.Path, outputs: dict[str, object]) -> None:
    before = json.loads(path.read_text())
    skip = CHANGED.get(path.stem, set())
    if skip == EVERYTHING:
        pytest.skip("changed on purpose; see CHANGED")
    diffs = _compare(before, outputs[path.stem], path.stem, skip)
    assert not diffs, "\n".join(diffs[:20])

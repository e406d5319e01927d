"""Every result the CLI printed before the architecture refactor is unchanged, except where a
defect was fixed (each listed in CHANGED with the reason and its own regression test).

The golden files were captured by tests/golden_capture.py on the tree before the refactor.
"""

import json
import math
import pathlib

import pytest

import golden_capture as capture

HERE = pathlib.Path(__file__).parent / "golden"

# name -> keys whose value was changed on purpose by a defect fix (see the test named there)
# predict-11 (pipeline) and predict-12 (model): `--batch` is now per device for every
# strategy, so 32 per device on 4 devices is a replica batch of 128 (it was 32);
# test_one_path.py::test_batch_is_per_device_for_every_strategy.
# run-stanford_vs_google: the same runs, given as global_batch; `batch` is now per device
# (100 / 12 and 500 / 845 workers instead of the replica's 100); Google's per-layer list
# has one more row, the parameter servers' round of updates, now a task of the engine
# (test_one_path.py::test_parameter_server_updates_are_tasks_of_the_engine).
EVERYTHING = {"*"}
CHANGED: dict[str, set[str]] = {"predict-11": EVERYTHING, "predict-12": EVERYTHING,
                                "run-stanford_vs_google": {"batch", "layers"}}
# fields added on purpose: every prediction prints the global batch (test_batch_semantics.py)
ADDED = {"global_batch"}


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
        return [d for i, (b, a) in enumerate(zip(before, after))
                for d in _compare(b, a, f"{where}[{i}]", skip)]
    if isinstance(before, float) and isinstance(after, (int, float)):
        return [] if math.isclose(before, after, rel_tol=1e-9) else [f"{where}: {before} -> {after}"]
    return [] if before == after else [f"{where}: {before!r} -> {after!r}"]


@pytest.fixture(scope="module")
def outputs() -> dict[str, object]:
    return {**capture.predict_outputs(), **capture.run_outputs()}


@pytest.mark.parametrize("path", sorted(HERE.glob("before/*.json")), ids=lambda p: p.stem)
def test_unchanged_since_refactor(path: pathlib.Path, outputs: dict[str, object]) -> None:
    before = json.loads(path.read_text())
    skip = CHANGED.get(path.stem, set())
    if skip == EVERYTHING:
        pytest.skip("changed on purpose; see CHANGED")
    diffs = _compare(before, outputs[path.stem], path.stem, skip)
    assert not diffs, "\n".join(diffs[:20])

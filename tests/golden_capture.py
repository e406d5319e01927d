"""Capture the golden outputs of `predict` and `run` (taken before the architecture refactor).

Usage: python tests/golden_capture.py tests/golden/before. Writes predict-NN.json (stdout of
`predict --json`, with the exit status) and run-NAME.json (results.json without provenance),
and the sweep table tests/test_point_caches.py compares its cold and warm runs with
(tests/golden/sweep_table.csv and sweep_table_rows.jsonl, from sweep_table.yaml).
"""

import json
import pathlib
import subprocess
import sys
import tempfile

from simulator.config.sweep import is_sweep_file

HERE = pathlib.Path(__file__).parent / "golden"
ROOT = HERE.parents[1]


def predict_outputs() -> dict[str, dict]:
    configs = json.loads((HERE / "configs.json").read_text())["predict"]
    out = {}
    for i, args in enumerate(configs):
        proc = subprocess.run([sys.executable, "-m", "simulator", "predict", *args, "--json"],
                              capture_output=True, text=True, cwd=ROOT)
        out[f"predict-{i:02d}"] = {"args": args, "exit": proc.returncode,
                                   "result": json.loads(proc.stdout) if proc.stdout else None}
    return out


def run_outputs() -> dict[str, dict]:
    out = {}
    for exp in sorted((ROOT / "experiments").glob("*.yaml")):
        if is_sweep_file(exp):  # run by `sweep`, not `run` (tests/test_sweep_experiments.py)
            continue
        with tempfile.TemporaryDirectory() as tmp:
            folder = pathlib.Path(tmp) / "r"
            subprocess.run([sys.executable, "-m", "simulator", "run", str(exp), "--out",
                            str(folder), "--quick"], check=True, capture_output=True, cwd=ROOT)
            results = json.loads((folder / "results.json").read_text())
        results.pop("provenance", None)
        out[f"run-{exp.stem}"] = results
    return out


def sweep_table() -> None:
    """The sweep table of tests/golden/sweep_table.yaml, as test_point_caches reads it."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp) / "s"
        subprocess.run([sys.executable, "-m", "simulator", "sweep", str(HERE / "sweep_table.yaml"),
                        "--workers", "1", "--quick", "--out", str(folder)], check=True,
                       capture_output=True, cwd=ROOT)
        (HERE / "sweep_table.csv").write_bytes((folder / "points.csv").read_bytes())
        (HERE / "sweep_table_rows.jsonl").write_text("\n".join(journal_rows(folder)) + "\n")


def journal_rows(folder: pathlib.Path) -> list[str]:
    """A sweep journal's records without their key (a hash of the config and the package
    version, which changes with every release)."""
    rows = []
    for line in (folder / "points.jsonl").read_text().splitlines():
        record = json.loads(line)
        record.pop("key")
        rows.append(json.dumps(record, sort_keys=True, separators=(",", ":")))
    return rows


if __name__ == "__main__":
    dest = pathlib.Path(sys.argv[1])
    dest.mkdir(parents=True, exist_ok=True)
    for name, data in {**predict_outputs(), **run_outputs()}.items():
        (dest / f"{name}.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    sweep_table()

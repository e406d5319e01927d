"""CPU accuracy out of sample: the H200 host's PyTorch CPU steps predicted with a profile
fitted without their network (leave one network out), and numpy's kernels on this project's
two CPUs predicted from a profile fitted on the other half of the records, printed next to
the targets of the accuracy issue (20% per CPU PyTorch step, 15% per numpy kernel family).

    python benchmarks/accuracy_cpu.py [--json OUT]

The PyTorch fit is `python -m simulator calibrate measurements/h200-torch-zoo.json
measurements/h200-host-torch-cpu-kernels.json --hardware xeon-emr-16vcpu` (it also writes the
catalog's profile); the numpy one `python -m simulator calibrate FILE --hardware NAME`.
Takes about a minute.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hardware_models.catalog_io import load_spec
from simulator.calibrate.cpu_steps import cases, held_out, per_network
from simulator.calibrate.host import host_folds, median_of_runs, step_records
from simulator.calibrate.measured_ops import load_measurements
from simulator.report.atomic import write_json_atomic
from simulator.validate.holdout import held_out_errors

MEASURED = Path(__file__).resolve().parents[1] / "measurements"
STEP_FILES = ("h200-torch-zoo.json", "h200-host-torch-cpu-kernels.json")
# the GPU steps the host terms are fitted on (each CPU network's without its own steps)
GPU_ZOO_FILES = ("h200-torch-zoo-run1.json", "h200-torch-zoo.json", "h200-run3-torch-zoo.json")
NUMPY_SETS = (("epyc-zen4-2vcpu", "local-cpu-numpy.json"),
              ("xeon-spr-16vcpu", "h100-host-numpy.json"),
              ("xeon-emr-16vcpu", "h200-host-numpy.json"))
TARGETS = {"pytorch steps": 0.20, "numpy kernels": 0.15}


def verdict(value: float, target: float) -> str:
    return "met" if value <= target else "NOT met"


def pytorch_rows() -> list[dict]:
    spec = load_spec("xeon-emr-16vcpu")
    rows, steps, kernels, dtype_kernels = cases([str(MEASURED / f) for f in STEP_FILES])
    gpu = median_of_runs([step_records(MEASURED / f) for f in GPU_ZOO_FILES])
    folds = host_folds(gpu, "the H200 lease machine", list(GPU_ZOO_FILES), "h200")
    return held_out(spec, rows, steps, kernels, dtype_kernels, folds)


def print_pytorch(rows: list[dict]) -> None:
    target = TARGETS["pytorch steps"]
    print(f"PyTorch CPU steps, leave one network out ({len(rows)} steps of {STEP_FILES[0]}):")
    print(f"{'network':12s} {'threads':>7s} {'rows':>5s} {'median':>8s} {'mean':>8s} {'worst':>8s}")
    for threads in (1, None):
        mine = [r for r in rows if threads is None or r["threads"] == threads]
        label = "all" if threads is None else str(threads)
        for network, s in per_network(mine).items():
            print(f"{network:12s} {label:>7s} {s['rows']:5d} {s['median']:8.1%} {s['mean']:8.1%} "
                  f"{s['worst']:8.1%}  {verdict(s['median'], target)}")
    for r in rows:
        print(f"  {r['model']:9s} {r['mode']:5s} b{r['batch']:<4d} t{r['threads']:<3d} measured "
              f"{r['measured_s'] * 1e3:9.3f} ms  predicted {r['predicted_s'] * 1e3:9.3f} ms  "
              f"{r['error']:+7.1%}")


def numpy_rows() -> dict[str, dict[str, dict[str, float]]]:
    return {hw: held_out_errors(load_measurements([MEASURED / f]), hw) for hw, f in NUMPY_SETS}


def print_numpy(errors: dict[str, dict[str, dict[str, float]]]) -> None:
    target = TARGETS["numpy kernels"]
    print("\nnumpy kernels, profile fitted on one half of the records (hash split), other half:")
    print(f"{'device':18s} {'family':12s} {'n':>4s} {'median':>8s} {'worst':>8s}")
    for hw, families in errors.items():
        for fam, s in families.items():
            print(f"{hw:18s} {fam:12s} {s['n']:4d} {s['median_abs_error']:8.1%} {s['worst']:8.1%}"
                  f"  {verdict(s['median_abs_error'], target)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    args = parser.parse_args()
    steps = pytorch_rows()
    print_pytorch(steps)
    kernels = numpy_rows()
    print_numpy(kernels)
    if args.json:
        write_json_atomic(Path(args.json), {"pytorch_steps": steps, "numpy_kernels": kernels})


if __name__ == "__main__":
    main()

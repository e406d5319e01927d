"""Accuracy on networks nothing was fitted to: GPT-2 small, GPT-2 medium and BERT-base steps
measured on an H200 (Hugging Face transformers, PyTorch eager, AdamW;
benchmarks/torch_transformers.py) against `predict` with the catalog's profiles, printed per
network, precision and regime (simulator/validate/transformers.py).

    python benchmarks/accuracy_transformers.py [MEASUREMENTS.json] [--json OUT]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from simulator.report.atomic import write_json_atomic
from simulator.report.validation_report import group_table_text
from simulator.validate.transformers import transformer_rows, transformer_summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("measurements", nargs="?",
                        default="measurements/h200-torch-transformers.json")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    args = parser.parse_args()
    rows = transformer_rows(Path(args.measurements))
    print(f"{len(rows)} steps of {args.measurements}, none fitted on")
    print(f"{'model':12s} {'mode':5s} {'batch':>5s} {'seq':>5s} {'prec':5s} "
          f"{'measured':>10s} {'predicted':>10s} {'error':>7s}")
    for r in rows:
        print(f"{r['model']:12s} {r['mode']:5s} {r['batch']:5d} {r['seq_len']:5d} "
              f"{r['precision']:5s} {r['measured_s'] * 1e3:8.2f}ms {r['predicted_s'] * 1e3:8.2f}ms "
              f"{r['error']:+7.0%}{'  host-bound' if r['host_bound'] else ''}")
    print(group_table_text(transformer_summary(rows)))
    if args.json:
        write_json_atomic(Path(args.json), rows)


if __name__ == "__main__":
    main()

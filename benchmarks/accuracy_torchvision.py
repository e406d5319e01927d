"""Accuracy on torchvision networks nobody fitted: H200 PyTorch steps of networks outside the
catalog (DenseNet-121, ViT-B/16, EfficientNet-B0, ConvNeXt-T, GoogLeNet, SqueezeNet 1.0;
benchmarks/torch_zoo.py), imported through torch.fx and predicted with the catalog's
profiles (simulator/validate/torchvision_zoo.py says what those were fitted on), printed per
network, mode and precision. Needs torch and torchvision (CPU builds do).

    python benchmarks/accuracy_torchvision.py [ZOO.json ...] [--layers FILE ...] [--json OUT]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from simulator.calibrate.conv_layers import LAYER_FILES, load_layer_files
from simulator.report.atomic import write_json_atomic
from simulator.report.validation_report import group_table_text
from simulator.validate.torchvision_zoo import (
    ZOO_FILES,
    heldout_records,
    heldout_rows,
    heldout_summary,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("measurements", nargs="*", default=[
        f"measurements/{name}" for name in ZOO_FILES if Path("measurements", name).is_file()])
    parser.add_argument("--layers", nargs="+",
                        default=[f"measurements/{name}" for name in LAYER_FILES],
                        help="the layer files the catalog's convolution, batch-norm and pooling "
                        "terms were fitted on: a network with layers there is predicted with "
                        "the terms refitted without them; 'none': the catalog's for every "
                        "network")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    args = parser.parse_args()
    records = heldout_records([Path(p) for p in args.measurements])
    layers = None if args.layers == ["none"] else load_layer_files([Path(p) for p in args.layers])
    rows, skipped = heldout_rows(records, layers)
    print(f"{len(rows)} steps of networks outside the catalog in {', '.join(args.measurements)}")
    for network, why in skipped.items():
        print(f"not imported: {network}: {why}")
    print(f"{'model':16s} {'mode':5s} {'batch':>5s} {'prec':11s} {'measured':>10s} "
          f"{'predicted':>10s} {'error':>7s}")
    for r in rows:
        print(f"{r['model']:16s} {r['mode']:5s} {r['batch']:5d} {r['precision']:11s} "
              f"{r['measured_s'] * 1e3:8.2f}ms {r['predicted_s'] * 1e3:8.2f}ms "
              f"{r['error']:+7.0%}{'  host-bound' if r['host_bound'] else ''}"
              f"{'  (layer terms refitted without it)' if r['layers_refitted'] else ''}")
    print(group_table_text(heldout_summary(rows), 36))
    if args.json:
        write_json_atomic(Path(args.json), rows)


if __name__ == "__main__":
    main()

"""``python -m tdn evaluate``: top-1, top-5 and the confusion matrix of a checkpoint."""

from __future__ import annotations

import argparse
import json

from tdn.network.checkpoint import load_checkpoint
from tdn.training.data import VideoClips, read_labels_csv
from tdn.training.evaluation import evaluate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", default=None, help="default: the bundled demo TDN")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="folder with videos and labels.csv")
    src.add_argument("--synthetic", type=int, metavar="N", help="N generated clips")
    parser.add_argument("--seed", type=int, default=2001, help="seed of the generated clips")
    parser.add_argument("--segments", type=int, default=None)
    parser.add_argument("--cache", default="runs/cache")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    from tdn.assets import DEMO_CHECKPOINT
    from tdn.training.synth import synthetic_folder

    model, info = load_checkpoint(args.checkpoint or DEMO_CHECKPOINT, args.segments, args.device)
    size = info.input_size
    folder = args.data or synthetic_folder(args.cache, args.synthetic, args.seed, info.scale_size, 48)
    records, _ = read_labels_csv(folder)
    metrics = evaluate(
        model, VideoClips(records, model.num_segments, size, train=False), progress=not args.json
    )
    if args.json:
        print(json.dumps(metrics.to_dict()))
        return 0
    print(f"{info.name} on {len(records)} videos from {folder}")
    print(f"top-1 {metrics.top1:.4f}   top-5 {metrics.top5:.4f}")
    print("confusion (rows: true class, columns: predicted)")
    for i, row in enumerate(metrics.confusion):
        print(f"{i:>3} {' '.join(f'{v:>4}' for v in row)}  {info.class_names[i]}")
    return 0

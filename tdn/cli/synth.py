"""``python -m tdn synth``: write the synthetic motion dataset (mp4 + mask npz per clip, labels.csv)."""

from __future__ import annotations

import argparse
import sys

from tdn.cli.common import output_dir, positive_int
from tdn.training.synth import CLASSES, DATASET_VERSION, video_codec, write_dataset


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=output_dir, required=True, help="output folder (created if missing)")
    parser.add_argument("--num", type=positive_int, required=True, help="number of clips (labels balanced)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=positive_int, default=112, help="frame side in pixels (even)")
    parser.add_argument("--frames", type=positive_int, default=48)
    parser.add_argument("--fps", type=positive_int, default=12)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    try:
        labels = write_dataset(
            args.out, args.num, args.seed, args.size, args.frames, args.fps, progress=not args.quiet
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"wrote {args.num} clips of {args.frames} frames at {args.size}x{args.size} ({video_codec()}, "
        f"{len(CLASSES)} classes, synth v{DATASET_VERSION}) to {args.out}; labels in {labels.name}"
    )
    return 0

"""``python -m tdn explain``: Grad-CAM and TDM difference maps of a video (or a folder of videos)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

from tdn.cli.common import add_cam_arguments, add_model_arguments, open_inputs, report_error


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", metavar="VIDEO_OR_DIR")
    add_model_arguments(parser)
    add_cam_arguments(parser, "the model's input size")
    parser.add_argument("--target", type=int, default=None, help="class index (default: top-1)")
    parser.add_argument("--opacity", type=float, default=0.5)
    parser.add_argument("--out", required=True, help="output folder (one subfolder per video for a folder)")


def run(args: argparse.Namespace) -> int:
    from tdn.interpret.gradcam import ExplainError, explain
    from tdn.interpret.render import write_explanation
    from tdn.interpret.tdmaps import difference_maps
    from tdn.video.clip import ClipError, load_clip

    opened = open_inputs(args)
    if opened is None:
        return 2
    videos, model, info = opened
    failures = 0
    batch = Path(args.video).is_dir()
    for path in tqdm(videos, desc="explain", disable=not batch, unit="video"):
        out = Path(args.out) / path.stem if batch else Path(args.out)
        try:
            clip = load_clip(path, spec=info.spec)
            ex = explain(model, clip, args.target, args.method, args.layer, class_names=info.class_names)
        except (ClipError, ExplainError) as e:
            failures += 1
            report_error(str(path), e)
            continue
        maps, _ = difference_maps(model, clip.inputs[0])
        write_explanation(out, ex, maps, args.opacity, fps=4.0)
        print(f"{path}: {ex.target_name} ({ex.score:.1%}), {ex.method} at {ex.layer} → {out}")
    return 1 if failures else 0

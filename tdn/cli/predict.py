"""``python -m tdn predict``: classify a video, or every video of a folder (one JSON line each)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from tqdm import tqdm

from tdn.cli.common import (
    add_decode_arguments,
    add_model_arguments,
    add_quiet_argument,
    checkpoint_warnings,
    load_clip_for,
    open_inputs,
    positive_int,
    predict_views,
    report_error,
    show_progress,
    warn,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", metavar="VIDEO_OR_DIR")
    add_model_arguments(parser)
    parser.add_argument("--crops", type=int, choices=[1, 3], default=1, help="1 centre crop or 3 full crops")
    parser.add_argument("--clips", type=positive_int, default=1, help="clips sampled along the video")
    parser.add_argument("--topk", type=positive_int, default=5, help="classes listed (at most all)")
    add_decode_arguments(parser)
    add_quiet_argument(parser)
    parser.add_argument("--json", action="store_true", help='one JSON object per video (with its "warnings")')


def run(args: argparse.Namespace) -> int:
    from tdn.video.clip import ClipError

    videos, model, info = open_inputs(args)
    model_warnings = checkpoint_warnings(info)
    progress = show_progress(args)
    views = args.crops * args.clips
    per_view = progress and views > 1
    failures = 0
    for path in tqdm(videos, desc="predict", disable=not progress or len(videos) == 1, unit="video"):
        start = time.perf_counter()
        # per-view progress for long single videos (many crops x clips): decoding, then the forwards
        bar = tqdm(
            total=views,
            desc=f"{path.name}: decode",
            unit="view",
            leave=False,
            disable=not per_view,
        )
        try:
            clip = load_clip_for(path, info, args, crops=args.crops, clips=args.clips)
        except ClipError as e:
            bar.close()
            failures += 1
            report_error(str(path), e)
            if args.json:
                row = {"file": str(path), "error": str(e), "kind": e.kind, "warnings": model_warnings}
                print(json.dumps(row), flush=True)
            continue
        bar.set_description(f"{path.name}: predict")
        pred = predict_views(model, clip, info.class_names, bar if per_view else None)
        bar.close()
        clip_warnings = warn(path, clip.warnings)
        timings = {**clip.timings_ms, **pred.timings_ms, "total": (time.perf_counter() - start) * 1000}
        top = pred.topk(args.topk)
        if args.json:
            print(
                json.dumps(
                    {
                        "file": str(path),
                        "topk": [t.to_dict() for t in top],
                        "frame_indices": clip.frame_indices.tolist(),
                        "timings_ms": timings,
                        "model": info.name,
                        "device": info.device,
                        "warnings": model_warnings + clip_warnings,
                    }
                ),
                flush=True,
            )
        else:
            _print_rows(path, clip.num_views, info.name, info.device, timings["total"], top)
    return 1 if failures else 0


def _print_rows(path: Path, views: int, model: str, device: str, total_ms: float, top: list) -> None:
    tqdm.write(f"{path}  ({views} view(s), {model} on {device}, {total_ms:.0f} ms)")
    for row in top:
        tqdm.write(f"  {row.prob:7.2%}  {row.index:>4}  {row.name}")

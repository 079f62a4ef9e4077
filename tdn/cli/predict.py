"""``python -m tdn predict``: classify a video, or every video of a folder (one JSON line each)."""

from __future__ import annotations

import argparse
import json
import time

from tqdm import tqdm

from tdn.cli.common import add_model_arguments, open_inputs, report_error


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", metavar="VIDEO_OR_DIR")
    add_model_arguments(parser)
    parser.add_argument("--crops", type=int, choices=[1, 3], default=1)
    parser.add_argument("--clips", type=int, default=1)
    parser.add_argument("--topk", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="one JSON object per video")


def run(args: argparse.Namespace) -> int:
    from tdn.inference import predict
    from tdn.video.clip import ClipError, load_clip

    opened = open_inputs(args)
    if opened is None:
        return 2
    videos, model, info = opened
    failures = 0
    for path in tqdm(videos, desc="predict", disable=len(videos) == 1, unit="video"):
        start = time.perf_counter()
        try:
            clip = load_clip(path, spec=info.spec, crops=args.crops, clips=args.clips)
        except ClipError as e:
            failures += 1
            report_error(str(path), e)
            if args.json:
                print(json.dumps({"file": str(path), "error": str(e), "kind": e.kind}), flush=True)
            continue
        pred = predict(model, clip, info.class_names)
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
                    }
                ),
                flush=True,
            )
        else:
            print(
                f"{path}  ({clip.num_views} view(s), {info.name} on {info.device}, {timings['total']:.0f} ms)"
            )
            for row in top:
                print(f"  {row.prob:7.2%}  {row.index:>4}  {row.name}")
    return 1 if failures else 0

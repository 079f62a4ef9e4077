"""``python -m tdn samples``: (re)generate the bundled sample clips in assets/clips from held-out seeds."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

# One clip per class, whatever the demo answers on it: the plan of a fixed held-out seed (disjoint from the
# training 1, validation 1001 and evaluation 2001 sets) holds each of the 14 classes exactly once.
SAMPLE_SEED = 9090
SAMPLES_FILE = "samples.json"  # beside the clips: each clip's label and the demo TDN's answer on it


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tdn.assets import CLIPS
    from tdn.cli.common import output_dir, positive_int

    parser.add_argument("--out", type=output_dir, default=CLIPS)
    parser.add_argument("--size", type=positive_int, default=112)
    parser.add_argument("--frames", type=positive_int, default=48)
    parser.add_argument("--fps", type=positive_int, default=12)


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def run(args: argparse.Namespace) -> int:
    from tdn.training.synth import CLASSES, dataset_plan, generate_clip, video_codec, write_video

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    codec = video_codec()
    for old in out.glob("*.mp4"):  # the set is regenerated whole
        old.unlink()
        old.with_name(old.stem + "_mask.npz").unlink(missing_ok=True)
    written = []
    for label, seed in sorted(dataset_plan(len(CLASSES), SAMPLE_SEED)):
        clip = generate_clip(label, seed, args.size, args.frames)
        stem = slug(clip.label_name)
        write_video(out / f"{stem}.mp4", clip.frames, args.fps, codec)
        np.savez_compressed(out / f"{stem}_mask.npz", mask=clip.mask)
        written.append((out / f"{stem}.mp4", label, seed))
        print(f"{out / stem}.mp4  label {label}: {clip.label_name}")
    record_answers(written, out / SAMPLES_FILE)
    return 0


def record_answers(written: list, path: Path) -> None:
    """Write what the demo TDN answers on each sample, so the app can mark the ones it gets wrong."""
    from tdn.assets import DEMO_CHECKPOINT
    from tdn.inference import predict
    from tdn.network.checkpoint import load_checkpoint
    from tdn.util import write_atomic
    from tdn.video import load_clip

    model, info = load_checkpoint(DEMO_CHECKPOINT, device="cpu")
    answers = {}
    for video, label, seed in written:
        top = predict(model, load_clip(video, spec=info.spec), info.class_names).topk(1)[0]
        answers[video.name] = {
            "label": label,
            "label_name": info.class_names[label],
            "seed": seed,
            "predicted": top.index,
            "predicted_name": top.name,
            "prob": round(top.prob, 4),
            "correct": top.index == label,
        }
    meta = {"model": info.name, "checkpoint_sha256": info.sha256, "sample_seed": SAMPLE_SEED}
    write_atomic(path, json.dumps({"demo": meta, "clips": answers}, indent=1) + "\n")

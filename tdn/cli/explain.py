"""``python -m tdn explain``: Grad-CAM and TDM difference maps of a video (or a folder of videos).

A folder gives one subfolder per video, named by its stem; videos whose stems collide (``clip.mkv``,
``clip.mp4``) get the suffix too (``clip_mkv``, ``clip_mp4``), so no output overwrites another.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tqdm import tqdm

from tdn.cli.common import (
    add_cam_arguments,
    add_decode_arguments,
    add_model_arguments,
    add_quiet_argument,
    check_target,
    checkpoint_warnings,
    fraction,
    load_clip_for,
    nonnegative_int,
    open_inputs,
    output_dir,
    output_names,
    report_error,
    show_progress,
    warn,
)

STEPS = ("decode", "Grad-CAM", "TDM maps", "write")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", metavar="VIDEO_OR_DIR")
    add_model_arguments(parser)
    add_cam_arguments(parser, "the model's input size")
    parser.add_argument("--target", type=nonnegative_int, default=None, help="class index (default: top-1)")
    parser.add_argument("--opacity", type=fraction, default=0.5, help="heatmap opacity, 0 to 1")
    parser.add_argument(
        "--out",
        type=output_dir,
        required=True,
        help="output folder (for a folder of videos: one subfolder per video, named by its stem; stem_suffix "
        "where two videos share a stem)",
    )
    add_decode_arguments(parser)
    add_quiet_argument(parser)


def run(args: argparse.Namespace) -> int:
    from tdn.distributed import Ranks, finish, gather_objects, init_from_env, shard, unshard
    from tdn.interpret.gradcam import ExplainError, explain
    from tdn.interpret.render import write_explanation
    from tdn.interpret.tdmaps import difference_maps
    from tdn.util import write_atomic
    from tdn.video.clip import ClipError

    # A folder under torchrun: each rank explains its share of the videos; rank 0 writes the index.
    batch = Path(args.video).is_dir()
    ranks = init_from_env(cpu_only=args.device == "cpu") if batch else Ranks()
    videos, model, info = open_inputs(args)
    check_target(args.target, info)
    model_warnings = checkpoint_warnings(info) if ranks.is_main else []
    progress = show_progress(args) and ranks.is_main
    outs = [args.out / name for name in output_names(videos)] if batch else [args.out]
    pairs = list(zip(videos, outs, strict=True))
    mine = shard(pairs, ranks)
    index: list[dict] = []
    failures = 0
    for path, out in tqdm(mine, desc="explain", disable=not progress or not batch, unit="video"):
        steps = tqdm(STEPS, desc=path.name, leave=False, disable=not progress or batch)
        try:
            steps.set_postfix_str(STEPS[0])
            clip = load_clip_for(path, info, args)
            steps.update()
            steps.set_postfix_str(STEPS[1])
            ex = explain(model, clip, args.target, args.method, args.layer, class_names=info.class_names)
            steps.update()
            steps.set_postfix_str(STEPS[2])
            maps, _ = difference_maps(model, clip.inputs[0])
            steps.update()
            steps.set_postfix_str(STEPS[3])
            write_explanation(out, ex, maps, args.opacity, fps=4.0)
            warnings = model_warnings + warn(path, clip.warnings)
            record_path = out / "explanation.json"
            record = json.loads(record_path.read_text())
            write_atomic(
                record_path, json.dumps({**record, "file": str(path), "warnings": warnings}, indent=1)
            )
            steps.update()
        except (ClipError, ExplainError, OSError) as e:
            failures += 1
            report_error(str(path), e)
            index.append({"file": str(path), "error": str(e)})
            continue
        finally:
            steps.close()
        index.append(
            {
                "file": str(path),
                "out": str(out),
                "target": ex.target,
                "target_name": ex.target_name,
                "score": ex.score,
                "method": ex.method,
                "layer": ex.layer,
                "frame_indices": ex.frame_indices.tolist(),
            }
        )
        tqdm.write(f"{path}: {ex.target_name} ({ex.score:.1%}), {ex.method} at {ex.layer} → {out}")
    parts = gather_objects(index, ranks)
    failures = sum(sum("error" in row for row in part) for part in parts)
    finish(ranks)
    if batch and ranks.is_main:
        write_atomic(args.out / "index.json", json.dumps(unshard(parts, len(pairs)), indent=1) + "\n")
    return 1 if failures else 0

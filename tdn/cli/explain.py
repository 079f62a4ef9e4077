"""``python -m tdn explain``: Grad-CAM and TDM difference maps of a video (or a folder of videos).

A folder gives one subfolder per video, named by its stem; videos whose stems collide (``clip.mkv``,
``clip.mp4``) get the suffix too (``clip_mkv``, ``clip_mp4``), so no output overwrites another. ``--summary`` (a
folder only) also measures how faithful each heatmap is and aggregates it per class (:mod:`tdn.interpret.summary`):
``OUT/faithfulness.jsonl`` (one line per clip) and ``OUT/faithfulness.json`` (overall, per class, provenance); true
classes come from a ``labels.csv`` in the folder when there is one. Under ``torchrun`` every rank explains its
share and rank 0 writes the index and the summary, the same files one process writes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from tdn.cli.common import (
    UsageError,
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
    parser.add_argument(
        "--summary",
        action="store_true",
        help="(a folder) also measure each heatmap's faithfulness (ROAD, segment importance; pointing game and "
        "energy share where a mask lies beside the video) and aggregate it per class: OUT/faithfulness.json",
    )
    add_decode_arguments(parser)
    add_quiet_argument(parser)


def _labels(folder: Path, class_names: list[str]) -> tuple[dict[Path, tuple[int, str]], str | None]:
    """True classes of the folder's videos from its ``labels.csv`` (resolved path → (index, name)), and where
    they came from; empty when there is no such file or it cannot be read (then a note says why)."""
    from tdn.datasets import DatasetError, read_dataset

    list_file = folder / "labels.csv"
    if not list_file.is_file():
        return {}, None
    try:
        dataset = read_dataset(list_file, folder, class_names=class_names)
    except (DatasetError, OSError) as error:
        print(f"note: {list_file} not used for true classes: {error}", file=sys.stderr)
        return {}, None
    return {e.path.resolve(): (e.label, e.label_name) for e in dataset.entries}, list_file.name


def run(args: argparse.Namespace) -> int:
    from tdn.distributed import Ranks, finish, gather_objects, init_from_env, shard, unshard
    from tdn.interpret.gradcam import ExplainError, explain
    from tdn.interpret.render import write_explanation
    from tdn.interpret.tdmaps import difference_maps
    from tdn.util import write_atomic
    from tdn.video.clip import ClipError

    # A folder under torchrun: each rank explains its share of the videos; rank 0 writes the index.
    batch = Path(args.video).is_dir()
    if args.summary and not batch:
        raise UsageError(f"{args.video}: --summary needs a folder of videos (it aggregates them per class)")
    ranks = init_from_env(cpu_only=args.device == "cpu") if batch else Ranks()
    videos, model, info = open_inputs(args)
    check_target(args.target, info)
    model_warnings = checkpoint_warnings(info) if ranks.is_main else []
    progress = show_progress(args) and ranks.is_main
    outs = [args.out / name for name in output_names(videos)] if batch else [args.out]
    pairs = list(zip(videos, outs, strict=True))
    mine = shard(pairs, ranks)
    labels, labels_source = _labels(Path(args.video), list(info.class_names)) if args.summary else ({}, None)
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
            faithfulness = _faithfulness(model, clip, ex, path, labels) if args.summary else None
            steps.update()
        except (ClipError, ExplainError, OSError, ValueError) as e:
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
            | ({"faithfulness": faithfulness} if faithfulness is not None else {})
        )
        tqdm.write(f"{path}: {ex.target_name} ({ex.score:.1%}), {ex.method} at {ex.layer} → {out}")
    parts = gather_objects(index, ranks)
    failures = sum(sum("error" in row for row in part) for part in parts)
    finish(ranks)
    if batch and ranks.is_main:
        rows = unshard(parts, len(pairs))
        if args.summary:
            _write_summary(args, info, rows, labels_source, ranks.world)
            rows = [{k: v for k, v in row.items() if k != "faithfulness"} for row in rows]
        write_atomic(args.out / "index.json", json.dumps(rows, indent=1) + "\n")
    return 1 if failures else 0


def _faithfulness(model, clip, ex, path: Path, labels: dict) -> dict:  # noqa: ANN001
    from tdn.interpret.faithfulness import load_mask_for
    from tdn.interpret.summary import clip_faithfulness

    label = labels.get(path.resolve())
    known = {"label": label[0], "label_name": label[1], "correct": ex.target == label[0]} if label else {}
    return known | clip_faithfulness(model, clip, ex, load_mask_for(path))


def _write_summary(
    args: argparse.Namespace, info, rows: list[dict], labels_source: str | None, world: int
) -> None:  # noqa: ANN001
    from tdn.interpret.summary import summarise_faithfulness
    from tdn.util import git_commit, write_atomic

    records = []
    for row in rows:
        base = {"file": Path(row["file"]).name}
        if "error" in row:
            records.append(base | {"error": row["error"]})
        else:
            keep = ("target", "target_name", "score", "method", "layer")
            records.append(base | {k: row[k] for k in keep} | row["faithfulness"])
    summary = summarise_faithfulness(records, list(info.class_names)) | {
        "checkpoint": {"name": info.name, "file": Path(info.path).name, "sha256": info.sha256},
        "folder": str(args.video),
        "labels": labels_source,
        "method": args.method,
        "layer": next((r["layer"] for r in records if "layer" in r), args.layer),
        "ranks": world,
        "provenance": {"command": " ".join(["python -m tdn explain", *sys.argv[2:]]), "commit": git_commit()},
    }
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    write_atomic(args.out / "faithfulness.jsonl", lines)
    write_atomic(args.out / "faithfulness.json", json.dumps(summary, indent=1, ensure_ascii=False) + "\n")

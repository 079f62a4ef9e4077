"""``python -m tdn evaluate``: top-1, top-5 and the confusion matrix of a checkpoint.

Every video is preprocessed as ``predict`` does it, from the checkpoint's spec (``info.spec``: an official
checkpoint's short side 256, then the centre 224; see :meth:`tdn.training.data.VideoClips.for_evaluation`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tdn.cli.common import (
    UsageError,
    add_decode_arguments,
    add_device_arguments,
    add_quiet_argument,
    apply_precision,
    checkpoint_warnings,
    labelled_folder,
    load_model_from,
    one_line,
    positive_int,
    show_progress,
    warn,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", default=None, help="default: the bundled demo TDN")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--data", type=labelled_folder, help="folder with videos and labels.csv (file,label_index,label_name)"
    )
    src.add_argument("--synthetic", type=positive_int, metavar="N", help="N generated clips")
    src.add_argument(
        "--list",
        metavar="FILE",
        help="a published dataset description, format detected from its content: the official TDN list "
        "(path num_frames label), Something-Something V1 CSV, V2 validation JSON, Kinetics-400 CSV, or labels.csv",
    )
    parser.add_argument("--root", default=None, help="with --list: the folder its paths are relative to")
    parser.add_argument(
        "--protocol",
        default=None,
        help="with --list: ss-1crop, ss-3crop or k400-30view (default: the zoo's for the list's format)",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="with --list: per-video predictions (JSONL, resumed when rerun) and its .summary.json",
    )
    parser.add_argument("--seed", type=int, default=2001, help="seed of the generated clips")
    parser.add_argument(
        "--segments", type=positive_int, default=None, help="segments (required for official files)"
    )
    parser.add_argument("--cache", default="runs/cache", help="where generated clips are kept")
    add_device_arguments(parser)
    add_decode_arguments(parser)
    add_quiet_argument(parser)
    parser.add_argument("--json", action="store_true", help='one JSON object (with its "warnings")')


def check_records(records: list, folder: Path, num_classes: int, model: str) -> None:
    """Every listed video exists and every label is one of the model's classes, before any work."""
    missing = [r for r in records if not r.path.is_file()]
    if missing:
        shown = ", ".join(str(r.path) for r in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise UsageError(
            f"{folder / 'labels.csv'}: {len(missing)} of its {len(records)} videos are missing: {shown}{more}"
        )
    beyond = sorted({r.label for r in records if r.label >= num_classes})
    if beyond:
        raise UsageError(
            f"{folder / 'labels.csv'}: label_index {', '.join(map(str, beyond))} is not a class of {model}, "
            f"which has classes 0..{num_classes - 1}"
        )


def run_list(args: argparse.Namespace) -> int:
    """``--list``: the zoo's protocol over a published dataset description (tdn.datasets)."""
    from tdn.datasets import (
        PROTOCOLS,
        DatasetError,
        EvaluationMismatch,
        default_protocol,
        evaluate_dataset,
        read_dataset,
    )
    from tdn.distributed import finish, init_from_env

    if args.protocol is not None and args.protocol not in PROTOCOLS:
        raise UsageError(f"--protocol {args.protocol}: choose one of {', '.join(PROTOCOLS)}")
    ranks = init_from_env(cpu_only=args.device == "cpu")
    apply_precision(args)
    model, info = load_model_from(args.checkpoint, args.segments, args.device)
    if ranks.is_main:
        checkpoint_warnings(info)
    try:
        dataset = read_dataset(args.list, root=args.root, class_names=info.class_names)
    except (DatasetError, OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{args.list}: {one_line(e)}") from None
    protocol = args.protocol or default_protocol(dataset.format).name
    if ranks.is_main and not args.json:
        print(dataset.describe(), file=sys.stderr)
    try:
        summary = evaluate_dataset(
            model, info, dataset, protocol, out=args.out, progress=show_progress(args) and ranks.is_main,
            ranks=ranks, command="python -m tdn evaluate " + " ".join(sys.argv[2:]),
        )  # fmt: skip
    except EvaluationMismatch as e:
        raise UsageError(f"{args.out}: {one_line(e)}") from None
    finish(ranks)
    if not ranks.is_main:
        return 0
    if args.json:
        print(json.dumps(summary))
        return 0
    m = summary["metrics"]
    print(f"{info.name} on {dataset.describe()} ({protocol})")
    print(f"top-1 {m['top1']:.2f} %   top-5 {m['top5']:.2f} %   mean class {m['mean_class']:.2f} %")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.list is not None:
        return run_list(args)
    from tdn.distributed import finish, gather_objects, init_from_env
    from tdn.training.data import VideoClips, read_labels_csv
    from tdn.training.evaluation import evaluate
    from tdn.training.synth import synthetic_folder
    from tdn.video.clip import ClipError

    # Under torchrun every rank evaluates its share (tdn.distributed.shard) and rank 0 reports the totals.
    ranks = init_from_env(cpu_only=args.device == "cpu")
    apply_precision(args)
    model, info = load_model_from(args.checkpoint, args.segments, args.device)
    warnings = checkpoint_warnings(info) if ranks.is_main else []
    progress = show_progress(args) and ranks.is_main
    if args.data is not None:
        folder = Path(args.data)
    else:
        folder = Path(synthetic_folder(args.cache, args.synthetic, args.seed, info.scale_size, 48))
    try:
        records, _ = read_labels_csv(folder)
    except (ValueError, OSError, UnicodeDecodeError) as e:
        raise UsageError(one_line(e)) from None
    check_records(records, folder, model.config.num_classes, info.name)
    data = VideoClips.for_evaluation(records, info.spec, timeout_s=args.decode_timeout)
    try:
        metrics = evaluate(model, data, progress=progress, ranks=ranks)
    except ClipError as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 1
    clip_warnings: dict = {}
    for part in gather_objects(dict(data.warnings), ranks):
        clip_warnings.update(part)
    finish(ranks)
    if not ranks.is_main:
        return 0
    for path in sorted(clip_warnings, key=str):
        warnings += warn(path, clip_warnings[path])
    if args.json:
        print(json.dumps({**metrics.to_dict(), "warnings": warnings}))
        return 0
    print(f"{info.name} on {len(records)} videos from {folder} ({info.spec.describe()})")
    print(f"top-1 {metrics.top1:.4f}   top-5 {metrics.top5:.4f}")
    print("confusion (rows: true class, columns: predicted)")
    for i, row in enumerate(metrics.confusion):
        print(f"{i:>3} {' '.join(f'{v:>4}' for v in row)}  {info.class_names[i]}")
    return 0

"""``python -m tdn compare``: TDN against a second model (by default its TSN twin) on one video."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from tdn.cli.common import (
    UsageError,
    add_cam_arguments,
    add_decode_arguments,
    add_device_arguments,
    apply_precision,
    check_target,
    checkpoint_warnings,
    load_clip_for,
    load_model_from,
    nonnegative_int,
    output_dir,
    positive_int,
    report_error,
    warn,
)

if TYPE_CHECKING:
    from tdn.network.checkpoint import CheckpointInfo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tdn.interpret.comparison import NEUTRALS

    parser.add_argument("video", metavar="VIDEO", help="one video file (compare does not take folders)")
    parser.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="CHECKPOINT",
        help="give twice: model A, then model B (defaults: A the bundled demo TDN, B its TSN twin)",
    )
    parser.add_argument(
        "--segments", type=positive_int, default=None, help="segments (required for official files)"
    )
    add_device_arguments(parser)
    add_cam_arguments(parser, "model A's input size")
    parser.add_argument(
        "--target", type=nonnegative_int, default=None, help="class index (default: model A's top-1)"
    )
    parser.add_argument(
        "--neutral",
        default="static",
        choices=list(NEUTRALS),
        help="how a segment is neutralised for its importance: 'static' freezes its snippet on the centre "
        "frame (removes motion only), 'neighbour' swaps in the previous segment's snippet",
    )
    parser.add_argument("--out", type=output_dir, required=True, help="output folder")
    add_decode_arguments(parser)


def checkpoint_paths(given: list[str]) -> tuple[str, str]:
    """(A, B): the given checkpoints in order, the demo TDN and its TSN twin filling in what is missing."""
    from tdn.assets import DEMO_CHECKPOINT, DEMO_TSN_CHECKPOINT

    if len(given) > 2:
        raise UsageError(f"--checkpoint given {len(given)} times; compare takes two models at most")
    defaults = [str(DEMO_CHECKPOINT), str(DEMO_TSN_CHECKPOINT)]
    return tuple(given + defaults[len(given) :])  # type: ignore[return-value]


def _check_comparable(a: CheckpointInfo, b: CheckpointInfo) -> None:
    """What :func:`tdn.interpret.comparison.compare` needs of the two models, checked before any work."""
    if a.config.num_segments != b.config.num_segments:
        raise UsageError(
            f"model A ({a.path}) uses {a.config.num_segments} segments and model B ({b.path}) "
            f"{b.config.num_segments}; a segment-by-segment comparison needs the same number (--segments)"
        )
    if a.config.num_classes != b.config.num_classes:
        raise UsageError(
            f"model A ({a.path}) has {a.config.num_classes} classes and model B ({b.path}) "
            f"{b.config.num_classes}; they must share one label set"
        )


def run(args: argparse.Namespace) -> int:
    from tdn.interpret.comparison import compare, write_comparison
    from tdn.interpret.faithfulness import load_mask_for
    from tdn.interpret.gradcam import ExplainError
    from tdn.video import ClipError

    video = Path(args.video)
    if video.is_dir():
        raise UsageError(
            f"{video} is a folder; compare takes one video file (predict and explain take folders)"
        )
    if not video.is_file():
        raise UsageError(f"{video}: no such video file")
    path_a, path_b = checkpoint_paths(args.checkpoint)
    apply_precision(args)
    a = load_model_from(path_a, args.segments, args.device)
    b = load_model_from(path_b, args.segments, args.device)
    check_target(args.target, a[1])
    _check_comparable(a[1], b[1])
    warnings = checkpoint_warnings(a[1]) + checkpoint_warnings(b[1])
    try:
        mask = load_mask_for(video)
    except (ValueError, OSError) as e:
        raise UsageError(f"{video}: its mask file cannot be used ({e})") from None
    try:
        # Decoded here under --decode-timeout, for the clip's warnings; when B wants another input
        # geometry, compare() decodes the file again for each model (the same frames).
        clip = load_clip_for(video, a[1], args)
        same_input = a[1].spec == b[1].spec
        result = compare(
            a, b, clip if same_input else video, args.target, args.method, args.layer, mask, args.neutral
        )
    except (ClipError, ExplainError) as e:
        report_error(str(video), e)
        return 1
    warnings += warn(video, clip.warnings)
    extra = {
        "video": str(video),
        "a": {"checkpoint": a[1].path, "variant": a[1].config.variant},
        "b": {"checkpoint": b[1].path, "variant": b[1].config.variant},
        "warnings": warnings,
    }
    write_comparison(args.out, result, extra)
    for label, side in (("A", result.a), ("B", result.b)):
        mask_text = "" if side.mask_energy is None else f", mask energy {side.mask_energy:.2f}"
        top = side.prediction.topk(1)[0]
        print(
            f"{label} {side.name}: top-1 {top.name} ({top.prob:.1%}); target {result.target_name} "
            f"p={side.explanation.score:.1%}, motion energy {side.motion_energy:.2f}{mask_text}"
        )
    for note in result.notes:
        print(f"note: {note}")
    print(f"→ {args.out}")
    return 0

"""``python -m tdn compare``: TDN against a second model (by default its TSN twin) on one video."""

from __future__ import annotations

import argparse
from pathlib import Path

from tdn.cli.common import add_cam_arguments, report_error


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tdn.interpret.comparison import NEUTRALS

    parser.add_argument("video", metavar="VIDEO")
    parser.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="CHECKPOINT",
        help="give twice: model A, then model B (defaults: A the bundled demo TDN, B its TSN twin)",
    )
    parser.add_argument("--segments", type=int, default=None, help="segments (required for official files)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    add_cam_arguments(parser, "model A's input size")
    parser.add_argument("--target", type=int, default=None, help="class index (default: model A's top-1)")
    parser.add_argument(
        "--neutral",
        default="static",
        choices=list(NEUTRALS),
        help="how a segment is neutralised for its importance: 'static' freezes its snippet on the centre "
        "frame (removes motion only), 'neighbour' swaps in the previous segment's snippet",
    )
    parser.add_argument("--out", required=True, help="output folder")


def checkpoint_paths(given: list[str]) -> tuple[str, str]:
    """(A, B): the given checkpoints in order, the demo TDN and its TSN twin filling in what is missing."""
    from tdn.assets import DEMO_CHECKPOINT, DEMO_TSN_CHECKPOINT

    if len(given) > 2:
        raise ValueError(f"--checkpoint given {len(given)} times; compare takes two models at most")
    defaults = [str(DEMO_CHECKPOINT), str(DEMO_TSN_CHECKPOINT)]
    return tuple(given + defaults[len(given) :])  # type: ignore[return-value]


def run(args: argparse.Namespace) -> int:
    from tdn.interpret.comparison import compare, write_comparison
    from tdn.interpret.faithfulness import load_mask_for
    from tdn.interpret.gradcam import ExplainError
    from tdn.network.checkpoint import CheckpointError, load_checkpoint
    from tdn.video import ClipError

    video = Path(args.video)
    try:
        path_a, path_b = checkpoint_paths(args.checkpoint)
        a = load_checkpoint(path_a, args.segments, args.device)
        b = load_checkpoint(path_b, args.segments, args.device)
        if not video.is_file():
            raise FileNotFoundError(f"no such video file: {video}")
        mask = load_mask_for(video)
        result = compare(a, b, video, args.target, args.method, args.layer, mask, args.neutral)
    except (ValueError, FileNotFoundError, CheckpointError, ClipError, ExplainError) as e:
        report_error(str(video), e)
        return 2
    extra = {
        "video": str(video),
        "a": {"checkpoint": a[1].path, "variant": a[1].config.variant},
        "b": {"checkpoint": b[1].path, "variant": b[1].config.variant},
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

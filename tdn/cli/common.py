"""Pieces shared by the commands that take videos: model loading, input listing, error reporting."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tdn.filetypes import VIDEO_SUFFIXES

if TYPE_CHECKING:
    from tdn.network.checkpoint import CheckpointInfo
    from tdn.network.model import TDN


def add_cam_arguments(parser: argparse.ArgumentParser, auto_for: str) -> None:
    """``--method`` and ``--layer`` (default "auto": the deepest layer with a map of at least 7x7 for
    ``auto_for``'s input size, as :func:`tdn.interpret.gradcam.default_layer` picks it)."""
    from tdn.interpret.gradcam import AUTO_LAYER, LAYERS, METHODS

    parser.add_argument("--method", default="gradcam", choices=list(METHODS))
    parser.add_argument(
        "--layer",
        default=AUTO_LAYER,
        choices=[AUTO_LAYER, *LAYERS],
        help=f"default: the deepest layer with a map of at least 7x7 for {auto_for} (res5 at 224 px, res4 at 112)",
    )


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        default=None,
        help="official .pth(.tar) or our .safetensors (default: the bundled demo TDN)",
    )
    parser.add_argument("--segments", type=int, default=None, help="segments (required for official files)")
    parser.add_argument("--labels", default=None, help="class-name file overriding the checkpoint's")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])


def load_model(args: argparse.Namespace) -> tuple[TDN, CheckpointInfo]:
    """(model, info) from the command's model arguments; the demo TDN when no checkpoint is given."""
    from tdn.assets import DEMO_CHECKPOINT
    from tdn.network.checkpoint import load_checkpoint
    from tdn.network.labels import load_labels

    names = load_labels(args.labels) if args.labels else None
    return load_checkpoint(args.checkpoint or DEMO_CHECKPOINT, args.segments, args.device, class_names=names)


def list_videos(path: str) -> list[Path]:
    """One file, or the videos of a folder (by suffix, sorted); a missing path is an error."""
    p = Path(path)
    if p.is_dir():
        return sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in VIDEO_SUFFIXES)
    if not p.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    return [p]


def report_error(name: str, error: Exception) -> None:
    print(f"error: {name}: {error}", file=sys.stderr)


def open_inputs(args: argparse.Namespace) -> tuple[list[Path], TDN, CheckpointInfo] | None:
    """(videos, model, info) for a command's VIDEO_OR_DIR and model arguments, or None after reporting why
    not (the command then exits with 2)."""
    from tdn.network.checkpoint import CheckpointError
    from tdn.network.labels import LabelError

    try:
        videos = list_videos(args.video)
        if not videos:
            raise FileNotFoundError("no videos in this folder")
        model, info = load_model(args)
    except (FileNotFoundError, CheckpointError, LabelError) as e:
        report_error(args.video, e)
        return None
    return videos, model, info

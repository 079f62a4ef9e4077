"""Pieces shared by the commands: argument types, model loading, input listing, warnings and errors.

Exit codes, for every command (``tdn.__main__`` enforces them): 0 done; 2 the arguments or inputs cannot
be used (argparse's message for a bad value, one ``error: ...`` line for a file that is missing or is
not what it should be), found before any work; 1 something failed while working (one ``error: ...``
line per failure; a folder run goes on with the next video). No command shows a traceback (set
``TDN_TRACEBACK=1`` to see one).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tdn.filetypes import VIDEO_SUFFIXES

if TYPE_CHECKING:
    from tdn.inference import Prediction
    from tdn.network.checkpoint import CheckpointInfo
    from tdn.network.model import TDN
    from tdn.video.clip import Clip

DEFAULT_DECODE_TIMEOUT_S = 60.0
"""``tdn.video.clip.DEFAULT_TIMEOUT_S``, repeated here so that parsing never imports torch (a test checks)."""


_MARKS: dict[str, float] = {}


def mark(name: str) -> None:
    """Note when a phase of the command was first reached (for ``--timings``): ``parsed``, ``model``
    (importing torch and loading start), ``model_loaded``, ``work`` (the first clip is decoded), in that order."""
    _MARKS.setdefault(name, time.perf_counter())


def timings_line(started: float, interpreter_s: float | None) -> str:
    """``--timings``: set-up (interpreter, imports and parsing, model, the rest before the first clip) and work."""
    end = time.perf_counter()
    parsed = _MARKS.get("parsed", end)
    model, loaded = _MARKS.get("model"), _MARKS.get("model_loaded")
    work = _MARKS.get("work", end)
    model_s = (loaded - model) if model is not None and loaded is not None else 0.0
    parts = [] if interpreter_s is None else [f"interpreter {interpreter_s:.2f} s"]
    parts += [f"imports and arguments {parsed - started:.2f} s", f"torch, inputs and model {model_s:.2f} s"]
    parts.append(f"library imports and other set-up {max(0.0, work - parsed - model_s):.2f} s")
    setup = (interpreter_s or 0.0) + (work - started)
    return f"timings: set-up {setup:.2f} s ({', '.join(parts)}) · work {end - work:.2f} s · total {setup + end - work:.2f} s"


class UsageError(Exception):
    """Arguments or inputs that cannot be used, found after parsing: ``error: <message>``, exit 2."""


# ------------------------------------------------------------------------------------ argument types


def device_name(text: str) -> str:
    """argparse ``type=``: auto, cpu, cuda or cuda:N (whether it exists is checked when the model loads)."""
    value = text.strip().lower()
    if value in ("auto", "cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit()):
        return value
    raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda or cuda:N, got {text!r}")


def add_device_arguments(parser: argparse.ArgumentParser) -> None:
    """``--device`` and ``--precision`` (docs: ``tdn.network.runtime.PRECISIONS``)."""
    from tdn.contract import DEFAULT_PRECISION, PRECISIONS

    parser.add_argument("--device", type=device_name, default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument(
        "--precision",
        choices=list(PRECISIONS),
        default=DEFAULT_PRECISION,
        help="; ".join(f"{k}: {v}" for k, v in PRECISIONS.items()) + f" (default {DEFAULT_PRECISION})",
    )


def apply_precision(args: argparse.Namespace) -> None:
    from tdn.network.runtime import DEFAULT_PRECISION, set_precision

    set_precision(getattr(args, "precision", None) or DEFAULT_PRECISION)


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def positive_int(text: str) -> int:
    """argparse ``type=``: an integer of at least 1."""
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def nonnegative_int(text: str) -> int:
    """argparse ``type=``: an integer of at least 0."""
    value = _whole(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse ``type=``: a finite number above 0."""
    value = _finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def fraction(text: str) -> float:
    """argparse ``type=``: a number from 0 to 1."""
    value = _finite_float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def output_dir(text: str) -> Path:
    """argparse ``type=``: a folder to write into, existing or creatable (nothing is created here).

    Refused at once: a path that is a file, a path under a file, a folder this user cannot write in."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder")
    existing = path.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{text} cannot be created: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text} cannot be written: no permission to write in {existing}")
    return path


def labelled_folder(text: str) -> Path:
    """argparse ``type=``: a folder holding ``labels.csv`` (columns file,label_index,label_name)."""
    path = Path(text)
    if not path.is_dir():
        what = "a file" if path.exists() else "missing"
        raise argparse.ArgumentTypeError(f"{text} is {what}; expected a folder with videos and labels.csv")
    if not (path / "labels.csv").is_file():
        raise argparse.ArgumentTypeError(
            f"{text} has no labels.csv (columns file,label_index,label_name, one row per video)"
        )
    return path


def make_output_dir(path: Path) -> Path:
    """Create ``path`` (and its parents); an OS refusal is a :class:`UsageError`."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{path}: cannot create the output folder ({e.strerror or e})") from None
    return path


# --------------------------------------------------------------------------------- shared arguments


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
    parser.add_argument(
        "--segments", type=positive_int, default=None, help="segments (required for official files)"
    )
    parser.add_argument("--labels", default=None, help="class-name file overriding the checkpoint's")
    add_device_arguments(parser)


def add_decode_arguments(parser: argparse.ArgumentParser) -> None:
    """``--decode-timeout SECONDS``: the longest one video may take to decode."""
    parser.add_argument(
        "--decode-timeout",
        type=positive_float,
        default=DEFAULT_DECODE_TIMEOUT_S,
        metavar="SECONDS",
        help="give up on a video whose decoding takes longer than this "
        f"(default: {DEFAULT_DECODE_TIMEOUT_S:g} s, the library's)",
    )


def add_quiet_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bars (they are off anyway when stderr is not a terminal or --json output goes "
        "to a pipe)",
    )


def show_progress(args: argparse.Namespace) -> bool:
    """Progress bars on stderr: for a person at a terminal, not for --quiet or JSON read by a program."""
    if getattr(args, "quiet", False) or not _isatty(sys.stderr):
        return False
    return not (getattr(args, "json", False) and not _isatty(sys.stdout))


def _isatty(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        return False


# ---------------------------------------------------------------------------- messages on stderr


def one_line(text: object) -> str:
    """``text`` with every run of whitespace (line breaks included) made one space."""
    return " ".join(str(text).split())


def _stderr(line: str) -> None:
    from tqdm import tqdm

    tqdm.write(line, file=sys.stderr)  # above any progress bar, not through it


def report_error(name: str, error: Exception | str) -> None:
    _stderr(f"error: {name}: {one_line(error)}")


def warn(source: str | os.PathLike, texts: Iterable[str]) -> list[str]:
    """Print ``warning: <source>: <text>`` on stderr for each text; returns them as ``<source>: <text>``
    (the form the commands' JSON carries under ``"warnings"``)."""
    lines = [f"{source}: {one_line(text)}" for text in texts]
    for line in lines:
        _stderr(f"warning: {line}")
    return lines


# ------------------------------------------------------------------------------- models and inputs


def load_model_from(
    checkpoint: str | None,
    segments: int | None = None,
    device: str = "auto",
    labels: str | None = None,
) -> tuple[TDN, CheckpointInfo]:
    """(model, info) of ``checkpoint`` (default: the demo TDN); what goes wrong is a :class:`UsageError`
    that names the file at fault (the checkpoint, the label file) or the device."""
    from tdn.assets import DEMO_CHECKPOINT
    from tdn.network.checkpoint import CheckpointError, DeviceError, load_checkpoint
    from tdn.network.labels import LabelError, load_labels

    names = None
    if labels:
        try:
            names = load_labels(labels)
        except (LabelError, UnicodeDecodeError) as e:
            raise UsageError(f"{labels}: {one_line(e)}") from None
        except OSError as e:
            raise UsageError(f"{labels}: cannot read the label file ({e.strerror or e})") from None
    path = str(checkpoint or DEMO_CHECKPOINT)
    try:
        return load_checkpoint(path, segments, device, class_names=names)
    except DeviceError as e:
        raise UsageError(f"--device {device}: {one_line(e)}") from None
    except (CheckpointError, LabelError) as e:
        raise UsageError(f"{path}: {one_line(e)}") from None
    except OSError as e:
        raise UsageError(f"{path}: cannot read the checkpoint ({e.strerror or e})") from None


def load_model(args: argparse.Namespace) -> tuple[TDN, CheckpointInfo]:
    """(model, info) from the command's model arguments; the demo TDN when no checkpoint is given."""
    mark("model")
    apply_precision(args)  # the first import of torch
    model, info = load_model_from(args.checkpoint, args.segments, args.device, args.labels)
    mark("model_loaded")
    if info.device.startswith("cpu"):  # torch's threads, fewer while other processes hold the cores
        import torch

        from tdn.network.runtime import ThreadPolicy, set_thread_policy, usable_cores

        cores = usable_cores()
        threads = min(cores, torch.get_num_threads())
        set_thread_policy(
            model, ThreadPolicy(threads, cores, f"{threads} threads, fewer while others hold cores")
        )
    return model, info


def checkpoint_warnings(info: CheckpointInfo) -> list[str]:
    """Print the checkpoint's warnings (segments other than trained with, the Dec-2020 L-TDM marker...)."""
    return warn(info.path, info.warnings)


def check_target(target: int | None, info: CheckpointInfo, flag: str = "--target") -> None:
    k = info.config.num_classes
    if target is not None and not 0 <= target < k:
        raise UsageError(f"{flag} {target} is not a class of {info.name}, which has classes 0..{k - 1}")


def list_videos(path: str) -> list[Path]:
    """One file, the videos of a folder (by :data:`tdn.filetypes.VIDEO_SUFFIXES`, sorted), or a folder of
    extracted frames holding no videos (one clip: :mod:`tdn.video.frames`)."""
    p = Path(path)
    if p.is_dir():
        videos = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in VIDEO_SUFFIXES)
        if not videos:
            from tdn.video.frames import is_frame_folder

            if is_frame_folder(p):
                return [p]
        return videos
    if not p.exists():
        raise UsageError(f"{path}: no such file or folder")
    return [p]


def output_names(videos: Sequence[Path]) -> list[str]:
    """One output folder name per video, all different: the stem, or stem_suffix where stems collide
    (``clip.mkv`` and ``clip.mp4`` give ``clip_mkv`` and ``clip_mp4``); compared case-blind, since a
    case-insensitive file system would merge ``Clip`` and ``clip``."""
    from collections import Counter

    stems = Counter(v.stem.lower() for v in videos)
    used: set[str] = set()
    names = []
    for video in videos:
        name = video.stem if stems[video.stem.lower()] == 1 else f"{video.stem}_{video.suffix[1:].lower()}"
        base, n = name, 2
        while name.lower() in used:
            name, n = f"{base}-{n}", n + 1
        used.add(name.lower())
        names.append(name)
    return names


def open_inputs(args: argparse.Namespace) -> tuple[list[Path], TDN, CheckpointInfo]:
    """(videos, model, info) for a command's VIDEO_OR_DIR and model arguments; a :class:`UsageError`
    when there is nothing to run on."""
    mark("model")  # listing may import the video package, and with it torch
    videos = list_videos(args.video)
    if not videos:
        suffixes = " ".join(sorted(VIDEO_SUFFIXES))
        raise UsageError(f"{args.video}: no videos in this folder (file names ending in {suffixes})")
    model, info = load_model(args)
    return videos, model, info


def load_clip_for(path: Path, info: CheckpointInfo, args: argparse.Namespace, **options: object) -> Clip:
    """``load_clip`` with the checkpoint's spec and the command's ``--decode-timeout``."""
    from tdn.video.clip import load_clip

    mark("work")
    return load_clip(path, spec=info.spec, timeout_s=args.decode_timeout, **options)


def predict_views(
    model: TDN, clip: Clip, class_names: list[str], bar: object | None = None, batch_size: int = 4
) -> Prediction:
    """:func:`tdn.inference.predict` of ``clip``; with a tqdm ``bar``, view batch by view batch (the
    batches ``predict`` makes, so the same probabilities), advancing the bar by the views done."""
    import time

    import torch

    from tdn.inference import Prediction, predict
    from tdn.util import ms_since

    if bar is None:
        return predict(model, clip, class_names)
    start = time.perf_counter()
    views = clip.inputs or [clip.view_input(v) for v in range(clip.num_views)]
    chunks = []
    for first in range(0, len(views), batch_size):
        chunk = views[first : first + batch_size]
        chunks.append(predict(model, chunk, class_names).view_logits)
        bar.update(len(chunk))  # type: ignore[attr-defined]
    logits = torch.cat(chunks)
    return Prediction(logits.softmax(-1).mean(0), logits, class_names, {"forward": ms_since(start)})

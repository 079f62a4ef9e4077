"""Folders of extracted frames as clips: the way Something-Something is distributed and the official code reads it.

A *frame folder* holds one image per decoded frame, numbered from 1 without gaps: ``00001.jpg`` (SSv1),
``000001.jpg`` (SSv2 as the official scripts extract it), ``img_00001.jpg`` (the TSN/MMAction convention), or
whatever a user template such as ``"frame_{:04d}.png"`` names. :func:`load_frame_folder` turns one into the same
:class:`tdn.video.clip.Clip` that :func:`tdn.video.load_clip` makes of a video:

* **Sampling** is :func:`tdn.video.sampling.test_indices` over n frames, n = the number of frames found (or the
  ``num_frames`` a list file gives, as the official loader uses the list's count). 0-based index i is file number
  i + 1, exactly the official code's 1-based p ↔ ``image_tmpl.format(p)`` (docs/architecture.md §2.2).
* **Pixels**: each frame is read with PIL and ``convert("RGB")`` (as the official ``_load_image`` does), then
  resized and cropped by :mod:`tdn.video.preprocess` (docs/architecture.md §2.3), so a frame folder and a
  losslessly encoded video of the same frames give the same model input, bit for bit.
* **Errors** are :class:`ClipError` with a kind of ``CLIP_ERROR_KINDS`` and a message naming the file: a missing
  folder is ``not_found``; a folder without frames ``no_frames``; a gap in the numbering, numbering from 0, an
  image that cannot be read or a frame whose size differs from the first sampled one ``corrupt``; frames over the
  pixel cap ``too_large``. Only the sampled frames are opened (the rest are listed, not read), as for videos.
* A folder has no frame rate: ``Clip.fps`` is 0.0 ("unknown") and ``duration_s`` 0.0 unless ``fps`` is given
  (Something-Something V1 was extracted at 12 fps). ``container`` is ``"frame folder"``, ``codec`` the image
  format (``"jpeg"``, ``"png"``).
"""

from __future__ import annotations

import os
import re
import string
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from tdn.contract import CENTRE_FRAME, FRAMES_PER_SNIPPET, SCALE_SIZE, ClipSpec
from tdn.util import ms_since
from tdn.video import preprocess, sampling
from tdn.video.clip import DEFAULT_MAX_PIXELS, Clip
from tdn.video.decode import ClipError

__all__ = ["FRAME_TEMPLATES", "FrameFolder", "find_frames", "is_frame_folder", "load_frame_folder"]

FRAME_TEMPLATES: tuple[str, ...] = ("{:05d}.jpg", "{:06d}.jpg", "img_{:05d}.jpg")
"""The templates tried in this order when none is given: SSv1, SSv2 (official extraction), TSN/MMAction."""
CONTAINER = "frame folder"
_CODECS = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png", ".bmp": "bmp", ".webp": "webp"}
MAX_LISTED_FILES = 200_000  # a folder with more entries is not a clip
READ_THREADS = max(1, min(4, os.cpu_count() or 1))  # PIL decodes and resizes without the GIL


@dataclass(frozen=True)
class FrameFolder:
    """The frames of one folder: the template they follow and their files in frame order (file i+1 at i)."""

    folder: Path
    template: str
    files: list[Path]

    @property
    def num_frames(self) -> int:
        return len(self.files)


def _template_regex(template: str) -> tuple[re.Pattern[str], str]:
    """A regex with one number group for ``template`` (one ``{}``/``{:0Nd}`` field), and the field's spec."""
    if "%" in template and "{" not in template:  # printf style, e.g. img_%05d.jpg
        template = re.sub(r"%0?(\d*)d", lambda m: "{:0" + m.group(1) + "d}" if m.group(1) else "{}", template)
    fields = [(text, name, spec) for text, name, spec, _ in string.Formatter().parse(template)]
    numbered = [f for f in fields if f[1] is not None]
    if len(numbered) != 1 or numbered[0][1] not in ("", "0"):
        raise ValueError(
            f"a frame template needs exactly one number field such as {{:05d}}, got {template!r}"
        )
    pattern = ""
    for text, name, _spec in fields:
        pattern += re.escape(text)
        if name is not None:
            pattern += r"(\d+)"
    return re.compile(f"^{pattern}$"), template


def _numbers(names: list[str], template: str) -> tuple[dict[int, str], str]:
    """File number → name for the names that ``template`` writes exactly (zero padding included)."""
    regex, template = _template_regex(template)
    found: dict[int, str] = {}
    for name in names:
        match = regex.match(name)
        if match and template.format(int(match.group(1))) == name:
            found[int(match.group(1))] = name
    return found, template


def _listing(folder: Path) -> list[str]:
    names: list[str] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            names.append(entry.name)
            if len(names) > MAX_LISTED_FILES:
                raise ClipError(
                    "too_large", f"{folder} holds more than {MAX_LISTED_FILES:,} entries; it is not one clip."
                )
    return names


def find_frames(folder: str | Path, template: str | None = None) -> FrameFolder:
    """The frames of ``folder`` in order, checked for gaps; ``template`` None tries :data:`FRAME_TEMPLATES`.

    Raises ClipError: ``not_found`` (no such folder), ``not_video`` (a file, not a folder), ``no_frames`` (no file
    follows the template), ``corrupt`` (a gap in the numbering, or numbering from 0).
    """
    folder = Path(folder)
    if not folder.exists():
        raise ClipError("not_found", f"There is no folder at {folder}.")
    if not folder.is_dir():
        raise ClipError("not_video", f"{folder} is a file, not a folder of frames.")
    names = _listing(folder)
    candidates = [template] if template else list(FRAME_TEMPLATES)
    best: tuple[dict[int, str], str] = ({}, candidates[0])
    for candidate in candidates:
        try:
            found = _numbers(names, candidate)
        except ValueError as error:
            raise ClipError("not_video", str(error)) from None
        if len(found[0]) > len(best[0]):
            best = found
    numbers, used = best
    if not numbers:
        tried = ", ".join(repr(c) for c in candidates)
        raise ClipError("no_frames", f"{folder} holds no frames named like {tried}.")
    n = len(numbers)
    expected = set(range(1, n + 1))
    if set(numbers) != expected:
        if 0 in numbers and set(numbers) == set(range(n)):
            raise ClipError(
                "corrupt",
                f"{folder} numbers its frames from 0 ({used.format(0)}); the official loaders read frames 1…n "
                f"({used.format(1)} first). Renumber them from 1.",
            )
        gap = min(expected - set(numbers))
        raise ClipError(
            "corrupt",
            f"{folder} lacks frame {used.format(gap)}: {n} frames follow {used!r} but their numbers have gaps "
            f"(highest {used.format(max(numbers))}).",
        )
    return FrameFolder(folder, used, [folder / numbers[i] for i in range(1, n + 1)])


def is_frame_folder(path: str | Path, template: str | None = None) -> bool:
    """Whether ``path`` is a folder holding frame 1 of a known (or the given) template; never raises."""
    path = Path(path)
    try:
        if not path.is_dir():
            return False
        for candidate in [template] if template else FRAME_TEMPLATES:
            _, normalised = _template_regex(candidate)
            if (path / normalised.format(1)).is_file():
                return True
    except (OSError, ValueError):
        return False
    return False


def _read(path: Path, max_pixels: int) -> np.ndarray:
    """One frame as (H, W, 3) uint8 RGB, read as the official loader reads it (PIL, ``convert("RGB")``)."""
    name = f"{path.parent.name}/{path.name}"
    try:
        with Image.open(path) as image:
            if image.width * image.height > max_pixels:
                raise ClipError(
                    "too_large",
                    f"{name} is {image.width}x{image.height} pixels; the limit is {max_pixels:,} per frame.",
                )
            return np.asarray(image.convert("RGB"))
    except ClipError:
        raise
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as error:
        raise ClipError("corrupt", f"{name} cannot be read as an image ({error}).") from None


def load_frame_folder(
    folder: str | Path,
    spec: ClipSpec | None = None,
    crops: int = 1,
    clips: int = 1,
    template: str | None = None,
    *,
    num_frames: int | None = None,
    fps: float = 0.0,
    display_size: int = SCALE_SIZE,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    build_inputs: bool = True,
    source_name: str | None = None,
) -> Clip:
    """A folder of extracted frames as ``clips * crops`` TDN views, like :func:`tdn.video.load_clip` on a video.

    ``spec``: the checkpoint's :class:`ClipSpec` (``info.spec``; default: the official 8 segments, 256 → 224).
    ``template``: how frame p is named (``"{:05d}.jpg"``; printf ``"%05d.jpg"`` works too); None detects one of
    :data:`FRAME_TEMPLATES`. ``num_frames``: the count to sample over (an official list's second column; at most
    the frames found); None: every frame found. ``display_size``: short side of ``Clip.display_frames``
    (default 256, as for videos).
    """
    start = time.perf_counter()
    spec = spec or ClipSpec()
    if crops not in (1, 3):
        raise ValueError(f"crops must be 1 or 3, got {crops}")
    if spec.num_segments < 1 or clips < 1:
        raise ValueError("num_segments and clips must be at least 1")
    if crops == 1 and spec.input_size > spec.scale_size:
        raise ValueError(f"crop size {spec.input_size} exceeds scale size {spec.scale_size}")
    frames = find_frames(folder, template)
    name = source_name or frames.folder.name
    timings = {"list": ms_since(start)}
    n = frames.num_frames
    if num_frames is not None:
        if num_frames < 1:
            raise ValueError(f"num_frames must be at least 1, got {num_frames}")
        if num_frames > n:
            raise ClipError(
                "corrupt",
                f"{name} should hold {num_frames} frames but has {n}: "
                f"{frames.template.format(n + 1)} is missing.",
            )
        n = num_frames
    indices = np.stack([sampling.test_indices(n, spec.num_segments, c, clips) for c in range(clips)])
    wanted = np.unique(indices).tolist()
    centre = set(indices[:, :, CENTRE_FRAME].ravel().tolist())

    step = time.perf_counter()
    first = _read(frames.files[wanted[0]], max_pixels)
    height, width = first.shape[:2]
    scaled = preprocess.scaled_size(width, height, spec.scale_size)
    size = spec.input_size if crops == 1 else spec.scale_size
    if crops == 1:
        boxes = [preprocess.center_crop_box(*scaled, size)]
    else:
        boxes = preprocess.three_crop_boxes(*scaled, spec.scale_size)

    def prepare(index: int) -> tuple[int, np.ndarray, np.ndarray | None]:
        frame = first if index == wanted[0] else _read(frames.files[index], max_pixels)
        if frame.shape[:2] != (height, width):
            raise ClipError(
                "corrupt",
                f"{name}/{frames.files[index].name} is {frame.shape[1]}x{frame.shape[0]} pixels but "
                f"{frames.files[wanted[0]].name} is {width}x{height}; all frames of a clip must have one size.",
            )
        whole = preprocess.resize_frame(frame, spec.scale_size)
        display = None
        if index in centre:
            display = (
                whole if display_size == spec.scale_size else preprocess.resize_frame(frame, display_size)
            )
        return index, whole, display

    threads = max(1, min(READ_THREADS, len(wanted)))
    with ThreadPoolExecutor(threads, thread_name_prefix="tdn-frames") as pool:
        prepared = list(pool.map(prepare, wanted))
    scaled_frames = {i: whole for i, whole, _ in prepared}
    displays = {i: d for i, _, d in prepared if d is not None}
    timings["decode_and_resize"] = ms_since(step)

    step = time.perf_counter()
    views = clips * len(boxes)
    model_frames = np.empty((views, spec.num_segments, FRAMES_PER_SNIPPET, size, size, 3), np.uint8)
    for clip_index in range(clips):
        for crop_index, box in enumerate(boxes):
            view = model_frames[clip_index * len(boxes) + crop_index]
            for (t, f), index in np.ndenumerate(indices[clip_index]):
                view[t, f] = preprocess.crop(scaled_frames[int(index)], box)
    display_frames = np.stack(
        [np.stack([displays[int(i)] for i in row]) for row in indices[:, :, CENTRE_FRAME]]
    )
    timings["assemble"] = ms_since(step)
    step = time.perf_counter()
    inputs = [preprocess.to_model_input(v, spec.mean, spec.std) for v in model_frames] if build_inputs else []
    timings["tensor"] = ms_since(step)
    timings["total"] = ms_since(start)
    warnings = []
    if num_frames is not None and num_frames < frames.num_frames:
        warnings.append(
            f"{name} holds {frames.num_frames} frames; sampled over the first {num_frames} as its list says."
        )
    return Clip(
        inputs=inputs,
        frame_indices=np.repeat(indices, len(boxes), axis=0),
        model_frames=model_frames,
        display_frames=display_frames,
        crop_boxes=boxes,
        scaled_size=scaled,
        fps=float(fps),
        duration_s=n / fps if fps > 0 else 0.0,
        num_frames=n,
        width=width,
        height=height,
        codec=_CODECS.get(Path(frames.template).suffix.lower(), Path(frames.template).suffix.lstrip(".")),
        container=CONTAINER,
        rotation=0,
        num_segments=spec.num_segments,
        crops=crops,
        clips=clips,
        size=size,
        scale_size=spec.scale_size,
        exact=True,
        source_name=name,
        mean=spec.mean,
        std=spec.std,
        timings_ms=timings,
        warnings=warnings,
    )

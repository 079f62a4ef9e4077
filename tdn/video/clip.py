"""Video file to model input: decode only the sampled frames, preprocess them as the official test does.

``load_clip(source)`` is the whole story: it checks the file, samples frame indices with
:mod:`tdn.video.sampling`, decodes exactly those frames (:mod:`tdn.video.decode`), resizes and crops them as
:mod:`tdn.video.preprocess` specifies, and returns a :class:`Clip` holding the network inputs together with the
indices and the pixels they came from. Anything that cannot become model input raises
:class:`ClipError`, whose ``kind`` says why and whose message says it in words.

Where the parts live: this module checks the source (its type by content, via :mod:`tdn.filetypes`; its
size and duration against the caps), samples and assembles the views; :mod:`tdn.video.decode` probes files,
reads frames and resizes them; :mod:`tdn.video.isolation` runs the decoding in a crash-proof child process.

Decisions a reader should know:

* **Exact by default.** The official protocol resizes each full-resolution decoded frame with PIL
  bilinear; here too (``exact=True``), so the model sees the same pixels as in the official evaluation.
  Only the part of a frame that the crops keep is resized where PIL provably gives the same pixels there
  (:func:`tdn.video.decode.plan_region`); the segments' centre frames, shown to the user, are resized whole.
  ``exact=False`` has swscale scale each decoded frame while converting it to RGB: less memory and CPU,
  no PIL pass, but pixels differ from PIL's by a few grey levels on average (more on sharp edges;
  figures in the README). ``exact=None`` (the default) is exact up to 1080p (``EXACT_AUTO_MAX_PIXELS``) and reduced above,
  where frames are "much larger than needed".
* **Isolation.** With ``isolate=True`` (the default for bytes and file-like sources, i.e. uploads) the
  probe and decode run in a child process under a hard time-out (:mod:`tdn.video.isolation`); only the small
  uint8 crops travel back. Without isolation ``timeout_s`` is checked between packets sent to the decoder.
  The limit defaults to ``$TDN_LENS_DECODE_TIMEOUT_S`` (else 60 s); the time-out message names it.
* **Frames are the displayed frames**, the ones ``ffprobe -count_frames`` counts and ``ffmpeg`` shows: an
  MP4 edit list's hidden pre-roll is not counted, frames FFmpeg cannot decode are left out (with a
  warning; a damaged file is sampled again on what remains), and the stream read is the one ``ffmpeg``
  picks (never cover art; ``Clip.stream_index`` says which). See :mod:`tdn.video.reader`.
* Grey sources come out as 3 equal channels; any frame size works; rotation from the display matrix is
  applied; sampling is by frame index, so variable frame rate is handled the way the official code
  handles it. Pixel aspect ratio is ignored, as decord (and so the official Kinetics pipeline) ignores it.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from tdn import filetypes
from tdn.contract import CENTRE_FRAME, FRAMES_PER_SNIPPET, IMAGENET_MEAN, IMAGENET_STD, ClipSpec
from tdn.video import decode, isolation, preprocess, sampling
from tdn.video.decode import CLIP_ERROR_KINDS, ClipError
from tdn.video.preprocess import CROP_SIZE, SCALE_SIZE, Box
from tdn.video.reader import PyAVReader

__all__ = ["CLIP_ERROR_KINDS", "Clip", "ClipError", "load_clip", "warm_up_isolation"]

DEFAULT_MAX_PIXELS = 4096 * 4096  # DCI 4K and UHD pass; 8K (7680x4320) is refused
DEFAULT_MAX_DURATION_S = 3 * 3600.0
DEFAULT_TIMEOUT_S = 60.0
EXACT_AUTO_MAX_PIXELS = 1920 * 1088  # exact=None: PIL resize up to 1080p, reduced decode above
MAX_SAMPLINGS = 4  # samplings of a damaged file, each after the decoder rejected frames the last one chose


@dataclass
class Clip:
    """A video turned into TDN inputs, with everything needed to show what the model saw.

    V = clips * crops views, ordered clip-major (view = clip * crops + crop); T = num_segments;
    S = ``size`` (224 for one centre crop, ``scale_size`` for three crops).
    """

    inputs: list[torch.Tensor]  # V tensors (1, T*15, S, S) float32; empty if build_inputs=False
    frame_indices: np.ndarray  # (V, T, 5) int64, 0-based decoded-frame indices
    model_frames: np.ndarray  # (V, T, 5, S, S, 3) uint8: the exact pixels behind ``inputs``
    display_frames: np.ndarray  # (clips, T, Hd, Wd, 3) uint8: each segment's centre frame, uncropped,
    #                             short side ``display_size``
    crop_boxes: list[Box]  # per crop, (x0, y0, x1, y1) in the scaled frame (short side scale_size)
    scaled_size: tuple[int, int]  # (width, height) of the frame after the short-side resize
    fps: float
    duration_s: float
    num_frames: int
    width: int  # source frame size as displayed (after rotation)
    height: int
    codec: str
    container: str
    rotation: int  # degrees counter-clockwise applied from the file's display matrix
    num_segments: int
    crops: int
    clips: int
    size: int
    scale_size: int
    exact: bool  # True: official PIL resize of full-resolution frames; False: reduced-size decode
    source_name: str
    stream_index: int = 0  # the container's index of the video stream read (cover art is never read)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    timings_ms: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def num_views(self) -> int:
        return self.clips * self.crops

    @property
    def centre_indices(self) -> np.ndarray:
        """(T,) frame index of each segment's centre frame in view 0."""
        return self.frame_indices[0, :, CENTRE_FRAME]

    def view_input(self, view: int) -> torch.Tensor:
        """The (1, T*15, S, S) input of one view, built from ``model_frames`` on demand."""
        return preprocess.to_model_input(self.model_frames[view], self.mean, self.std)


# ----------------------------------------------------------------------------------------- public entry


def load_clip(
    source: str | Path | bytes | BinaryIO,
    num_segments: int = 8,
    crops: int = 1,
    clips: int = 1,
    size: int = CROP_SIZE,
    scale_size: int = SCALE_SIZE,
    *,
    exact: bool | None = None,
    isolate: bool | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_duration_s: float = DEFAULT_MAX_DURATION_S,
    timeout_s: float | None = None,
    display_size: int = SCALE_SIZE,
    source_name: str | None = None,
    build_inputs: bool = True,
    spec: ClipSpec | None = None,
) -> Clip:
    """Decode, sample and preprocess a video into ``clips * crops`` TDN views.

    ``source``: a path (a video, or a folder of extracted frames: :mod:`tdn.video.frames`), the file's bytes, or a binary file object (bytes and file objects are copied
    to a private temporary file that is always removed). ``crops=1``: resize the short side to
    ``scale_size`` and centre-crop ``size``; ``crops=3``: three full-resolution ``scale_size`` crops
    (the model input is then ``scale_size`` square). ``clips``: deterministic clip placement (see
    :func:`tdn.video.sampling.test_indices`). ``exact``: see the module docstring. ``isolate``: decode in a
    crash-proof child process; None means yes for bytes/file objects, no for paths.
    ``build_inputs=False`` leaves ``Clip.inputs`` empty (use ``Clip.view_input``) to save memory when
    there are many views. ``spec`` (a checkpoint's :class:`tdn.contract.ClipSpec`, e.g. ``info.spec``)
    replaces ``num_segments``, ``size``, ``scale_size`` and the normalisation with what that model expects.
    ``timeout_s``: the longest the decoding may take; None means ``$TDN_LENS_DECODE_TIMEOUT_S`` when set
    (how the app's limit is raised), else ``DEFAULT_TIMEOUT_S``.
    """
    start = time.perf_counter()
    timeout_s = default_timeout_s() if timeout_s is None else timeout_s
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s}")
    spec = spec or ClipSpec(num_segments, size, scale_size)
    if isinstance(source, (str, Path)) and _frame_folder(Path(source)):
        # A folder of extracted frames (Something-Something style) is a clip too.
        from tdn.video.frames import load_frame_folder

        return load_frame_folder(
            source, spec, crops, clips, max_pixels=max_pixels, display_size=display_size,
            build_inputs=build_inputs, source_name=source_name,
        )  # fmt: skip
    num_segments, size, scale_size = spec.num_segments, spec.input_size, spec.scale_size
    if crops not in (1, 3):
        raise ValueError(f"crops must be 1 or 3, got {crops}")
    if num_segments < 1 or clips < 1:
        raise ValueError("num_segments and clips must be at least 1")
    if crops == 1 and size > scale_size:
        raise ValueError(f"crop size {size} exceeds scale size {scale_size}")
    untrusted = not isinstance(source, (str, Path))
    isolate = untrusted if isolate is None else isolate
    warnings: list[str] = []
    if isolate and not isolation.available():
        warnings.append("process isolation is not available on this platform; decoded in-process")
        isolate = False
    with materialize(source, source_name) as (path, name, head):
        job = _Job(
            path=path,
            name=name,
            num_segments=num_segments,
            crops=crops,
            clips=clips,
            size=size if crops == 1 else scale_size,
            scale_size=scale_size,
            exact=exact,
            max_pixels=max_pixels,
            max_duration_s=max_duration_s,
            display_size=display_size,
            container_hint=_check_file_type(head, name),
            deadline_s=timeout_s,
        )
        decoded = _run_isolated(job, timeout_s) if isolate else _run_job(job)
    if isinstance(decoded, ClipError):
        raise decoded
    timings = dict(decoded.timings_ms)
    if isolate:
        timings["isolation"] = decode.ms_since(start) - timings.get("worker_total", 0.0)
    tensor_start = time.perf_counter()
    inputs = (
        [preprocess.to_model_input(v, spec.mean, spec.std) for v in decoded.model_frames]
        if build_inputs
        else []
    )
    timings["tensor"] = decode.ms_since(tensor_start)
    timings["total"] = decode.ms_since(start)
    return Clip(
        inputs=inputs,
        frame_indices=decoded.frame_indices,
        model_frames=decoded.model_frames,
        display_frames=decoded.display_frames,
        crop_boxes=decoded.crop_boxes,
        scaled_size=decoded.scaled_size,
        fps=decoded.fps,
        duration_s=decoded.duration_s,
        num_frames=decoded.num_frames,
        width=decoded.width,
        height=decoded.height,
        codec=decoded.codec,
        container=decoded.container,
        rotation=decoded.rotation,
        num_segments=num_segments,
        crops=crops,
        clips=clips,
        size=job.size,
        scale_size=scale_size,
        exact=decoded.exact,
        source_name=name,
        stream_index=decoded.stream_index,
        mean=spec.mean,
        std=spec.std,
        timings_ms=timings,
        warnings=warnings + decoded.warnings,
    )


def default_timeout_s() -> float:
    """The decode time limit when none is given: ``$TDN_LENS_DECODE_TIMEOUT_S`` or ``DEFAULT_TIMEOUT_S``."""
    value = os.environ.get(decode.TIMEOUT_ENV, "").strip()
    if not value:
        return DEFAULT_TIMEOUT_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0:
        raise ValueError(f"{decode.TIMEOUT_ENV}={value!r}: expected a positive number of seconds")
    return seconds


def _frame_folder(path: Path) -> bool:
    """A folder to read as extracted frames: one that holds them, or any folder not named like a video (a
    folder named ``x.mp4`` without frames is reported as not a video, as a file would be)."""
    if not path.is_dir():
        return False
    from tdn.video.frames import is_frame_folder

    return is_frame_folder(path) or path.suffix.lower() not in filetypes.VIDEO_SUFFIXES


def warm_up_isolation() -> None:
    """Start the decode server now (it imports torch and PyAV) so the first upload is fast."""
    if isolation.available():
        _DECODE_SERVER.start()


# ------------------------------------------------------------------------------- source and file type


@contextmanager
def materialize(source: str | Path | bytes | BinaryIO, name: str | None) -> Iterator[tuple[str, str, bytes]]:
    """Yield (path on disk, display name, first bytes); bytes and file objects go to a temp file."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            if path.is_symlink():
                raise ClipError("not_found", f"{path} is a symbolic link that leads to no file.")
            raise ClipError("not_found", f"There is no file at {path}.")
        if not path.is_file():
            raise ClipError("not_video", f"{path} is a folder or a device, not a video file.")
        with path.open("rb") as handle:
            head = handle.read(filetypes.HEAD_BYTES)
        yield str(path), name or path.name, head
        return
    name = name or Path(str(getattr(source, "name", "") or "upload")).name
    suffix = Path(name).suffix if Path(name).suffix[1:].isalnum() else ""  # a hint for FFmpeg only
    fd, temp_path = tempfile.mkstemp(prefix="tdn-clip-", suffix=suffix[:8])
    try:
        with os.fdopen(fd, "wb") as out:
            if isinstance(source, (bytes, bytearray, memoryview)):
                out.write(source)
            else:
                shutil.copyfileobj(source, out, 1 << 20)
        with open(temp_path, "rb") as handle:
            head = handle.read(filetypes.HEAD_BYTES)
        yield temp_path, name, head
    finally:
        os.unlink(temp_path)


def _check_file_type(head: bytes, name: str) -> str | None:
    """The container the first bytes name (None: unknown, FFmpeg will try); refuse what is not video."""
    found = filetypes.sniff(head)
    if found.kind == "video":
        return found.container
    if found.kind == "unknown":
        return None
    if found.kind == "empty":
        raise ClipError("empty", f"{name} is empty (0 bytes).")
    if found.kind == "audio":
        raise ClipError(
            "audio_only", f"{name} is {found.description}, not a video; it has no video to classify."
        )
    if found.kind == "text":
        raise ClipError("not_video", f"{name} contains text, not video.")
    raise ClipError("not_video", f"{name} is {found.description}, not a video.")


# ------------------------------------------------------------------------------------ decoding a clip


@dataclass(frozen=True)
class _Job:
    """Everything the decoder needs; picklable, so it can cross to the isolated child."""

    path: str
    name: str  # what error messages call the file (not the temporary copy's name)
    num_segments: int
    crops: int
    clips: int
    size: int
    scale_size: int
    exact: bool | None
    max_pixels: int
    max_duration_s: float
    display_size: int
    container_hint: str | None
    deadline_s: float
    fault: str | None = None  # tests only: "crash" or "hang" simulates a hostile file in the child


@dataclass
class _Decoded:
    """What decoding produces: numpy arrays and metadata only (cheap to pickle)."""

    frame_indices: np.ndarray
    model_frames: np.ndarray
    display_frames: np.ndarray
    crop_boxes: list[Box]
    scaled_size: tuple[int, int]
    fps: float
    duration_s: float
    num_frames: int
    width: int
    height: int
    codec: str
    container: str
    rotation: int
    exact: bool
    warnings: list[str]
    timings_ms: dict[str, float]
    stream_index: int


_DECODE_SERVER = isolation.Server(preload=("tdn.video", "av"))


def run_isolated(fn, job, timeout_s: float, name: str):  # noqa: ANN001, ANN201 (any picklable job)
    """``fn(job)`` in a crash-proof child of the decode server; a crash or hang becomes a ClipError value."""
    try:
        return _DECODE_SERVER.call(fn, job, timeout_s)
    except isolation.ChildTimedOut:
        return ClipError("timeout", decode.timeout_message(name, timeout_s))
    except isolation.ChildCrashed:
        return ClipError(
            "corrupt", f"The video decoder crashed on {name}; it is probably damaged or not a real video."
        )
    except isolation.ServerUnavailable:
        return ClipError("timeout", "The isolated decoding process could not be started; try again.")


def _run_isolated(job: _Job, timeout_s: float) -> _Decoded | ClipError:
    """``_run_job`` in a crash-proof child."""
    return run_isolated(_run_job, job, timeout_s, job.name)


def _run_job(job: _Job) -> _Decoded | ClipError:
    """Decode one job; every failure comes back as a ClipError value (so it can be pickled across)."""
    if job.fault == "crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    if job.fault == "hang":
        time.sleep(3600)
    try:
        return _decode(job)
    except ClipError as error:
        return error
    except Exception as error:
        return ClipError("corrupt", _failure_message(job.name, error))


def _failure_message(name: str, error: Exception) -> str:
    """What an unexpected decoding failure says: in words first, FFmpeg's own words after."""
    import av

    if isinstance(error, av.error.InvalidDataError):
        return f"{name} is damaged: FFmpeg found invalid data in it and could not decode it."
    if isinstance(error, av.error.FFmpegError):
        reason = getattr(error, "strerror", None) or str(error)
        return f"{name} could not be decoded: FFmpeg reports {reason!r}. The file may be damaged."
    return f"{name} could not be decoded ({type(error).__name__}: {error})."


def _decode(job: _Job) -> _Decoded:
    start = time.perf_counter()
    timings: dict[str, float] = {}
    warnings: list[str] = []
    probe = decode.probe(job.path, job.name, job.container_hint)
    timings["probe"] = decode.ms_since(start)
    if probe.width * probe.height > job.max_pixels:
        raise ClipError(
            "too_large",
            f"{job.name} is {probe.width}x{probe.height} pixels; the limit is {job.max_pixels:,} pixels "
            "per frame. Downscale it first.",
        )
    if probe.header_duration_s is not None and probe.header_duration_s > job.max_duration_s:
        raise ClipError("too_long", _too_long_message(job.name, probe.header_duration_s, job.max_duration_s))
    exact = job.exact if job.exact is not None else probe.width * probe.height <= EXACT_AUTO_MAX_PIXELS
    scaled = preprocess.scaled_size(probe.width, probe.height, job.scale_size)
    step = time.perf_counter()
    deadline = decode.Deadline(start + job.deadline_s, job.deadline_s, job.name)
    reader = PyAVReader(
        job.path, probe.rotation, job.name, None if exact else scaled, probe.stream_index, deadline
    )
    timings["open"] = decode.ms_since(step)
    frames = _read_frames(reader, job, probe, scaled, exact, deadline, timings)
    warnings.extend(reader.warnings)
    duration = reader.num_frames / reader.fps if reader.fps > 0 else (probe.header_duration_s or 0.0)
    if probe.header_duration_s and probe.header_duration_s - duration > max(1.0, 0.1 * duration):
        warnings.append(
            f"The file header promises {probe.header_duration_s:.1f} s but only {duration:.1f} s of "
            "frames could be read; the file may be truncated."
        )
    step = time.perf_counter()
    model_frames, display_frames = frames.assemble(job)
    timings["assemble"] = decode.ms_since(step)
    timings["worker_total"] = decode.ms_since(start)
    return _Decoded(
        frame_indices=np.repeat(frames.indices, len(frames.boxes), axis=0),
        model_frames=model_frames,
        display_frames=display_frames,
        crop_boxes=frames.boxes,
        scaled_size=scaled,
        fps=reader.fps,
        duration_s=float(duration),
        num_frames=reader.num_frames,
        width=probe.width,
        height=probe.height,
        codec=probe.codec,
        container=probe.container,
        rotation=probe.rotation,
        exact=exact,
        warnings=warnings,
        timings_ms=timings,
        stream_index=probe.stream_index,
    )


@dataclass
class _Frames:
    """The sampled indices and, per decoded frame, the resized pixels that the crops and display need."""

    indices: np.ndarray  # (clips, T, 5)
    boxes: list[Box]  # crop boxes in the scaled frame
    region: Box  # the part of the scaled frame kept for every frame (contains every box)
    kept: dict[int, np.ndarray]  # frame index -> scaled pixels inside ``region``
    display: dict[int, np.ndarray]  # centre frame index -> whole frame, short side display_size

    def assemble(self, job: _Job) -> tuple[np.ndarray, np.ndarray]:
        """(model_frames (V, T, 5, S, S, 3), display_frames (clips, T, Hd, Wd, 3)) for the job."""
        shape = (
            job.clips * len(self.boxes),
            job.num_segments,
            FRAMES_PER_SNIPPET,
            job.size,
            job.size,
            3,
        )
        model_frames = np.empty(shape, np.uint8)
        rx, ry = self.region[:2]
        for clip_index in range(job.clips):
            for crop_index, (x0, y0, x1, y1) in enumerate(self.boxes):
                view = model_frames[clip_index * len(self.boxes) + crop_index]
                inside = (x0 - rx, y0 - ry, x1 - rx, y1 - ry)
                for (t, f), index in np.ndenumerate(self.indices[clip_index]):
                    view[t, f] = preprocess.crop(self.kept[int(index)], inside)
        display = np.stack([np.stack([self.display[int(i)] for i in row]) for row in self.indices[:, :, 2]])
        return model_frames, display


def _read_frames(
    reader: decode.FrameReader,
    job: _Job,
    probe: decode.Probe,
    scaled: tuple[int, int],
    exact: bool,
    deadline: decode.Deadline,
    timings: dict[str, float],
) -> _Frames:
    """Sample indices (clips, T, 5), decode those frames and resize them to what the views need.

    Where the decoder rejects frames the index counted (a damaged file), the reader leaves them out and
    the sampling is done again on the frames that remain (``MAX_SAMPLINGS`` times at most)."""
    for attempt in range(MAX_SAMPLINGS):
        try:
            return _sample_and_read(reader, job, probe, scaled, exact, deadline, timings)
        except decode.FramesLost as lost:
            if attempt == MAX_SAMPLINGS - 1:
                raise ClipError(
                    "corrupt", f"{lost.message} Too much of it is damaged to sample it."
                ) from lost
    raise AssertionError("unreachable")


def _sample_and_read(
    reader: decode.FrameReader,
    job: _Job,
    probe: decode.Probe,
    scaled: tuple[int, int],
    exact: bool,
    deadline: decode.Deadline,
    timings: dict[str, float],
) -> _Frames:
    if reader.num_frames < 1:
        raise ClipError("no_frames", f"{job.name} has a video track but no frames in it.")
    if reader.fps > 0 and reader.num_frames / reader.fps > job.max_duration_s:
        raise ClipError(
            "too_long", _too_long_message(job.name, reader.num_frames / reader.fps, job.max_duration_s)
        )
    indices = np.stack(
        [sampling.test_indices(reader.num_frames, job.num_segments, c, job.clips) for c in range(job.clips)]
    )
    if job.crops == 1:
        boxes = [preprocess.center_crop_box(*scaled, job.size)]
    else:
        boxes = preprocess.three_crop_boxes(*scaled, job.scale_size)
    keep = (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )
    source = (probe.width, probe.height)
    plan = decode.plan_region(source, scaled, keep) if exact else None
    frames = _Frames(indices, boxes, plan.region if plan else (0, 0, *scaled), {}, {})
    centre = set(indices[:, :, 2].ravel().tolist())
    decoded_size = source if exact else scaled

    def shrink(index: int, frame: np.ndarray) -> None:
        if frame.shape[1::-1] != decoded_size:
            raise ClipError(
                "corrupt",
                f"{job.name} changes its frame size within the video ({decoded_size[0]}x{decoded_size[1]} "
                f"to {frame.shape[1]}x{frame.shape[0]}); such files are not supported.",
            )
        if plan is not None and index not in centre:
            frames.kept[index] = decode.resize_region(frame, plan)
            return
        whole = preprocess.resize_frame(frame, job.scale_size) if exact else frame
        frames.kept[index] = preprocess.crop(whole, frames.region)
        if index in centre:
            same = job.display_size == job.scale_size
            frames.display[index] = whole if same else preprocess.resize_frame(frame, job.display_size)

    frame_bytes = decoded_size[0] * decoded_size[1] * 3
    step = time.perf_counter()
    wanted = np.unique(indices).tolist()
    decode.decode_and_resize(reader, wanted, shrink, frame_bytes, deadline, timings)
    timings["decode_and_resize"] = decode.ms_since(step)
    return frames


def _too_long_message(name: str, duration: float, limit: float) -> str:
    return f"{name} lasts {_format_seconds(duration)}; the limit is {_format_seconds(limit)}. Trim it first."


def _format_seconds(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"

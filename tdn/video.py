"""Video file to model input: decode only the sampled frames, preprocess them as the official test does.

``load_clip(source)`` is the whole story: it checks the file, samples frame indices with
:mod:`tdn.sampling`, decodes exactly those frames with decord, resizes and crops them with
:mod:`tdn.preprocess`, and returns a :class:`Clip` holding the network inputs together with the
indices and the pixels they came from. Anything that cannot become model input raises
:class:`ClipError`, whose ``kind`` says why and whose message says it in words.

Decisions a reader should know:

* **Exact by default.** The official protocol resizes each full-resolution decoded frame with PIL.
  That is what happens here (``exact=True``), so the model sees the same pixels as in the official
  evaluation. ``exact=False`` asks decord to decode straight to the resized size (FFmpeg swscale):
  less memory and no PIL pass, but pixels differ from PIL (mean |diff| about 2 levels on a 720p
  test clip, some pixels by 30+); decoding itself costs the same. ``exact=None`` (the default) is
  exact up to 1080p (``EXACT_AUTO_MAX_PIXELS``) and uses the reduced decode above, where frames are
  "much larger than needed". Frames are decoded in small chunks while a thread resizes the previous
  chunk, so at most two chunks of full-resolution frames are alive (a 4K clip never holds 40).
* **Isolation.** decord/FFmpeg can crash or hang on hostile input. With ``isolate=True`` (the default
  for bytes and file-like sources, i.e. uploads) the probe and decode run in a child process forked
  from a long-lived server process ("zygote", started on first use or by :func:`warm_up_isolation`),
  under a hard time-out. Forking the caller itself is avoided (it may hold torch/OpenMP threads), and
  so is ``multiprocessing`` (its spawn and forkserver children re-import the caller's ``__main__``).
  Only the small uint8 crops travel back. Measured cost: 20-50 ms per call on a busy 2-core machine,
  mostly the fork of a process holding decord (whose import alone takes ~400 MB); the zygote's start
  takes 1-3 s once. Without isolation ``timeout_s`` is only checked between decode chunks.
* **Rotation.** Phone clips carry a display matrix. decord2 3.4.0 applies 180° itself but mis-sizes its
  output for 90°/270° ("size must exactly match"), so those clips are decoded with PyAV (RGB
  bit-identical to decord's on every clip tested) and turned with ``np.rot90``. PyAV also takes over
  when decord opens a file but fails to decode it (decord2 does so on some frame widths <= 144 px).
* Grey sources come out as 3 equal channels; any frame size works; sampling is by frame index, so
  variable frame rate is handled the way the official code handles it. Pixel aspect ratio is ignored,
  as decord (and so the official Kinetics pipeline) ignores it.
"""

from __future__ import annotations

import codecs
import os
import pickle
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from tdn import preprocess, sampling
from tdn.preprocess import CROP_SIZE, SCALE_SIZE, Box

DEFAULT_MAX_PIXELS = 4096 * 4096  # DCI 4K and UHD pass; 8K (7680x4320) is refused
DEFAULT_MAX_DURATION_S = 3 * 3600.0
DEFAULT_TIMEOUT_S = 60.0
EXACT_AUTO_MAX_PIXELS = 1920 * 1088  # exact=None: PIL resize up to 1080p, reduced decode above
CHUNK_BYTES = 256 * 2**20  # most full-resolution RGB bytes alive at once while decoding
DECODE_CHUNK_FRAMES = 5  # frames per decord call: small, so resizing overlaps decoding

CLIP_ERROR_KINDS = (
    "not_found",
    "empty",
    "not_video",
    "audio_only",
    "corrupt",
    "no_frames",
    "too_large",
    "too_long",
    "timeout",
)


class ClipError(Exception):
    """A source that cannot become model input. ``kind`` is one of ``CLIP_ERROR_KINDS``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return ClipError, (self.kind, self.message)


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
    timings_ms: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def num_views(self) -> int:
        return self.clips * self.crops

    @property
    def centre_indices(self) -> np.ndarray:
        """(T,) frame index of each segment's centre frame (f = 2) in view 0."""
        return self.frame_indices[0, :, 2]

    def view_input(self, view: int) -> torch.Tensor:
        """The (1, T*15, S, S) input of one view, built from ``model_frames`` on demand."""
        return preprocess.to_model_input(self.model_frames[view])


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
    timeout_s: float = DEFAULT_TIMEOUT_S,
    display_size: int = SCALE_SIZE,
    source_name: str | None = None,
    build_inputs: bool = True,
) -> Clip:
    """Decode, sample and preprocess a video into ``clips * crops`` TDN views.

    ``source``: a path, the file's bytes, or a binary file object (bytes and file objects are copied
    to a private temporary file that is always removed). ``crops=1``: resize the short side to
    ``scale_size`` and centre-crop ``size``; ``crops=3``: three full-resolution ``scale_size`` crops
    (the model input is then ``scale_size`` square). ``clips``: deterministic clip placement (see
    :func:`tdn.sampling.test_indices`). ``exact``: see the module docstring. ``isolate``: decode in a
    crash-proof child process; None means yes for bytes/file objects, no for paths.
    ``build_inputs=False`` leaves ``Clip.inputs`` empty (use ``Clip.view_input``) to save memory when
    there are many views.
    """
    start = time.perf_counter()
    if crops not in (1, 3):
        raise ValueError(f"crops must be 1 or 3, got {crops}")
    if num_segments < 1 or clips < 1:
        raise ValueError("num_segments and clips must be at least 1")
    if crops == 1 and size > scale_size:
        raise ValueError(f"crop size {size} exceeds scale size {scale_size}")
    untrusted = not isinstance(source, (str, Path))
    isolate = untrusted if isolate is None else isolate
    warnings: list[str] = []
    if isolate and not _can_isolate():
        warnings.append("process isolation is not available on this platform; decoded in-process")
        isolate = False
    with _materialize(source, source_name) as (path, name, head):
        kind_hint = _sniff(head, name)
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
            container_hint=kind_hint,
            deadline_s=timeout_s,
        )
        decoded = _server().run(job, timeout_s) if isolate else _run_job(job)
    if isinstance(decoded, ClipError):
        raise decoded
    timings = dict(decoded.timings_ms)
    if isolate:
        timings["isolation"] = (time.perf_counter() - start) * 1000 - timings.get("worker_total", 0.0)
    tensor_start = time.perf_counter()
    inputs = [preprocess.to_model_input(v) for v in decoded.model_frames] if build_inputs else []
    timings["tensor"] = (time.perf_counter() - tensor_start) * 1000
    timings["total"] = (time.perf_counter() - start) * 1000
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
        timings_ms=timings,
        warnings=warnings + decoded.warnings,
    )


# ------------------------------------------------------------------------------- source and file type


@contextmanager
def _materialize(source: str | Path | bytes | BinaryIO, name: str | None) -> Iterator[tuple[str, str, bytes]]:
    """Yield (path on disk, display name, first bytes); bytes and file objects go to a temp file."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise ClipError("not_found", f"There is no file at {path}.")
        if not path.is_file():
            raise ClipError("not_video", f"{path} is a folder or a device, not a video file.")
        with path.open("rb") as handle:
            head = handle.read(4096)
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
            head = handle.read(4096)
        yield temp_path, name, head
    finally:
        os.unlink(temp_path)


_VIDEO_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x1a\x45\xdf\xa3", "Matroska/WebM"),
    (4, b"ftyp", "MP4/QuickTime"),
    (4, b"moov", "QuickTime"),
    (4, b"mdat", "QuickTime"),
    (4, b"wide", "QuickTime"),
    (4, b"free", "QuickTime"),
    (4, b"skip", "QuickTime"),
    (0, b"GIF87a", "GIF"),
    (0, b"GIF89a", "GIF"),
    (0, b"FLV\x01", "FLV"),
    (0, b"OggS", "Ogg"),
    (0, b"\x00\x00\x01\xba", "MPEG program stream"),
    (0, b"\x00\x00\x01\xb3", "MPEG video"),
    (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "ASF/WMV"),
)
_OTHER_MAGIC: tuple[tuple[int, bytes, str, str], ...] = (
    (0, b"\x89PNG", "not_video", "a PNG image"),
    (0, b"\xff\xd8\xff", "not_video", "a JPEG image"),
    (0, b"BM", "not_video", "a BMP image"),
    (0, b"II*\x00", "not_video", "a TIFF image"),
    (0, b"MM\x00*", "not_video", "a TIFF image"),
    (0, b"%PDF", "not_video", "a PDF document"),
    (0, b"PK\x03\x04", "not_video", "a ZIP archive"),
    (0, b"\x1f\x8b", "not_video", "a gzip archive"),
    (0, b"ID3", "audio_only", "an MP3 audio file"),
    (0, b"fLaC", "audio_only", "a FLAC audio file"),
    (0, b"#!AMR", "audio_only", "an AMR audio file"),
)


def _sniff(head: bytes, name: str) -> str | None:
    """Container name from the first bytes; raise ClipError for files that are plainly not video."""
    if not head:
        raise ClipError("empty", f"{name} is empty (0 bytes).")
    if head[:4] == b"RIFF":
        kind = head[8:12]
        if kind == b"AVI ":
            return "AVI"
        if kind == b"WAVE":
            raise ClipError("audio_only", f"{name} is a WAV audio file; it has no video to classify.")
        if kind == b"WEBP":
            raise ClipError("not_video", f"{name} is a WebP image, not a video.")
    for offset, magic, container in _VIDEO_MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return container
    for offset, magic, kind, what in _OTHER_MAGIC:
        if head[offset : offset + len(magic)] == magic:
            extra = " It has no video to classify." if kind == "audio_only" else ""
            raise ClipError(kind, f"{name} is {what}, not a video.{extra}")
    if len(head) > 188 * 2 and head[0] == head[188] == head[376] == 0x47:
        return "MPEG transport stream"
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head)  # tolerates a character cut at the end
    except UnicodeDecodeError:
        return None
    if all(ch.isprintable() or ch in "\r\n\t" for ch in text):
        raise ClipError("not_video", f"{name} contains text, not video.")
    return None


# ------------------------------------------------------------------------------------------- decoding


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


@dataclass
class _Probe:
    width: int  # as displayed, i.e. after rotation
    height: int
    codec: str
    container: str
    rotation: int
    header_duration_s: float | None


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
    except Exception as error:  # noqa: BLE001 - any decoder failure means an unreadable file
        return ClipError("corrupt", f"The video could not be decoded ({type(error).__name__}: {error}).")


def _decode(job: _Job) -> _Decoded:
    start = time.perf_counter()
    timings: dict[str, float] = {}
    warnings: list[str] = []
    probe = _probe(job.path, job.name, job.container_hint)
    timings["probe"] = _ms_since(start)
    if probe.width * probe.height > job.max_pixels:
        raise ClipError(
            "too_large",
            f"The video is {probe.width}x{probe.height} pixels; the limit is {job.max_pixels:,} pixels "
            "per frame. Downscale it first.",
        )
    if probe.header_duration_s is not None and probe.header_duration_s > job.max_duration_s:
        raise ClipError("too_long", _too_long_message(probe.header_duration_s, job.max_duration_s))
    exact = job.exact if job.exact is not None else probe.width * probe.height <= EXACT_AUTO_MAX_PIXELS
    step = time.perf_counter()
    reader: _FrameReader
    if probe.rotation in (90, 270):
        reader, exact = _PyAVReader(job.path, probe.rotation), True
    else:
        scaled = preprocess.scaled_size(probe.width, probe.height, job.scale_size)
        reader = _DecordReader(job.path, job.name, None if exact else scaled)
    timings["open"] = _ms_since(step)
    try:
        sampled = _sample(reader, job, probe, exact, start + job.deadline_s, timings)
    except _DecordFailed:
        # decord2 fails on some inputs PyAV reads fine (e.g. frames 144 px wide or less); same pixels.
        reader, exact = _PyAVReader(job.path, probe.rotation), True
        sampled = _sample(reader, job, probe, exact, start + job.deadline_s, timings)
    indices, scaled_frames, display = sampled
    duration = reader.num_frames / reader.fps if reader.fps > 0 else (probe.header_duration_s or 0.0)
    if probe.header_duration_s and probe.header_duration_s - duration > max(1.0, 0.1 * duration):
        warnings.append(
            f"The file header promises {probe.header_duration_s:.1f} s but only {duration:.1f} s of "
            "frames could be read; the file may be truncated."
        )

    step = time.perf_counter()
    height, width = next(iter(scaled_frames.values())).shape[:2]
    if job.crops == 1:
        boxes = [preprocess.center_crop_box(width, height, job.size)]
    else:
        boxes = preprocess.three_crop_boxes(width, height, job.scale_size)
    shape = (job.clips * len(boxes), job.num_segments, sampling.SNIPPET_LENGTH, job.size, job.size, 3)
    model_frames = np.empty(shape, np.uint8)
    for clip_index in range(job.clips):
        for crop_index, box in enumerate(boxes):
            view = model_frames[clip_index * len(boxes) + crop_index]
            for (t, f), index in np.ndenumerate(indices[clip_index]):
                view[t, f] = preprocess.crop(scaled_frames[int(index)], box)
    display_frames = np.stack([np.stack([display[int(i)] for i in row]) for row in indices[:, :, 2]])
    timings["assemble"] = _ms_since(step)
    timings["worker_total"] = _ms_since(start)
    return _Decoded(
        frame_indices=np.repeat(indices, len(boxes), axis=0),
        model_frames=model_frames,
        display_frames=display_frames,
        crop_boxes=boxes,
        scaled_size=(width, height),
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
    )


def _sample(
    reader: _FrameReader, job: _Job, probe: _Probe, exact: bool, deadline: float, timings: dict[str, float]
) -> tuple[np.ndarray, dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Sample indices (clips, T, 5), decode them in bounded chunks, resize: (indices, scaled, display)."""
    if reader.num_frames < 1:
        raise ClipError("no_frames", f"{job.name} has a video track but no frames in it.")
    if reader.fps > 0 and reader.num_frames / reader.fps > job.max_duration_s:
        raise ClipError("too_long", _too_long_message(reader.num_frames / reader.fps, job.max_duration_s))
    indices = np.stack(
        [sampling.test_indices(reader.num_frames, job.num_segments, c, job.clips) for c in range(job.clips)]
    )
    wanted = np.unique(indices).tolist()
    centre = set(indices[:, :, 2].ravel().tolist())
    scaled: dict[int, np.ndarray] = {}
    display: dict[int, np.ndarray] = {}
    resize_ms: list[float] = []

    def shrink(index: int, frame: np.ndarray) -> None:
        step = time.perf_counter()
        scaled[index] = preprocess.resize_frame(frame, job.scale_size) if exact else frame
        if index in centre:
            same = job.display_size == job.scale_size
            display[index] = scaled[index] if same else preprocess.resize_frame(frame, job.display_size)
        resize_ms.append(_ms_since(step))

    # Decode chunk k while a thread resizes chunk k-1 (decord and PIL both release the GIL); at most two
    # chunks of full-resolution frames are alive at once.
    frame_bytes = probe.width * probe.height * 3
    per_chunk = max(1, min(DECODE_CHUNK_FRAMES, CHUNK_BYTES // 2 // frame_bytes))
    decode_ms = 0.0
    step_all = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending: list[Future[None]] = []
        for first in range(0, len(wanted), per_chunk):
            if time.perf_counter() > deadline:
                raise ClipError("timeout", f"Decoding took longer than {job.deadline_s:g} s.")
            chunk = wanted[first : first + per_chunk]
            step = time.perf_counter()
            batch = reader.get(chunk)
            decode_ms += _ms_since(step)
            for done in pending:
                done.result()
            pending = [pool.submit(shrink, i, frame) for i, frame in zip(chunk, batch, strict=True)]
            del batch
        for done in pending:
            done.result()
    timings["decode"], timings["resize"] = decode_ms, sum(resize_ms)
    timings["decode_and_resize"] = _ms_since(step_all)
    return indices, scaled, display


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def _too_long_message(duration: float, limit: float) -> str:
    return (
        f"The video lasts {_format_seconds(duration)}; the limit is {_format_seconds(limit)}. Trim it first."
    )


def _format_seconds(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _probe(path: str, name: str, container_hint: str | None) -> _Probe:
    """Read the header with PyAV and decode the first frame: streams, size, codec and rotation."""
    import av  # noqa: PLC0415 - only the decoding process needs PyAV

    unreadable = (
        f"{name} looks like {container_hint} but could not be read; it may be truncated or damaged."
        if container_hint
        else f"{name} is not in a video format we can read."
    )
    try:
        container = av.open(path, metadata_errors="ignore")
    except av.error.EOFError as error:  # a header and then nothing
        kind = "no_frames" if container_hint else "not_video"
        raise ClipError(kind, f"{name} ends before its first frame; it holds no video frames.") from error
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as error:
        raise ClipError("corrupt" if container_hint else "not_video", unreadable) from error
    with container:
        if not container.streams.video:
            if container.streams.audio:
                raise ClipError("audio_only", f"{name} holds only audio; there is no video to classify.")
            if not container.streams:
                raise ClipError("no_frames", f"{name} holds no frames (its tracks are empty).")
            raise ClipError("not_video", f"{name} holds no video stream.")
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        duration = None
        if container.duration is not None:
            duration = container.duration / 1_000_000
        elif stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        try:
            first = next(iter(container.decode(stream)), None)
        except av.error.FFmpegError as error:
            raise ClipError("corrupt", unreadable) from error
        if first is None:
            raise ClipError("no_frames", f"{name} has a video track but no frames could be decoded.")
        rotation = int(round((first.rotation or 0) / 90.0)) * 90 % 360
        width, height = first.width, first.height
        if rotation in (90, 270):
            width, height = height, width
        return _Probe(width, height, codec, container.format.name, rotation, duration)


class _DecordFailed(Exception):
    """decord could open the file but not decode it; PyAV gets a second try."""


class _FrameReader:
    """Random access to decoded RGB frames by index."""

    num_frames: int
    fps: float

    def get(self, indices: list[int]) -> np.ndarray:
        """(len(indices), H, W, 3) uint8 frames, in the order asked."""
        raise NotImplementedError


class _DecordReader(_FrameReader):
    """decord VideoReader; ``size=(w, h)`` makes FFmpeg scale while decoding (the reduced path)."""

    def __init__(self, path: str, name: str, size: tuple[int, int] | None) -> None:
        import decord  # noqa: PLC0415 - only the decoding process needs decord

        kwargs = {} if size is None else {"width": size[0], "height": size[1]}
        try:
            self._reader = decord.VideoReader(path, ctx=decord.cpu(0), **kwargs)
        except AssertionError as error:
            raise ClipError("no_frames", f"{name} has no video frames.") from error
        except (RuntimeError, decord.DECORDError) as error:
            raise ClipError(
                "corrupt",
                f"{name} could not be opened for decoding; it may be truncated or damaged.",
            ) from error
        self.num_frames = len(self._reader)
        self.fps = float(self._reader.get_avg_fps())

    def get(self, indices: list[int]) -> np.ndarray:
        import decord  # noqa: PLC0415

        try:
            batch = self._reader.get_batch(indices)
        except decord.DECORDError as error:
            raise _DecordFailed(str(error)) from error
        if hasattr(batch, "asnumpy"):
            return batch.asnumpy()
        return np.asarray(batch)  # a caller switched decord's bridge to torch/tf


class _PyAVReader(_FrameReader):
    """PyAV decoding (90/270-degree rotation, decord failures), indexed like decord: packets by time."""

    def __init__(self, path: str, rotation: int) -> None:
        import av  # noqa: PLC0415

        self._path, self._turns = path, rotation // 90
        with av.open(path) as container:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            packets = [
                (p.pts, p.is_keyframe) for p in container.demux(stream) if p.pts is not None and p.size
            ]
        packets.sort()
        self._pts = [pts for pts, _ in packets]
        self._keyframes = [pts for pts, key in packets if key]
        self.num_frames = len(self._pts)
        self.fps = float(rate) if rate else 0.0

    def get(self, indices: list[int]) -> np.ndarray:
        import av  # noqa: PLC0415

        wanted = {self._pts[i]: i for i in indices}
        found: dict[int, np.ndarray] = {}
        with av.open(self._path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            frames: Iterator[av.VideoFrame] | None = None
            position: int | None = None
            for target in sorted(set(indices)):
                if target in found:
                    continue
                target_pts = self._pts[target]
                # Seek only when a key frame lies between where we are and the target (as decord does).
                if (
                    frames is None
                    or position is None
                    or target_pts < position
                    or any(position < key <= target_pts for key in self._keyframes)
                ):
                    container.seek(target_pts, stream=stream, backward=True, any_frame=False)
                    frames = container.decode(stream)
                for frame in frames:
                    position = frame.pts
                    if frame.pts in wanted:
                        image = frame.to_ndarray(format="rgb24")
                        found[wanted[frame.pts]] = np.ascontiguousarray(np.rot90(image, self._turns))
                    if frame.pts is not None and frame.pts >= target_pts:
                        break
        missing = [i for i in indices if i not in found]
        if missing:
            raise ClipError("corrupt", f"Frames {missing[:5]} of the video could not be decoded.")
        return np.stack([found[i] for i in indices])


# ------------------------------------------------------------------------------------------ isolation


def _can_isolate() -> bool:
    return hasattr(os, "fork") and hasattr(socket, "send_fds")


class _DecodeServer:
    """Parent side of the zygote: send it a job and a pipe, read the forked child's answer from the pipe.

    The zygote is started lazily with ``python -c`` (so it never re-runs the caller's ``__main__``),
    imports this module once, and then forks one child per job. A child that crashes closes the pipe
    without an answer; one that overruns the time-out is killed by pid.
    """

    _HANDSHAKE_TIMEOUT_S = 120.0  # the first job also waits for the zygote's imports

    def __init__(self) -> None:
        self.owner_pid = os.getpid()
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._socket: socket.socket | None = None

    def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        code = "import sys; from tdn.video import _serve; _serve(int(sys.argv[1]))"
        self._process = subprocess.Popen(
            [sys.executable, "-c", code, str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the terminal is for the caller, not the zygote
        )
        theirs.close()
        self._socket = ours

    def _stop(self) -> None:
        if self._socket is not None:
            self._socket.close()
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._socket, self._process = None, None

    def ensure_started(self) -> None:
        """(Re)start the zygote if it is not running; call with ``_lock`` held."""
        if self._process is None or self._process.poll() is not None:
            self._stop()
            self._start()

    def _submit(self, job: _Job, write_fd: int) -> int:
        """Hand the job to the zygote; returns the pid of the child working on it."""
        payload = pickle.dumps(job)
        with self._lock:
            for _ in range(2):  # a zygote that died since the last job is restarted once
                self.ensure_started()
                assert self._socket is not None
                try:
                    socket.send_fds(self._socket, [struct.pack("<I", len(payload)) + payload], [write_fd])
                    self._socket.settimeout(self._HANDSHAKE_TIMEOUT_S)
                    return struct.unpack("<q", _recv_exact(self._socket, 8))[0]
                except OSError:
                    self._stop()
        raise ClipError("timeout", "The isolated decoding process could not be started; try again.")

    def run(self, job: _Job, timeout_s: float) -> _Decoded | ClipError:
        read_fd, write_fd = os.pipe()
        try:
            pid = self._submit(job, write_fd)
            os.close(write_fd)
            write_fd = -1
            data = _read_until_eof(read_fd, pid, time.monotonic() + timeout_s)
        finally:
            os.close(read_fd)
            if write_fd >= 0:
                os.close(write_fd)
        if data is None:
            return ClipError("timeout", f"Decoding took longer than {timeout_s:g} s and was stopped.")
        try:
            return pickle.loads(data)
        except Exception:  # noqa: BLE001 - an empty or cut answer means the child died
            return ClipError(
                "corrupt",
                "The video decoder crashed on this file; it is probably damaged or not a real video.",
            )


def _recv_exact(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        more = sock.recv(count - len(data))
        if not more:
            raise ConnectionError("the decode server closed the connection")
        data += more
    return data


def _read_until_eof(fd: int, pid: int, deadline: float) -> bytes | None:
    """Everything the child writes, or None (after killing it) once the deadline passes."""
    chunks = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            return None
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def _serve(fd: int) -> None:
    """The zygote's loop: receive (job, pipe), fork a child that decodes and writes its answer."""
    import av  # noqa: F401, PLC0415 - imported once here, not in every forked child
    import decord  # noqa: F401, PLC0415

    sock = socket.socket(fileno=fd)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(sock, 1 << 16, 1)
            if not message or not fds:
                return  # the caller has gone: so do we
            if len(message) < 4:
                message += _recv_exact(sock, 4 - len(message))
            (length,) = struct.unpack("<I", message[:4])
            payload = message[4:]
            if len(payload) < length:
                payload += _recv_exact(sock, length - len(payload))
        except OSError:
            return
        pid = os.fork()
        if pid == 0:
            sock.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            code = 0
            try:
                result = _run_job(pickle.loads(payload))
                with os.fdopen(fds[0], "wb") as out:
                    pickle.dump(result, out, protocol=pickle.HIGHEST_PROTOCOL)
            except BaseException:  # noqa: BLE001 - the parent reads a missing answer as a crash
                code = 1
            os._exit(code)
        os.close(fds[0])
        sock.sendall(struct.pack("<q", pid))


_SERVER: _DecodeServer | None = None
_SERVER_LOCK = threading.Lock()


def _server() -> _DecodeServer:
    global _SERVER
    with _SERVER_LOCK:
        if _SERVER is None or _SERVER.owner_pid != os.getpid():  # a forked caller needs its own
            _SERVER = _DecodeServer()
        return _SERVER


def warm_up_isolation() -> None:
    """Start the decode server now (it imports torch, decord and PyAV) so the first upload is fast."""
    if _can_isolate():
        server = _server()
        with server._lock:
            server.ensure_started()

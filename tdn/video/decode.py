"""From a video file to RGB frames at the model's scale: probe, frame readers and the exact resize.

* :func:`choose_stream` picks the video stream the ``ffmpeg`` command line decodes when told nothing:
  never an attached picture (cover art), a default-disposition stream before others, then the largest.
* :func:`probe` reads the header with PyAV and decodes the first frame of that stream: size, codec,
  rotation, duration.
* :class:`FrameReader` is what the pipeline reads frames from; :class:`tdn.video.reader.PyAVReader`,
  the one used, reads the displayed frames (the ones ``ffmpeg`` shows) by index, seeking verifiably, and
  decodes past damage (see that module). ``decode.PyAVReader`` still names it.
* :func:`plan_region` / :func:`resize_region`: PIL's bilinear resize of only the part of a frame that the
  crops keep. PIL resamples one axis at a time with integer weights computed from each output position, so
  a region gets exactly the full resize's pixels when its two passes run in PIL's order with the same
  weights. Both are checked, not assumed, once per geometry: the weights are read back from PIL itself, and
  the order PIL picks (it depends on the geometry and on the Pillow version) is observed on a noise image.
  Where either cannot be matched the whole frame is resized.
* :func:`decode_and_resize` streams frames from a reader into a thread pool that resizes them (PIL releases
  the GIL), holding a bounded number of full-resolution frames at once.

Anything that cannot be read raises :class:`ClipError`. It is defined here, where most of its kinds are
found, and re-exported by :mod:`tdn.video`.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from tdn.video.preprocess import Box

if TYPE_CHECKING:
    import av

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

# Codecs whose FFmpeg decoders implement skip_frame=NONREF as "drop frames nothing refers to"; each is
# checked against decord in tests/test_video.py. Others are decoded in full.
NONREF_SKIP_CODECS = frozenset({"h264", "hevc", "mpeg4", "vp8", "vp9"})
IN_FLIGHT_BYTES = 256 * 2**20  # most decoded full-resolution RGB bytes waiting to be resized
RESIZE_THREADS = max(1, min(4, os.cpu_count() or 1))
TIMEOUT_ENV = "TDN_LENS_DECODE_TIMEOUT_S"  # the default decode time limit of load_clip (and so of the app)
MAX_PROBE_FAILURES = 250  # rejected packets the probe skips while looking for a first frame


class ClipError(Exception):
    """A source that cannot become model input. ``kind`` is one of ``CLIP_ERROR_KINDS``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return type(self), (self.kind, self.message)


class FramesLost(ClipError):
    """Frames the index counted could not be decoded; the reader's index no longer holds them, so the
    indices asked for are stale: sample again from the new ``num_frames``. Kind "corrupt"."""


def timeout_message(name: str, limit_s: float) -> str:
    """What a decode that ran out of time says: the limit, and the three ways to raise it."""
    return (
        f"Decoding {name} took longer than the {limit_s:g} s limit and was stopped. To allow more time, "
        f"pass --decode-timeout SECONDS to the tdn command, timeout_s=SECONDS to load_clip, or set the "
        f"environment variable {TIMEOUT_ENV}=SECONDS (the app reads it)."
    )


@dataclass(frozen=True)
class Deadline:
    """When decoding must stop: ``at`` is a ``time.perf_counter()`` reading, ``limit_s`` the limit."""

    at: float
    limit_s: float
    name: str

    def check(self) -> None:
        if time.perf_counter() > self.at:
            raise ClipError("timeout", timeout_message(self.name, self.limit_s))


# ---------------------------------------------------------------------------------------------- probe


@dataclass(frozen=True)
class Probe:
    """What the header and the first frame say about a video."""

    width: int  # as displayed, i.e. after rotation
    height: int
    codec: str
    container: str
    rotation: int  # degrees counter-clockwise, a multiple of 90
    header_duration_s: float | None
    stream_index: int = 0  # the container's index of the video stream read (see choose_stream)


def choose_stream(container: av.container.InputContainer) -> av.VideoStream | None:
    """The video stream the ``ffmpeg`` command line decodes when given no ``-map``, or None.

    Attached pictures (cover art) are never chosen. Among the others a stream with the default
    disposition comes first, then the one with the most pixels, then the first. (The command line adds
    5,000,000 to a default stream's pixel count instead of ranking it first; the two differ only for a
    non-default stream more than 5 megapixels larger.)
    """
    from av.stream import Disposition

    moving = [s for s in container.streams.video if not s.disposition & Disposition.attached_pic]
    if not moving:
        return None

    def rank(stream: av.VideoStream) -> tuple[bool, int, int]:
        context = stream.codec_context
        return bool(stream.disposition & Disposition.default), context.width * context.height, -stream.index

    return max(moving, key=rank)


def probe(path: str, name: str, container_hint: str | None) -> Probe:
    """Read the header with PyAV and decode the first frame: streams, size, codec and rotation.

    ``name`` is what messages call the file; ``container_hint`` is the container its first bytes suggest
    (see :mod:`tdn.filetypes`), or None, which makes an unreadable file "not video" rather than "corrupt".
    """
    import av

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
        stream = choose_stream(container)
        if stream is None:
            if container.streams.video:  # attached pictures only
                if container.streams.audio:
                    raise ClipError(
                        "audio_only",
                        f"{name} holds audio and a cover picture only; there is no video to classify.",
                    )
                raise ClipError("not_video", f"{name} holds only a still picture (cover art), no video.")
            if container.streams.audio:
                raise ClipError("audio_only", f"{name} holds only audio; there is no video to classify.")
            if not container.streams:
                raise ClipError("no_frames", f"{name} holds no frames (its tracks are empty).")
            raise ClipError("not_video", f"{name} holds no video stream.")
        codec = stream.codec_context.name
        duration = None
        if container.duration is not None:
            duration = container.duration / 1_000_000
        elif stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        try:
            first, rejected = _first_frame(container, stream)
        except av.error.FFmpegError as error:
            raise ClipError("corrupt", unreadable) from error
        if first is None:
            if rejected:
                raise ClipError(
                    "corrupt",
                    f"{name} is damaged: FFmpeg rejected its video data as invalid ({rejected} packets) "
                    "and could not decode a single frame.",
                )
            raise ClipError("no_frames", f"{name} has a video track but no frames could be decoded.")
        rotation = int(round((first.rotation or 0) / 90.0)) * 90 % 360
        width, height = first.width, first.height
        if rotation in (90, 270):
            width, height = height, width
        return Probe(width, height, codec, container.format.name, rotation, duration, stream.index)


def _first_frame(
    container: av.container.InputContainer, stream: av.VideoStream
) -> tuple[av.VideoFrame | None, int]:
    """The stream's first decodable frame (None if there is none) and how many packets were rejected
    before it; rejected packets are skipped, as the ``ffmpeg`` command line skips them."""
    import av

    rejected = 0
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.error.InvalidDataError:
            rejected += 1
            if rejected > MAX_PROBE_FAILURES:
                break
            continue
        if frames:
            return frames[0], rejected
    return None, rejected


# -------------------------------------------------------------------------------------------- readers


class FrameReader:
    """Decoded RGB frames by index: ``num_frames``, ``fps`` and :meth:`frames`."""

    num_frames: int
    fps: float
    warnings: list[str]

    def frames(self, indices: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(index, (H, W, 3) uint8 frame)`` once for each distinct index, as decoded."""
        for index, raw in self.raw_frames(indices):
            yield index, self.to_rgb(raw)

    def raw_frames(self, indices: Sequence[int]) -> Iterator[tuple[int, object]]:
        """Like :meth:`frames`, but each frame as the decoder gave it; :meth:`to_rgb` makes it RGB.

        Splitting the two lets :func:`decode_and_resize` convert colours in its pool while the decoder
        goes on."""
        raise NotImplementedError

    def to_rgb(self, raw: object) -> np.ndarray:
        """A frame from :meth:`raw_frames` as (H, W, 3) uint8 RGB; safe to call from any thread."""
        return np.asarray(raw)


# ---------------------------------------------------------------------------------------- exact resize

_PIL_ONE = 1 << 22  # 1.0 in PIL's fixed-point weights for 8-bit images (its PRECISION_BITS)


@dataclass(frozen=True)
class RegionPlan:
    """Resize only ``region`` (x0, y0, x1, y1, in the resized frame) by resampling the source ``box``,
    one axis at a time in PIL's own ``order`` ("xy": horizontal pass first, "yx": vertical first)."""

    region: Box
    box: tuple[float, float, float, float]
    order: str


@lru_cache(maxsize=64)
def plan_region(source: tuple[int, int], scaled: tuple[int, int], keep: Box) -> RegionPlan | None:
    """How to resize a ``source`` (w, h) frame to ``scaled`` (w, h) computing little more than ``keep``.

    The plan's region contains ``keep``, and its pixels equal those of the full PIL bilinear resize: both
    passes use PIL's own weights, compared per axis, in the order PIL takes for the whole frame. None
    when the region would be the whole frame or PIL's order cannot be reproduced.
    """
    x0, x1, bx0, bx1 = _plan_axis(source[0], scaled[0], keep[0], keep[2])
    y0, y1, by0, by1 = _plan_axis(source[1], scaled[1], keep[1], keep[3])
    if (x0, y0, x1, y1) == (0, 0, *scaled):
        return None
    order = _pass_order(source, scaled)
    return None if order is None else RegionPlan((x0, y0, x1, y1), (bx0, by0, bx1, by1), order)


def resize_region(frame: np.ndarray, plan: RegionPlan) -> np.ndarray:
    """The region of ``plan`` of the PIL bilinear resize of ``frame``, (y1 - y0, x1 - x0, 3) uint8."""
    x0, y0, x1, y1 = plan.region
    image = _two_passes(
        Image.fromarray(np.ascontiguousarray(frame)), (x1 - x0, y1 - y0), plan.box, plan.order
    )
    return np.asarray(image)


def _two_passes(
    image: Image.Image, size: tuple[int, int], box: tuple[float, float, float, float], order: str
) -> Image.Image:
    """PIL bilinear resize of ``box`` to ``size`` as two single-axis resizes in the given order.

    Each call changes one axis only, so PIL makes exactly one pass with the weights it would use for that
    axis in a two-axis resize; the 8-bit image in between is the one PIL keeps between its passes.
    """
    (width, height), (bx0, by0, bx1, by1) = size, box
    bilinear = Image.Resampling.BILINEAR
    if order == "xy":
        across = image.resize((width, image.height), bilinear, box=(bx0, 0.0, bx1, float(image.height)))
        return across.resize((width, height), bilinear, box=(0.0, by0, float(width), by1))
    down = image.resize((image.width, height), bilinear, box=(0.0, by0, float(image.width), by1))
    return down.resize((width, height), bilinear, box=(bx0, 0.0, bx1, float(height)))


@lru_cache(maxsize=16)
def _pass_order(source: tuple[int, int], scaled: tuple[int, int]) -> str | None:
    """Which pass PIL runs first when resizing ``source`` to ``scaled``: "xy", "yx", or None if neither.

    Pillow chooses by geometry (since Pillow 13 it resizes vertically first when the height shrinks much
    more than the width), so the order is observed, not assumed: a noise image of this size is resized by
    PIL and by both explicit orders, which differ on noise in thousands of pixels. A one-band image keeps
    this cheap; the choice does not depend on the bands (tests/test_video.py checks it against RGB).
    """
    width, height = source
    noise = np.frombuffer(np.random.default_rng(0).bytes(width * height), np.uint8)
    image = Image.fromarray(noise.reshape(height, width))
    reference = np.asarray(image.resize(scaled, Image.Resampling.BILINEAR))
    whole = (0.0, 0.0, float(width), float(height))
    for order in ("xy", "yx"):
        if np.array_equal(reference, np.asarray(_two_passes(image, scaled, whole, order))):
            return order
    return None


def _plan_axis(in_size: int, out_size: int, first: int, stop: int) -> tuple[int, int, float, float]:
    """Output range [lo, hi) ⊇ [first, stop) and source span [start, end) that resample it exactly.

    PIL passes box edges as float32 and computes the scale from their float32 difference, so a region
    can only reproduce the full resize where its edges in the source, ``lo * in / out``, are exact float32
    numbers: lo and hi are widened to multiples of the odd part of ``out / gcd(in, out)``. Rounding still
    differs (``start + (x + 0.5) * scale`` against ``(lo + x + 0.5) * scale``), so the weights are
    compared; the whole axis is returned when they differ.
    """
    whole = (0, out_size, 0.0, float(in_size))
    ratio = Fraction(in_size, out_size)
    step = ratio.denominator
    while step % 2 == 0:  # powers of two in the denominator keep lo * ratio a binary fraction
        step //= 2
    lo = first // step * step
    hi = min(out_size, -(-stop // step) * step)
    if (lo, hi) == (0, out_size):
        return whole
    start, end = lo * ratio, hi * ratio
    if not all(Fraction(float(np.float32(v))) == v for v in (start, end, end - start)):
        return whole
    full = _pil_weights(in_size, out_size, 0.0, float(in_size))[:, lo:hi]
    part = _pil_weights(in_size, hi - lo, float(start), float(end))
    return (lo, hi, float(start), float(end)) if np.array_equal(full, part) else whole


def _pil_weights(in_size: int, out_size: int, start: float, end: float) -> np.ndarray:
    """PIL's integer bilinear weights for resampling [start, end) of ``in_size`` pixels to ``out_size``.

    Read from PIL itself: a 32-bit integer image whose row ``r`` holds 2**22 in every column c with
    c % span == r is resized along x only. PIL's integer path rounds ``2**22 * w`` exactly as its 8-bit path
    rounds the weight ``w`` it multiplies pixels with, so output (r, x) is that weight for the one column
    ≡ r (mod span) inside output x's window (span exceeds any window). Returns (span, out_size) int32.
    """
    support = max((end - start) / out_size, 1.0)
    span = 2 * math.ceil(support) + 5
    columns = np.arange(in_size)
    impulses = np.zeros((span, in_size), np.int32)
    impulses[columns % span, columns] = _PIL_ONE
    resized = Image.fromarray(impulses).resize(
        (out_size, span), Image.Resampling.BILINEAR, box=(start, 0.0, end, float(span))
    )
    return np.asarray(resized)


# ------------------------------------------------------------------------------------------- pipeline


def decode_and_resize(
    reader: FrameReader,
    indices: Sequence[int],
    transform: Callable[[int, np.ndarray], None],
    frame_bytes: int,
    deadline: Deadline,
    timings: dict[str, float],
) -> None:
    """Decode ``indices`` and run ``transform(index, frame)`` on each frame in a thread pool.

    At most ``IN_FLIGHT_BYTES // frame_bytes`` decoded frames (at least one) wait for the pool, so a 4K
    clip never holds all its frames. Past ``deadline`` a ClipError "timeout" is raised (the reader checks
    it too, between packets). The pool also converts each frame to RGB (:meth:`FrameReader.to_rgb`), so
    colour conversion overlaps decoding. Adds "decode" (waiting for the decoder), "rgb" and "resize"
    (each summed over threads) to ``timings``.
    """
    workers = RESIZE_THREADS
    limit = max(1, min(2 * workers, IN_FLIGHT_BYTES // max(frame_bytes, 1)))
    busy_ms: list[float] = []

    def run(index: int, raw: object) -> None:
        start = time.perf_counter()
        frame = reader.to_rgb(raw)
        del raw
        step = time.perf_counter()
        transform(index, frame)
        end = time.perf_counter()
        convert_ms.append((step - start) * 1000)
        busy_ms.append((end - step) * 1000)

    decode_ms = 0.0
    convert_ms: list[float] = []
    frames = reader.raw_frames(indices)
    pending: deque[Future[None]] = deque()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        try:
            while True:
                start = time.perf_counter()
                item = next(frames, None)
                decode_ms += ms_since(start)
                if item is None:
                    break
                deadline.check()
                while len(pending) >= limit:
                    pending.popleft().result()
                pending.append(pool.submit(run, *item))
                del item
            while pending:
                pending.popleft().result()
        finally:
            frames.close()
    timings["decode"] = decode_ms
    timings["rgb"] = sum(convert_ms)
    timings["resize"] = sum(busy_ms)


def ms_since(start: float) -> float:
    """Milliseconds since ``start`` (a ``time.perf_counter()`` reading)."""
    return (time.perf_counter() - start) * 1000


def __getattr__(name: str) -> object:
    """``decode.PyAVReader``, as it was before the reader had a module of its own (tdn.video.reader
    imports this module, so it cannot be imported here at the top)."""
    if name == "PyAVReader":
        from tdn.video.reader import PyAVReader

        return PyAVReader
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

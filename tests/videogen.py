"""Write small test clips with PyAV, in many containers and codecs, whose frames say their own index.

Reusable by any test: ``frames = frame_pattern(30, 96, 128)`` then ``write_video(path, frames)``;
after decoding (and resizing or centre-cropping), ``read_index(frame)`` recovers which frame it was.

Every frame carries its index as three grey blocks stacked in the central square of side
``min(H, W) / 2`` (three base-16 digits, grey level ``8 + 16 * digit``), so the code survives lossy
codecs, resizing and centre crops. The rest of the frame is a smooth colour texture that moves with
the index, so resampling and temporal differences are not trivial.

Lossless choices (decoded pixels equal the written ones): ``.mkv`` with the default ffv1/bgr0,
``.mov``/``.avi`` with ``codec="png"``, and ``.gif`` with grey frames.

The ``ffmpeg`` command line, where installed (``FFMPEG``; Debian's ``ffmpeg`` package, which ``./dev test``
installs as root), turns such clips into what real footage looks like (:func:`ffmpeg`: stream-copied cuts
with edit lists, MPEG-TS, FLV, cover art) and is the independent reference for what a file shows:
:func:`ffmpeg_frames` (every frame its default decode outputs) and :func:`ffprobe_count`.
:func:`damage_packet` breaks one packet of a file the way bit rot does.
"""

from __future__ import annotations

import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# suffix -> (codec, pixel format) used when the caller names none
DEFAULT_CODECS: dict[str, tuple[str, str]] = {
    ".mp4": ("libx264", "yuv420p"),
    ".mov": ("libx264", "yuv420p"),
    ".avi": ("mpeg4", "yuv420p"),
    ".mkv": ("ffv1", "bgr0"),
    ".webm": ("libvpx-vp9", "yuv420p"),
    ".gif": ("gif", "gray"),
}
_LOSSLESS_PIXEL_FORMATS = {"png": "rgb24", "ffv1": "bgr0", "gif": "gray"}
_CODE_DIGITS = 3
_CODE_BASE = 16


def _code_geometry(height: int, width: int, fraction: float) -> tuple[float, float, float]:
    """Centre (y, x) and side of the index code square in a frame of this size."""
    return (height - 1) / 2.0, (width - 1) / 2.0, fraction * min(height, width)


def frame_pattern(num_frames: int, height: int, width: int, gray: bool = False, seed: int = 0) -> np.ndarray:
    """(N, H, W, 3) uint8 frames: a moving colour texture with each frame's index coded in the centre."""
    if num_frames > _CODE_BASE**_CODE_DIGITS:
        raise ValueError(f"at most {_CODE_BASE**_CODE_DIGITS} frames can carry a unique index")
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, size=3)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    cy, cx, side = _code_geometry(height, width, 0.5)
    in_code = (np.abs(yy - cy) < side / 2) & (np.abs(xx - cx) < side / 2)
    block = np.clip(((yy - (cy - side / 2)) / (side / _CODE_DIGITS)).astype(int), 0, _CODE_DIGITS - 1)
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for i in range(num_frames):
        t = 0.35 * i
        texture = np.stack(
            [
                128 + 90 * np.sin(xx / 9.0 + t + phase[0]) * np.cos(yy / 13.0),
                128 + 90 * np.sin(yy / 7.0 - t + phase[1]),
                128 + 90 * np.cos((xx + yy) / 11.0 + 0.5 * t + phase[2]),
            ],
            axis=-1,
        )
        if gray:
            texture = np.repeat(texture.mean(axis=-1, keepdims=True), 3, axis=-1)
        digits = [(i // _CODE_BASE ** (_CODE_DIGITS - 1 - k)) % _CODE_BASE for k in range(_CODE_DIGITS)]
        levels = 8 + 16 * np.array(digits, dtype=np.float64)
        texture[in_code] = levels[block[in_code]][:, None]
        frames[i] = np.clip(np.rint(texture), 0, 255).astype(np.uint8)
    return frames


def read_index(frame: np.ndarray, code_fraction: float = 0.5) -> int:
    """The index coded in ``frame`` (H, W, 3) by :func:`frame_pattern`.

    ``code_fraction`` is the code square's side over the frame's short side: 0.5 for a frame at its
    written geometry or resized as a whole; ``0.5 * 256 / 224`` for a 224 centre crop of a frame
    resized to short side 256.
    """
    height, width = frame.shape[:2]
    cy, cx, side = _code_geometry(height, width, code_fraction)
    grey = frame.astype(np.float64).mean(axis=-1)
    half_h = max(side / 12.0, 0.5)
    half_w = max(side / 4.0, 0.5)
    value = 0
    for k in range(_CODE_DIGITS):
        by = cy + (k - (_CODE_DIGITS - 1) / 2.0) * side / _CODE_DIGITS
        rows = slice(int(np.ceil(by - half_h)), int(np.floor(by + half_h)) + 1)
        cols = slice(int(np.ceil(cx - half_w)), int(np.floor(cx + half_w)) + 1)
        level = float(np.median(grey[rows, cols]))
        digit = int(np.clip(round((level - 8) / 16.0), 0, _CODE_BASE - 1))
        value = value * _CODE_BASE + digit
    return value


def write_video(
    path: str | Path,
    frames: np.ndarray,
    fps: float = 25,
    codec: str | None = None,
    pix_fmt: str | None = None,
    rotation: int | None = None,
    options: dict[str, str] | None = None,
    timestamps: np.ndarray | None = None,
) -> Path:
    """Encode (N, H, W, 3) uint8 RGB frames; the container follows the file suffix.

    ``codec``/``pix_fmt`` default per suffix (``DEFAULT_CODECS``); ``rotation`` (degrees,
    counter-clockwise) writes display-matrix metadata, as phones do; ``timestamps`` (seconds, one per
    frame) makes a variable-frame-rate clip.
    """
    path = Path(path)
    default_codec, default_pix = DEFAULT_CODECS.get(path.suffix.lower(), ("libx264", "yuv420p"))
    codec = codec or default_codec
    if pix_fmt is None:
        pix_fmt = default_pix if codec == default_codec else _LOSSLESS_PIXEL_FORMATS.get(codec, "yuv420p")
    height, width = frames.shape[1:3]
    if pix_fmt == "yuv420p" and (height % 2 or width % 2):
        pix_fmt = "yuv444p"  # 4:2:0 needs even sizes; 4:4:4 takes any
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if codec == "mpeg4":
            stream.bit_rate = 8_000_000  # its default (200 kb/s) smears the index code
        if options:
            stream.options = options
        if rotation is not None:
            stream.set_display_rotation(rotation)
        millis = Fraction(1, 1000)
        if timestamps is not None:
            stream.codec_context.time_base = millis
        for i, frame in enumerate(frames):
            image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            if timestamps is not None:
                image.pts, image.time_base = int(round(timestamps[i] * 1000)), millis
            container.mux(stream.encode(image))
        container.mux(stream.encode(None))
    return path


def write_audio(path: str | Path, seconds: float = 1.0, codec: str | None = None) -> Path:
    """An audio-only file (a quiet sine tone): ``.m4a``/``.mp4`` get AAC, ``.mp3`` MP3."""
    path = Path(path)
    codec = codec or ("mp3" if path.suffix.lower() == ".mp3" else "aac")
    rate, chunk = 44100, 1152
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        total = int(seconds * rate)
        for start in range(0, total, chunk):
            t = (np.arange(start, start + chunk) / rate).astype(np.float32)
            samples = (0.1 * np.sin(2 * np.pi * 440 * t))[None, :]
            audio = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            audio.sample_rate, audio.pts = rate, start
            container.mux(stream.encode(audio))
        container.mux(stream.encode(None))
    return path


def write_no_frames(path: str | Path, width: int = 64, height: int = 48) -> Path:
    """A container with a video stream that holds no frames at all."""
    path = Path(path)
    codec = DEFAULT_CODECS.get(path.suffix.lower(), ("libx264", "yuv420p"))
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec[0], rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, codec[1]
        container.start_encoding()  # writes the header although no packet follows
    return path


FFMPEG = shutil.which("ffmpeg")
FFPROBE = shutil.which("ffprobe")


def ffmpeg(*args: str | Path) -> None:
    """Run the ``ffmpeg`` command line (quiet, overwriting); raises if it fails."""
    assert FFMPEG, "the ffmpeg command line is not installed"
    subprocess.run(
        [FFMPEG, "-v", "error", "-nostdin", "-y", *map(str, args)], check=True, capture_output=True
    )


def ffmpeg_frames(path: str | Path) -> np.ndarray:
    """(N, H, W, 3) uint8: every frame ``ffmpeg -i path`` decodes from the stream it picks by itself,
    converted to RGB by its default filter graph, one output frame per decoded frame (no frame-rate
    conversion). Read as a PPM stream, so the size comes from ffmpeg too."""
    assert FFMPEG, "the ffmpeg command line is not installed"
    command = [FFMPEG, "-v", "quiet", "-nostdin", "-i", str(path), "-an", "-sn", "-fps_mode", "passthrough"]
    command += ["-f", "image2pipe", "-c:v", "ppm", "-"]
    data = subprocess.run(command, capture_output=True).stdout  # a damaged file exits non-zero
    frames, at = [], 0
    while at < len(data):
        fields, cursor = [], at
        while len(fields) < 4:  # "P6", width, height, maxval, separated by whitespace
            while data[cursor : cursor + 1].isspace():
                cursor += 1
            end = cursor
            while not data[end : end + 1].isspace():
                end += 1
            fields.append(data[cursor:end])
            cursor = end
        width, height = int(fields[1]), int(fields[2])
        start = cursor + 1
        frames.append(np.frombuffer(data, np.uint8, width * height * 3, start).reshape(height, width, 3))
        at = start + width * height * 3
    return np.stack(frames)


def ffprobe_count(path: str | Path, stream_index: int) -> int:
    """``ffprobe -count_frames``: how many frames stream ``stream_index`` decodes to."""
    assert FFPROBE, "ffprobe is not installed"
    done = subprocess.run(
        [FFPROBE, "-v", "quiet", "-count_frames", "-select_streams", str(stream_index)]
        + ["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout.split()[0])  # MPEG-TS lists the stream once more, under its program


def damage_packet(path: str | Path, out: str | Path, position: int) -> int:
    """Copy ``path`` to ``out`` with the first 4 bytes of the video packet at ``position`` (decoding
    order) overwritten by 0xFF: for H.264 in MP4 an impossible NAL unit length, which FFmpeg's decoder
    rejects ("Invalid data found when processing input"). Returns that packet's pts."""
    with av.open(str(path)) as container:
        packets = [p for p in container.demux(container.streams.video[0]) if p.size]
        packet = packets[position]
        offset, pts = packet.pos, packet.pts
    data = bytearray(Path(path).read_bytes())
    data[offset : offset + 4] = b"\xff\xff\xff\xff"
    Path(out).write_bytes(bytes(data))
    return pts

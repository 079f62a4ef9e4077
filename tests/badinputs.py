"""A corpus of bad and odd video inputs, written into a folder, each with the outcome it must have.

``build_corpus(folder)`` writes every entry and returns them as :class:`Case` rows: the file's name and
either the ``ClipError.kind`` that ``tdn.video.load_clip`` must raise, or ``"ok"`` for inputs that are
valid but odd (one frame, a GIF, a real MP4 with a ``.txt`` name) and must get a prediction. Everything is
generated on the spot and small (the 8K frame is one flat frame), so the whole corpus takes a few seconds.
Intermediate files go to a ``.work`` subfolder, so that a run over the folder sees the corpus only.

Some entries are not regular files (a symlink loop, a folder named like a video); ``Case.regular`` says
which, since those cannot be uploaded, only named on the command line.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from tests.videogen import frame_pattern, write_audio, write_no_frames, write_video

OK = "ok"


@dataclass(frozen=True)
class Case:
    name: str
    expected: str  # a ClipError kind, or OK
    why: str
    regular: bool = True  # False: a symlink or folder, which only a path can name

    @property
    def ok(self) -> bool:
        return self.expected == OK


def _good_mp4(folder: Path) -> bytes:
    """A valid 2 s H.264 MP4 (moov at the end, as PyAV writes it), the base of the damaged variants."""
    path = folder / ".work" / "good.mp4"
    if not path.exists():
        write_video(path, frame_pattern(50, 48, 64))
    return path.read_bytes()


def _atom(data: bytes, kind: bytes) -> tuple[int, int]:
    """(offset, size) of the first top-level MP4 atom of type ``kind``."""
    offset = 0
    while offset + 8 <= len(data):
        size, found = struct.unpack(">I4s", data[offset : offset + 8])
        if found == kind:
            return offset, size
        if size < 8:
            break
        offset += size
    raise ValueError(f"no {kind!r} atom")


def _without_moov(folder: Path) -> bytes:
    data = _good_mp4(folder)
    offset, size = _atom(data, b"moov")
    return data[:offset] + data[offset + size :]


def _with_sample_entry_size(folder: Path, width: int, height: int) -> bytes:
    """The good MP4 with the avc1 sample entry (and track header) claiming another frame size."""
    data = bytearray(_good_mp4(folder))
    entry = data.index(b"avc1")
    data[entry + 28 : entry + 32] = struct.pack(">HH", width, height)
    header = data.index(b"tkhd")
    version = data[header + 4]
    size_at = header + 4 + (92 if version == 1 else 80)  # width and height, 16.16 fixed point
    data[size_at : size_at + 8] = struct.pack(">II", width << 16, height << 16)
    return bytes(data)


def _garbage_header(folder: Path) -> bytes:
    data = bytearray(_good_mp4(folder))
    data[:64] = np.random.default_rng(1).bytes(64)
    return bytes(data)


def _fake_ftyp(_: Path) -> bytes:
    return b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + np.random.default_rng(2).bytes(8192)


def _png(_: Path) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def _jpeg(_: Path) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (30, 200, 30)).save(out, format="JPEG")
    return out.getvalue()


def _zip(_: Path) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("clip.mp4", b"not really a clip")
    return out.getvalue()


def _html(_: Path) -> bytes:
    return b"<!DOCTYPE html>\n<html><head><title>Video</title></head><body><video src=x.webm></video></body></html>\n"


def _frames_file(name: str, frames: np.ndarray, **options: object) -> Callable[[Path], bytes]:
    def build(folder: Path) -> bytes:
        path = folder / ".work" / name
        write_video(path, frames, **options)  # type: ignore[arg-type]
        return path.read_bytes()

    return build


def _ten_hour_claim(folder: Path) -> bytes:
    """Two frames whose time stamps are 10 hours apart: the header promises a 10 h video."""
    path = folder / ".work" / "long.mp4"
    write_video(path, frame_pattern(2, 48, 64), timestamps=np.array([0.0, 36000.0]))
    return path.read_bytes()


def _eight_k(folder: Path) -> bytes:
    """One flat 7680x4320 frame (cheap to encode, large when decoded)."""
    path = folder / ".work" / "8k.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = 7680, 4320, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        frame = av.VideoFrame(7680, 4320, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path.read_bytes()


def _audio(suffix: str) -> Callable[[Path], bytes]:
    def build(folder: Path) -> bytes:
        return write_audio(folder / ".work" / f"tone{suffix}").read_bytes()

    return build


def _no_frames(suffix: str) -> Callable[[Path], bytes]:
    def build(folder: Path) -> bytes:
        return write_no_frames(folder / ".work" / f"none{suffix}").read_bytes()

    return build


def _truncated(fraction: float) -> Callable[[Path], bytes]:
    def build(folder: Path) -> bytes:
        data = _good_mp4(folder)
        return data[: int(len(data) * fraction)]

    return build


def _constant(data: bytes) -> Callable[[Path], bytes]:
    return lambda _: data


_rng = np.random.default_rng(0)
# (name, builder, expected outcome, why)
ENTRIES: list[tuple[str, Callable[[Path], bytes], str, str]] = [
    ("empty.mp4", _constant(b""), "empty", "0 bytes"),
    ("random_bytes.mp4", _constant(_rng.bytes(65536)), "not_video", "64 KiB of noise"),
    ("all_ff.mp4", _constant(b"\xff" * 65536), "not_video", "64 KiB of 0xFF"),
    ("all_zero.mp4", _constant(bytes(65536)), "not_video", "64 KiB of zeros"),
    ("text.mp4", _constant(b"this is not a video\n" * 50), "not_video", "text renamed .mp4"),
    ("page.webm", _constant(_html(Path())), "not_video", "HTML renamed .webm"),
    ("image.mp4", _png, "not_video", "a PNG renamed .mp4"),
    ("photo.mov", _jpeg, "not_video", "a JPEG renamed .mov"),
    ("archive.mp4", _zip, "not_video", "a ZIP renamed .mp4"),
    ("compressed.mkv", _constant(gzip.compress(b"x" * 1000)), "not_video", "gzip data renamed .mkv"),
    ("song.mp4", _audio(".m4a"), "audio_only", "AAC audio only, in an MP4 container"),
    ("song.webm", _audio(".mp3"), "audio_only", "an MP3 renamed .webm"),
    ("truncated_2.mp4", _truncated(0.02), "corrupt", "an MP4 cut after 2% (header only)"),
    ("truncated_30.mp4", _truncated(0.3), "corrupt", "an MP4 cut after 30%"),
    ("truncated_70.mp4", _truncated(0.7), "corrupt", "an MP4 cut after 70%"),
    ("truncated_98.mp4", _truncated(0.98), "corrupt", "an MP4 cut after 98% (moov damaged)"),
    ("garbage_header.mp4", _garbage_header, "not_video", "random bytes over the first 64 bytes"),
    ("fake_ftyp.mp4", _fake_ftyp, "corrupt", "a valid ftyp atom, then noise"),
    ("no_moov.mp4", _without_moov, "corrupt", "an MP4 with its moov atom removed"),
    ("no_frames.mp4", _no_frames(".mp4"), "no_frames", "a video track with no frames"),
    ("no_frames.mkv", _no_frames(".mkv"), "no_frames", "a Matroska video track with no frames"),
    ("zero_size_claim.mp4", lambda f: _with_sample_entry_size(f, 0, 0), OK, "header claims 0x0 frames"),
    (
        "huge_size_claim.mp4",
        lambda f: _with_sample_entry_size(f, 65535, 65535),
        OK,
        "header claims 65535x65535 frames; the stream's own size is used",
    ),
    ("eight_k.mp4", _eight_k, "too_large", "one 7680x4320 frame"),
    ("ten_hours.mp4", _ten_hour_claim, "too_long", "two frames 10 hours apart"),
    ("one_frame.mp4", _frames_file("one.mp4", frame_pattern(1, 48, 64)), OK, "a single frame"),
    ("one_frame.gif", _frames_file("one.gif", frame_pattern(1, 48, 64, gray=True)), OK, "a one-frame GIF"),
    ("tiny_2x2.mkv", _frames_file("tiny.mkv", frame_pattern(12, 2, 2)), OK, "2x2 pixels"),
    ("phone_rot90.mov", _frames_file("rot.mov", frame_pattern(20, 48, 64), rotation=90), OK, "rotated 90°"),
    (
        "really_a_video.txt",
        lambda f: _good_mp4(f),
        OK,
        "a real MP4 named .txt: the type is read from content",
    ),
]


def build_corpus(folder: Path) -> list[Case]:
    """Write the corpus into ``folder`` (created if needed); returns one Case per entry."""
    (folder / ".work").mkdir(parents=True, exist_ok=True)
    cases = []
    for name, build, expected, why in ENTRIES:
        (folder / name).write_bytes(build(folder))
        cases.append(Case(name, expected, why))
    loop = folder / "loop.mp4"
    if not loop.is_symlink():
        os.symlink(loop.name, loop)  # points at itself
    cases.append(Case(loop.name, "not_found", "a symlink that points at itself", regular=False))
    (folder / "folder.mp4").mkdir(exist_ok=True)
    cases.append(Case("folder.mp4", "not_video", "a folder named like a video", regular=False))
    return cases

"""What a file is, judged from its first bytes: the one table of file signatures in TDN Lens.

:func:`sniff` looks at the start of a file (``HEAD_BYTES`` are plenty) and names it: a video container,
an image, a document, an archive, audio, plain text, an empty file, or unknown. Two modules ask:
:mod:`tdn.video` refuses what is plainly not video before FFmpeg sees it and names the container in
its messages; :mod:`tdn.network.checkpoint` says what a file that is not a checkpoint is instead.

Video containers are recognised but not proven: a file that starts like an MP4 may still be damaged,
and "unknown" files may still be something FFmpeg reads (raw H.264, MP3 without an ID3 tag). The caller
decides what to do with "unknown".
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

HEAD_BYTES = 4096  # how much of a file sniff() wants; fewer bytes work, with less certainty for text

KINDS = ("empty", "video", "audio", "image", "document", "archive", "text", "unknown")


@dataclass(frozen=True)
class FileType:
    """The verdict on a file's first bytes."""

    kind: str  # one of KINDS
    description: str  # for messages, with its article: "a PNG image", "an MP4/QuickTime video"
    container: str | None = None  # kind "video" only: the container's name, e.g. "MP4/QuickTime"


@dataclass(frozen=True)
class _Signature:
    parts: tuple[tuple[int, bytes], ...]  # (offset, bytes) that must all match
    kind: str
    description: str
    container: str | None = None

    def matches(self, head: bytes) -> bool:
        return all(head[offset : offset + len(magic)] == magic for offset, magic in self.parts)


def _video(offset: int, magic: bytes, container: str, article: str = "a") -> _Signature:
    return _Signature(((offset, magic),), "video", f"{article} {container} video", container)


def _other(magic: bytes, kind: str, description: str) -> _Signature:
    return _Signature(((0, magic),), kind, description)


VIDEO_SUFFIXES: frozenset[str] = frozenset(
    (
        ".mp4",
        ".m4v",
        ".mov",
        ".avi",
        ".mkv",
        ".webm",
        ".mpg",
        ".mpeg",
        ".ogv",
        ".3gp",
        ".flv",
        ".ts",
        ".wmv",
        ".gif",
    )
)
"""File names taken as videos: by folder runs, the uploader and the commands (the content decides later)."""

# First match wins, so longer and more specific signatures come before shorter ones.
_SIGNATURES: tuple[_Signature, ...] = (
    _video(0, b"\x1a\x45\xdf\xa3", "Matroska/WebM"),
    _video(4, b"ftyp", "MP4/QuickTime", "an"),
    _video(4, b"moov", "QuickTime"),  # old QuickTime files start with an atom other than ftyp
    _video(4, b"mdat", "QuickTime"),
    _video(4, b"wide", "QuickTime"),
    _video(4, b"free", "QuickTime"),
    _video(4, b"skip", "QuickTime"),
    _Signature(((0, b"RIFF"), (8, b"AVI ")), "video", "an AVI video", "AVI"),
    _Signature(((0, b"GIF87a"),), "video", "a GIF animation", "GIF"),
    _Signature(((0, b"GIF89a"),), "video", "a GIF animation", "GIF"),
    _video(0, b"FLV\x01", "FLV", "an"),
    _video(0, b"OggS", "Ogg", "an"),  # Ogg may hold audio only; the decoder finds out
    _video(0, b"\x00\x00\x01\xba", "MPEG program stream", "an"),
    _video(0, b"\x00\x00\x01\xb3", "MPEG video", "an"),
    _video(0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "ASF/WMV", "an"),
    _Signature(((0, b"RIFF"), (8, b"WAVE")), "audio", "a WAV audio file"),
    _Signature(((0, b"RIFF"), (8, b"WEBP")), "image", "a WebP image"),
    _other(b"\x89PNG", "image", "a PNG image"),
    _other(b"\xff\xd8\xff", "image", "a JPEG image"),
    _other(b"II*\x00", "image", "a TIFF image"),
    _other(b"MM\x00*", "image", "a TIFF image"),
    _other(b"BM", "image", "a BMP image"),
    _other(b"%PDF", "document", "a PDF document"),
    _other(b"PK\x03\x04", "archive", "a ZIP archive"),
    _other(b"\x1f\x8b", "archive", "a gzip archive"),
    _other(b"7z\xbc\xaf\x27\x1c", "archive", "a 7-Zip archive"),
    _other(b"ID3", "audio", "an MP3 audio file"),
    _other(b"fLaC", "audio", "a FLAC audio file"),
    _other(b"#!AMR", "audio", "an AMR audio file"),
)
_TS_PACKET = 188  # MPEG transport streams repeat the sync byte 0x47 every 188 bytes


def sniff(head: bytes) -> FileType:
    """Name a file from its first bytes (pass ``HEAD_BYTES`` of them; fewer is fine)."""
    if not head:
        return FileType("empty", "an empty file")
    for signature in _SIGNATURES:
        if signature.matches(head):
            return FileType(signature.kind, signature.description, signature.container)
    if len(head) > 2 * _TS_PACKET and head[0] == head[_TS_PACKET] == head[2 * _TS_PACKET] == 0x47:
        return FileType("video", "an MPEG transport stream video", "MPEG transport stream")
    if _is_text(head):
        return FileType("text", "a text file")
    return FileType("unknown", "a file of unknown type")


def _is_text(head: bytes) -> bool:
    """UTF-8 (so also ASCII: CSV, JSON, HTML) made of printable characters and line breaks only."""
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head)  # a character cut at the end is fine
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\r\n\t" for ch in text.lstrip("\ufeff"))

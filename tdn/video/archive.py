"""Unpacking an uploaded ``.zip`` or ``.tar`` (``.tar.gz``, ``.tgz``, ``.tar.bz2``, ``.tar.xz``) of frames, safely.

An upload is untrusted, so :func:`unpack_archive` writes only regular files, only inside the destination, and
only within caps, checking every member *before* anything is written:

* no absolute names, no drive letters, no ``..`` component, no backslash paths, no NUL; names are normalised
  and must stay under the destination after resolution;
* no symbolic or hard links, devices, FIFOs (tar), no zip members whose Unix mode says link;
* at most ``max_files`` members and ``max_bytes`` uncompressed bytes in all (the sizes the archive declares
  are checked first, and the bytes actually written are counted too, so a lying header cannot get past);
* encrypted zip members are refused.

Every refusal is a :class:`ClipError` (``not_video``: not an archive; ``empty``; ``too_large``: over a cap;
``corrupt``: damaged, or a member that would escape or is a link), whose message names the member. On any error
the partly written destination is removed. :func:`frame_folders` then lists the frame folders inside, and
:func:`load_archive_clip` does all of it for an upload: unpack into a private temporary folder, take the first
frame folder, decode it like any frame folder (in the crash-proof decode process when asked), remove the folder.
"""

from __future__ import annotations

import dataclasses
import shutil
import stat
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from tdn.contract import SCALE_SIZE, ClipSpec
from tdn.util import ms_since
from tdn.video import clip as clip_module
from tdn.video import isolation, preprocess
from tdn.video.clip import DEFAULT_MAX_PIXELS, Clip, default_timeout_s
from tdn.video.decode import ClipError
from tdn.video.frames import is_frame_folder, load_frame_folder

__all__ = [
    "ARCHIVE_SUFFIXES",
    "MAX_ARCHIVE_BYTES",
    "MAX_ARCHIVE_FILES",
    "frame_folders",
    "is_archive_name",
    "load_archive_clip",
    "unpack_archive",
]

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")

MAX_ARCHIVE_BYTES = 2 * 2**30  # uncompressed
MAX_ARCHIVE_FILES = 100_000
MAX_NAME_LENGTH = 1024
_CHUNK = 1 << 20


@dataclass(frozen=True)
class _Member:
    name: str  # normalised relative POSIX path
    size: int
    is_dir: bool
    handle: object  # ZipInfo or TarInfo


def _safe_name(raw: str) -> str | None:
    """The member's normalised relative path; None for the archive root ("./"); raises for unsafe names."""
    if "\x00" in raw or len(raw) > MAX_NAME_LENGTH:
        raise ClipError("corrupt", f"the archive holds a member with an invalid name ({raw[:80]!r}).")
    if "\\" in raw:
        raise ClipError(
            "corrupt", f"the archive member {raw!r} uses backslashes; refusing to guess its path."
        )
    path = PurePosixPath(raw)
    if path.is_absolute() or (path.parts and ":" in path.parts[0]):
        raise ClipError("corrupt", f"the archive member {raw!r} has an absolute path; refusing to unpack it.")
    parts = [p for p in path.parts if p not in ("", ".")]
    if ".." in parts:
        raise ClipError(
            "corrupt", f"the archive member {raw!r} points outside the archive (..); refusing it."
        )
    return "/".join(parts) or None


def _zip_members(archive: zipfile.ZipFile) -> list[_Member]:
    members = []
    for info in archive.infolist():
        name = _safe_name(info.filename)
        kind = stat.S_IFMT(info.external_attr >> 16)  # 0 when the archiver recorded no Unix file type
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise ClipError("corrupt", f"the archive member {info.filename!r} is a link or a special file.")
        if info.flag_bits & 0x1:
            raise ClipError("corrupt", f"the archive member {info.filename!r} is encrypted.")
        if name is not None:
            members.append(_Member(name, info.file_size, info.is_dir(), info))
    return members


def _tar_members(archive: tarfile.TarFile) -> list[_Member]:
    members = []
    for info in archive:
        name = _safe_name(info.name)
        if not (info.isfile() or info.isdir()):
            what = "a link" if info.issym() or info.islnk() else "a special file"
            raise ClipError(
                "corrupt", f"the archive member {info.name!r} is {what}; only files are unpacked."
            )
        if name is not None:
            members.append(_Member(name, info.size, info.isdir(), info))
    return members


def _check_caps(members: list[_Member], max_files: int, max_bytes: int) -> None:
    if len(members) > max_files:
        raise ClipError(
            "too_large", f"the archive holds {len(members):,} members; the limit is {max_files:,}."
        )
    total = sum(m.size for m in members if not m.is_dir)
    if total > max_bytes:
        raise ClipError(
            "too_large", f"the archive unpacks to {total:,} bytes; the limit is {max_bytes:,} bytes."
        )


def _copy(source: BinaryIO, target: Path, budget: list[int], name: str) -> None:
    with target.open("xb") as out:
        while chunk := source.read(_CHUNK):
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise ClipError(
                    "too_large", f"{name} unpacks to more than the archive declared; refusing it."
                )
            out.write(chunk)


def _open(source: str | Path | BinaryIO) -> zipfile.ZipFile | tarfile.TarFile:
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ClipError("not_found", f"There is no file at {path}.")
        if path.stat().st_size == 0:
            raise ClipError("empty", f"{path.name} is empty (0 bytes).")
    try:
        if zipfile.is_zipfile(source):
            return zipfile.ZipFile(source)
        if not isinstance(source, (str, Path)):
            source.seek(0)
            return tarfile.open(fileobj=source, mode="r:*")
        return tarfile.open(source, mode="r:*")
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as error:
        detail = "; ".join(line.strip(" -") for line in str(error).splitlines()[:1])
        raise ClipError("not_video", f"not a zip or tar archive that can be read ({detail}).") from None


def unpack_archive(
    source: str | Path | BinaryIO,
    dest: str | Path,
    *,
    max_bytes: int = MAX_ARCHIVE_BYTES,
    max_files: int = MAX_ARCHIVE_FILES,
) -> Path:
    """Unpack a zip or tar archive (a path or a binary file object) into the new folder ``dest``; returns it.

    ``dest`` must not exist yet (it is created, and removed again on any error). See the module docstring for
    what is refused."""
    dest = Path(dest)
    if dest.exists():
        raise FileExistsError(f"{dest} exists; unpack into a new folder")
    archive = _open(source)
    try:
        with archive:
            is_zip = isinstance(archive, zipfile.ZipFile)
            members = _zip_members(archive) if is_zip else _tar_members(archive)
            if not members:
                raise ClipError("empty", "the archive holds no files.")
            _check_caps(members, max_files, max_bytes)
            dest.mkdir(parents=True)
            root = dest.resolve()
            budget = [max_bytes]
            for member in members:
                target = dest / member.name
                if root not in target.resolve().parents and target.resolve() != root:
                    raise ClipError(
                        "corrupt", f"the archive member {member.name!r} would land outside {dest}."
                    )
                if member.is_dir:
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.exists():
                    raise ClipError("corrupt", f"the archive holds {member.name!r} twice.")
                if is_zip:
                    with archive.open(member.handle) as data:  # type: ignore[arg-type]
                        _copy(data, target, budget, member.name)
                else:
                    data = archive.extractfile(member.handle)  # type: ignore[arg-type]
                    if data is None:
                        raise ClipError("corrupt", f"the archive member {member.name!r} cannot be read.")
                    with data:
                        _copy(data, target, budget, member.name)
    except ClipError:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError, RuntimeError) as error:
        shutil.rmtree(dest, ignore_errors=True)
        raise ClipError("corrupt", f"the archive is damaged ({type(error).__name__}: {error}).") from None
    return dest


def frame_folders(root: str | Path, template: str | None = None, limit: int = 100_000) -> list[Path]:
    """Every frame folder (:func:`tdn.video.frames.is_frame_folder`) under ``root``, itself included, sorted.
    Symbolic links are not followed."""
    root = Path(root)
    found = [root] if is_frame_folder(root, template) else []
    for path in sorted(root.rglob("*")):
        if len(found) >= limit:
            break
        if path.is_dir() and not path.is_symlink() and is_frame_folder(path, template):
            found.append(path)
    return found


def is_archive_name(name: str) -> bool:
    """Whether a file name says zip or tar (:data:`ARCHIVE_SUFFIXES`); the content decides in the end."""
    return name.lower().endswith(ARCHIVE_SUFFIXES)


@dataclass(frozen=True)
class _ArchiveJob:
    path: str  # the archive on disk
    name: str  # what the user calls it
    spec: ClipSpec
    crops: int
    clips: int
    max_pixels: int
    display_size: int


def _load_archive_job(job: _ArchiveJob) -> Clip | ClipError:
    """Unpack, pick the first frame folder, decode it without model inputs; errors come back as values."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tdn-archive-") as scratch:
        try:
            try:
                root = unpack_archive(job.path, Path(scratch) / "frames")
            except ClipError as error:  # name the upload, not the private copy
                return ClipError(error.kind, f"{job.name}: {error}")
            unpacked_ms = ms_since(start)
            folders = frame_folders(root)
            if not folders:
                return ClipError(
                    "not_video",
                    f"{job.name} holds no folder of frames (files named like 00001.jpg, 000001.jpg or "
                    "img_00001.jpg); zip or tar the folder of one clip's frames.",
                )
            chosen = folders[0]
            inside = chosen.relative_to(root).as_posix() if chosen != root else "."
            clip = load_frame_folder(
                chosen, job.spec, job.crops, job.clips, max_pixels=job.max_pixels,
                display_size=job.display_size, build_inputs=False, source_name=f"{job.name}/{inside}",
            )  # fmt: skip
        except ClipError as error:
            return error
    warnings = list(clip.warnings)
    if len(folders) > 1:
        warnings.append(
            f"{job.name} holds {len(folders)} frame folders; this is the first ({inside}), the others are not shown"
        )
    timings = dict(clip.timings_ms) | {"unpack": unpacked_ms}
    return dataclasses.replace(clip, warnings=warnings, timings_ms=timings)


def load_archive_clip(
    source: str | Path | bytes,
    spec: ClipSpec,
    crops: int = 1,
    clips: int = 1,
    *,
    isolate: bool = True,
    timeout_s: float | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    display_size: int = SCALE_SIZE,
    source_name: str | None = None,
) -> Clip:
    """A ``.zip``/``.tar`` of one clip's frames (a path or the upload's bytes) as a :class:`Clip`, the same views
    :func:`tdn.video.load_clip` makes of the folder itself. The archive is checked and unpacked safely
    (:func:`unpack_archive`'s rules) into a private temporary folder that is always removed; with several frame
    folders inside, the first (sorted) is used and a warning says so. ``isolate``: unpack and decode in the
    crash-proof decode process (for uploads). Raises :class:`ClipError`."""
    timeout_s = default_timeout_s() if timeout_s is None else timeout_s
    start = time.perf_counter()
    name = source_name or (Path(source).name if isinstance(source, (str, Path)) else "upload.zip")
    with clip_module.materialize(source, name) as (path, _, _):  # bytes: a private temp file, always removed
        job = _ArchiveJob(path, name, spec, crops, clips, max_pixels, display_size)
        if isolate and isolation.available():
            result = clip_module.run_isolated(_load_archive_job, job, timeout_s, name)
        else:
            result = _load_archive_job(job)
    if isinstance(result, ClipError):
        raise result
    tensor_start = time.perf_counter()
    inputs = [preprocess.to_model_input(v, spec.mean, spec.std) for v in result.model_frames]
    timings = dict(result.timings_ms) | {"tensor": ms_since(tensor_start), "total": ms_since(start)}
    return dataclasses.replace(result, inputs=inputs, timings_ms=timings)

"""Dataset descriptions as their publishers ship them, read into one list of (file, class index) entries.

:func:`read_dataset` detects the format from the file's content (:func:`detect_format`) and reads:

* ``tdn-list``: the official TDN/TSM list file, ``relative/path num_frames label`` per line (label = class
  index; paths may hold spaces, the last two fields are numbers). MMAction's ``path label`` video lists are
  read too (no frame count). Paths are relative to ``root``; frame folders and video files both work.
* ``ssv1-csv``: Something-Something V1's ``something-something-v1-validation.csv`` (``id;label``), videos are the
  frame folders ``root/{id}/{:05d}.jpg``. ``labels_file``: ``something-something-v1-labels.csv`` (one name a line).
* ``ssv2-json``: Something-Something V2's ``something-something-v2-validation.json`` (a list of objects with
  ``id`` and ``template``; ``[something]`` placeholders are normalised as the official lists do,
  ``template.replace("[", "").replace("]", "")``); videos ``root/{id}.webm`` or frame folders ``root/{id}/``.
  ``labels_file``: ``something-something-v2-labels.json`` (``{name: "index"}``).
* ``k400-csv``: Kinetics-400's ``validate.csv`` (``label,youtube_id,time_start,time_end,split``); videos are
  found anywhere under ``root`` (e.g. in one folder per class) by the name the common download tools give them,
  ``{youtube_id}_{time_start:06d}_{time_end:06d}`` with any video suffix.
* ``labels-csv``: a plain ``labels.csv`` with a header naming ``file`` and ``label`` (a class name or index), or
  ``label_index``/``label_name`` as ``python -m tdn synth`` writes it; without a header, ``file,label`` rows.

**Class names resolve to checkpoint indices through ``class_names``** (the checkpoint's, i.e. the shipped
label lists of ``tdn.network.labels``; by default the list of the format's dataset). Names match exactly, else
after folding case, ``_`` ↔ space and quotes/brackets (``air_drumming`` → ``air drumming``). A ``labels_file``
is checked against them: names it lacks and an index order that differs from ``class_names`` become notes.

What is not fatal, and what is: entries whose file is missing (or, with ``allowed_root``, resolves outside it)
are listed in ``DatasetList.missing``, entries of a class the checkpoint lacks in ``DatasetList.unknown``; both
are counted and never stop the reading. **A malformed line is an error**: a :class:`DatasetError` that names the
file and the line number of every bad line (up to ``MAX_LISTED_PROBLEMS``), because a line that does not parse
means the file is not what its format says, and dropping lines silently would change the accuracy.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tdn.filetypes import VIDEO_SUFFIXES
from tdn.network.labels import LABEL_FILES, LABELS_DIR, load_labels
from tdn.video.frames import is_frame_folder

__all__ = [
    "DATASET_FORMATS",
    "DatasetError",
    "DatasetList",
    "Entry",
    "Skipped",
    "ClassIndex",
    "detect_format",
    "read_dataset",
]

DATASET_FORMATS: tuple[str, ...] = ("tdn-list", "ssv1-csv", "ssv2-json", "k400-csv", "labels-csv")
# The published dataset each format describes: its name in the results (as the zoo rows spell it) and the
# shipped label list its classes follow.
FORMAT_DATASETS: dict[str, tuple[str, str]] = {
    "ssv1-csv": ("Something-Something V1", "something_something_v1"),
    "ssv2-json": ("Something-Something V2", "something_something_v2"),
    "k400-csv": ("Kinetics-400", "kinetics400"),
}
K400_COLUMNS = ("label", "youtube_id", "time_start", "time_end")
MAX_LIST_BYTES = 256 * 2**20
MAX_LISTED_PROBLEMS = 20
MAX_INDEXED_FILES = 5_000_000


class DatasetError(ValueError):
    """A list file that cannot be read as the format it claims; the message names the file and the lines."""


@dataclass(frozen=True)
class Entry:
    """One labelled video of a list: its key (unique in the list), where it is, its class and list line."""

    key: str
    path: Path
    label: int
    label_name: str
    line: int
    num_frames: int | None = (
        None  # the list's own frame count (official lists), sampled over for frame folders
    )


@dataclass(frozen=True)
class Skipped:
    """A listed video left out: ``reason`` is ``missing`` (no file, or outside the allowed root) or
    ``unknown_class`` (a class the checkpoint lacks, or no label)."""

    key: str
    line: int
    reason: str
    detail: str
    label_name: str | None = None


@dataclass
class DatasetList:
    """A dataset as read: the entries to evaluate and what was left out, with where it came from."""

    format: str
    list_file: Path
    root: Path
    class_names: list[str]
    entries: list[Entry]
    missing: list[Skipped] = field(default_factory=list)
    unknown: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dataset: str | None = None  # the published dataset ("Something-Something V2"), when the format names one
    template: str | None = None  # frame file template, when the caller gave one

    @property
    def listed(self) -> int:
        return len(self.entries) + len(self.missing) + len(self.unknown)

    def describe(self) -> str:
        what = self.dataset or self.list_file.name
        return (
            f"{what} ({self.format}, {self.list_file.name}): {self.listed} listed, {len(self.entries)} to evaluate, "
            f"{len(self.missing)} missing, {len(self.unknown)} of unknown classes"
        )


# ------------------------------------------------------------------------------------------- class names


def _fold(name: str) -> str:
    """A spelling-tolerant key: case folded, ``_`` as space, quotes and brackets dropped, spaces collapsed."""
    name = re.sub(r"[\"'()\[\]]", "", name.replace("_", " ").casefold())
    return " ".join(name.split())


class ClassIndex:
    """Class name → checkpoint index: exact first, then the folded spelling (when it is unambiguous)."""

    def __init__(self, class_names: list[str]) -> None:
        self.names = list(class_names)
        self._exact = {n: i for i, n in enumerate(self.names)}
        folded: dict[str, int | None] = {}
        for i, n in enumerate(self.names):
            key = _fold(n)
            folded[key] = None if key in folded else i
        self._folded = {k: v for k, v in folded.items() if v is not None}

    def find(self, name: str) -> int | None:
        name = name.strip()
        if name in self._exact:
            return self._exact[name]
        return self._folded.get(_fold(name))

    def __len__(self) -> int:
        return len(self.names)


# ------------------------------------------------------------------------------------------- locating files


class _Locator:
    """Finds an entry's video or frame folder under ``root``: the path as listed, else by its name (the
    listed path without a video suffix, or just the last part) among every file and folder under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._index: dict[str, Path] | None = None

    def find(self, rel: str) -> Path | None:
        direct = self.root / rel
        if direct.exists():
            return direct
        index = self._build()
        found = index.get(rel.rstrip("/"))
        if found is None and "/" not in rel:  # a bare id or stem: anywhere under root (K400 class folders)
            found = index.get(rel)
        return found

    def _build(self) -> dict[str, Path]:
        if self._index is not None:
            return self._index
        index: dict[str, Path] = {}
        count = 0
        for folder, dirs, files in os.walk(self.root):  # never follows symbolic links to folders
            base = Path(folder)
            rel_base = base.relative_to(self.root)
            for name in dirs:
                index.setdefault(name, base / name)
                index.setdefault(str(rel_base / name), base / name)
            for name in files:
                suffix = Path(name).suffix.lower()
                if suffix in VIDEO_SUFFIXES or suffix == ".webm":
                    stem = Path(name).stem
                    index.setdefault(stem, base / name)
                    index.setdefault(str(rel_base / stem), base / name)
                    index.setdefault(str(rel_base / name), base / name)
            count += len(dirs) + len(files)
            if count > MAX_INDEXED_FILES:
                break
            # frame folders hold many images and no videos: do not descend into them
            dirs[:] = [d for d in dirs if not is_frame_folder(base / d)]
        self._index = index
        return index


# ------------------------------------------------------------------------------------------- reading


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise DatasetError(f"There is no list file at {path}.")
    size = path.stat().st_size
    if size > MAX_LIST_BYTES:
        raise DatasetError(f"{path.name} is {size:,} bytes; a list file may have {MAX_LIST_BYTES:,} at most.")
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise DatasetError(f"{path.name} is a binary file, not a dataset list.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DatasetError(f"{path.name} is not UTF-8 text (line {line}).") from None


def _lines(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            yield number, line.rstrip("\r\n")


def detect_format(text: str, name: str = "the list") -> str:
    """Which of :data:`DATASET_FORMATS` ``text`` is, from its content; raises DatasetError when none fits."""
    stripped = text.lstrip()
    if not stripped:
        raise DatasetError(f"{name} is empty.")
    if stripped[0] == "[":
        return "ssv2-json"
    if stripped[0] == "{":
        raise DatasetError(
            f"{name} is a JSON object, like Something-Something V2's labels JSON ({{name: index}}); give it as the "
            "labels file and the validation JSON (a list of videos) as the list."
        )
    first = next(_lines(text))[1]
    header = [c.strip().strip('"').lower() for c in next(csv.reader([first]))]
    if all(c in header for c in K400_COLUMNS):
        return "k400-csv"
    if "file" in header or "path" in header:
        return "labels-csv"
    if ";" in first:
        return "ssv1-csv"
    if "," in first and len(header) >= 2:
        return "labels-csv"
    parts = first.split()
    if len(parts) >= 2 and parts[-1].lstrip("-").isdigit():
        return "tdn-list"
    raise DatasetError(
        f"{name} is in none of the formats read here ({', '.join(DATASET_FORMATS)}); its first line is "
        f"{first[:120]!r}. A file of class names, one a line, is a labels file, not a list of videos."
    )


class _Builder:
    """Collects entries, skipped videos and malformed lines while a format's reader walks the file."""

    def __init__(self, name: str, root: Path, classes: ClassIndex, allowed_root: Path | None) -> None:
        self.name, self.root, self.classes = name, root, classes
        self.locator = _Locator(root)
        self.allowed = allowed_root.resolve() if allowed_root is not None else None
        self.entries: list[Entry] = []
        self.missing: list[Skipped] = []
        self.unknown: list[Skipped] = []
        self.bad: list[str] = []
        self.keys: dict[str, int] = {}

    def malformed(self, line: int, why: str) -> None:
        self.bad.append(f"line {line}: {why}")

    def add(
        self, key: str, rel: str, line: int, label: int | str | None, num_frames: int | None = None
    ) -> None:
        if key in self.keys:
            self.malformed(line, f"repeats {key!r} of line {self.keys[key]}")
            return
        self.keys[key] = line
        name: str | None
        if label is None:
            self.unknown.append(Skipped(key, line, "unknown_class", "no label given"))
            return
        if isinstance(label, int):
            index = label if 0 <= label < len(self.classes) else None
            name = self.classes.names[label] if index is not None else None
            detail = f"class index {label} is outside the checkpoint's {len(self.classes)} classes"
        else:
            index, name = self.classes.find(label), label
            detail = f"class {label!r} is not among the checkpoint's {len(self.classes)} classes"
        if index is None:
            self.unknown.append(Skipped(key, line, "unknown_class", detail, name))
            return
        label_name = self.classes.names[index]
        path = self.locator.find(rel)
        if path is None:
            self.missing.append(
                Skipped(
                    key, line, "missing", f"no video or frame folder {rel!r} under {self.root}", label_name
                )
            )
            return
        if self.allowed is not None:
            real = path.resolve()
            if real != self.allowed and self.allowed not in real.parents:
                self.missing.append(
                    Skipped(
                        key, line, "missing", f"{rel!r} resolves outside the allowed data root", label_name
                    )
                )
                return
        self.entries.append(Entry(key, path, index, label_name, line, num_frames))

    def check(self) -> None:
        if self.bad:
            shown = "; ".join(self.bad[:MAX_LISTED_PROBLEMS])
            more = (
                f"; and {len(self.bad) - MAX_LISTED_PROBLEMS} more"
                if len(self.bad) > MAX_LISTED_PROBLEMS
                else ""
            )
            raise DatasetError(f"{self.name} has {len(self.bad)} malformed line(s): {shown}{more}.")


def _read_tdn_list(text: str, b: _Builder) -> None:
    width: int | None = None
    for number, line in _lines(text):
        parts = line.strip().rsplit(maxsplit=2)
        if len(parts) == 3 and not parts[1].isdigit():  # a path with spaces and a two-field line
            parts = line.strip().rsplit(maxsplit=1)
        fields = len(parts)
        if fields not in (2, 3) or not all(p.lstrip("-").isdigit() for p in parts[1:]):
            b.malformed(number, f"expected 'path num_frames label' (or 'path label'), got {line[:80]!r}")
            continue
        if width is not None and fields != width:
            b.malformed(number, f"has {fields} fields where earlier lines have {width}")
            continue
        width = fields
        frames = int(parts[1]) if fields == 3 else None
        if frames is not None and frames < 1:
            b.malformed(number, f"frame count {frames} is not positive")
            continue
        b.add(parts[0], parts[0], number, int(parts[-1]), frames)


def _read_ssv1(text: str, b: _Builder) -> None:
    for number, line in _lines(text):
        vid, sep, label = line.strip().partition(";")
        if not sep or not vid.strip() or not label.strip():
            b.malformed(number, f"expected 'id;label', got {line[:80]!r}")
            continue
        b.add(vid.strip(), vid.strip(), number, label.strip())


def _json_items(text: str, name: str) -> Iterator[tuple[int, object]]:
    """(line, item) of a top-level JSON array, read item by item so errors can name lines."""
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    ws = re.compile(r"\s*")
    while True:
        pos = ws.match(text, pos).end()
        if pos < len(text) and text[pos] == "]":
            return
        try:
            item, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise DatasetError(f"{name}, line {e.lineno}: not valid JSON ({e.msg}).") from None
        yield text.count("\n", 0, pos) + 1, item
        pos = ws.match(text, end).end()
        if pos < len(text) and text[pos] == ",":
            pos += 1
        elif pos < len(text) and text[pos] == "]":
            return
        else:
            line = text.count("\n", 0, pos) + 1
            raise DatasetError(f"{name}, line {line}: expected ',' or ']' after an item.")


def _read_ssv2(text: str, b: _Builder) -> None:
    for number, item in _json_items(text, b.name):
        if not isinstance(item, dict) or "id" not in item:
            b.malformed(number, "an item without an 'id'")
            continue
        vid = str(item["id"])
        if "template" in item:
            label: str | None = str(item["template"]).replace("[", "").replace("]", "")
        elif "label" in item and not isinstance(item["label"], dict):
            label = str(item["label"])  # lists that carry the class itself
        else:
            label = None  # the test split
        b.add(vid, vid, number, label)


def _read_csv_rows(text: str, b: _Builder) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            b.malformed(reader.line_num, f"not valid CSV ({e})")
            return
        if row and any(c.strip() for c in row):
            yield reader.line_num, [c.strip() for c in row]


def _read_k400(text: str, b: _Builder) -> None:
    rows = _read_csv_rows(text, b)
    _, header = next(rows)
    columns = {c.lower(): i for i, c in enumerate(header)}
    for number, row in rows:
        if len(row) != len(header):
            b.malformed(number, f"has {len(row)} fields; the header has {len(header)}")
            continue
        try:
            start, end = int(float(row[columns["time_start"]])), int(float(row[columns["time_end"]]))
        except ValueError:
            b.malformed(number, "time_start and time_end must be whole seconds")
            continue
        youtube_id = row[columns["youtube_id"]]
        if not youtube_id:
            b.malformed(number, "empty youtube_id")
            continue
        stem = f"{youtube_id}_{start:06d}_{end:06d}"
        label = row[columns["label"]] or None
        b.add(stem, stem, number, label)


def _read_labels_csv(text: str, b: _Builder) -> None:
    rows = _read_csv_rows(text, b)
    try:
        number, first = next(rows)
    except StopIteration:
        return
    lowered = [c.lower() for c in first]
    if "file" in lowered or "path" in lowered:
        columns = {c: i for i, c in enumerate(lowered)}
        file_col = columns.get("file", columns.get("path"))
        width = len(first)
    else:
        columns, file_col, width = {"label": 1}, 0, len(first)
        rows = iter([(number, first), *rows])
    if not any(c in columns for c in ("label", "label_name", "label_index")):
        raise DatasetError(f"{b.name}: the header names no 'label', 'label_name' or 'label_index' column.")
    for number, row in rows:
        if len(row) != width:
            b.malformed(number, f"has {len(row)} fields; the first line has {width}")
            continue
        rel = row[file_col]
        if not rel:
            b.malformed(number, "empty file name")
            continue
        name = row[columns["label_name"]] if "label_name" in columns else None
        index = row[columns["label_index"]] if "label_index" in columns else None
        plain = row[columns["label"]] if "label" in columns else None
        label: int | str | None
        if plain is not None:
            label = int(plain) if plain.lstrip("-").isdigit() else (plain or None)
        elif name:
            label = name
            if index is not None and index.isdigit() and b.classes.find(name) not in (None, int(index)):
                b.unknown.append(
                    Skipped(
                        rel, number, "unknown_class", f"label_index {index} disagrees with {name!r}", name
                    )
                )
                b.keys[rel] = number
                continue
        elif index is not None and index.lstrip("-").isdigit():
            label = int(index)
        else:
            label = None
        b.add(rel, rel, number, label)


_READERS = {
    "tdn-list": _read_tdn_list,
    "ssv1-csv": _read_ssv1,
    "ssv2-json": _read_ssv2,
    "k400-csv": _read_k400,
    "labels-csv": _read_labels_csv,
}


def _labels_file_notes(path: Path, fmt: str, classes: ClassIndex) -> list[str]:
    """What a published labels file says against ``class_names``: names missing, or another index order."""
    text = _read_text(path)
    if text.lstrip().startswith("{"):
        try:
            mapping = json.loads(text)
            order = sorted(mapping, key=lambda k: int(mapping[k]))
        except (json.JSONDecodeError, ValueError, TypeError, AttributeError):
            raise DatasetError(f'{path.name} is not a labels JSON of the form {{name: "index"}}.') from None
    else:
        order = sorted(line.strip() for line in text.splitlines() if line.strip())  # the TSM rule: sorted
    notes = []
    lacking = [n for n in order if classes.find(n) is None]
    if lacking:
        notes.append(f"{path.name} names {len(lacking)} class(es) the checkpoint lacks, e.g. {lacking[0]!r}.")
    resolved = [classes.find(n) for n in order]
    if not lacking and resolved != list(range(len(classes))):
        notes.append(
            f"{path.name} orders the classes differently from the checkpoint's label list; indices follow the "
            "checkpoint's list (tdn.network.labels), which is the order the official models were trained with."
        )
    return notes


def read_dataset(
    list_file: str | Path,
    root: str | Path | None = None,
    class_names: list[str] | None = None,
    labels_file: str | Path | None = None,
    format: str | None = None,
    *,
    template: str | None = None,
    allowed_root: str | Path | None = None,
) -> DatasetList:
    """Read a published dataset description (see the module docstring for the formats).

    ``root``: the folder the list's paths are relative to (default: the list file's folder). ``class_names``: the
    checkpoint's class names (``info.class_names``); default: the shipped list of the format's dataset (SSv1,
    SSv2, K400; required for the other formats). ``format``: one of :data:`DATASET_FORMATS`, default detected.
    ``template``: the frame file template of frame folders, when not a standard one. ``allowed_root``: entries
    whose file resolves outside it are listed as missing. Raises :class:`DatasetError` for malformed lines.
    """
    list_file = Path(list_file)
    text = _read_text(list_file)
    fmt = format or detect_format(text, list_file.name)
    if fmt not in _READERS:
        raise DatasetError(f"unknown list format {fmt!r}; known: {', '.join(DATASET_FORMATS)}")
    dataset, labels_key = FORMAT_DATASETS.get(fmt, (None, None))
    if class_names is None:
        if labels_key is None:
            raise DatasetError(f"a {fmt} list needs the checkpoint's class names to resolve its labels.")
        class_names = load_labels(LABELS_DIR / LABEL_FILES[labels_key])
    classes = ClassIndex(class_names)
    root_path = Path(root) if root is not None else list_file.parent
    if not root_path.is_dir():
        raise DatasetError(f"The dataset root {root_path} is not a folder.")
    builder = _Builder(list_file.name, root_path, classes, Path(allowed_root) if allowed_root else None)
    _READERS[fmt](text, builder)
    builder.check()
    notes = _labels_file_notes(Path(labels_file), fmt, classes) if labels_file is not None else []
    return DatasetList(
        format=fmt,
        list_file=list_file,
        root=root_path,
        class_names=list(class_names),
        entries=builder.entries,
        missing=builder.missing,
        unknown=builder.unknown,
        notes=notes,
        dataset=dataset,
        template=template,
    )

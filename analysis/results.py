"""Reading, validating and writing results CSVs (the schema is ``analysis.schema``).

``load_results`` never returns a partly valid table: it checks the whole file and raises one
``ResultsError`` that lists every problem with its file, row, line and column. ``append_row`` and
``write_results`` replace the whole file atomically, so a reader never sees half a row.
"""

from __future__ import annotations

import csv
import fcntl
import io
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd

from analysis.schema import (
    BOOL_COLUMNS,
    COLUMN_NAMES,
    FLOAT_COLUMNS,
    INT_COLUMNS,
    SCHEMA_VERSION,
    format_cell,
    validate_row,
)
from tdn.assets import RESULTS
from tdn.util import write_atomic

RESULTS_DIR = RESULTS
SOURCE_SUFFIX = "_source.csv"  # raw input tables (other columns) beside the results; never loaded as results
STUDY_PREFIX = "compare_study"  # per-clip study tables (own columns, analysis/compare_study.py)
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
MAX_LISTED_PROBLEMS = 100
# Rows of one file must be unique on these: one row per (model, dataset, evaluation protocol), per seed.
ROW_KEY: tuple[str, ...] = ("name", "seed", "dataset", "input_size", "crops", "clips")


@dataclass(frozen=True)
class Problem:
    """One reason a results file is rejected. ``row`` counts data rows from 1 (the header is line 1)."""

    file: str
    message: str
    row: int | None = None
    line: int | None = None
    column: str | None = None

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"row {self.row}" + (f" (line {self.line})" if self.line is not None else ""))
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return f"{', '.join(where)}: {self.message}"


class ResultsError(ValueError):
    """A results file that breaks the schema; ``problems`` lists every reason, ``str()`` the first hundred."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = [str(p) for p in problems[:MAX_LISTED_PROBLEMS]]
        if len(problems) > MAX_LISTED_PROBLEMS:
            lines.append(f"… and {len(problems) - MAX_LISTED_PROBLEMS} more problems")
        files = sorted({p.file for p in problems})
        head = f"{len(problems)} problem(s) in {', '.join(files)} (results schema v{SCHEMA_VERSION}):"
        super().__init__("\n".join([head, *lines]))


def _read_bytes(source: str | os.PathLike | bytes | BinaryIO, name: str, max_bytes: int) -> bytes:
    if isinstance(source, bytes | bytearray):
        data = bytes(source)
    elif hasattr(source, "read"):
        data = source.read(max_bytes + 1)
    else:
        path = Path(source)
        if not path.is_file():
            raise ResultsError([Problem(name, "no such file")])
        if path.stat().st_size > max_bytes:
            raise ResultsError(
                [Problem(name, f"is {path.stat().st_size:,} bytes; the limit is {max_bytes:,}")]
            )
        data = path.read_bytes()
    if len(data) > max_bytes:
        raise ResultsError([Problem(name, f"is larger than the limit of {max_bytes:,} bytes")])
    return data


def _decode(data: bytes, name: str) -> str:
    if b"\x00" in data[:8192]:
        raise ResultsError([Problem(name, "is a binary file, not a CSV (it contains NUL bytes)")])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ResultsError([Problem(name, f"is not UTF-8 text (byte {e.start}, line {line})")]) from None


def parse_results_text(text: str, name: str) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Parse and validate CSV text: (rows of parsed values, problems). Used by ``load_results``."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as e:
        return [], [Problem(name, f"is not a readable CSV ({e})", line=1)]
    if not header or header == [""]:
        return [], [Problem(name, "is empty; a results file starts with a header row")]
    header = [h.strip() for h in header]
    problems: list[Problem] = []
    missing = [c for c in COLUMN_NAMES if c not in header]
    extra = [h for h in header if h not in COLUMN_NAMES]
    doubled = sorted({h for h in header if header.count(h) > 1})
    if missing:
        problems.append(Problem(name, f"header lacks the column(s) {', '.join(missing)}", line=1))
    if extra:
        problems.append(Problem(name, f"header has unknown column(s) {', '.join(map(repr, extra))}", line=1))
    if doubled:
        problems.append(Problem(name, f"header repeats the column(s) {', '.join(doubled)}", line=1))
    if problems:
        expected = ",".join(COLUMN_NAMES)
        problems.append(
            Problem(name, f"results schema v{SCHEMA_VERSION} expects the header {expected}", line=1)
        )
        return [], problems
    rows: list[dict[str, Any]] = []
    keys: dict[tuple, int] = {}
    row_number = 0
    while True:
        start_line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            problems.append(
                Problem(name, f"is not valid CSV here ({e})", row=row_number + 1, line=start_line)
            )
            break
        if not cells or all(c.strip() == "" for c in cells):
            continue  # blank lines carry no row
        row_number += 1
        if len(cells) != len(header):
            problems.append(
                Problem(
                    name, f"has {len(cells)} fields; the header has {len(header)}", row_number, start_line
                )
            )
            continue
        values, row_problems = validate_row(dict(zip(header, cells, strict=True)))
        problems += [Problem(name, why, row_number, start_line, column) for column, why in row_problems]
        key = tuple(values[k] for k in ROW_KEY)
        if not row_problems and key in keys:
            problems.append(
                Problem(name, f"repeats row {keys[key]} (same {', '.join(ROW_KEY)})", row_number, start_line)
            )
        keys.setdefault(key, row_number)
        rows.append(values)
    return rows, problems


def to_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Parsed rows → a DataFrame with the schema's columns, in order, and their dtypes."""
    rows = list(rows)
    data: dict[str, Any] = {}
    for column in COLUMN_NAMES:
        values = [r.get(column) for r in rows]
        if column in BOOL_COLUMNS:
            data[column] = pd.array(values, dtype="bool")
        elif column in INT_COLUMNS:
            data[column] = pd.array(values, dtype="Int64")
        elif column in FLOAT_COLUMNS:
            data[column] = pd.array(
                [float("nan") if v is None else float(v) for v in values], dtype="float64"
            )
        else:
            data[column] = pd.array(values, dtype="object")
    return pd.DataFrame(data, columns=list(COLUMN_NAMES))


def load_results(
    source: str | os.PathLike | bytes | BinaryIO, name: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> pd.DataFrame:
    """Load one results CSV (a path, its bytes, or a binary file object such as a Streamlit upload).

    ``name`` is how the file is called in error messages (default: the path's name). Raises ``ResultsError``
    listing every bad row unless the whole file follows the schema.
    """
    if name is None:
        name = (
            Path(source).name if isinstance(source, str | os.PathLike) else getattr(source, "name", "upload")
        )
    text = _decode(_read_bytes(source, name, max_bytes), name)
    rows, problems = parse_results_text(text, name)
    if problems:
        raise ResultsError(problems)
    return to_frame(rows)


def results_files(folder: str | os.PathLike = RESULTS_DIR) -> list[Path]:
    """The results CSVs stored in ``folder``: every ``*.csv`` except raw ``*_source.csv`` inputs and the
    per-clip study tables (``compare_study*.csv``), which have columns of their own."""
    return sorted(
        p
        for p in Path(folder).glob("*.csv")
        if not p.name.endswith(SOURCE_SUFFIX) and not p.name.startswith(STUDY_PREFIX)
    )


def load_all(folder: str | os.PathLike = RESULTS_DIR, max_bytes: int = DEFAULT_MAX_BYTES) -> pd.DataFrame:
    """All stored results, concatenated; one ``ResultsError`` lists the problems of every bad file."""
    frames: list[pd.DataFrame] = []
    problems: list[Problem] = []
    for path in results_files(folder):
        try:
            frames.append(load_results(path, max_bytes=max_bytes))
        except ResultsError as e:
            problems += e.problems
    if problems:
        raise ResultsError(problems)
    if not frames:
        return to_frame([])
    return pd.concat(frames, ignore_index=True)


def format_row(row: Mapping[str, Any]) -> list[str]:
    """One row's cells in schema order, as written to CSV."""
    return [format_cell(c, row.get(c)) for c in COLUMN_NAMES]


def check_row(row: Mapping[str, Any], name: str = "new row") -> dict[str, Any]:
    """Validate a row built in Python (by writing and re-reading its CSV form); returns its parsed values."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMN_NAMES)
    writer.writerow(format_row(row))
    rows, problems = parse_results_text(buffer.getvalue(), name)
    if problems:
        raise ResultsError(problems)
    return rows[0]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path``'s folder, so two writers never interleave read-modify-write.

    The folder, not the file, is locked: ``os.replace`` swaps the file's inode, and a lock file would litter
    the results folder.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _csv_text(rows: Iterable[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMN_NAMES)
    writer.writerows(format_row(r) for r in rows)
    return buffer.getvalue()


def write_results(rows: Iterable[Mapping[str, Any]] | pd.DataFrame, path: str | os.PathLike) -> Path:
    """Validate rows and write them as a complete results CSV, replacing ``path`` atomically."""
    path = Path(path)
    if isinstance(rows, pd.DataFrame):
        rows = [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in rows.to_dict("records")]
    text = _csv_text(rows)
    _, problems = parse_results_text(text, path.name)
    if problems:
        raise ResultsError(problems)
    with _locked(path):
        write_atomic(path, text)
    return path


def append_row(path: str | os.PathLike, row: Mapping[str, Any]) -> None:
    """Add one validated row to a results CSV (created if absent) by replacing the whole file atomically.

    The existing file must itself be valid: nothing is ever appended to a broken table.
    """
    path = Path(path)
    check_row(row, path.name)
    with _locked(path):
        text = _decode(path.read_bytes(), path.name) if path.exists() else _csv_text([])
        _, problems = parse_results_text(text, path.name)
        if problems:
            raise ResultsError(problems)
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(format_row(row))
        if not text.endswith("\n"):
            text += "\n"
        new_text = text + buffer.getvalue()
        _, problems = parse_results_text(new_text, path.name)  # e.g. the row repeats an existing one
        if problems:
            raise ResultsError(problems)
        write_atomic(path, new_text)

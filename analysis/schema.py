"""The results schema, version 1: one row per (model, dataset, evaluation protocol), stored as CSV.

A results file is a UTF-8 CSV whose header is exactly :data:`COLUMNS` (in any order). Its version is told by
that column set; a future version that changes the columns bumps :data:`SCHEMA_VERSION`.

Conventions
-----------
* Accuracies are **percent** (0-100), never fractions.
* ``gmacs_per_view`` counts multiply-adds (the paper's "FLOPs", docs/architecture.md §8) of one forward of one view, i.e. one
  crop of one clip at ``input_size``²; ``gmacs_total = gmacs_per_view × crops × clips``.
* Every row records the three temporal flags (S-TDM, L-TDM, shift; docs/architecture.md §13), not only the variant's name.
  ``variant`` is the name of those flags when they match a named variant, otherwise ``custom``.
* A score ensemble of several models is one row: its ``segments``, ``gmacs_per_view`` and ``params`` are the
  sums over its members, and its name says so (e.g. ``TDN-ResNet101 (8+16 ensemble)``).
* Rows of one configuration that differ only by ``seed`` are repeats: our runs name the configuration in
  ``name`` (the seed is its own column) so that the charts can average over seeds.
* ``source``: for ``our-run`` rows a JSON object with at least ``commit``, ``command`` and ``config``; for
  ``publication`` rows the reference text.
* ``seed`` is required for our runs, except for our evaluation of a checkpoint whose training seed is unknown
  (an official file): its source JSON says ``"kind": "evaluation"`` (``analysis.evaluations``).
* ``date``: when the row was recorded, ISO 8601 (our runs: when the run finished; publications: when their
  source table entered the repository).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from tdn.network.model import VARIANTS

SCHEMA_VERSION = 1

CUSTOM_VARIANT = "custom"
VARIANT_NAMES: tuple[str, ...] = (*VARIANTS, CUSTOM_VARIANT)
SOURCE_KINDS: tuple[str, ...] = ("our-run", "publication")
FLAG_COLUMNS: tuple[str, str, str] = ("s_tdm", "l_tdm", "shift")

# Limits beyond which a value is a typo or a unit mistake rather than a model (R101 16f at 256² ≈ 172 GMACs).
MAX_GMACS_PER_VIEW = 10_000.0
MAX_VIEWS = 1_000
MAX_PARAMS = 10_000_000_000
MAX_LATENCY_MS = 3_600_000.0
MIN_INPUT_SIZE = 32  # the model's own minimum (tdn.network.model.TDN.check_input)
MAX_INPUT_SIZE = 4096
MAX_SEGMENTS = 1024
GMACS_REL_TOL = 1e-6


class CellError(ValueError):
    """One value that breaks the schema; the message says why."""


@dataclass(frozen=True)
class Column:
    """One column: its name, how a CSV cell becomes a value, whether it may be empty, and what it means."""

    name: str
    parse: Callable[[str], Any]
    required: bool
    doc: str


def _text(cell: str) -> str:
    if cell != cell.strip():
        raise CellError(f"{cell!r} has leading or trailing spaces")
    return cell


def _bool(cell: str) -> bool:
    lowered = cell.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise CellError(f"{cell!r} is not a boolean (write true or false)")


def _number(cell: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise CellError(f"{cell!r} is not a number") from None
    if math.isnan(value):
        raise CellError("is NaN")
    if math.isinf(value):
        raise CellError(f"{cell!r} is infinite")
    return value


def _integer(cell: str) -> int:
    value = _number(cell)
    if value != int(value):
        raise CellError(f"{cell!r} is not a whole number")
    return int(value)


def _in_range(parse: Callable[[str], float], low: float, high: float, low_open: bool = False) -> Callable:
    def checked(cell: str) -> float:
        value = parse(cell)
        if value < low or (low_open and value == low) or value > high:
            bracket = "(" if low_open else "["
            raise CellError(f"{cell} is outside {bracket}{low:g}, {high:g}]")
        return value

    return checked


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def checked(cell: str) -> str:
        if cell not in options:
            raise CellError(f"{cell!r} is not one of {', '.join(options)}")
        return cell

    return checked


def _iso_date(cell: str) -> str:
    try:
        if len(cell) == 10:
            date.fromisoformat(cell)
        else:
            datetime.fromisoformat(cell)
    except ValueError:
        raise CellError(f"{cell!r} is not an ISO 8601 date (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS)") from None
    return cell


COLUMNS: tuple[Column, ...] = (
    Column("name", _text, True, "the model's name; for our runs the configuration (same for every seed)"),
    Column(
        "variant",
        _choice(VARIANT_NAMES),
        True,
        "tsn, tsm, s-tdm, l-tdm, tdn or custom (docs/architecture.md §13)",
    ),
    Column("s_tdm", _bool, True, "whether the S-TDM (difference stream) is present"),
    Column("l_tdm", _bool, True, "whether the L-TDM is present"),
    Column("shift", _bool, True, "whether the temporal shift is present"),
    Column("backbone", _text, True, "resnet18/34/50/101 (tdn.network.model.ARCHS)"),
    Column("width", _in_range(_number, 0.0, 4.0, low_open=True), True, "channel width multiplier"),
    Column("segments", _in_range(_integer, 1, MAX_SEGMENTS), True, "T; for an ensemble the sum over members"),
    Column(
        "input_size", _in_range(_integer, MIN_INPUT_SIZE, MAX_INPUT_SIZE), True, "side of a view in pixels"
    ),
    Column("crops", _in_range(_integer, 1, MAX_VIEWS), True, "spatial crops per clip at test time"),
    Column("clips", _in_range(_integer, 1, MAX_VIEWS), True, "temporal clips per video at test time"),
    Column("dataset", _text, True, "evaluation set"),
    Column("top1", _in_range(_number, 0.0, 100.0), True, "top-1 accuracy, percent"),
    Column("top5", _in_range(_number, 0.0, 100.0), True, "top-5 accuracy, percent"),
    Column("gmacs_per_view", _in_range(_number, 0.0, MAX_GMACS_PER_VIEW, True), True, "GMACs of one view"),
    Column("gmacs_total", _in_range(_number, 0.0, MAX_GMACS_PER_VIEW * MAX_VIEWS, True), True, "all views"),
    Column("params", _in_range(_integer, 1, MAX_PARAMS), True, "parameter count"),
    Column("latency_ms", _in_range(_number, 0.0, MAX_LATENCY_MS, True), False, "median ms of one view"),
    Column("latency_device", _text, False, "where latency_ms was measured"),
    Column("seed", _in_range(_integer, 0, 2**63 - 1), False, "training seed (required for our runs)"),
    Column("source_kind", _choice(SOURCE_KINDS), True, "our-run or publication"),
    Column("source", _text, True, "our runs: JSON with commit, command, config; publications: the reference"),
    Column("date", _iso_date, True, "when the row was recorded, ISO 8601"),
)
COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
COLUMNS_BY_NAME: dict[str, Column] = {c.name: c for c in COLUMNS}
# Columns whose values are parsed as whole numbers / floats / booleans (the DataFrame's dtypes follow).
INT_COLUMNS: tuple[str, ...] = ("segments", "input_size", "crops", "clips", "params", "seed")
FLOAT_COLUMNS: tuple[str, ...] = ("width", "top1", "top5", "gmacs_per_view", "gmacs_total", "latency_ms")
BOOL_COLUMNS: tuple[str, ...] = FLAG_COLUMNS
OUR_RUN_SOURCE_KEYS: tuple[str, ...] = ("commit", "command", "config")


def variant_for_flags(s_tdm: bool, l_tdm: bool, shift: bool) -> str:
    """The name of the variant with exactly these three flags, or ``custom``."""
    flags = (bool(s_tdm), bool(l_tdm), bool(shift))
    return next((name for name, f in VARIANTS.items() if f == flags), CUSTOM_VARIANT)


def validate_row(cells: dict[str, str]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Parse one row's cells (column → text). Returns the parsed values and a list of (column, why) problems.

    Checks each cell on its own, then the rules that tie cells together: top-5 ≥ top-1, the flags against
    the variant, gmacs_total = per view × crops × clips, a seed for our runs, a device with every latency and
    the JSON of an our-run source.
    """
    values: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for column in COLUMNS:
        cell = cells.get(column.name, "")
        if cell.strip() == "" or cell.strip().lower() == "nan":
            values[column.name] = None
            if column.required:
                problems.append((column.name, "is empty (NaN) but required"))
            continue
        try:
            values[column.name] = column.parse(cell)
        except CellError as e:
            values[column.name] = None
            problems.append((column.name, str(e)))
    problems += _cross_checks(values)
    return values, problems


def _cross_checks(v: dict[str, Any]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if v["top1"] is not None and v["top5"] is not None and v["top5"] < v["top1"]:
        problems.append(("top5", f"top-5 {v['top5']:g} is below top-1 {v['top1']:g}"))
    flags = tuple(v[c] for c in FLAG_COLUMNS)
    if v["variant"] is not None and None not in flags:
        expected = variant_for_flags(*flags)
        if v["variant"] != expected:
            shown = ", ".join(f"{c}={str(f).lower()}" for c, f in zip(FLAG_COLUMNS, flags, strict=True))
            problems.append(
                ("variant", f"{v['variant']!r} does not match the flags ({shown} is {expected!r})")
            )
    per_view, total = v["gmacs_per_view"], v["gmacs_total"]
    if None not in (per_view, total, v["crops"], v["clips"]):
        views = v["crops"] * v["clips"]
        if not math.isclose(total, per_view * views, rel_tol=GMACS_REL_TOL):
            problems.append(
                ("gmacs_total", f"{total:g} ≠ gmacs_per_view × crops × clips = {per_view:g} × {views}")
            )
    if v["latency_ms"] is not None and v["latency_device"] is None:
        problems.append(("latency_device", "is empty but latency_ms is given"))
    if v["source_kind"] == "our-run":
        if v["seed"] is None and not _is_evaluation(v["source"]):
            problems.append(("seed", "is empty but required for our-run rows"))
        if v["source"] is not None:
            problems += [("source", why) for why in _our_run_source_problems(v["source"])]
    return problems


def _is_evaluation(text: str | None) -> bool:
    """Whether an our-run source is an evaluation of someone else's checkpoint (whose seed may be unknown)."""
    try:
        source = json.loads(text or "")
    except json.JSONDecodeError:
        return False
    return isinstance(source, dict) and source.get("kind") == "evaluation"


def _our_run_source_problems(text: str) -> list[str]:
    try:
        source = json.loads(text)
    except json.JSONDecodeError as e:
        return [f"is not JSON ({e.msg}); our-run sources hold commit, command and config"]
    if not isinstance(source, dict):
        return ["is not a JSON object with commit, command and config"]
    missing = [k for k in OUR_RUN_SOURCE_KEYS if k not in source]
    problems = [f"JSON lacks {', '.join(missing)}"] if missing else []
    if "config" in source and not isinstance(source["config"], dict):
        problems.append("JSON 'config' is not an object")
    return problems


def format_cell(column: str, value: Any) -> str:
    """How a value is written to a results CSV: booleans as true/false, floats round-trip exactly, None empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if column in BOOL_COLUMNS:
        return "true" if bool(value) else "false"
    if column in INT_COLUMNS:
        return str(int(value))
    if column in FLOAT_COLUMNS:
        return repr(float(value))
    return str(value)

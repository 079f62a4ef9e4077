"""Results schema v1: valid files load with the right dtypes; every kind of bad row is named precisely."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from analysis.results import (
    ResultsError,
    append_row,
    load_all,
    load_results,
    write_results,
)
from analysis.schema import COLUMN_NAMES, SCHEMA_VERSION, variant_for_flags


def row(**changes: Any) -> dict[str, Any]:
    """A valid our-run row, with ``changes`` applied."""
    base = {
        "name": "tdn-T8-abc",
        "variant": "tdn",
        "s_tdm": True,
        "l_tdm": True,
        "shift": True,
        "backbone": "resnet18",
        "width": 0.25,
        "segments": 8,
        "input_size": 64,
        "crops": 1,
        "clips": 1,
        "dataset": "synthetic-motion",
        "top1": 40.0,
        "top5": 80.0,
        "gmacs_per_view": 0.11,
        "gmacs_total": 0.11,
        "params": 731803,
        "latency_ms": 11.0,
        "latency_device": "cpu (1 threads)",
        "seed": 0,
        "source_kind": "our-run",
        "source": json.dumps({"commit": "abc", "command": "python -m analysis.ablate", "config": {}}),
        "date": "2026-11-25T12:00:00+00:00",
    }
    return {**base, **changes}


def csv_bytes(rows: list[dict[str, Any]], columns: tuple[str, ...] = COLUMN_NAMES) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow(["" if r.get(c) is None else str(r.get(c)) for c in columns])
    return buffer.getvalue().encode()


def problems(data: bytes, **kwargs: Any) -> list[str]:
    with pytest.raises(ResultsError) as info:
        load_results(data, name="t.csv", **kwargs)
    return [str(p) for p in info.value.problems]


def test_valid_file_loads_with_schema_dtypes() -> None:
    publication = row(
        name="TDN-ResNet50 8f", seed=None, latency_ms=None, latency_device=None, source_kind="publication",
        source="MCG-NJU/TDN README", date="2026-11-25", crops=3, clips=10, gmacs_total=0.11 * 30,
    )  # fmt: skip
    df = load_results(csv_bytes([row(), row(seed=1), publication]), name="t.csv")
    assert list(df.columns) == list(COLUMN_NAMES) and len(df) == 3
    assert df["s_tdm"].dtype == bool and str(df["seed"].dtype) == "Int64" and df["top1"].dtype == float
    assert pd.isna(df.loc[2, "seed"]) and pd.isna(df.loc[2, "latency_ms"])
    assert SCHEMA_VERSION == 1


@pytest.mark.parametrize(
    ("change", "column", "why"),
    [
        ({"top1": "abc"}, "top1", "is not a number"),
        ({"top1": ""}, "top1", "is empty (NaN) but required"),
        ({"top5": "nan"}, "top5", "is empty (NaN) but required"),
        ({"top1": 101.0, "top5": 101.0}, "top1", "outside [0, 100]"),
        ({"top1": -1.0}, "top1", "outside [0, 100]"),
        ({"top1": 90.0, "top5": 80.0}, "top5", "below top-1"),
        ({"gmacs_per_view": -0.5, "gmacs_total": -0.5}, "gmacs_per_view", "outside (0, 10000]"),
        ({"gmacs_per_view": 1e6, "gmacs_total": 1e6}, "gmacs_per_view", "outside (0, 10000]"),
        ({"gmacs_total": 0.5}, "gmacs_total", "gmacs_per_view × crops × clips"),
        ({"params": -3}, "params", "outside [1, 1e+10]"),
        ({"params": 1e12}, "params", "outside [1, 1e+10]"),
        ({"params": 1.5}, "params", "not a whole number"),
        ({"variant": "tdn++"}, "variant", "is not one of tsn, tsm, s-tdm, l-tdm, tdn, custom"),
        ({"variant": "tsn"}, "variant", "does not match the flags"),
        ({"variant": "custom"}, "variant", "is 'tdn'"),
        ({"shift": "maybe"}, "shift", "is not a boolean"),
        ({"input_size": 16}, "input_size", "outside [32, 4096]"),
        ({"source_kind": "blog"}, "source_kind", "is not one of our-run, publication"),
        ({"source": "trained it myself"}, "source", "is not JSON"),
        ({"source": json.dumps({"commit": "abc"})}, "source", "lacks command, config"),
        ({"seed": None}, "seed", "required for our-run rows"),
        ({"latency_device": None}, "latency_device", "latency_ms is given"),
        ({"date": "25/11/2026"}, "date", "not an ISO 8601 date"),
        ({"name": " padded"}, "name", "leading or trailing spaces"),
    ],
)
def test_each_bad_value_is_named_with_row_and_column(change: dict, column: str, why: str) -> None:
    found = problems(csv_bytes([row(), row(**{"seed": 1, **change})]))
    assert any(f"t.csv, row 2 (line 3), column {column!r}:" in p and why in p for p in found), found


def test_every_bad_row_is_listed_not_only_the_first() -> None:
    rows = [row(top1="x"), row(seed=1), row(seed=2, params=-1, variant="tsn")]
    found = problems(csv_bytes(rows))
    assert len(found) == 3
    assert any("row 1 (line 2), column 'top1'" in p for p in found)
    assert any("row 3 (line 4), column 'params'" in p for p in found)
    assert any("row 3 (line 4), column 'variant'" in p for p in found)


def test_missing_and_extra_columns() -> None:
    columns = tuple(c for c in COLUMN_NAMES if c != "top5") + ("accuracy",)
    found = problems(csv_bytes([row()], columns))
    assert any("lacks the column(s) top5" in p for p in found)
    assert any("unknown column(s) 'accuracy'" in p for p in found)


def test_half_row_and_duplicate_row() -> None:
    data = csv_bytes([row(), row()]) + b"tdn-T8-abc,tdn,true\n"
    found = problems(data)
    assert any("row 2 (line 3)" in p and "repeats row 1" in p for p in found)
    assert any("row 3 (line 4)" in p and "has 3 fields; the header has 23" in p for p in found)


def test_file_level_problems() -> None:
    good = csv_bytes([row()])
    assert "limit" in problems(good, max_bytes=100)[0]
    assert "not UTF-8" in problems(good.replace(b"synthetic", b"synth\xe9tic"))[0]
    assert "binary file" in problems(b"PK\x03\x04\x00\x00zip")[0]
    assert "is empty" in problems(b"")[0]
    assert "lacks the column(s)" in problems(b'{"json": "not csv"}\n')[0]


def test_variant_for_flags_names_spec_variants() -> None:
    assert variant_for_flags(False, False, False) == "tsn"
    assert variant_for_flags(True, False, True) == "s-tdm"
    assert variant_for_flags(True, False, False) == "custom"


def test_write_append_and_load_all(tmp_path: Path) -> None:
    write_results([row()], tmp_path / "a.csv")
    append_row(tmp_path / "a.csv", row(seed=1))
    with pytest.raises(ResultsError, match="repeats row 2"):
        append_row(tmp_path / "a.csv", row(seed=1))
    with pytest.raises(ResultsError, match="column 'top1'"):
        append_row(tmp_path / "a.csv", row(seed=2, top1=200.0))
    (tmp_path / "zoo_source.csv").write_text("dataset,model\nx,y\n")  # raw input: never loaded as results
    df = load_all(tmp_path)
    assert list(df["seed"]) == [0, 1]
    (tmp_path / "b.csv").write_bytes(csv_bytes([row(top1="oops")]))
    with pytest.raises(ResultsError, match=r"b\.csv, row 1 \(line 2\), column 'top1'"):
        load_all(tmp_path)


def test_written_floats_round_trip_exactly(tmp_path: Path) -> None:
    r = row(gmacs_per_view=0.1 + 0.2, gmacs_total=(0.1 + 0.2) * 30, crops=3, clips=10, top1=100 / 3)
    write_results([r], tmp_path / "f.csv")
    df = load_results(tmp_path / "f.csv")
    assert df.loc[0, "gmacs_per_view"] == 0.1 + 0.2 and df.loc[0, "top1"] == 100 / 3

"""Figures and tables show exactly the rows' values: x/y per configuration, std over seeds as error bars."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from analysis.charts import accuracy_vs_flops, aggregate_seeds, filter_results, results_table
from analysis.pareto import pareto_front
from analysis.results import to_frame


def our_run(
    name: str, variant: str, flags: tuple[bool, bool, bool], seed: int | None, top1: float, **kw: Any
) -> dict:
    s, lt, sh = flags
    r = {
        "name": name, "variant": variant, "s_tdm": s, "l_tdm": lt, "shift": sh, "backbone": "resnet18",
        "width": 0.25, "segments": 8, "input_size": 64, "crops": 1, "clips": 1, "dataset": "synthetic-motion",
        "top1": top1, "top5": min(100.0, top1 + 30), "gmacs_per_view": 0.1, "gmacs_total": 0.1,
        "params": 700_000, "latency_ms": 10.0, "latency_device": "cpu (1 threads)", "seed": seed,
        "source_kind": "our-run", "date": "2026-11-25",
        "source": json.dumps({"commit": "c", "command": "x", "config": {"seed": seed}}),
    }  # fmt: skip
    return {**r, **kw}


@pytest.fixture
def results() -> pd.DataFrame:
    rows = [our_run("tsn-T8", "tsn", (False, False, False), s, t1) for s, t1 in enumerate([30.0, 34.0, 29.0])]
    rows += [
        our_run(
            "tdn-T8", "tdn", (True, True, True), s, t1, gmacs_per_view=0.2, gmacs_total=0.2, params=900_000
        )
        for s, t1 in enumerate([60.0, 70.0, 62.0])
    ]
    rows.append(
        our_run("tdn-T4", "tdn", (True, True, True), 0, 50.0, segments=4, gmacs_per_view=0.1, gmacs_total=0.1)
    )
    rows.append(
        our_run(
            "TDN-ResNet50 8f", "tdn", (True, True, True), None, 64.0, backbone="resnet50",
            dataset="Something-Something V2", source_kind="publication", source="README", latency_ms=None,
            latency_device=None, gmacs_per_view=35.6, gmacs_total=35.6, params=24_420_046,
        )
    )  # fmt: skip
    return to_frame(rows)


def test_aggregate_gives_mean_sample_std_and_n(results: pd.DataFrame) -> None:
    agg = aggregate_seeds(results).set_index("name")
    assert agg.loc["tdn-T8", "top1"] == pytest.approx(np.mean([60, 70, 62]))
    assert agg.loc["tdn-T8", "top1_std"] == pytest.approx(np.std([60, 70, 62], ddof=1))
    assert agg.loc["tdn-T8", "n"] == 3 and agg.loc["tdn-T8", "seeds"] == "0, 1, 2"
    assert agg.loc["tdn-T4", "n"] == 1 and agg.loc["tdn-T4", "top1_std"] == 0.0
    assert agg.loc["TDN-ResNet50 8f", "n"] == 1 and agg.loc["TDN-ResNet50 8f", "seeds"] == ""
    assert len(agg) == 4


def test_scatter_points_and_error_bars_equal_the_rows(results: pd.DataFrame) -> None:
    synthetic = filter_results(results, dataset="synthetic-motion")
    fig = accuracy_vs_flops(synthetic)
    traces = {t.name: t for t in fig.data}
    assert set(traces) == {"tsn", "tdn", "Pareto front"}
    tdn = traces["tdn"]
    by_name = {}
    for x, y, err, text in zip(tdn.x, tdn.y, tdn.error_y.array, tdn.text, strict=True):
        by_name[text.split("</b>")[0].removeprefix("<b>")] = (x, y, err)
    assert by_name["tdn-T4"] == (0.1, 50.0, 0.0)
    x, y, err = by_name["tdn-T8"]
    seeds = synthetic[synthetic["name"] == "tdn-T8"]
    assert x == seeds["gmacs_total"].iloc[0] and y == pytest.approx(seeds["top1"].mean())
    assert err == pytest.approx(seeds["top1"].std(ddof=1))
    tsn = traces["tsn"]
    assert list(tsn.x) == [0.1] and list(tsn.y) == [pytest.approx(31.0)]
    assert list(tsn.error_y.array) == [pytest.approx(np.std([30, 34, 29], ddof=1))]
    # marker area ∝ params: the larger model gets the larger size value
    assert tdn.marker.sizemode == "area" and max(tdn.marker.size) == 900_000


def test_pareto_line_follows_the_aggregated_points(results: pd.DataFrame) -> None:
    synthetic = filter_results(results, dataset="synthetic-motion")
    line = next(t for t in accuracy_vs_flops(synthetic).data if t.name == "Pareto front")
    agg = aggregate_seeds(synthetic)
    on = agg[pareto_front(agg)].sort_values("gmacs_total")
    assert list(line.x) == on["gmacs_total"].tolist() and list(line.y) == on["top1"].tolist()
    assert list(line.x) == [0.1, 0.2]  # tdn-T4 beats tsn at the same cost; tdn-T8 is the most accurate


def test_hover_shows_every_column(results: pd.DataFrame) -> None:
    fig = accuracy_vs_flops(results, log_x=True)
    text = next(t for t in fig.data if t.name == "tdn").text[0]
    for column in ("variant", "s_tdm", "backbone", "segments", "dataset", "gmacs_total", "params", "source"):
        assert f"{column}:" in text
    assert fig.layout.xaxis.type == "log"
    # one dashed front per dataset when datasets are mixed
    assert sum(t.name.startswith("Pareto front") for t in fig.data) == 2


def test_colour_by_another_column_and_empty_input(results: pd.DataFrame) -> None:
    fig = accuracy_vs_flops(results, color="segments", y="top5")
    assert {t.name for t in fig.data if t.mode == "markers"} == {"4", "8"}
    empty = accuracy_vs_flops(filter_results(results, dataset="nothing"))
    assert len(empty.data) == 0 and empty.layout.annotations[0].text == "no results match"


def test_filters(results: pd.DataFrame) -> None:
    assert len(filter_results(results, source_kind="publication")) == 1
    assert len(filter_results(results, segments=[4])) == 1
    assert len(filter_results(results, backbone="resnet18", segments=8)) == 6
    assert len(filter_results(results)) == len(results)


def test_results_table_is_sorted_and_tidy(results: pd.DataFrame) -> None:
    table = results_table(results)
    assert table.columns[0] == "name" and table.columns[-1] == "source" and len(table) == len(results)
    synthetic = table[table["dataset"] == "synthetic-motion"]
    assert synthetic["variant"].tolist()[:3] == ["tsn"] * 3  # ablation order: tsn before tdn
    assert synthetic["seed"].tolist()[:3] == [0, 1, 2]
    agg = results_table(results, aggregate=True)
    assert {"top1_std", "n", "seeds"} <= set(agg.columns) and len(agg) == 4

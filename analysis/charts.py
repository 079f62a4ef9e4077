"""Plotly figures and tidy tables of results; the app draws what these return and computes nothing itself.

Rows that differ only by ``seed`` (and what a seed changes: accuracies, latency, source, date) are one
configuration; ``aggregate_seeds`` turns them into one point with the mean, the sample standard deviation
(ddof=1; 0 for a single row) and the count ``n``.
"""

from __future__ import annotations

import html
from collections.abc import Collection
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from analysis.pareto import pareto_points
from analysis.schema import COLUMN_NAMES, VARIANT_NAMES

# What changes from one seed of a configuration to the next; every other column identifies the configuration.
PER_SEED_COLUMNS: tuple[str, ...] = ("seed", "top1", "top5", "latency_ms", "latency_device", "source", "date")
CONFIG_COLUMNS: tuple[str, ...] = tuple(c for c in COLUMN_NAMES if c not in PER_SEED_COLUMNS)
VARIANT_COLOURS: dict[str, str] = dict(
    zip(VARIANT_NAMES, ("#7f7f7f", "#1f77b4", "#2ca02c", "#ff7f0e", "#d62728", "#9467bd"), strict=True)
)
SOURCE_SYMBOLS: dict[str, str] = {"our-run": "circle", "publication": "diamond"}
AXIS_TITLES: dict[str, str] = {
    "gmacs_total": "GMACs per video (all views)",
    "gmacs_per_view": "GMACs per view",
    "params": "parameters",
    "latency_ms": "latency per view (ms)",
    "top1": "top-1 accuracy (%)",
    "top5": "top-5 accuracy (%)",
}
MAX_MARKER_PX = 36
MIN_MARKER_PX = 7
HOVER_SOURCE_CHARS = 160
# Display order of the results table (the schema's columns, most telling first; the long source last).
TABLE_COLUMNS: tuple[str, ...] = (
    "name", "dataset", "variant", "s_tdm", "l_tdm", "shift", "backbone", "width", "segments", "input_size",
    "crops", "clips", "top1", "top5", "gmacs_per_view", "gmacs_total", "params", "latency_ms", "latency_device",
    "seed", "source_kind", "date", "source",
)  # fmt: skip


def _matches(series: pd.Series, wanted: Any) -> pd.Series:
    if isinstance(wanted, Collection) and not isinstance(wanted, str):
        return series.isin(list(wanted))
    return series == wanted


def filter_results(
    df: pd.DataFrame,
    dataset: str | Collection[str] | None = None,
    backbone: str | Collection[str] | None = None,
    segments: int | Collection[int] | None = None,
    source_kind: str | Collection[str] | None = None,
) -> pd.DataFrame:
    """The rows matching every given filter; each filter is one value or a collection of accepted values."""
    mask = pd.Series(True, index=df.index)
    for column, wanted in (
        ("dataset", dataset),
        ("backbone", backbone),
        ("segments", segments),
        ("source_kind", source_kind),
    ):
        if wanted is not None:
            mask &= _matches(df[column], wanted).fillna(False).astype(bool)
    return df[mask].copy()


def _sample_std(values: pd.Series) -> float:
    values = values.dropna()
    return float(values.std(ddof=1)) if len(values) > 1 else 0.0


def aggregate_seeds(df: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration: mean and sample std of top-1/top-5 over its seeds, ``n`` and the seeds."""
    if df.empty:
        extra = ["top1_std", "top5_std", "n", "seeds"]
        return pd.DataFrame(columns=[*CONFIG_COLUMNS, "top1", "top5", *extra, "latency_ms", "latency_device"])
    grouped = df.groupby(list(CONFIG_COLUMNS), sort=False, dropna=False)
    out = grouped.agg(
        top1=("top1", "mean"),
        top1_std=("top1", _sample_std),
        top5=("top5", "mean"),
        top5_std=("top5", _sample_std),
        n=("top1", "size"),
        seeds=("seed", lambda s: ", ".join(str(int(v)) for v in s.dropna())),
        latency_ms=("latency_ms", "mean"),
        latency_device=("latency_device", lambda s: "; ".join(sorted({str(v) for v in s.dropna()}))),
        date=("date", "max"),
        source=("source", "first"),
    )
    return out.reset_index()


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return "–"
    if isinstance(value, float | np.floating):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
        return f"{value:,}"
    return str(value)


def _hover(row: pd.Series) -> str:
    """Every column of an aggregated row, accuracies as mean ± std (n)."""
    lines = [f"<b>{html.escape(str(row['name']))}</b>"]
    for column in row.index:
        if column in ("name", "top1_std", "top5_std", "n"):
            continue
        value = row[column]
        if column in ("top1", "top5"):
            text = f"{value:.2f} ± {row[column + '_std']:.2f} % (n={int(row['n'])})"
        elif column == "source":
            text = str(value)
            text = text if len(text) <= HOVER_SOURCE_CHARS else text[:HOVER_SOURCE_CHARS] + "…"
        else:
            text = _fmt(value)
        lines.append(f"{column}: {html.escape(text)}")
    return "<br>".join(lines)


def _colour_order(values: pd.Series) -> list[Any]:
    present = list(dict.fromkeys(values.tolist()))
    ranked = [v for v in VARIANT_NAMES if v in present]
    return ranked + sorted((v for v in present if v not in ranked), key=str)


def accuracy_vs_flops(
    df: pd.DataFrame,
    x: str = "gmacs_total",
    y: str = "top1",
    log_x: bool = False,
    color: str = "variant",
    size: str | None = "params",
    pareto: bool = True,
    title: str | None = None,
) -> go.Figure:
    """Accuracy against cost: one marker per configuration (mean over seeds, error bar = std over seeds),
    marker area ∝ ``size``, colour by ``color``, symbol by source kind, the Pareto front per dataset as a
    dashed line, and every column of the configuration in the hover."""
    points = aggregate_seeds(df)
    fig = go.Figure()
    fig.update_layout(
        title=title,
        xaxis_title=AXIS_TITLES.get(x, x),
        yaxis_title=AXIS_TITLES.get(y, y),
        legend_title_text=color,
        template="plotly_white",
    )
    if log_x:
        fig.update_xaxes(type="log")
    if points.empty:
        fig.add_annotation(text="no results match", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
        return fig
    sizes = pd.to_numeric(points[size], errors="coerce") if size else None
    sizeref = 2.0 * float(sizes.max()) / MAX_MARKER_PX**2 if sizes is not None and sizes.max() > 0 else None
    palette = qualitative.Plotly
    for k, value in enumerate(_colour_order(points[color])):
        group = points[points[color] == value]
        colour = palette[k % len(palette)]
        if color == "variant":
            colour = VARIANT_COLOURS.get(value, colour)
        marker: dict[str, Any] = {
            "color": colour,
            "symbol": [SOURCE_SYMBOLS.get(s, "circle") for s in group["source_kind"]],
            "line": {"width": 1, "color": "white"},
        }
        if sizeref is not None:
            marker.update(size=sizes[group.index].fillna(0).tolist(), sizemode="area", sizeref=sizeref)
            marker["sizemin"] = MIN_MARKER_PX
        else:
            marker["size"] = MIN_MARKER_PX * 2
        std_column = f"{y}_std"
        fig.add_trace(
            go.Scatter(
                x=group[x].astype(float).tolist(),
                y=group[y].astype(float).tolist(),
                mode="markers",
                name=str(value),
                marker=marker,
                error_y={"type": "data", "array": group[std_column].tolist(), "visible": True}
                if std_column in group
                else None,
                text=[_hover(r) for _, r in group.iterrows()],
                hovertemplate="%{text}<extra></extra>",
            )
        )
    if pareto:
        datasets = list(dict.fromkeys(points["dataset"]))
        for dataset in datasets:
            front = pareto_points(points[points["dataset"] == dataset], x, y)
            fig.add_trace(
                go.Scatter(
                    x=front[x].astype(float).tolist(),
                    y=front[y].astype(float).tolist(),
                    mode="lines",
                    name="Pareto front" + (f" · {dataset}" if len(datasets) > 1 else ""),
                    line={"dash": "dash", "color": "#444444", "width": 1.5},
                    hoverinfo="skip",
                )
            )
    return fig


def results_table(df: pd.DataFrame, aggregate: bool = False) -> pd.DataFrame:
    """Rows sorted by dataset, backbone, variant (ablation order), segments and protocol, columns in reading
    order. ``aggregate=True`` gives one row per configuration with mean/std over seeds instead."""
    table = aggregate_seeds(df) if aggregate else df.copy()
    rank = {v: i for i, v in enumerate(VARIANT_NAMES)}
    table = table.assign(_variant_rank=table["variant"].map(rank).fillna(len(rank)))
    keys = ["dataset", "backbone", "_variant_rank", "s_tdm", "l_tdm", "shift", "segments", "input_size"]
    keys += ["crops", "clips", "width", "name"] + ([] if aggregate else ["seed"])
    table = table.sort_values(keys, kind="stable", na_position="last").drop(columns="_variant_rank")
    if aggregate:
        first = [c for c in TABLE_COLUMNS if c in table and c not in ("seed", "top1", "top5")]
        stats = ["top1", "top1_std", "top5", "top5_std", "n", "seeds"]
        order = first[: first.index("gmacs_per_view")] + stats + first[first.index("gmacs_per_view") :]
    else:
        order = list(TABLE_COLUMNS)
    return table[order].reset_index(drop=True)

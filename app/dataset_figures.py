"""Plotly figures of a stored evaluation: per-class accuracy, the confusion matrix, per-class differences.

Every bar and every non-empty cell carries its class indices in ``customdata``, so a selection on the chart
names the classes (:func:`selected_classes`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from app.figures import ACCENT, MUTED, SECOND

NAMED_AXIS_MAX = 40  # more classes than this: the matrix axes show indices, names on hover


def _layout(fig: go.Figure, height: int) -> go.Figure:
    fig.update_layout(
        template="plotly_white", height=height, margin={"l": 8, "r": 16, "t": 8, "b": 8}, showlegend=False
    )
    return fig


def _short(name: str, limit: int = 38) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def per_class_bars(per_class: Sequence[dict], selected: int | None = None) -> go.Figure:
    """Accuracy of each class that has videos, worst first; the selected class in the accent colour."""
    rows = sorted((c for c in per_class if c["videos"]), key=lambda c: (c["accuracy"], c["index"]))
    fig = go.Figure(
        go.Bar(
            x=[f"{c['index']}: {_short(c['name'])}" for c in rows],
            y=[c["accuracy"] for c in rows],
            customdata=[[c["index"], c["videos"], c["correct"], c["name"]] for c in rows],
            marker_color=[ACCENT if c["index"] == selected else SECOND for c in rows],
            text=[f"{c['accuracy']:.0f}" for c in rows] if len(rows) <= 60 else None,
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{customdata[3]}<br>%{y:.1f} % (%{customdata[2]} of %{customdata[1]} videos)"
            "<extra></extra>",
        )
    )
    fig.update_yaxes(title="top-1 accuracy (%)", range=[0, 108])
    fig.update_xaxes(tickangle=-45, automargin=True, showticklabels=len(rows) <= 60)
    fig.update_layout(clickmode="event+select")
    return _layout(fig, 380)


def confusion_heatmap(
    confusion: Sequence[Sequence[int]], names: Sequence[str], cell: tuple | None = None
) -> go.Figure:
    """``confusion[true][predicted]`` as a heatmap (rows = true class); non-empty cells are selectable."""
    matrix = np.asarray(confusion, dtype=float)
    k = len(names)
    ticks = [_short(n, 30) for n in names] if k <= NAMED_AXIS_MAX else [str(i) for i in range(k)]
    shown = np.where(matrix > 0, matrix, np.nan)
    # The heatmap only paints: Streamlit selects points of scatter traces, not heatmap cells, so every
    # non-empty cell carries a (transparent) marker that takes the hover and the click.
    heat = go.Heatmap(
        z=shown,
        x=ticks,
        y=ticks,
        colorscale="Blues",
        hoverinfo="skip",
        showscale=True,
        colorbar={"title": "videos", "thickness": 12},
        xgap=1,
        ygap=1,
    )
    t_idx, p_idx = np.nonzero(matrix)
    chosen = [(int(t), int(p)) == cell for t, p in zip(t_idx, p_idx, strict=True)]
    points = go.Scatter(
        x=[ticks[p] for p in p_idx],
        y=[ticks[t] for t in t_idx],
        mode="markers",
        marker={
            "symbol": "square",
            "size": max(6, min(24, 520 // max(k, 1))),
            "color": "rgba(0,0,0,0)",
            "line": {"width": [3 if c else 0 for c in chosen], "color": ACCENT},
        },
        customdata=[
            [int(t), int(p), names[t], names[p], int(matrix[t, p])] for t, p in zip(t_idx, p_idx, strict=True)
        ],
        hovertemplate="true: %{customdata[2]}<br>predicted: %{customdata[3]}<br>%{customdata[4]} videos"
        "<extra></extra>",
    )
    fig = go.Figure([heat, points])
    fig.update_yaxes(title="true class", autorange="reversed", automargin=True, type="category")
    fig.update_xaxes(title="predicted class", automargin=True, tickangle=-45, type="category")
    fig.update_layout(clickmode="event+select")
    return _layout(fig, max(480, min(1000, 200 + 26 * k)))


def difference_bars(rows: Sequence[dict], name_a: str, name_b: str) -> go.Figure:
    """Per-class accuracy of A minus B (points), most in B's favour first."""
    rows = sorted(rows, key=lambda r: (r["difference"], r["index"]))
    fig = go.Figure(
        go.Bar(
            x=[f"{r['index']}: {_short(r['name'])}" for r in rows],
            y=[r["difference"] for r in rows],
            customdata=[[r["index"], r["name"], r["a"], r["b"]] for r in rows],
            marker_color=[SECOND if r["difference"] >= 0 else ACCENT for r in rows],
            hovertemplate="%{customdata[1]}<br>"
            + f"{name_a}: %{{customdata[2]:.1f}} %<br>{name_b}: %{{customdata[3]:.1f}} %<extra></extra>",
        )
    )
    fig.add_hline(y=0, line_color=MUTED)
    fig.update_yaxes(title=f"accuracy difference, {_short(name_a, 24)} − {_short(name_b, 24)} (points)")
    fig.update_xaxes(tickangle=-45, automargin=True, showticklabels=len(rows) <= 60)
    return _layout(fig, 360)


def selected_classes(state: object) -> tuple[int, int | None] | None:
    """(true class, predicted class or None) from a Plotly selection event of these charts, else None.

    Bars carry ``[class, ...]`` (predicted None), matrix cells ``[true, predicted, ...]``."""
    try:
        points = state["selection"]["points"]  # type: ignore[index]
    except (KeyError, TypeError):
        return None
    for point in points or []:
        data = point.get("customdata") if isinstance(point, dict) else None
        if not data or not isinstance(data[0], (int, float)):
            continue
        if len(data) >= 5:
            return int(data[0]), int(data[1])
        return int(data[0]), None
    return None

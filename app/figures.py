"""Small Plotly figures of numbers the library already computed (per-segment importance, GMACs)."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

ACCENT = "#d1495b"
SECOND = "#2e86ab"
MUTED = "#9aa5b1"


def _layout(fig: go.Figure, height: int) -> go.Figure:
    fig.update_layout(
        template="plotly_white", height=height, margin={"l": 8, "r": 16, "t": 8, "b": 8}, showlegend=False
    )
    return fig


def segment_importance(
    names: Sequence[str], values: Sequence[Sequence[float]], frame_indices: Sequence[int]
) -> go.Figure:
    """Grouped bars: one group per segment, one bar per model."""
    labels = [f"seg {t + 1}<br>frame {int(f)}" for t, f in enumerate(frame_indices)]
    fig = go.Figure(
        [
            go.Bar(name=name, x=labels, y=list(v), marker_color=(ACCENT, SECOND, MUTED)[k % 3])
            for k, (name, v) in enumerate(zip(names, values, strict=True))
        ]
    )
    fig.update_layout(barmode="group")
    fig.update_yaxes(title="segment importance")
    _layout(fig, 300)
    fig.update_layout(showlegend=True, legend={"orientation": "h", "y": 1.12})
    return fig


def stage_gmacs(stages: dict[str, float]) -> go.Figure:
    names = list(stages)
    fig = go.Figure(
        go.Bar(
            x=[stages[n] for n in names],
            y=names,
            orientation="h",
            marker_color=[SECOND if "TDM" in n else MUTED for n in names],
            text=[f"{stages[n]:.3g}" for n in names],
            textposition="auto",
            hovertemplate="%{y}: %{x:.4g} GMACs<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_xaxes(title="GMACs per view")
    return _layout(fig, 60 + 34 * len(names))


def metric_boxes(groups: dict[str, Sequence[float]], title: str) -> go.Figure:
    """One box (with its points) per group, e.g. one per model of the compare study."""
    fig = go.Figure(
        [
            go.Box(y=list(values), name=name, boxpoints="all", jitter=0.4, pointpos=0, marker_size=3,
                   marker_color=(ACCENT, SECOND, MUTED)[k % 3])
            for k, (name, values) in enumerate(groups.items())
        ]
    )  # fmt: skip
    fig.update_yaxes(title=title)
    return _layout(fig, 320)

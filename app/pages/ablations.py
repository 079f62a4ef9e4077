"""Ablations: accuracy against cost for the stored results (official zoo, our runs) and the user's own file."""

from __future__ import annotations

import hashlib

import pandas as pd
import streamlit as st

from analysis.charts import AXIS_TITLES, accuracy_vs_flops, filter_results, results_table
from analysis.results import RESULTS_DIR, STUDY_PREFIX, ResultsError, results_files
from app import cached, figures
from app.dataset_data import dataset_settings
from app.widgets import describe_failure

STUDY_METRICS = {
    "mask_energy": "share of heatmap energy on the object",
    "mask_ratio": "object share ÷ object area (1 = no better than uniform)",
    "motion_energy": "share of heatmap energy on moving pixels",
    "prob_label": "probability of the true class",
    "road": "ROAD (higher: the heatmap points at what the model needs)",
    "static_sum": "segment importance, static neutraliser (sum over segments)",
    "neighbour_sum": "segment importance, neighbour neutraliser (sum over segments)",
}
X_AXES = ("gmacs_total", "gmacs_per_view", "params", "latency_ms")
Y_AXES = ("top1", "top5")


def show_results_error(error: ResultsError, what: str) -> None:
    problems = "\n".join(f"- {p}" for p in error.problems[:20])
    more = f"\n- … and {len(error.problems) - 20} more" if len(error.problems) > 20 else ""
    st.error(f"**{what}** does not follow the results schema:\n{problems}{more}", icon=":material/error:")


def stored_results() -> pd.DataFrame | None:
    """The shipped results CSVs, and the results of evaluations run from the Dataset page (``results.csv`` in
    ``TDN_LENS_EVAL_DIR``), so a reproduction sits beside the zoo's figure."""
    frames = []
    evaluated = dataset_settings().eval_dir / "results.csv"
    for path in results_files(RESULTS_DIR) + ([evaluated] if evaluated.is_file() else []):
        try:
            frames.append(cached.results_file(str(path), path.stat().st_mtime_ns))
        except ResultsError as e:
            show_results_error(e, path.name)
        except Exception as e:
            st.error(f"Cannot read {path.name}: {describe_failure(e)}", icon=":material/error:")
    return pd.concat(frames, ignore_index=True) if frames else None


def uploaded() -> pd.DataFrame | None:
    file = st.sidebar.file_uploader(
        "Your results (CSV)",
        type=["csv"],
        key="results_upload",
        help="A CSV with the results-schema header (see analysis/schema.py); it is checked row by row and drawn "
        "together with the stored results.",
    )
    if file is None:
        return None
    data = file.getvalue()
    try:
        frame = cached.uploaded_results(hashlib.sha256(data).hexdigest(), file.name, _data=data)
    except ResultsError as e:
        show_results_error(e, file.name)
        return None
    except Exception as e:
        st.error(f"Cannot read {file.name}: {describe_failure(e)}", icon=":material/error:")
        return None
    st.success(
        f"{file.name}: {len(frame)} valid rows, drawn with the stored results.", icon=":material/check:"
    )
    return frame


def _options(frame: pd.DataFrame, column: str) -> list:
    return sorted(v for v in frame[column].dropna().unique().tolist())


def _richest_dataset(frame: pd.DataFrame) -> str:
    counts = frame.groupby("dataset").agg(variants=("variant", "nunique"), rows=("name", "size"))
    return str(counts.sort_values(["variants", "rows"], ascending=False).index[0])


def _mean(stats: dict, metric: str) -> float | None:
    return stats.get("metrics", {}).get(metric, {}).get("mean")


def _fmt(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.1f} %" if percent else f"{value:.3g}"


def study_summary(summary: dict) -> None:
    rows = [
        {
            "model": key,
            "variant": stats.get("variant", ""),
            "clips": stats.get("clips"),
            "accuracy": _fmt(stats.get("accuracy"), percent=True),
            "heatmap on the object": _fmt(_mean(stats, "mask_energy"), percent=True),
            "object area": _fmt(_mean(stats, "mask_area_share"), percent=True),
            "on moving pixels": _fmt(_mean(stats, "motion_energy"), percent=True),
            "pointing game": _fmt(stats.get("pointing_game_pooled", _mean(stats, "pointing_game"))),
            "ROAD": _fmt(_mean(stats, "road")),
        }
        for key, stats in summary.get("models", {}).items()
    ]
    st.table(pd.DataFrame(rows), hide_index=True)
    paired = [
        {
            "difference (per clip)": name,
            "mean": _fmt(stats.get("mean")),
            "median": _fmt(stats.get("median")),
            "first model higher on": _fmt(stats.get("share_a_higher"), percent=True),
        }
        for name, stats in summary.get("paired", {}).items()
    ]
    if paired:
        st.table(pd.DataFrame(paired), hide_index=True)
    dataset = summary.get("dataset", {})
    st.caption(
        f"Means over {dataset.get('num', '?')} held-out clips (seed {dataset.get('seed', '?')}), "
        f"{summary.get('method', 'gradcam')} at {summary.get('layer', 'res5')}, target = the true class. "
        "Pointing game: share of the segments showing the actor moving whose heatmap maximum lies on the "
        "actor (dilated mask). "
        f"Recorded {summary.get('date', '?')} at commit {str(summary.get('commit', '?'))[:10]} on "
        f"{summary.get('machine', '?')}: `{summary.get('command', '')}`"
    )


def compare_study() -> None:
    st.subheader("TDN against its TSN twin")
    path = RESULTS_DIR / f"{STUDY_PREFIX}.csv"
    sidecar = path.with_suffix(".json")
    if not path.is_file() and not sidecar.is_file():
        st.caption(
            "The compare study (TDN vs TSN on held-out clips: heatmap on the object and on the moving pixels, "
            f"faithfulness, segment importance) appears here once {path.name} is written by "
            "`python -m analysis.compare_study`."
        )
        return
    try:
        frame, summary = cached.study(
            str(path),
            path.stat().st_mtime_ns if path.is_file() else 0,
            sidecar.stat().st_mtime_ns if sidecar.is_file() else 0,
        )
    except Exception as e:
        st.error(f"Cannot read the compare study: {describe_failure(e)}", icon=":material/error:")
        return
    if summary is not None:
        study_summary(summary)
    if frame is not None and "model" in frame:
        metrics = [m for m in STUDY_METRICS if m in frame]
        if metrics:
            metric = st.selectbox(
                "Per-clip distribution of", metrics, format_func=STUDY_METRICS.get, key="study_metric"
            )
            groups = {str(k): g[metric].dropna().tolist() for k, g in frame.groupby("model", sort=False)}
            st.plotly_chart(figures.metric_boxes(groups, STUDY_METRICS[metric]), key="study_boxes")
        with st.expander(f"All {len(frame)} rows of {path.name}"):
            st.dataframe(frame, hide_index=True)


def main() -> None:
    st.title("Ablations")
    st.caption(
        "Accuracy against cost for every stored result: the official TDN model zoo (diamonds, as published) and "
        "our own runs (circles), one marker per configuration averaged over seeds, marker area ∝ parameters, "
        "dashed line = Pareto front."
    )
    stored = stored_results()
    st.sidebar.header("Your results")
    yours = uploaded()
    frames = [f for f in (stored, yours) if f is not None]
    if not frames:
        st.info("No results yet: upload a results CSV in the sidebar.", icon=":material/table:")
        compare_study()
        return
    df = pd.concat(frames, ignore_index=True)

    sidebar = st.sidebar
    sidebar.header("Filter")
    datasets = sidebar.multiselect(
        "Dataset",
        _options(df, "dataset"),
        default=[_richest_dataset(df)],
        help="Starts on the dataset with the most variants (the ablations), then the most rows.",
    )
    backbones = sidebar.multiselect("Backbone", _options(df, "backbone"))
    segments = sidebar.multiselect("Segments", _options(df, "segments"))
    kinds = sidebar.multiselect("Source", _options(df, "source_kind"))
    sidebar.header("Axes")
    x = sidebar.selectbox("Cost", X_AXES, format_func=AXIS_TITLES.get)
    y = sidebar.selectbox("Accuracy", Y_AXES, format_func=AXIS_TITLES.get)
    log_x = sidebar.toggle("Log scale for cost", value=False)
    color = sidebar.selectbox("Colour by", ["variant", "backbone", "segments", "dataset", "source_kind"])

    shown = filter_results(
        df,
        dataset=datasets or None,
        backbone=backbones or None,
        segments=segments or None,
        source_kind=kinds or None,
    )
    title = ", ".join(datasets) if datasets else "all datasets"
    st.plotly_chart(
        accuracy_vs_flops(shown, x=x, y=y, log_x=log_x, color=color, title=title), key="ablation_chart"
    )
    st.caption(
        f"{len(shown)} of {len(df)} rows match the filters"
        + (f"; {len(yours)} are yours." if yours is not None else ".")
    )
    aggregate = st.toggle("One row per configuration (mean ± std over seeds)", value=False)
    st.dataframe(results_table(shown, aggregate=aggregate), hide_index=True)
    compare_study()


main()

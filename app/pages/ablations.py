"""Ablations: accuracy against cost for the stored results (official zoo, our runs) and the user's own file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import streamlit as st

from analysis.charts import AXIS_TITLES, accuracy_vs_flops, filter_results, results_table
from analysis.results import RESULTS_DIR, ResultsError, results_files
from app import cached
from app.widgets import describe_failure

COMPARE_STUDY = "compare_study"  # compare-study outputs have their own columns; not results-schema files
X_AXES = ("gmacs_total", "gmacs_per_view", "params", "latency_ms")
Y_AXES = ("top1", "top5")


def show_results_error(error: ResultsError, what: str) -> None:
    problems = "\n".join(f"- {p}" for p in error.problems[:20])
    more = f"\n- … and {len(error.problems) - 20} more" if len(error.problems) > 20 else ""
    st.error(f"**{what}** does not follow the results schema:\n{problems}{more}", icon=":material/error:")


def stored_results() -> pd.DataFrame | None:
    frames = []
    for path in results_files(RESULTS_DIR):
        if path.stem.startswith(COMPARE_STUDY):
            continue
        try:
            frames.append(cached.results_file(str(path), path.stat().st_mtime_ns))
        except ResultsError as e:
            show_results_error(e, path.name)
        except Exception as e:  # noqa: BLE001
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
    except Exception as e:  # noqa: BLE001
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


def compare_study() -> None:
    files = sorted(p for p in RESULTS_DIR.glob(f"{COMPARE_STUDY}*") if p.suffix in (".csv", ".json"))
    st.subheader("TDN against its TSN twin")
    if not files:
        st.caption(
            "The compare study (TDN vs TSN on the sample clips: heatmap on the moving pixels and on the object, "
            "segment importance) appears here once assets/results/compare_study.csv is written."
        )
        return
    for path in files:
        try:
            if path.suffix == ".csv":
                st.dataframe(pd.read_csv(path), hide_index=True)
            else:
                with st.expander(f"{path.name}"):
                    st.json(json.loads(path.read_text()))
        except Exception as e:  # noqa: BLE001
            st.error(f"Cannot read {path.name}: {describe_failure(e)}", icon=":material/error:")
    st.caption(f"From {', '.join(p.name for p in files)} in {Path(RESULTS_DIR).name}/.")


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

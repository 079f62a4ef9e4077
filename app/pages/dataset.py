"""Dataset: a checkpoint on a whole labelled set — does it reproduce the zoo, and where and why does it fail?

Shows a stored evaluation (``tdn.datasets``: the shipped ones in ``assets/eval/evaluations`` and those of
``TDN_LENS_EVAL_DIR``): top-1 / top-5 / mean class accuracy, per-class accuracy worst first, the confusion matrix,
the most confused pairs, and the clips behind a class or a cell (select it on a chart or in the pickers), each of
which opens in Inspect. A second evaluation can be compared class by class and clip by clip. With
``TDN_LENS_DATA_ROOT`` set, new evaluations run from the page on lists under that root.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import streamlit as st

from analysis.evaluations import record_evaluation
from app import cached, dataset_figures
from app.dataset_data import (
    DatasetSettings,
    dataset_settings,
    evaluation,
    evaluation_files,
    faithfulness,
    faithfulness_path,
    inspect_route,
    resolve_under,
    slug,
    thumbnail,
)
from app.settings import checkpoint_files, demo_checkpoint, guess_segments, settings
from app.widgets import describe_failure
from tdn.datasets import (
    PROTOCOLS,
    DatasetError,
    Evaluation,
    EvaluationMismatch,
    evaluate_dataset,
    read_dataset,
)

CLIP_COLUMNS = 6
MAX_CLIPS_SHOWN = 24
NEXT_SELECTION = "_dataset_select_next"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} %"


def _label(path: Path) -> str:
    try:
        ev = evaluation(path)
    except Exception:
        return f"{path.name} (unreadable)"
    return f"{ev.name} · top-1 {_pct(ev.summary['metrics'].get('top1'))}"


def _set_cell(true: int | None, pred: int | None) -> None:
    st.session_state["dataset_true"] = true
    st.session_state["dataset_pred"] = pred


def _on_chart_select(chart_key: str) -> None:
    picked = dataset_figures.selected_classes(st.session_state.get(chart_key))
    if picked is not None:
        _set_cell(*picked)
        st.session_state.pop("dataset_pair", None)


def _on_bar_select() -> None:
    _on_chart_select("dataset_per_class")


def _on_cell_select() -> None:
    _on_chart_select("dataset_confusion")


def _on_pair(pairs: list[dict]) -> None:
    index = st.session_state.get("dataset_pair")
    if index is None:
        _set_cell(None, None)
    else:
        _set_cell(pairs[index]["true"], pairs[index]["pred"])


# ---------------------------------------------------------------------------------------------- sections


def headline(ev: Evaluation) -> None:
    s, m = ev.summary, ev.summary["metrics"]
    data, ckpt, proto = s.get("dataset", {}), s.get("checkpoint", {}), s.get("protocol", {})
    cols = st.columns(5)
    cols[0].metric("Top-1", _pct(m.get("top1")))
    cols[1].metric("Top-5", _pct(m.get("top5")))
    cols[2].metric("Mean class accuracy", _pct(m.get("mean_class")), help="the mean of the per-class top-1")
    listed = data.get("listed", m.get("videos"))
    cols[3].metric("Videos evaluated", f"{m.get('videos', 0):,}", help=f"of {listed} listed")
    left_out = int(data.get("missing") or 0) + int(data.get("unknown") or 0) + int(m.get("failed") or 0)
    cols[4].metric(
        "Left out", f"{left_out:,}", help="missing files + classes the checkpoint lacks + unreadable"
    )
    timing, prov = s.get("timing", {}), s.get("provenance", {})
    rate = timing.get("videos_per_s")
    st.caption(
        f"**{ckpt.get('name', '?')}** ({ckpt.get('file', '')}) · protocol **{proto.get('name', '?')}**: "
        f"{ckpt.get('num_segments', '?')} segments × {proto.get('crops', '?')} crop(s) × {proto.get('clips', '?')} "
        f"clip(s) at {proto.get('view_size', '?')} px, views fused by the mean of their softmax · list "
        f"{data.get('list_file', '?')} ({data.get('format', '?')}) · recorded {prov.get('date', '?')} at commit "
        f"{str(prov.get('commit') or '?')[:10]}"
        + (f" · {rate:.1f} videos/s on {timing.get('device', '?')}" if rate else "")
    )
    if not s.get("complete", True):
        st.warning("This evaluation is incomplete (interrupted); the figures cover the videos done so far.")
    for note in data.get("notes") or []:
        st.caption(f"Note: {note}")
    problems = (s.get("failures") or []) + (data.get("missing_list") or []) + (data.get("unknown_list") or [])
    if problems:
        with st.expander(f"{left_out} video(s) left out"):
            st.dataframe(pd.DataFrame(problems), hide_index=True)


def charts(ev: Evaluation) -> None:
    m = ev.summary["metrics"]
    names = ev.class_names
    true, pred = st.session_state.get("dataset_true"), st.session_state.get("dataset_pred")
    st.subheader("Per-class accuracy")
    st.plotly_chart(
        dataset_figures.per_class_bars(m["per_class"], true),
        key="dataset_per_class",
        on_select=_on_bar_select,
        selection_mode="points",
    )
    st.caption("Worst first. Click a bar to list the clips of that class below.")
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.subheader("Confusion matrix")
        cell = (true, pred) if true is not None and pred is not None else None
        st.plotly_chart(
            dataset_figures.confusion_heatmap(m["confusion"], names, cell),
            key="dataset_confusion",
            on_select=_on_cell_select,
            selection_mode="points",
        )
        st.caption("Rows: true class, columns: predicted. Click a cell to list the clips behind it.")
    with right:
        confused_pairs(m.get("confused_pairs") or [])


def _figure(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def faithfulness_section(path: Path) -> None:
    """Per class: how faithful the model's heatmaps are on this set (``explain --summary``), when stored."""
    st.subheader("Faithfulness per class")
    try:
        summary = faithfulness(path)
    except (ValueError, OSError) as e:
        st.error(
            f"Cannot read {faithfulness_path(path).name}: {describe_failure(e)}", icon=":material/error:"
        )
        return
    if summary is None:
        st.caption(
            f"No faithfulness summary beside this evaluation. Make one with `python -m tdn explain DIR --summary "
            f"--out OUT` and put `OUT/faithfulness.json` here as `{faithfulness_path(path).name}`."
        )
        return
    overall = summary["overall"]
    cols = st.columns(4)
    cols[0].metric(
        "ROAD", _figure(overall.get("road")), help="(LeRF − MoRF) / 2 of the heatmap: higher is more faithful"
    )
    cols[1].metric(
        "Pointing game",
        _figure(overall.get("pointing_game")),
        help="share of the segments showing the actor moving whose heatmap maximum lies on the actor",
    )
    cols[2].metric("Peak segment importance", _figure(overall.get("importance_max")))
    cols[3].metric("Energy on the actor", _figure(overall.get("mask_energy")))
    grouped = "true class" if summary.get("group_by") == "label" else "explained (predicted) class"
    rows = [
        {
            "class": row["name"],
            "clips": row["clips"],
            "correct": row.get("correct"),
            "ROAD": row.get("road"),
            "pointing game": row.get("pointing_game"),
            "segments counted": row.get("pointing_segments"),
            "peak importance": row.get("importance_max"),
            "energy share": row.get("mask_energy"),
            "area share": row.get("mask_area_share"),
            "best share (ceiling)": row.get("mask_energy_ceiling"),
        }
        for row in summary["per_class"]
    ]
    st.dataframe(
        pd.DataFrame(rows),
        key="dataset_faithfulness",
        hide_index=True,
        column_config={
            k: st.column_config.NumberColumn(format="%.3f")
            for k in (
                "ROAD",
                "pointing game",
                "peak importance",
                "energy share",
                "area share",
                "best share (ceiling)",
            )
        },
    )
    st.caption(
        f"{summary.get('method', 'gradcam')} at {summary.get('layer', '?')} on {summary['clips']} clips of "
        f"{summary.get('checkpoint', {}).get('name', '?')}, grouped by {grouped}. Pointing game and energy need "
        "the actor's mask (the generated set has one beside every clip); the ceiling is the best share a map of "
        "that layer's resolution can reach."
    )


def confused_pairs(pairs: list[dict]) -> None:
    st.subheader("Most confused pairs")
    if not pairs:
        st.caption("No video was mistaken for another class.")
        return
    table = pd.DataFrame(
        [
            {
                "true class": f"{p['true']}: {p['true_name']}",
                "predicted as": f"{p['pred']}: {p['pred_name']}",
                "videos": p["count"],
                "of the class": f"{p['share_of_true']:.0f} %",
            }
            for p in pairs
        ]
    )
    st.dataframe(table, hide_index=True)
    st.selectbox(
        "Show the clips of a pair",
        [None, *range(len(pairs))],
        format_func=lambda i: "—" if i is None else f"{pairs[i]['true_name']} → {pairs[i]['pred_name']}",
        key="dataset_pair",
        on_change=_on_pair,
        args=(pairs,),
    )


def _open_in_inspect(path: Path) -> None:
    route = inspect_route(path, settings())
    for key, value in route.state.items():
        st.session_state[key] = value
    st.switch_page("app/pages/inspect.py", query_params=route.query)


def clip_grid(ev: Evaluation, records: list[dict], key: str) -> None:
    """Thumbnails of ``records`` with true and predicted class, confidence and an Inspect button."""
    shown = records[:MAX_CLIPS_SHOWN]
    if len(records) > len(shown):
        st.caption(f"The first {len(shown)} of {len(records)} clips (least confident first).")
    config = settings()
    opened: Path | None = None
    for start in range(0, len(shown), CLIP_COLUMNS):
        for column, record in zip(
            st.columns(CLIP_COLUMNS, gap="small"), shown[start : start + CLIP_COLUMNS], strict=False
        ):
            path = ev.path_of(record)
            with column:
                try:
                    st.image(thumbnail(path), width="stretch")
                except Exception as e:
                    st.caption(f"no preview: {describe_failure(e)}")
                if "error" in record:
                    st.markdown(
                        f"**{record['file']}**  \ntrue: {record['label_name']}  \n:red[{record['error']['message']}]"
                    )
                    continue
                top = record["topk"][0][1]
                mark = ":green[✓]" if record["correct"] else ":red[✗]"
                st.markdown(
                    f"{mark} **{record['file']}**  \ntrue: {record['label_name']} ({100 * record['prob_label']:.0f} %)  \n"
                    f"predicted: {record['pred_name']} ({100 * top:.0f} %)"
                )
                route = inspect_route(path, config)
                if st.button(
                    "Open in Inspect",
                    key=f"{key}:{record['key']}",
                    disabled=not route.possible,
                    help=route.reason,
                    width="stretch",
                ):
                    opened = path
    if opened is not None:
        _open_in_inspect(opened)


def clips_section(ev: Evaluation) -> None:
    names = ev.class_names
    st.subheader("Clips")
    options = [None, *range(len(names))]
    for k in ("dataset_true", "dataset_pred"):
        if st.session_state.get(k) not in options:
            st.session_state[k] = None
    left, right, third = st.columns([2, 2, 1])
    true = left.selectbox(
        "True class",
        options,
        format_func=lambda i: "any" if i is None else f"{i}: {names[i]}",
        key="dataset_true",
    )
    pred = right.selectbox(
        "Predicted as",
        options,
        format_func=lambda i: "any" if i is None else f"{i}: {names[i]}",
        key="dataset_pred",
    )
    wrong = third.toggle("Only mistakes", value=False, key="dataset_wrong")
    if true is None and pred is None and not wrong:
        st.caption("Pick a class or a cell (on the charts or here) to list its clips.")
        return
    chosen = [
        r
        for r in ev.records
        if (true is None or r["label"] == true)
        and (pred is None or r.get("pred") == pred)
        and (not wrong or not r.get("correct", False))
    ]
    chosen.sort(key=lambda r: (r.get("correct", False), r.get("prob_label", 0.0)))
    if not chosen:
        st.info("No clip matches.", icon=":material/filter_alt_off:")
        return
    st.caption(f"{len(chosen)} clip(s).")
    clip_grid(ev, chosen, "inspect")


def compare_section(a: Evaluation, b: Evaluation) -> None:
    st.subheader(f"{a.name} against {b.name}")
    if a.class_names != b.class_names:
        st.warning("The two evaluations use different class lists; only their headline figures compare.")
        return
    rows = [
        {
            "index": x["index"],
            "name": x["name"],
            "a": x["accuracy"],
            "b": y["accuracy"],
            "difference": x["accuracy"] - y["accuracy"],
        }
        for x, y in zip(a.summary["metrics"]["per_class"], b.summary["metrics"]["per_class"], strict=True)
        if x["accuracy"] is not None and y["accuracy"] is not None
    ]
    ma, mb = a.summary["metrics"], b.summary["metrics"]
    cols = st.columns(3)
    for col, key, label in zip(
        cols, ("top1", "top5", "mean_class"), ("Top-1", "Top-5", "Mean class"), strict=True
    ):
        if ma.get(key) is not None and mb.get(key) is not None:
            col.metric(label, _pct(ma[key]), f"{ma[key] - mb[key]:+.1f} points against {b.name}")
    if rows:
        st.plotly_chart(dataset_figures.difference_bars(rows, a.name, b.name), key="dataset_difference")
    by_key = {r["key"]: r for r in b.records if "error" not in r}
    both = [(r, by_key[r["key"]]) for r in a.records if "error" not in r and r["key"] in by_key]
    if not both:
        st.caption("The two evaluations share no clip.")
        return

    def table(pairs: list[tuple[dict, dict]]) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    "clip": x["file"],
                    "true class": x["label_name"],
                    f"{a.name}": f"{x['pred_name']} ({100 * x['topk'][0][1]:.0f} %)",
                    f"{b.name}": f"{y['pred_name']} ({100 * y['topk'][0][1]:.0f} %)",
                }
                for x, y in pairs
            ]
        )

    a_only = [(x, y) for x, y in both if x["correct"] and not y["correct"]]
    b_only = [(x, y) for x, y in both if y["correct"] and not x["correct"]]
    st.caption(
        f"{len(both)} clips in both: {len(a_only)} right only in {a.name}, {len(b_only)} right only in {b.name}."
    )
    left, right = st.columns(2, gap="large")
    with left, st.container(key="dataset_a_only"):
        st.markdown(f"**Right in {a.name}, wrong in {b.name}**")
        st.dataframe(table(a_only), hide_index=True)
    with right, st.container(key="dataset_b_only"):
        st.markdown(f"**Right in {b.name}, wrong in {a.name}**")
        st.dataframe(table(b_only), hide_index=True)


def run_section(config: DatasetSettings) -> None:
    st.subheader("Run an evaluation")
    if config.data_root is None:
        st.caption(
            "Running evaluations from this page is off. Set TDN_LENS_DATA_ROOT to a server folder of datasets to "
            "allow it (only lists and videos under that folder can be read), or run "
            "`python -m tdn evaluate` / `tdn.datasets.evaluate_dataset` and point TDN_LENS_EVAL_DIR at the output."
        )
        return
    app_config = settings()
    files = checkpoint_files(app_config)
    demo = demo_checkpoint(app_config)
    with st.form("dataset_run"):
        list_text = st.text_input(
            f"List file under {config.data_root}",
            key="dataset_run_list",
            placeholder="ssv2/something-something-v2-validation.json",
            help="A TDN list file, an SSv1 CSV, an SSv2 validation JSON, a Kinetics-400 CSV or a labels.csv.",
        )
        root_text = st.text_input(
            "Videos or frame folders under (default: the list's folder)", key="dataset_run_root"
        )
        left, mid, right = st.columns(3)
        checkpoint = left.selectbox(
            "Checkpoint",
            [str(p) for p in files],
            format_func=lambda p: ("Demo TDN · " if demo and Path(p) == demo else "") + Path(p).name,
            key="dataset_run_checkpoint",
        )
        segments = mid.radio(
            "Segments (official files)",
            [8, 16],
            horizontal=True,
            key="dataset_run_segments",
            index=[8, 16].index(guess_segments(Path(checkpoint))) if checkpoint else 0,
        )
        protocol = right.selectbox("Protocol", list(PROTOCOLS), key="dataset_run_protocol")
        submitted = st.form_submit_button("Run", type="primary")
    if not submitted:
        return
    try:
        list_file = resolve_under(config.data_root, list_text)
        root = resolve_under(config.data_root, root_text) if root_text.strip() else list_file.parent
        try:
            loaded = cached.load_model(Path(checkpoint), None, "auto")
        except Exception:
            loaded = cached.load_model(Path(checkpoint), int(segments), "auto")
        dataset = read_dataset(list_file, root, loaded.info.class_names, allowed_root=config.data_root)
    except (ValueError, DatasetError) as e:
        st.error(f"Cannot run: {e}", icon=":material/error:")
        return
    except Exception as e:
        st.error(f"Cannot run: {describe_failure(e)}", icon=":material/error:")
        return
    st.caption(dataset.describe())
    if not dataset.entries:
        st.error("No video of the list can be evaluated.", icon=":material/error:")
        return
    out = config.eval_dir / f"{slug(loaded.info.name)}_{slug(list_file.stem)}_{protocol}.jsonl"
    bar = st.progress(0.0, text="Starting…")

    def progress(done: int, total: int, elapsed: float) -> None:
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else 0.0
        bar.progress(
            done / max(total, 1), text=f"{done}/{total} videos · {rate:.1f} videos/s · {eta:.0f} s left"
        )

    started = time.perf_counter()
    try:
        summary = evaluate_dataset(
            loaded.model,
            loaded.info,
            dataset,
            protocol,
            out=out,
            progress=False,
            on_progress=progress,
            title=f"{loaded.info.name} · {list_file.name} · {protocol}",
            command=f"app Dataset page: {list_file} ({protocol})",
        )
        if summary["metrics"].get("top1") is not None:
            record_evaluation(summary, config.eval_dir / "results.csv")
    except EvaluationMismatch as e:
        st.error(str(e), icon=":material/error:")
        return
    except Exception as e:
        st.error(f"The evaluation stopped: {describe_failure(e)}", icon=":material/error:")
        return
    st.success(
        f"{summary['metrics']['videos']} videos in {time.perf_counter() - started:.0f} s: top-1 "
        f"{_pct(summary['metrics']['top1'])}. Written to {out}.",
        icon=":material/check:",
    )
    st.session_state[NEXT_SELECTION] = str(out)
    st.rerun()


def main() -> None:
    st.title("Dataset")
    st.caption(
        "A checkpoint on a whole labelled set under a zoo protocol: the headline figures, where it fails "
        "(per class, the confusion matrix, the clips behind each cell) and how two evaluations differ."
    )
    config = dataset_settings()
    files = evaluation_files(config)
    options = [str(p) for p in files]
    pending = st.session_state.pop(NEXT_SELECTION, None)
    if pending in options:
        st.session_state["dataset_eval"] = pending
    if not files:
        st.info("No stored evaluation yet.", icon=":material/dataset:")
        run_section(config)
        return
    if st.session_state.get("dataset_eval") not in options:
        st.session_state["dataset_eval"] = options[0]
    sidebar = st.sidebar
    sidebar.header("Evaluation")
    chosen = sidebar.selectbox("Show", options, format_func=lambda p: _label(Path(p)), key="dataset_eval")
    others = [o for o in options if o != chosen]
    compare = sidebar.selectbox(
        "Compare with",
        [None, *others],
        format_func=lambda p: "—" if p is None else _label(Path(p)),
        key="dataset_compare",
    )
    try:
        ev = evaluation(Path(chosen))
    except Exception as e:
        st.error(f"Cannot read {Path(chosen).name}: {describe_failure(e)}", icon=":material/error:")
        return
    if st.session_state.get("_dataset_shown") != chosen:  # a new evaluation: forget the old selection
        st.session_state["_dataset_shown"] = chosen
        _set_cell(None, None)
        st.session_state.pop("dataset_pair", None)
    headline(ev)
    if ev.summary["metrics"].get("videos"):
        charts(ev)
        faithfulness_section(Path(chosen))
        clips_section(ev)
    if compare is not None:
        try:
            compare_section(ev, evaluation(Path(compare)))
        except Exception as e:
            st.error(
                f"Cannot compare with {Path(compare).name}: {describe_failure(e)}", icon=":material/error:"
            )
    run_section(config)


main()

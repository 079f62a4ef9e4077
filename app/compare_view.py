"""The "Compare with" section of the Inspect page: TDN against a second model (by default its TSN twin)
on the same sampled frames, for the same target class."""

from __future__ import annotations

import math
from pathlib import Path

import streamlit as st

from app import cached, figures
from app.settings import Settings, checkpoint_files, twin_of
from app.views import Result
from app.widgets import describe_failure, image_strip, segment_captions, topk_list
from tdn.interpret import comparison as compare_module
from tdn.interpret import render as export
from tdn.interpret.comparison import Comparison
from tdn.network.checkpoint import CheckpointError

NEUTRAL_LABELS = {
    "static": "static: the snippet's 5 frames become 5 copies of its centre frame",
    "neighbour": "neighbour: the snippet is replaced by the previous segment's",
}
NOTHING = ""
IMPORTANCE_HELP = (compare_module.__doc__ or "").split("**Segment importance.**")[-1].strip()


def _load_second(path: Path, first: cached.LoadedModel) -> cached.LoadedModel:
    """The second model on the first one's device; an official file runs with the first one's segments."""
    try:
        return cached.load_model(path, None, first.device)
    except CheckpointError as e:
        if e.kind != "segments":
            raise
        return cached.load_model(path, first.model.num_segments, first.device)


def _percent(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{100 * value:.0f} %"


def compare_section(result: Result, config: Settings, source: cached.ClipSource) -> None:
    first = result.loaded
    this = Path(first.info.path)
    others = [p for p in checkpoint_files(config) if p.resolve() != this.resolve()]
    if not others:
        st.info("Add a second checkpoint to the models folder to compare two models on this clip.")
        return
    twin = twin_of(this)
    if twin is not None and twin not in others:
        others.insert(0, twin)
    left, right = st.columns([3, 2])
    chosen = left.selectbox(
        "Compare with",
        [NOTHING, *map(str, others)],
        index=1 + [str(p) for p in others].index(str(twin)) if twin in others else 0,
        format_func=lambda p: "— nothing —" if p == NOTHING else Path(p).name,
        key=f"compare_with:{this.name}",
        persist_state="page",
        help="Default for the demo TDN: its TSN twin, trained on the same data with the same recipe but "
        "without any temporal module.",
    )
    neutral = right.radio(
        "Segment importance by",
        list(NEUTRAL_LABELS),
        horizontal=True,
        key="compare_neutral",
        persist_state="page",
        help=IMPORTANCE_HELP,
    )
    right.caption(NEUTRAL_LABELS[neutral])
    if chosen == NOTHING:
        return
    try:
        with st.spinner(f"Comparing with {Path(chosen).name}…", show_time=True):
            second = _load_second(Path(chosen), first)
            same_geometry = (first.info.input_size, first.info.scale_size) == (
                second.info.input_size,
                second.info.scale_size,
            )
            clip_or_video = result.clip if same_geometry else source.open()
            mask = None
            if source.path is not None:
                mask = cached.mask(str(source.path), source.path.stat().st_mtime_ns)
            comparison = cached.comparison(
                first.key,
                second.key,
                result.clip_key,
                result.choice.target,
                result.choice.method,
                result.choice.layer,
                neutral,
                source.key if mask is not None else None,
                _a=first,
                _b=second,
                _clip=clip_or_video,
                _mask=mask,
            )
    except Exception as e:
        st.error(f"Cannot compare with {Path(chosen).name}: {describe_failure(e)}", icon=":material/error:")
        return
    draw_comparison(comparison, result.choice.opacity)


def draw_comparison(comparison: Comparison, opacity: float) -> None:
    a, b = comparison.a, comparison.b
    st.markdown(
        f"Both models explain **{comparison.target_name}** with the same method and layer on the same "
        f"{len(comparison.frame_indices)} frames."
    )
    captions = segment_captions(comparison.frame_indices)
    st.caption("Sampled frames")
    image_strip(comparison.frames, captions, key="compare_frames", alt="Sampled frame")
    for label, side in (("A", a), ("B", b)):
        st.caption(
            f"{label}: {side.name} · p({comparison.target_name}) = {100 * side.explanation.score:.1f} %"
        )
        overlays = export.overlay(side.explanation.frames, side.explanation.cam, opacity)
        side_captions = captions
        if side.pointing is not None:
            overlays = export.mark_maxima(overlays, side.explanation.cam, side.pointing.hits)
            marks = {True: " · max on the actor", False: " · max off the actor", None: ""}
            side_captions = [c + marks[h] for c, h in zip(captions, side.pointing.hits, strict=True)]
        image_strip(overlays, side_captions, key=f"compare_strip_{label}", alt=f"Heatmap of model {label}")
    st.caption("Difference A − B: red where A looks more, blue where B does (symmetric scale)")
    image_strip(
        export.colorize_signed(comparison.cam_difference),
        captions,
        key="compare_diff",
        alt="Heatmap difference",
    )
    for note in comparison.notes:
        st.caption(f"Note: {note}")

    columns = st.columns(2, gap="large")
    for column, label, side in zip(columns, ("A", "B"), (a, b), strict=True):
        with column:
            st.markdown(f"**{label}: {side.name}**")
            topk_list(side.prediction.topk(5), comparison.target, key=f"compare_topk_{label}")
            metrics = st.columns(2)
            metrics[0].metric(
                "Heatmap on moving pixels",
                _percent(side.motion_energy),
                help="Share of the heatmap's energy on the 10 % of pixels that change most within each snippet.",
            )
            if side.pointing is not None and side.pointing.counted:
                metrics[0].metric(
                    "Pointing game",
                    f"{side.pointing.score:.0%} ({side.pointing.counted} segments)",
                    help="Share of the segments showing the actor moving whose heatmap maximum lies on the "
                    "actor (its mask dilated by 2 px). Ringed on the strip: green a hit, red a miss.",
                )
            if side.mask_energy is not None:
                metrics[1].metric(
                    "Heatmap on the object",
                    _percent(side.mask_energy),
                    help=f"Share of the heatmap's energy inside the object's (dilated) mask, which covers "
                    f"{_percent(side.mask_area_share)} of the frame: a map blind to the object scores about that.",
                )
    st.markdown("**Segment importance**")
    st.plotly_chart(
        figures.segment_importance(
            [f"A: {a.name}", f"B: {b.name}"],
            [a.segment_importance, b.segment_importance],
            comparison.frame_indices,
        ),
        key="compare_importance",
        config={"displayModeBar": False},
    )
    st.caption(
        f"Drop of p({comparison.target_name}) when one segment is neutralised ({comparison.neutral}). "
        "With the static neutraliser a TSN scores exactly 0: it only sees centre frames.",
        help=IMPORTANCE_HELP,
    )

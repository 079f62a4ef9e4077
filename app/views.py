"""The result sections of the Inspect page: prediction, Grad-CAM strip and playback, TDM difference maps,
timings and downloads. Each draws arrays that ``tdn`` computed; the page decides what to compute."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import streamlit as st

from app import cached
from app.widgets import ExplainChoice, describe_failure, image_strip, segment_captions, topk_list
from tdn.inference import Prediction
from tdn.interpret import render as export
from tdn.interpret import tdmaps
from tdn.interpret.gradcam import METHOD_LABELS, Explanation
from tdn.interpret.tdmaps import TDMaps
from tdn.video import Clip

TOP_K = 5
VIDEO_WIDTH = 320
AGGREGATION_HELP = (tdmaps.__doc__ or "").split("**How channels are aggregated.**")[-1].strip()


@dataclass(frozen=True)
class Result:
    """Everything one run of the Inspect page computed (or found in the caches) for one clip."""

    loaded: cached.LoadedModel
    clip: Clip
    clip_key: str
    prediction: Prediction
    explanation: Explanation
    explanation_key: str
    choice: ExplainChoice


def prediction_section(result: Result, source_media: str | bytes) -> None:
    pred, clip = result.prediction, result.clip
    top = pred.topk(1)[0]
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.subheader("Prediction")
        st.markdown(f"#### {top.name}")
        st.caption(
            f"top-1 · {100 * top.prob:.1f} % · mean over {clip.num_views} view(s) of the softmax of the logits "
            "(the official test protocol)"
        )
        topk_list(pred.topk(TOP_K), result.explanation.target, key="topk")
    with right:
        st.subheader("Clip")
        st.video(source_media, loop=True, muted=True, width=VIDEO_WIDTH)
        views = f"{clip.crops} crop{'s' if clip.crops > 1 else ''} × {clip.clips} clip{'s' if clip.clips > 1 else ''}"
        st.caption(
            f"**{clip.source_name}** · {clip.width}×{clip.height} · {clip.fps:.3g} fps · {clip.duration_s:.1f} s · "
            f"{clip.num_frames} frames · {clip.codec}  \n{clip.num_segments} segments of 5 frames sampled; "
            f"{views} at {clip.size} px"
        )


def cam_section(result: Result, overlays: np.ndarray, playback: Callable[[], bytes]) -> None:
    """``playback`` makes the overlay MP4; it is called after the strips are on screen."""
    expl, choice = result.explanation, result.choice
    st.markdown(
        f"**{METHOD_LABELS[expl.method]}** at **{expl.layer}** for **{expl.target_name}** "
        f"(p = {100 * expl.score:.1f} %), on the centre frame of each segment: the exact pixels the model saw."
    )
    captions = segment_captions(expl.frame_indices)
    st.caption("Sampled frames")
    image_strip(expl.frames, captions, key="frames_strip", alt=f"Sampled frame of {result.clip.source_name}")
    st.caption("Heatmap overlay")
    image_strip(overlays, captions, key="cam_strip", alt=f"Heatmap of {result.clip.source_name}")
    st.caption(
        "Red = the regions that raise this class's score most. One colour scale is shared by all segments, so a "
        "dim segment mattered less for the decision, not just within its own frame."
    )
    video, notes = st.columns([2, 3], gap="large")
    with video:
        try:
            with st.spinner("Encoding the overlay video…", show_time=True):
                media = playback()
        except Exception as e:
            st.error(f"Cannot encode the overlay video: {describe_failure(e)}", icon=":material/error:")
        else:
            st.video(media, loop=True, autoplay=True, muted=True, width=VIDEO_WIDTH)
    with notes:
        st.markdown(
            f"**Playback** of the {len(captions)} overlays at {cached.PLAYBACK_FPS:g} frames per second.  \n"
            f"View 0 of {result.clip.num_views} ({result.clip.crops} crop(s) × {result.clip.clips} clip(s)); "
            f"opacity {choice.opacity:.2f}."
        )
        if expl.method == "eigencam":
            st.caption("EigenCAM uses no gradient: the map is the same whichever class is chosen.")


_STAGES = {
    "rgb": "S-TDM · input frame differences",
    "s0": "S-TDM · S0 (after conv1_5)",
    "s1": "S-TDM · S1 (after its res2)",
    "ltdm": "L-TDM · feature differences",
}
_STAGE_CAPTIONS = {
    "rgb": "The differences F1−F0 … F4−F3 between the 5 consecutive frames of each snippet, on the normalised "
    "input the model sees (root-mean-square over RGB). This is where the short-term TDM starts.",
    "s0": "The S-TDM difference stream after conv1_5 and pooling: the tensor added (weight β) to the RGB stem at "
    "the first fusion. Bright = local motion the appearance stream is told about.",
    "s1": "S0 after the S-TDM's own res2 copy (resnext_layer1): the tensor added at the second fusion.",
}
_LTDM_QUANTITIES = {
    "forward_diff": "forward difference Df",
    "backward_diff": "backward difference Db",
    "excitation": "excitation Y (signed)",
    "modulation": "modulated features X·Y",
}
_LTDM_CAPTIONS = {
    "forward_diff": "Df at segment t: the next segment's features (after a depthwise conv) minus this segment's, "
    "on the block's channel-reduced L-TDM input. Zero for the last segment (no next one).",
    "backward_diff": "Db at segment t: the previous segment's features (after a depthwise conv) minus this "
    "segment's. Zero for the first segment.",
    "excitation": "Y in (−0.5, 0.5), channel mean: red boosts the block's features (x + x·Y), blue damps them. "
    "Signed, so shown on a symmetric blue-white-red scale.",
    "modulation": "X·Y, the term L-TDM adds to the block's input: where the cross-segment differences change "
    "the features.",
}


def maps_section(result: Result, maps: TDMaps) -> None:
    expl = result.explanation
    stages = [s for s in ("rgb", "s0", "s1") if maps.stdm_rgb_diff is not None] + (
        ["ltdm"] if maps.ltdm else []
    )
    if not stages:
        st.info(
            f"{result.loaded.info.name} is a {result.loaded.info.config.variant.upper()} model: it has neither a "
            "short-term nor a long-term TDM, so there are no difference maps to show.",
            icon=":material/info:",
        )
        return
    stage = st.segmented_control(
        "Stage",
        stages,
        default=stages[0],
        format_func=_STAGES.__getitem__,
        key="maps_stage",
        persist_state="page",
        required=True,
    )
    size = expl.frames.shape[1]
    if stage == "rgb":
        options = ["all", 0, 1, 2, 3]
        which = st.radio(
            "Difference",
            options,
            format_func=lambda k: "all four (mean)" if k == "all" else f"F{k + 1} − F{k}",
            horizontal=True,
            key="maps_rgb_diff",
            persist_state="page",
        )
        raw = maps.stdm_rgb_diff
        values = raw.mean(1) if which == "all" else raw[:, which]
        images, caption = export.colorize(values), _STAGE_CAPTIONS["rgb"]
    elif stage in ("s0", "s1"):
        values = maps.stdm_s0 if stage == "s0" else maps.stdm_s1
        images, caption = export.colorize(values), _STAGE_CAPTIONS[stage]
    else:
        blocks = maps.blocks()
        left, right = st.columns(2)
        block = left.selectbox(
            "Block",
            blocks,
            index=len(blocks) - 1,
            key="maps_block",
            persist_state="page",
            help="resN.i = block i of stage resN",
        )
        quantity = right.radio(
            "Quantity",
            list(_LTDM_QUANTITIES),
            format_func=_LTDM_QUANTITIES.__getitem__,
            horizontal=True,
            key="maps_quantity",
            persist_state="page",
        )
        chosen = maps.block(block)
        values = getattr(chosen, quantity)
        colour = export.colorize_signed if quantity == "excitation" else export.colorize
        images = colour(values)
        caption = (
            f"{_LTDM_CAPTIONS[quantity]} Block {block}: {chosen.channels} channels, reduced to "
            f"{chosen.reduced_channels} for the differences."
        )
    height, width = values.shape[-2:]
    captions = segment_captions(expl.frame_indices)
    image_strip(expl.frames, captions, key="maps_frames", alt="Sampled frame")
    image_strip(export.upscale(images, size), captions, key="maps_strip", alt=f"{_STAGES[stage]} map")
    st.caption(
        f"{caption}  \nMaps are {height}×{width} (the layer's own resolution, drawn without smoothing), one colour "
        "scale shared by all segments.",
        help=AGGREGATION_HELP,
    )


def timings_section(result: Result, maps_ms: float | None) -> None:
    clip, pred, expl = result.clip, result.prediction, result.explanation
    decode_ms = clip.timings_ms.get("total", 0.0)
    cols = st.columns(4)
    cols[0].metric("Decode + preprocess", f"{decode_ms:.0f} ms")
    cols[1].metric(
        f"Forward ({clip.num_views} view{'s' if clip.num_views > 1 else ''})",
        f"{pred.timings_ms['forward']:.0f} ms",
    )
    cols[2].metric(METHOD_LABELS[expl.method], f"{expl.timings_ms['cam']:.0f} ms")
    cols[3].metric("Difference maps", "–" if maps_ms is None else f"{maps_ms:.0f} ms")
    detail = ", ".join(f"{k} {v:.0f} ms" for k, v in clip.timings_ms.items() if k != "total")
    st.caption(
        f"Measured when each result was first computed on {cached.device_label(result.loaded.device)}; "
        f"results are cached, so changing only the display costs none of this. Decode steps: {detail}."
    )


def predictions_json(result: Result) -> str:
    pred, clip, info = result.prediction, result.clip, result.loaded.info
    return json.dumps(
        {
            "clip": clip.source_name,
            "model": info.name,
            "checkpoint_sha256": info.sha256,
            "device": info.device,
            "num_segments": clip.num_segments,
            "views": {"crops": clip.crops, "clips": clip.clips, "size": clip.size},
            "frame_indices": clip.frame_indices.tolist(),
            "topk": [t.to_dict() for t in pred.topk(len(pred.class_names))],
            "explanation": {
                "method": result.explanation.method,
                "layer": result.explanation.layer,
                "target": result.explanation.target,
                "target_name": result.explanation.target_name,
                "score": result.explanation.score,
            },
            "timings_ms": {
                "decode": clip.timings_ms,
                "predict": pred.timings_ms,
                "cam": result.explanation.timings_ms,
            },
        },
        indent=1,
    )


def downloads_section(
    result: Result, overlays: np.ndarray, playback: Callable[[], bytes], maps: TDMaps | None
) -> None:
    """Files are built only when their button is pressed (the MP4 is usually cached from the playback)."""
    expl, opacity = result.explanation, result.choice.opacity
    stem = f"{result.clip.source_name.rsplit('.', 1)[0]}_{expl.method}_{expl.layer}"
    cols = st.columns(5)
    cols[0].download_button(
        "Overlay MP4", playback, f"{stem}.mp4", "video/mp4", on_click="ignore", icon=":material/movie:"
    )
    cols[1].download_button(
        "Overlay GIF",
        lambda: export.gif_bytes(export.upscale(overlays, cached.PLAYBACK_MIN_SIDE), cached.PLAYBACK_FPS),
        f"{stem}.gif",
        "image/gif",
        on_click="ignore",
        icon=":material/gif_box:",
    )
    cols[2].download_button(
        "PNG grid",
        lambda: export.png_bytes(export.grid_image(expl, maps, opacity)),
        f"{stem}_grid.png",
        "image/png",
        on_click="ignore",
        icon=":material/grid_on:",
        help="One column per segment: frame, heatmap, then S-TDM ΔRGB, S0, S1 and the last L-TDM block's Df.",
    )
    cols[3].download_button(
        "Maps NPZ",
        lambda: export.maps_npz_bytes(expl, maps),
        f"{stem}_maps.npz",
        "application/octet-stream",
        on_click="ignore",
        icon=":material/data_array:",
        help="cam (T,H,W) in [0,1], cam_raw, frames, frame_indices and every difference map, as NumPy arrays.",
    )
    cols[4].download_button(
        "Predictions JSON",
        predictions_json(result),
        f"{stem}_predictions.json",
        "application/json",
        on_click="ignore",
        icon=":material/data_object:",
    )

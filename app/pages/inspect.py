"""Inspect: run TDN on one clip; see its predictions, Grad-CAM on the frames it saw, and its difference maps."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app import cached
from app.compare_view import compare_section
from app.dataset_data import pending_inspect_source
from app.settings import Settings, default_sample, sample_answers, sample_clip_files, sample_label, settings
from app.views import (
    Result,
    cam_section,
    downloads_section,
    maps_section,
    prediction_section,
    timings_section,
)
from app.widgets import (
    attempt,
    describe_failure,
    explain_sidebar,
    model_sidebar,
    warn_if_slow,
)
from tdn.filetypes import VIDEO_SUFFIXES
from tdn.interpret.tdmaps import TDMaps
from tdn.network.labels import SYNTHETIC_DATASET
from tdn.video.frames import is_frame_folder

SOURCE_LABELS = {
    "sample": "Sample clip",
    "upload": "Upload",
    "path": "Server path",
    "dataset": "From Dataset",
}
PICKER_COLUMNS = 8
DEMO_SCOPE = (
    "**This model knows only the 14 generated motions it was trained on** (shapes moving, turning, fading, "
    "squeezing over generated backgrounds). On real footage its answer is one of those 14, whatever the clip "
    "shows. For real clips use an official TDN checkpoint: download it from the official TDN model zoo "
    "(MCG-NJU/TDN on GitHub: ResNet-50/101, 8 or 16 segments, Something-Something V1/V2 or Kinetics-400), put "
    "the `.pth.tar` file into the models folder (`assets/models/`, or the folder `TDN_LENS_MODELS_DIR` names) "
    "and pick it in the sidebar with its number of segments. Class names come from `assets/labels/` "
    "(174 classes: Something-Something V2's list unless the file says V1; 400: Kinetics-400)."
)
# Upload types for archives of frames (the browser checks the last suffix: .tar.gz arrives as "gz").
UPLOAD_ARCHIVE_TYPES = ("zip", "tar", "tgz", "gz", "tbz2", "bz2", "txz", "xz")
TABS = ["Where it looked", "Temporal differences", "Compare with", "Timings & downloads"]


def clip_sidebar(config: Settings) -> tuple[str, cached.ClipSource | None, int, int]:
    """Where the clip comes from (the sample itself is picked on the page) and the test views."""
    sidebar = st.sidebar
    sidebar.header("Clip")
    modes = ["sample", "upload"] + (["path"] if config.allow_server_paths else [])
    pending = pending_inspect_source()  # a clip the Dataset page asked to open
    if pending is not None:
        modes.append("dataset")
        if st.session_state.get("_dataset_request_seen") != pending.key:
            st.session_state["_dataset_request_seen"] = pending.key
            st.session_state["clip_mode"] = "dataset"
    elif st.session_state.get("clip_mode") == "dataset":
        st.session_state["clip_mode"] = "sample"
    mode = sidebar.radio(
        "Source",
        modes,
        format_func=SOURCE_LABELS.__getitem__,
        horizontal=True,
        key="clip_mode",
        persist_state="session",
    )
    source: cached.ClipSource | None = None
    if mode == "dataset":
        source = pending
    elif mode == "upload":
        uploaded = sidebar.file_uploader(
            "Video file, or a .zip/.tar of one clip's frames",
            type=sorted(s.lstrip(".") for s in VIDEO_SUFFIXES) + list(UPLOAD_ARCHIVE_TYPES),
            key="clip_upload",
            help="Any video FFmpeg reads, or a zip/tar of a folder of extracted frames (00001.jpg, 000001.jpg "
            "or img_00001.jpg, as Something-Something ships them), up to the server's limit.",
        )
        if uploaded is not None:
            # Hash each upload once, not on every rerun (uploads can be hundreds of MB).
            memo = st.session_state.get("_upload_key")
            if memo is None or memo[0] != uploaded.file_id:
                memo = st.session_state["_upload_key"] = (
                    uploaded.file_id,
                    cached.content_key(uploaded.getvalue()),
                )
            source = cached.ClipSource(name=uploaded.name, key=memo[1], data=uploaded.getvalue())
    elif mode == "path":
        typed = sidebar.text_input(
            "Video or frame folder on the server", key="clip_path", placeholder="/data/videos/clip.mp4"
        )
        if typed.strip():
            path = Path(typed.strip()).expanduser()
            if path.is_file() or is_frame_folder(path):
                source = cached.ClipSource.from_path(path, trusted=False)
            elif path.is_dir():
                st.error(
                    f"{path} is a folder without frames named like 00001.jpg, 000001.jpg or img_00001.jpg.",
                    icon=":material/error:",
                )
            else:
                st.error(f"There is no file at {path} on the server.", icon=":material/error:")
    crops = sidebar.radio(
        "Crops",
        [1, 3],
        horizontal=True,
        key="clip_crops",
        persist_state="session",
        help="1: the centre crop (the official SSv1/SSv2 test). 3: three full-height crops, scored and averaged.",
    )
    clips = sidebar.number_input(
        "Clips",
        min_value=1,
        max_value=10,
        value=1,
        key="clip_clips",
        persist_state="session",
        help="Temporal clips spread over the video, each sampled with its own frame offsets (Kinetics uses 10). "
        "Heatmaps and difference maps show the first view.",
    )
    return mode, source, int(crops), int(clips)


def _pick(name: str) -> None:
    st.session_state["sample_clip"] = name


def sample_picker(config: Settings) -> cached.ClipSource | None:
    samples = sample_clip_files(config)
    if not samples:
        st.info(
            "No sample clips are installed yet. Choose **Upload** in the sidebar to run the model on your own clip.",
            icon=":material/video_library:",
        )
        return None
    names = [p.name for p in samples]
    if st.session_state.get("sample_clip") not in names:
        st.session_state["sample_clip"] = default_sample(names)
    selected = st.session_state["sample_clip"]
    answers = sample_answers(config)
    with st.container(key="sample_picker"), st.spinner("Loading previews…"):
        for start in range(0, len(samples), PICKER_COLUMNS):
            row = samples[start : start + PICKER_COLUMNS]
            for column, path in zip(st.columns(PICKER_COLUMNS, gap="small"), row, strict=False):
                try:
                    column.image(cached.thumbnail(str(path), path.stat().st_mtime_ns), width="stretch")
                except Exception as e:
                    column.caption(f"no preview: {describe_failure(e)}")
                column.button(
                    sample_label(path),
                    key=f"pick:{path.name}",
                    on_click=_pick,
                    args=(path.name,),
                    type="primary" if path.name == selected else "secondary",
                    width="stretch",
                    wrap=True,
                )
                answer = answers.get(path.name)
                if answer and not answer.get("correct", True):
                    column.caption(f":material/close: the demo says *{answer['predicted_name']}*")
    return cached.ClipSource.from_path(samples[names.index(selected)], trusted=True)


def main() -> None:
    config = settings()
    cached.start_decoder()
    st.title("Inspect a clip")
    loaded = model_sidebar(config)
    mode, source, crops, clips = clip_sidebar(config)
    choice = explain_sidebar(loaded)
    st.caption(
        f"**{loaded.summary}** · running on **{cached.device_label(loaded.device)}**. "
        "Pick a clip: TDN predicts its action, and every map below is drawn on the exact frames it sampled."
    )
    for warning in loaded.info.warnings:
        st.warning(f"{loaded.info.name}: {warning}", icon=":material/warning:")
    if mode == "sample":
        source = sample_picker(config)
    if source is None:
        if mode != "sample" and not st.session_state.get("clip_path", "").strip():
            st.info("Choose a video in the sidebar to begin.", icon=":material/upload_file:")
        return
    warn_if_slow(loaded, crops, clips)
    if mode != "sample" and loaded.info.dataset == SYNTHETIC_DATASET:
        st.info(DEMO_SCOPE, icon=":material/info:")

    clip, clip_key = attempt(
        lambda: cached.decode(source, loaded, crops, clips),
        f"Decoding {source.name}…",
        f"Cannot read {source.name}",
    )
    for warning in clip.warnings:
        st.caption(f"Note: {warning}")
    prediction = attempt(
        lambda: cached.prediction(loaded.key, clip_key, _loaded=loaded, _clip=clip),
        "Running the model…",
        "The model could not run on this clip",
    )
    explanation = attempt(
        lambda: cached.explanation(
            loaded.key, clip_key, choice.target, choice.method, choice.layer, _loaded=loaded, _clip=clip
        ),
        f"Computing {choice.label}…",
        "No heatmap",
    )
    explanation_key = f"{loaded.key}|{clip_key}|{choice.target}|{choice.method}|{choice.layer}"
    result = Result(loaded, clip, clip_key, prediction, explanation, explanation_key, choice)
    media = source.open() if cached.playable(source) else cached.sampled_mp4(clip_key, clip.display_frames[0])
    prediction_section(result, media)

    overlays = cached.overlays(explanation_key, choice.opacity, _explanation=explanation)

    def playback() -> bytes:
        return cached.overlay_mp4(explanation_key, choice.opacity, _frames=overlays)

    # Lazy tabs: only the open tab runs, so the heatmaps do not wait for the comparison or the maps.
    cam_tab, maps_tab, compare_tab, details_tab = st.tabs(TABS, key="inspect_tab", on_change="rerun")
    if cam_tab.open:
        with cam_tab:
            cam_section(result, overlays, playback)
    if maps_tab.open:
        with maps_tab:
            maps, _ = difference_maps(result)
            if maps is not None:
                maps_section(result, maps)
    if compare_tab.open:
        with compare_tab:
            compare_section(result, config, source)
    if details_tab.open:
        with details_tab:
            maps, maps_ms = difference_maps(result)
            timings_section(result, maps_ms)
            st.subheader("Downloads")
            downloads_section(result, overlays, playback, maps)


def difference_maps(result: Result) -> tuple[TDMaps | None, float | None]:
    """The clip's TDM difference maps and the milliseconds they took, or an error in the page and None."""
    try:
        with st.spinner("Capturing the difference maps…", show_time=True):
            return cached.tdm_maps(
                result.loaded.key, result.clip_key, _loaded=result.loaded, _clip=result.clip
            )
    except Exception as e:
        st.error(f"No difference maps: {describe_failure(e)}", icon=":material/error:")
        return None, None


main()

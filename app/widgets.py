"""Widgets shared by the pages: the model picker, the explanation controls, image strips, and error reporting.

Every failure a user can cause (a corrupt upload, a wrong checkpoint, an impossible setting) ends in an
``st.error`` that says what happened, never a traceback; the rest of the page and the app keep working.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, TypeVar

import numpy as np
import streamlit as st
import torch

from analysis.results import ResultsError
from app import cached
from app.settings import Settings, checkpoint_files, demo_checkpoint, guess_segments
from tdn import assets
from tdn.inference import ClassScore
from tdn.interpret.gradcam import (
    LAYERS,
    METHOD_LABELS,
    METHODS,
    ExplainError,
    default_layer,
    layer_description,
)
from tdn.network.checkpoint import CheckpointError, DeviceError
from tdn.network.labels import LabelError
from tdn.network.runtime import get_precision, set_precision
from tdn.video import ClipError

log = logging.getLogger("tdn_lens.app")
T = TypeVar("T")
# Errors whose message is written for people; anything else (a bare ValueError included: that is a bug of
# ours, not the user's) is logged with its traceback and reported as unexpected.
USER_ERRORS: tuple[type[Exception], ...] = (
    CheckpointError,
    ClipError,
    DeviceError,
    ExplainError,
    LabelError,
    ResultsError,
)
SLOW_ARCHS = ("resnet101",)
SLOW_SEGMENTS = 16


def stop_with_error(message: str) -> NoReturn:
    st.error(message, icon=":material/error:")
    st.stop()


def describe_failure(error: BaseException) -> str:
    if isinstance(error, USER_ERRORS):
        return str(error)
    log.exception("unexpected error in TDN Lens", exc_info=error)
    return f"an unexpected {type(error).__name__} occurred ({error}). The details are in the server log."


def attempt(fn: Callable[[], T], spinner: str, failure: str) -> T:
    """Run one step with a spinner (shown when it takes time); on failure show ``failure: reason`` and stop
    this run of the page (widgets already drawn stay usable)."""
    try:
        with st.spinner(spinner, show_time=True):
            return fn()
    except Exception as e:
        stop_with_error(f"{failure}: {describe_failure(e)}")


# ---------------------------------------------------------------------------------------------- model


def _checkpoint_label(path: Path, demo: Path | None) -> str:
    if demo is not None and path == demo:
        return f"Demo TDN ({path.name})"
    if path.name == assets.DEMO_TSN_CHECKPOINT.name:
        return f"Demo TSN twin ({path.name})"
    return path.name


def device_options() -> list[str]:
    """auto, cpu and every GPU of this machine by index."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return ["auto", "cpu", *(f"cuda:{i}" for i in range(gpus))]


def model_sidebar(config: Settings) -> cached.LoadedModel:
    """Checkpoint, segments (asked only when the file cannot tell) and device; returns the loaded model."""
    if get_precision() != config.precision:
        set_precision(config.precision)
    sidebar = st.sidebar
    sidebar.header("Model")
    files = checkpoint_files(config)
    if not files:
        stop_with_error(
            f"No checkpoint to run: {config.models_dir} holds no .safetensors, .pth or .pth.tar file and the "
            "demo model is not installed. Point TDN_LENS_MODELS_DIR at a folder of checkpoints."
        )
    demo = demo_checkpoint(config)
    options = [str(p) for p in files]
    if st.session_state.get("model_path") not in options:
        st.session_state.pop("model_path", None)
    chosen = Path(
        sidebar.selectbox(
            "Checkpoint",
            options,
            format_func=lambda p: _checkpoint_label(Path(p), demo),
            key="model_path",
            persist_state="session",
            help=f"The demo model, or an official TDN / TDN Lens checkpoint from {config.models_dir} "
            "(set TDN_LENS_MODELS_DIR to offer another folder).",
        )
    )
    device = sidebar.radio(
        "Device",
        device_options(),
        horizontal=True,
        key="device",
        persist_state="session",
        help="auto: the GPU when this machine has one, otherwise the CPU."
        + ("" if torch.cuda.is_available() else " This machine has no GPU."),
    )
    asked: dict[str, bool] = st.session_state.setdefault("_asks_segments", {})
    file_key = f"{chosen}|{chosen.stat().st_mtime_ns if chosen.is_file() else 0}"
    if not asked.get(file_key, False):
        try:
            with st.spinner(f"Loading {chosen.name}…", show_time=True):
                loaded = cached.load_model(chosen, None, device)
        except CheckpointError as e:
            if e.kind != "segments":
                stop_with_error(f"Cannot use {chosen.name}: {e}")
            asked[file_key] = True
        except Exception as e:
            stop_with_error(f"Cannot use {chosen.name}: {describe_failure(e)}")
        else:
            _device_caption(loaded)
            return loaded
    segments = sidebar.radio(
        "Segments this model was trained with",
        [8, 16],
        index=[8, 16].index(guess_segments(chosen)),
        horizontal=True,
        key=f"segments:{chosen.name}",
        persist_state="session",
        help="Official TDN checkpoints do not record their number of segments (no weight depends on it); "
        "the model zoo's file names usually say 8f or 16f.",
    )
    loaded = attempt(
        lambda: cached.load_model(chosen, segments, device),
        f"Loading {chosen.name}…",
        f"Cannot use {chosen.name}",
    )
    _device_caption(loaded)
    return loaded


def _device_caption(loaded: cached.LoadedModel) -> None:
    st.sidebar.caption(f"In use: **{cached.device_label(loaded.device)}**  \n{loaded.summary}")


def slow_settings(loaded: cached.LoadedModel, crops: int = 1, clips: int = 1) -> list[str]:
    """What makes this configuration slow on a CPU (empty on a GPU)."""
    if not loaded.device.startswith("cpu"):
        return []
    cfg = loaded.info.config
    reasons = []
    if cfg.arch in SLOW_ARCHS:
        reasons.append(f"a {cfg.arch} backbone")
    if cfg.num_segments >= SLOW_SEGMENTS:
        reasons.append(f"{cfg.num_segments} segments")
    if crops == 3:
        reasons.append("3 crops")
    if clips > 1:
        reasons.append(f"{clips} clips")
    return reasons


def warn_if_slow(loaded: cached.LoadedModel, crops: int = 1, clips: int = 1) -> None:
    reasons = slow_settings(loaded, crops, clips)
    if reasons:
        st.warning(
            f"Running on the CPU with {', '.join(reasons)}: each step can take several seconds. "
            "Results are cached, so changing only the display (opacity, stage, block) stays instant.",
            icon=":material/hourglass_top:",
        )


# -------------------------------------------------------------------------------------- explanations


@dataclass(frozen=True)
class ExplainChoice:
    method: str
    layer: str
    target: int | None  # None: the top-1 class
    opacity: float

    @property
    def label(self) -> str:
        return f"{METHOD_LABELS[self.method]} at {self.layer}"


def explain_sidebar(loaded: cached.LoadedModel) -> ExplainChoice:
    sidebar = st.sidebar
    sidebar.header("Explanation")
    method = sidebar.selectbox(
        "Method",
        list(METHODS),
        format_func=METHOD_LABELS.__getitem__,
        key="cam_method",
        persist_state="session",
        help="Grad-CAM weights the chosen layer's feature maps by the gradient of the class score. "
        "EigenCAM uses no gradient (it shows the main activation pattern, whatever the class).",
    )
    layer = sidebar.selectbox(
        "Layer",
        list(LAYERS),
        index=list(LAYERS).index(default_layer(loaded.info.input_size)),
        format_func=lambda name: f"{name} · {layer_description(name)}",
        key="cam_layer",
        persist_state="session",
        help="Deeper layers are more class-specific but coarser (res5 is 1/32 of the input). The default "
        "is the deepest layer with a map of at least 7x7 cells for this model's input size.",
    )
    names = loaded.info.class_names
    target = sidebar.selectbox(
        "Explain class",
        [None, *range(len(names))],
        format_func=lambda i: "the top-1 prediction" if i is None else f"{i}: {names[i]}",
        key=f"cam_target:{loaded.info.sha256[:16]}",
        help="Which class score the heatmap explains.",
    )
    opacity = sidebar.slider(
        "Heatmap opacity", 0.0, 1.0, 0.5, 0.05, key="cam_opacity", persist_state="session"
    )
    return ExplainChoice(method, layer, target, float(opacity))


# ------------------------------------------------------------------------------------------- top-k

_MARKDOWN_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_{}[]()<>#+-.!|~$:"})


def topk_list(topk: Sequence[ClassScore], highlight: int | None, key: str) -> None:
    """The top-k classes as native progress bars, most probable first; ``highlight`` (a class index: the
    explained class) is marked. Native elements, not a Plotly chart: the Inspect page's first view then needs
    no Plotly in the browser (~0.7 s of main-thread script per page on this machine's Chromium)."""
    with st.container(key=key):
        for score in topk:
            mark = " · *explained*" if score.index == highlight else ""
            prob = float(score.prob)
            text = f"{score.name.translate(_MARKDOWN_SPECIAL)} · {100 * prob:.1f} %{mark}"
            st.progress(min(max(prob, 0.0), 1.0) if math.isfinite(prob) else 0.0, text=text)  # NaN: empty bar


# ---------------------------------------------------------------------------------------------- images


def image_strip(
    images: Sequence[np.ndarray] | np.ndarray, captions: Sequence[str], key: str, alt: str
) -> None:
    """One image per segment in equal columns, so strips drawn one under another line up frame by frame."""
    with st.container(key=key):
        for column, image, caption in zip(
            st.columns(len(images), gap="small"), images, captions, strict=True
        ):
            column.image(image, caption=caption, width="stretch", alt=f"{alt}, {caption}")


def segment_captions(frame_indices: Sequence[int]) -> list[str]:
    return [f"seg {t + 1} · frame {int(f)}" for t, f in enumerate(frame_indices)]

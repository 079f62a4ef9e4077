"""Every call into ``tdn`` that costs time, behind Streamlit's caches, so a rerun recomputes nothing it has.

* Models: ``st.cache_resource``, one per (checkpoint path, mtime, segments, device). One model object serves
  every session; that is safe because every forward in ``tdn`` (predict, explain, difference maps) takes
  ``tdn.network.runtime.model_lock(model)``, and the profile below takes it too.
* Clips: ``st.cache_resource`` keyed on the content (sha256 of an upload, or path + mtime + size of a file on
  the server) and the decode settings. Not ``st.cache_data``: that would copy the float inputs on every
  rerun (hundreds of MB for 16 segments x 3 crops x several clips). Clips are never modified after decoding.
  A clip that cannot be decoded is cached as its ``ClipError``, so a bad upload is not decoded again.
* Predictions, explanations, difference maps, overlays, profiles: ``st.cache_data`` keyed on the model key,
  the clip key and the settings; the objects themselves are passed as ``_``-arguments (not hashed).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
import torch

from analysis.results import load_results
from tdn.inference import Prediction, forget_inference_copy, predict
from tdn.interpret import render as export
from tdn.interpret.comparison import Comparison, compare
from tdn.interpret.faithfulness import load_mask_for
from tdn.interpret.gradcam import Explanation, explain
from tdn.interpret.tdmaps import TDMaps, difference_maps
from tdn.network.checkpoint import CheckpointInfo, load_checkpoint, resolve_device
from tdn.network.flops import Profile, count_gmacs, profile_model
from tdn.network.model import TDN
from tdn.network.runtime import ThreadPolicy, model_lock, set_thread_policy, thread_policy
from tdn.video import Clip, ClipError, load_clip, warm_up_isolation
from tdn.video.archive import is_archive_name, load_archive_clip

THUMBNAIL_SIDE = 144
PLAYBACK_MIN_SIDE = 320
PLAYBACK_FPS = 2.0


@dataclass(frozen=True)
class LoadedModel:
    """A cached model, its checkpoint description, and the key its results are cached under."""

    key: str
    model: TDN
    info: CheckpointInfo

    @property
    def device(self) -> str:
        return self.info.device

    @property
    def summary(self) -> str:
        """One line for people: name, backbone, variant, segments, input size."""
        cfg = self.info.config
        width = "" if cfg.width == 1 else f" ×{cfg.width:g}"
        return (
            f"{self.info.name} · {cfg.arch}{width} {cfg.variant.upper()} · {cfg.num_segments} segments · "
            f"{self.info.input_size} px · {cfg.num_classes} classes"
        )


def content_key(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ClipSource:
    """Where a clip comes from: a file on the server or uploaded bytes, with a key that names its content."""

    name: str
    key: str
    path: Path | None = None
    data: bytes | None = None
    trusted: bool = False  # bundled samples decode in-process; uploads and server paths in a child process

    @classmethod
    def from_path(cls, path: Path, trusted: bool) -> ClipSource:
        stat = path.stat()
        return cls(
            name=path.name,
            key=f"file:{path.resolve()}:{stat.st_mtime_ns}:{stat.st_size}",
            path=path,
            trusted=trusted,
        )

    def open(self) -> str | bytes:
        return str(self.path) if self.path is not None else (self.data or b"")


# --------------------------------------------------------------------------------------------- models


def _release_model(entry: tuple[TDN, CheckpointInfo]) -> None:
    """A model leaving the cache gives its GPU memory back (its folded copy goes with it)."""
    model, _ = entry
    if next(model.parameters()).is_cuda:
        with model_lock(model):
            model.to("cpu")
        forget_inference_copy(model)
        torch.cuda.empty_cache()


@st.cache_resource(show_spinner=False, max_entries=6, on_release=_release_model)
def _load_model(path: str, mtime_ns: int, segments: int | None, device: str) -> tuple[TDN, CheckpointInfo]:
    return load_checkpoint(path, num_segments=segments, device=device)


def load_model(path: Path, segments: int | None, device: str) -> LoadedModel:
    """The shared model for this checkpoint; raises ``CheckpointError`` with a message for people."""
    resolved = str(resolve_device(device))
    mtime = path.stat().st_mtime_ns if path.is_file() else 0
    model, info = _load_model(str(path), mtime, segments, resolved)
    loaded = LoadedModel(f"{path}|{mtime}|{segments}|{resolved}", model, info)
    if model_device(loaded).type == "cpu":
        set_thread_policy(loaded.model, threads_for(loaded.key, loaded))
    return loaded


def model_device(loaded: LoadedModel) -> torch.device:
    return next(loaded.model.parameters()).device


@st.cache_data(show_spinner=False, max_entries=16)
def threads_for(model_key: str, _loaded: LoadedModel) -> ThreadPolicy:
    """The intra-op thread policy for this model on this machine (from its multiply-adds per view)."""
    with model_lock(_loaded.model):
        return thread_policy(count_gmacs(_loaded.model, _loaded.info.input_size).total)


def device_label(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"GPU · {torch.cuda.get_device_name(torch.device(device))}"
    threads = torch.get_num_threads()
    return f"CPU · {threads} thread{'s' if threads > 1 else ''}"


# ---------------------------------------------------------------------------------------------- clips


@st.cache_resource(show_spinner=False)
def start_decoder() -> threading.Thread:
    """Start the isolated decode server in the background once per process, so the first upload is quick."""
    thread = threading.Thread(target=warm_up_isolation, name="tdn-decoder-warm-up", daemon=True)
    thread.start()
    return thread


@st.cache_resource(show_spinner=False, max_entries=8, ttl=3600)
def _decode(
    clip_key: str,
    segments: int,
    size: int,
    scale: int,
    crops: int,
    clips: int,
    _source: ClipSource,
    _loaded: LoadedModel,
) -> Clip | ClipError:
    try:
        if is_archive_name(_source.name):  # a .zip/.tar of one clip's frames
            return load_archive_clip(
                _source.open(),
                _loaded.info.spec,
                crops,
                clips,
                isolate=not _source.trusted,
                source_name=_source.name,
            )
        return load_clip(
            _source.open(),
            spec=_loaded.info.spec,
            crops=crops,
            clips=clips,
            isolate=not _source.trusted,
            source_name=_source.name,
        )
    except ClipError as e:
        return e


def decode(source: ClipSource, loaded: LoadedModel, crops: int, clips: int) -> tuple[Clip, str]:
    """The clip as ``loaded`` expects it, and the key its results are cached under; raises ``ClipError``."""
    info = loaded.info
    settings = (loaded.model.num_segments, info.input_size, info.scale_size, crops, clips)
    clip = _decode(source.key, *settings, _source=source, _loaded=loaded)
    if isinstance(clip, ClipError):
        raise clip
    return clip, f"{source.key}|{'|'.join(map(str, settings))}"


@st.cache_data(show_spinner=False, max_entries=64)
def thumbnail(path: str, mtime_ns: int) -> np.ndarray:
    """The middle frame of a sample clip, short side ``THUMBNAIL_SIDE``."""
    clip = load_clip(
        path, num_segments=1, size=32, scale_size=32, display_size=THUMBNAIL_SIDE, build_inputs=False
    )
    return clip.display_frames[0, 0]


# -------------------------------------------------------------------------------------------- results


@st.cache_data(show_spinner=False, max_entries=64)
def prediction(model_key: str, clip_key: str, _loaded: LoadedModel, _clip: Clip) -> Prediction:
    return predict(_loaded.model, _clip, _loaded.info.class_names)


@st.cache_data(show_spinner=False, max_entries=64)
def explanation(
    model_key: str,
    clip_key: str,
    target: int | None,
    method: str,
    layer: str,
    _loaded: LoadedModel,
    _clip: Clip,
) -> Explanation:
    return explain(_loaded.model, _clip, target, method, layer, class_names=_loaded.info.class_names)


@st.cache_data(show_spinner=False, max_entries=32)
def tdm_maps(model_key: str, clip_key: str, _loaded: LoadedModel, _clip: Clip) -> tuple[TDMaps, float]:
    """The difference maps of view 0 and the milliseconds they took."""
    start = time.perf_counter()
    maps, _ = difference_maps(_loaded.model, _clip.inputs[0])
    return maps, (time.perf_counter() - start) * 1000


@st.cache_data(show_spinner=False, max_entries=64)
def overlays(explanation_key: str, opacity: float, _explanation: Explanation) -> np.ndarray:
    """The CAM blended over the frames the model saw, (T, S, S, 3) uint8."""
    return export.overlay(_explanation.frames, _explanation.cam, opacity)


@st.cache_data(show_spinner=False, max_entries=32)
def overlay_mp4(explanation_key: str, opacity: float, _frames: np.ndarray) -> bytes:
    return export.video_bytes(export.upscale(_frames, PLAYBACK_MIN_SIDE), PLAYBACK_FPS)


@st.cache_data(show_spinner=False, max_entries=16)
def sampled_mp4(clip_key: str, _frames: np.ndarray) -> bytes:
    """The centre frames the model saw, as a short MP4: what the Clip panel plays for a frame folder or an
    archive of frames, which have no video of their own."""
    return export.video_bytes(export.upscale(_frames, PLAYBACK_MIN_SIDE), PLAYBACK_FPS)


def playable(source: ClipSource) -> bool:
    """Whether the browser can play the source itself (a video), not a folder or an archive of frames."""
    return not is_archive_name(source.name) and not (source.path is not None and source.path.is_dir())


@st.cache_data(show_spinner=False, max_entries=16)
def profile(model_key: str, size: int, _loaded: LoadedModel) -> Profile:
    """Params, GMACs per stage and latency measured on this machine; holds the model's lock (it runs
    forwards and adds hooks on the shared model)."""
    with model_lock(_loaded.model):
        return profile_model(_loaded.model, size=size, latency_runs=5)


@st.cache_data(show_spinner=False, max_entries=32)
def mask(path: str, mtime_ns: int) -> np.ndarray | None:
    """The object mask stored beside a (synthetic) sample clip, or None."""
    return load_mask_for(path)


@st.cache_data(show_spinner=False, max_entries=16)
def comparison(
    key_a: str,
    key_b: str,
    clip_key: str,
    target: int | None,
    method: str,
    layer: str,
    neutral: str,
    mask_key: str | None,
    _a: LoadedModel,
    _b: LoadedModel,
    _clip: Clip | str | bytes,
    _mask: np.ndarray | None,
) -> Comparison:
    """Both models on the same frames for the same target. ``_clip`` is the decoded clip when both models
    want the same input geometry, otherwise the video itself (``compare`` decodes it for each)."""
    return compare(
        (_a.model, _a.info),
        (_b.model, _b.info),
        _clip,
        target=target,
        method=method,
        layer=layer,
        mask=_mask,
        neutral=neutral,
    )


# -------------------------------------------------------------------------------------------- results files


@st.cache_data(show_spinner=False, max_entries=64)
def results_file(path: str, mtime_ns: int) -> pd.DataFrame:
    """One stored results CSV; raises ``ResultsError`` listing every bad row."""
    return load_results(path)


@st.cache_data(show_spinner=False, max_entries=16)
def uploaded_results(digest: str, name: str, _data: bytes) -> pd.DataFrame:
    return load_results(_data, name=name)


@st.cache_data(show_spinner=False, max_entries=8)
def study(csv_path: str, csv_mtime_ns: int, json_mtime_ns: int) -> tuple[pd.DataFrame | None, dict | None]:
    """The compare study's per-clip rows and its JSON summary (either may be missing: None)."""
    csv, sidecar = Path(csv_path), Path(csv_path).with_suffix(".json")
    frame = pd.read_csv(csv) if csv.is_file() else None
    summary = json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.is_file() else None
    return frame, summary

"""TDN against a second model (typically its TSN twin) on one clip: same frames, same target, side by side.

:func:`compare` runs both models on the same view of the same frames and explains the same target class
with each, so the two heatmap strips line up segment by segment. Next to each map it puts three numbers a
reader can check: where the map's energy sits (on the moving pixels, on the object when a mask is known;
see :mod:`tdn.interpret.faithfulness`) and how much each segment matters to the model (:func:`segment_importance`).

**Segment importance.** Segment t is *neutralised* and the drop of the target's probability is measured.
The "static" neutraliser replaces the 5 frames of snippet t by 5 copies of its centre frame: its motion
vanishes, its appearance stays. TSN sees only centre frames, so under it a TSN's importance is exactly 0:
what remains is what a model takes from motion within a snippet. The "neighbour" neutraliser replaces
snippet t by the previous segment's snippet (segment 0 by segment 1's), removing what is new in segment t,
appearance included.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from tdn.contract import CENTRE_FRAME, CHANNELS_PER_SEGMENT, FRAMES_PER_SNIPPET
from tdn.inference import Prediction, predict
from tdn.interpret.faithfulness import (
    PointingGame,
    actor_moving,
    clip_mask,
    mask_energy,
    motion_energy,
    pointing_game,
)
from tdn.interpret.gradcam import Explanation, explain, layer_for, resize_maps
from tdn.interpret.render import colorize_signed, overlay, png_bytes
from tdn.network.checkpoint import CheckpointInfo
from tdn.network.model import TDN
from tdn.network.runtime import eval_mode, model_lock
from tdn.video import Clip
from tdn.video.clip import load_clip

NEUTRALS = ("static", "neighbour")
Source = Clip | str | Path | bytes | BinaryIO


@dataclass
class ModelSide:
    """One model's half of a comparison; every per-segment array is aligned with ``Comparison.frames``."""

    name: str
    prediction: Prediction
    explanation: Explanation  # for the shared target class
    segment_importance: np.ndarray  # (T,) drop of the target's probability when that segment is neutralised
    motion_energy: float  # share of CAM energy on the most-changing pixels (NaN for an all-zero CAM)
    mask_energy: float | None  # share of CAM energy on the (dilated) object mask; None without a mask
    mask_area_share: float | None  # that dilated mask's share of the area; None without a mask
    pointing: PointingGame | None = None  # per segment: CAM maximum on the moving actor? None without a mask


@dataclass
class Comparison:
    """Two models on the same frames for the same target."""

    a: ModelSide
    b: ModelSide
    target: int
    target_name: str
    frame_indices: np.ndarray  # (T,) the shared centre-frame indices
    frames: np.ndarray  # (T, S, S, 3) uint8, the shared centre frames (model A's size)
    cam_difference: np.ndarray  # (T, S, S) a.cam - b.cam, in [-1, 1]
    method: str = "gradcam"
    layer: str = "res5"
    neutral: str = "static"
    notes: list[str] = field(default_factory=list)  # e.g. that the models saw the frames at different sizes


def segment_importance(model: TDN, x: torch.Tensor, target: int, neutral: str = "static") -> np.ndarray:
    """(T,) float32: p(target | x) − p(target | x with segment t neutralised), for every segment t.

    ``x`` is one view (1, T·15, S, S). The original and its T edited copies run as one (T+1)-batch forward,
    in inference mode under the model's lock (eval mode, restored afterwards).
    """
    if neutral not in NEUTRALS:
        raise ValueError(f"unknown neutraliser {neutral!r}; choose one of {', '.join(NEUTRALS)}")
    model.check_input(x)
    if x.shape[0] != 1:
        raise ValueError(f"expected one view (1, T·15, S, S), got a batch of {x.shape[0]}")
    t = model.num_segments
    k = model.config.num_classes
    if not 0 <= target < k:
        raise ValueError(f"target class {target} is outside 0..{k - 1}")
    if neutral == "neighbour" and t < 2:
        raise ValueError("the 'neighbour' neutraliser needs at least 2 segments")
    h, w = x.shape[-2:]
    snippets = x.detach().reshape(t, FRAMES_PER_SNIPPET, 3, h, w)
    edited = snippets.unsqueeze(0).repeat(t, 1, 1, 1, 1, 1)  # (copy, segment, frame, rgb, h, w)
    for s in range(t):
        if neutral == "static":
            edited[s, s] = snippets[s, CENTRE_FRAME : CENTRE_FRAME + 1]
        else:
            edited[s, s] = snippets[s - 1 if s > 0 else 1]
    batch = torch.cat([x.detach().reshape(1, t * CHANNELS_PER_SEGMENT, h, w), edited.reshape(t, -1, h, w)])
    device = next(model.parameters()).device
    with model_lock(model), torch.inference_mode(), eval_mode(model):
        probs = model(batch.to(device)).float().softmax(-1)[:, target].cpu()
    return (probs[0] - probs[1:]).numpy().astype(np.float32)


def _clips_for(
    clip: Source, a: tuple[TDN, CheckpointInfo], b: tuple[TDN, CheckpointInfo]
) -> tuple[Clip, Clip, list[str]]:
    """(clip for A, clip for B, notes): one decode when the models want the same input geometry."""
    (_, info_a), (_, info_b) = a, b
    same = info_a.spec == info_b.spec
    if isinstance(clip, Clip):
        if not same:
            raise ValueError(
                f"model B expects {info_b.spec.describe()}, model A {info_a.spec.describe()}: pass the "
                "video itself so it can be decoded for each model"
            )
        return clip, clip, []
    if hasattr(clip, "read"):  # a file object can be read only once; both decodes need its bytes
        clip = clip.read()
    clip_a = load_clip(clip, spec=info_a.spec)
    if same:
        return clip_a, clip_a, []
    clip_b = load_clip(clip, spec=info_b.spec)
    if not np.array_equal(clip_a.frame_indices, clip_b.frame_indices):
        raise RuntimeError("the two decodes sampled different frames; cannot compare them")
    note = (
        f"the models want different input sizes, so the video was decoded for each: A at {info_a.input_size} "
        f"px (from {info_a.scale_size}), B at {info_b.input_size} px (from {info_b.scale_size}); both saw the "
        f"same frames; B's maps are resized to A's size for the difference"
    )
    return clip_a, clip_b, [note]


def _side(
    model: TDN,
    info: CheckpointInfo,
    clip: Clip,
    prediction: Prediction,
    target: int,
    method: str,
    layer: str,
    mask: np.ndarray | None,
    neutral: str,
) -> ModelSide:
    ex = explain(model, clip, target, method, layer, view=0, class_names=info.class_names)
    x = clip.inputs[0] if clip.inputs else clip.view_input(0)
    share = area = pointing = None
    if mask is not None:
        aligned = clip_mask(mask, clip, 0)
        share, area = mask_energy(ex.cam, aligned)
        pointing = pointing_game(ex.cam, aligned, actor_moving(clip.model_frames[0], aligned))
    return ModelSide(
        name=info.name,
        prediction=prediction,
        explanation=ex,
        segment_importance=segment_importance(model, x, target, neutral),
        motion_energy=motion_energy(ex.cam, clip.model_frames[0]),
        mask_energy=share,
        mask_area_share=area,
        pointing=pointing,
    )


def compare(
    a: tuple[TDN, CheckpointInfo],
    b: tuple[TDN, CheckpointInfo],
    clip: Source,
    target: int | None = None,
    method: str = "gradcam",
    layer: str = "res5",
    mask: np.ndarray | None = None,
    neutral: str = "static",
) -> Comparison:
    """Run and explain models A and B on the same view (view 0) of ``clip`` for one shared target class.

    ``clip``: a ``tdn.Clip`` (used as decoded, for both models; they must then want the same input size)
    or the video itself (path, bytes or file object), decoded for A and, when B wants another input size,
    again for B with the same frame indices (``Comparison.notes`` says so). ``target``: default A's top-1.
    ``mask``: the source video's object mask (F, H, W), as :func:`tdn.interpret.faithfulness.load_mask_for` returns
    it; it is aligned with each model's view by :func:`tdn.interpret.faithfulness.clip_mask`.
    """
    (model_a, info_a), (model_b, info_b) = a, b
    layer = layer_for(layer, info_a.input_size)  # "auto": model A's default, for both sides
    if model_a.num_segments != model_b.num_segments:
        raise ValueError(
            f"model A uses {model_a.num_segments} segments and model B {model_b.num_segments}; a segment-by-"
            "segment comparison needs the same number"
        )
    k = model_a.config.num_classes
    if model_b.config.num_classes != k:
        raise ValueError(
            f"model A has {k} classes and model B {model_b.config.num_classes}; they must share one label set"
        )
    if neutral not in NEUTRALS:
        raise ValueError(f"unknown neutraliser {neutral!r}; choose one of {', '.join(NEUTRALS)}")
    if target is not None and not 0 <= target < k:
        raise ValueError(f"target class {target} is outside 0..{k - 1}")
    clip_a, clip_b, notes = _clips_for(clip, a, b)
    pred_a = predict(model_a, clip_a, info_a.class_names)
    pred_b = predict(model_b, clip_b, info_b.class_names)
    target = pred_a.top1 if target is None else int(target)
    side_a = _side(model_a, info_a, clip_a, pred_a, target, method, layer, mask, neutral)
    side_b = _side(model_b, info_b, clip_b, pred_b, target, method, layer, mask, neutral)
    ex_a, ex_b = side_a.explanation, side_b.explanation
    if not np.array_equal(ex_a.frame_indices, ex_b.frame_indices):
        raise RuntimeError("the two explanations are not aligned on the same frames")
    cam_b = ex_b.cam if ex_b.cam.shape == ex_a.cam.shape else resize_maps(ex_b.cam, ex_a.cam.shape[1:])
    if info_a.class_names != info_b.class_names:
        notes.append("the checkpoints name their classes differently; class names are model A's")
    return Comparison(
        a=side_a,
        b=side_b,
        target=target,
        target_name=ex_a.target_name,
        frame_indices=ex_a.frame_indices,
        frames=ex_a.frames,
        cam_difference=np.clip(ex_a.cam - cam_b, -1.0, 1.0),
        method=ex_a.method,
        layer=ex_a.layer,
        neutral=neutral,
        notes=notes,
    )


# ------------------------------------------------------------------------------------ files to keep


def _strip(tiles: np.ndarray, pad: int = 2) -> np.ndarray:
    """(T, H, W, 3) uint8 tiles side by side on white, ``pad`` pixels apart."""
    t, h, w, _ = tiles.shape
    canvas = np.full((h + 2 * pad, t * (w + pad) + pad, 3), 255, np.uint8)
    for s, tile in enumerate(tiles):
        canvas[pad : pad + h, pad + s * (w + pad) : pad + s * (w + pad) + w] = tile
    return canvas


def strip_image(side: ModelSide, opacity: float = 0.5) -> np.ndarray:
    """One model's CAM overlaid on each segment's centre frame, segments left to right."""
    ex = side.explanation
    return _strip(overlay(ex.frames, ex.cam, opacity))


def difference_image(comparison: Comparison) -> np.ndarray:
    """A − B per segment over the grey frames: red where A looks more, blue where B does (symmetric scale,
    the largest |A − B| of the clip at full colour)."""
    colours = colorize_signed(comparison.cam_difference).astype(np.float32)
    grey = comparison.frames.astype(np.float32).mean(-1, keepdims=True)
    return _strip((0.7 * colours + 0.3 * grey).round().astype(np.uint8))


def _number(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def side_record(side: ModelSide, k: int = 5) -> dict:
    """JSON-ready summary of one side; the mask keys appear only when a mask was given."""
    record = {
        "name": side.name,
        "topk": [t.to_dict() for t in side.prediction.topk(k)],
        "target_prob": side.explanation.score,
        "motion_energy": _number(side.motion_energy),
        "segment_importance": [float(v) for v in side.segment_importance],
    }
    if side.mask_energy is not None or side.mask_area_share is not None:
        record["mask_energy"] = _number(side.mask_energy)
        record["mask_area_share"] = _number(side.mask_area_share)
    if side.pointing is not None:
        record["pointing_hits"] = side.pointing.hits
        record["pointing_game"] = _number(side.pointing.score)
    return record


def comparison_record(comparison: Comparison) -> dict:
    """JSON-ready summary of a comparison (what ``compare.json`` holds, before the caller's extras)."""
    return {
        "target": comparison.target,
        "target_name": comparison.target_name,
        "frame_indices": [int(i) for i in comparison.frame_indices],
        "method": comparison.method,
        "layer": comparison.layer,
        "neutral": comparison.neutral,
        "cam_difference_max_abs": float(np.abs(comparison.cam_difference).max()),
        "notes": list(comparison.notes),
        "a": side_record(comparison.a),
        "b": side_record(comparison.b),
    }


def write_comparison(out: str | Path, comparison: Comparison, extra: dict | None = None) -> dict[str, Path]:
    """Write strip_a.png, strip_b.png, difference.png and compare.json (with ``extra`` merged) into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record = comparison_record(comparison)
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(record.get(key), dict):
            record[key] = {**record[key], **value}
        else:
            record[key] = value
    text = io.StringIO()
    json.dump(record, text, indent=1)
    files = {
        "strip_a.png": png_bytes(strip_image(comparison.a)),
        "strip_b.png": png_bytes(strip_image(comparison.b)),
        "difference.png": png_bytes(difference_image(comparison)),
        "compare.json": text.getvalue().encode(),
    }
    paths = {}
    for name, data in files.items():
        (out / name).write_bytes(data)
        paths[name] = out / name
    return paths

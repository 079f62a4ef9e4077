"""Does a heatmap tell the truth? Scores for per-segment CAMs, against ground truth and against the model.

Three questions, one kind of metric each. Every CAM here is a (T, S, S) array aligned with the centre
frames of one clip view (``Explanation.cam``).

* **Where is the object?** :func:`mask_energy`: the share of CAM energy (the sum of its values) inside the
  acting object's mask, dilated by a couple of pixels, next to the share of the frame area that mask
  covers. A map that ignores the object scores about its area share; a map on the object scores near 1.
* **Where is the motion?** :func:`motion_energy`: the same share for the pixels that change most within
  each snippet (:func:`motion_mask`, the top decile of frame-difference magnitude).
* **Does the model need what the map points at?** :func:`road_scores`: pytorch-grad-cam's ROAD
  (remove and debias: pixels replaced by noisy linear imputation from their neighbours) and its
  CAM-times-image confidence change, adapted to the snippet input (see the function).

Both share scores are computed over the whole clip (all T maps together, like the CAMs' joint scaling):
energy a model puts on a segment where the object is invisible (e.g. "Making something appear") counts as
outside the mask. :func:`clip_mask` brings a source-video mask into a decoded clip's geometry;
:func:`load_mask_for` reads the ``<stem>_mask.npz`` the synthetic dataset writes beside each video.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from pytorch_grad_cam.metrics.cam_mult_image import multiply_tensor_with_cam
from pytorch_grad_cam.metrics.road import NoisyLinearImputer, neighbors_weights
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget
from scipy.sparse import csc_matrix
from scipy.sparse.linalg import spsolve

from tdn.contract import CENTRE_FRAME, CHANNELS_PER_SEGMENT
from tdn.network.model import TDN
from tdn.network.runtime import eval_mode, model_lock
from tdn.video import Clip, preprocess

ROAD_PERCENTILES = (10, 20, 30, 40, 50)
# The imputation noise and the order among equal CAM values are seeded: the same input gives the same score.
ROAD_SEED = 0
ROAD_NOISE = 0.01  # std of the noise added to imputed values (pytorch-grad-cam's NoisyLinearImputer default)
ROAD_BATCH = 4  # perturbed copies per forward; bounds memory for large models


def dilate(mask: np.ndarray, pixels: int = 2) -> np.ndarray:
    """(T, H, W) bool masks grown by ``pixels`` in every direction (a disc of that radius), frame by frame.

    Why dilate: a CAM is a coarse map upsampled bilinearly (res5 of a 112 px input is 4x4), so the energy
    that belongs to an object spills over its outline; a thin band keeps that spill from counting against it.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 3:
        raise ValueError(f"expected (T, H, W) masks, got shape {mask.shape}")
    if pixels < 0:
        raise ValueError(f"pixels must be non-negative, got {pixels}")
    if pixels == 0:
        return mask.copy()
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return np.stack([cv2.dilate(m.astype(np.uint8), disc).astype(bool) for m in mask])


def _energy_share(cam: np.ndarray, region: np.ndarray) -> float:
    """Share of the CAM's summed values that falls in ``region``; NaN for an all-zero CAM."""
    cam = np.asarray(cam, dtype=np.float64)
    if cam.shape != region.shape:
        raise ValueError(f"CAM of shape {cam.shape} does not match mask of shape {region.shape}")
    if (cam < 0).any():
        raise ValueError("CAM energy needs non-negative maps (e.g. Explanation.cam, which is in [0, 1])")
    total = float(cam.sum())
    return float(cam[region].sum() / total) if total > 0 else math.nan


def mask_energy(cam: np.ndarray, mask: np.ndarray, dilate_px: int = 2) -> tuple[float, float]:
    """(share of CAM energy inside the dilated mask, the dilated mask's share of the area), over all segments.

    ``cam`` and ``mask`` are (T, S, S), aligned (see :func:`clip_mask`). A uniform CAM scores exactly the
    area share; the energy share is NaN when the CAM is zero everywhere.
    """
    region = dilate(mask, dilate_px)
    return _energy_share(cam, region), float(region.mean())


MOVING_MARGIN = 2.0
"""Grey levels by which the actor's pixels must change more than the rest of the frame (the pixel noise
changes both alike) for a segment to count as showing the actor moving."""


def actor_moving(model_frames: np.ndarray, mask: np.ndarray, dilate_px: int = 2) -> np.ndarray:
    """(T,) bool: whether each snippet shows the actor moving (or fading, or changing shape): its pixels
    inside the dilated mask change more, frame to frame, than those outside by :data:`MOVING_MARGIN`.
    ``model_frames`` (T, 5, S, S, 3) and ``mask`` (T, S, S) as for :func:`mask_energy`."""
    motion = motion_magnitude(model_frames)
    region = dilate(mask, dilate_px)
    moving = np.zeros(len(mask), dtype=bool)
    for t in range(len(mask)):
        inside, outside = motion[t][region[t]], motion[t][~region[t]]
        if inside.size and outside.size:
            moving[t] = float(inside.mean() - outside.mean()) > MOVING_MARGIN
    return moving


@dataclass(frozen=True)
class PointingGame:
    """Per segment: whether the CAM's maximum falls inside the actor's dilated mask (``None`` where the
    segment does not show the actor moving, so it is not counted); ``score`` = hits / counted."""

    hits: list[bool | None]

    @property
    def counted(self) -> int:
        return sum(h is not None for h in self.hits)

    @property
    def score(self) -> float:
        return sum(bool(h) for h in self.hits) / self.counted if self.counted else math.nan


def pointing_game(cam: np.ndarray, mask: np.ndarray, moving: np.ndarray, dilate_px: int = 2) -> PointingGame:
    """The pointing game on (T, S, S) ``cam`` and ``mask``, counting the segments where ``moving`` is true.
    A segment whose CAM is zero everywhere has no maximum and counts as a miss."""
    region = dilate(mask, dilate_px)
    hits: list[bool | None] = []
    for t in range(len(cam)):
        if not moving[t]:
            hits.append(None)
        elif float(cam[t].max()) <= 0:
            hits.append(False)
        else:
            y, x = np.unravel_index(int(np.argmax(cam[t])), cam[t].shape)
            hits.append(bool(region[t, y, x]))
    return PointingGame(hits)


def best_cam(mask: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """The best-placed map a CAM computed on a ``grid`` = (h, w) feature map can draw for a (T, S, S) mask:
    the mask averaged over each feature cell, then upsampled bilinearly as explanations are. Its
    :func:`mask_energy` is the ceiling for a layer of that resolution (res5 of a 112 px input is 4x4, and
    there a small object's energy necessarily spreads well beyond its outline)."""
    h, w = grid
    size = mask.shape[1:]
    cells = [cv2.resize(m.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) for m in mask]
    return np.stack([cv2.resize(c, size[::-1], interpolation=cv2.INTER_LINEAR) for c in cells]).clip(0, None)


def motion_magnitude(model_frames: np.ndarray) -> np.ndarray:
    """(T, 5, S, S, 3) uint8 snippets → (T, S, S) float32: per pixel, the root-mean-square over the 4
    consecutive frame differences and the 3 colours (what the S-TDM's input differences carry)."""
    frames = np.asarray(model_frames)
    if frames.ndim != 5 or frames.shape[1] != 5 or frames.shape[-1] != 3:
        raise ValueError(f"expected (T, 5, S, S, 3) snippets, got shape {frames.shape}")
    diffs = np.diff(frames.astype(np.float32), axis=1)
    return np.sqrt(np.mean(diffs * diffs, axis=(1, 4)))


def motion_mask(model_frames: np.ndarray, top_fraction: float = 0.1) -> np.ndarray:
    """(T, 5, S, S, 3) uint8 snippets → (T, S, S) bool: per segment, the ``top_fraction`` of pixels that
    change most across the snippet around its centre frame.

    Ties at the threshold are all kept, and pixels that do not change at all never are: a snippet where
    fewer pixels move than the fraction asks for gives a smaller mask, a static snippet an empty one.
    """
    if not 0 < top_fraction <= 1:
        raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction}")
    magnitude = motion_magnitude(model_frames)
    flat = magnitude.reshape(len(magnitude), -1)
    keep = max(1, int(round(top_fraction * flat.shape[1])))
    threshold = -np.partition(-flat, keep - 1, axis=1)[:, keep - 1]  # the keep-th largest per segment
    return (magnitude >= threshold[:, None, None]) & (magnitude > 0)


def motion_energy(cam: np.ndarray, model_frames: np.ndarray, top_fraction: float = 0.1) -> float:
    """Share of CAM energy on the pixels that move most (:func:`motion_mask`), over all segments."""
    return _energy_share(cam, motion_mask(model_frames, top_fraction))


# ---------------------------------------------------------------------------------------------- ROAD


def _removal_order(cam: np.ndarray, most_relevant_first: bool, seed: int) -> np.ndarray:
    """Flat indices of the (T, S, S) CAM from first to last removed; equal values in a seeded random order,
    so that a flat region is not removed from its top-left corner first."""
    values = cam.reshape(-1).astype(np.float64)
    tiebreak = np.random.default_rng(seed).permutation(values.size)
    return np.lexsort((tiebreak, -values if most_relevant_first else values))


def _linear_fill(values: torch.Tensor, kept: np.ndarray) -> torch.Tensor:
    """ROAD's noiseless linear imputation of (C, H, W) ``values`` where ``kept`` (H, W) is False: each
    removed pixel becomes the weighted mean of its 8 neighbours, solved jointly for all removed pixels.

    The sparse system is pytorch-grad-cam's own (``NoisyLinearImputer.setup_sparse_system``); it is solved
    here rather than through ``NoisyLinearImputer.__call__`` because that draws its noise from torch's
    global generator, which a shared model server must not consume or reseed.
    """
    array = values.numpy().astype(np.float64)
    system, rhs = NoisyLinearImputer.setup_sparse_system(kept.astype(np.float32), array, neighbors_weights)
    solution = spsolve(csc_matrix(system), rhs).reshape(int((~kept).sum()), -1)
    flat = array.reshape(len(array), -1)
    flat[:, np.flatnonzero(~kept)] = solution.T
    return torch.from_numpy(flat.reshape(values.shape).astype(np.float32))


def _impute(x: torch.Tensor, keep: np.ndarray, seed: int = ROAD_SEED) -> torch.Tensor:
    """ROAD-impute one view (T·15, S, S): segment t's removed pixels (``keep[t]`` False) are filled in all
    5 frames and 3 colours of its snippet from the kept pixels around them, plus ROAD's small noise drawn
    from a private generator seeded with ``seed`` (the same removal always gives the same pixels)."""
    generator = torch.Generator().manual_seed(seed)
    out = x.clone()
    for t, kept in enumerate(keep):
        if kept.all():
            continue
        channels = slice(t * CHANNELS_PER_SEGMENT, (t + 1) * CHANNELS_PER_SEGMENT)
        # With nothing left to interpolate from the system is singular: the normalised mean colour, 0.
        filled = _linear_fill(x[channels], kept) if kept.any() else torch.zeros_like(x[channels])
        removed = torch.from_numpy(~kept)
        noise = torch.randn((CHANNELS_PER_SEGMENT, int(removed.sum())), generator=generator)
        filled[:, removed] += ROAD_NOISE * noise
        out[channels] = filled
    return out


@dataclass(frozen=True)
class RoadScores:
    """ROAD of one CAM: the target's probability ``score`` on the clean view, its change when the most
    (``morf``) or least (``lerf``) relevant pixels are removed at each percentile, their means, ``road``
    = (LeRF − MoRF)/2 (higher is more faithful) and ``confidence_change`` under the CAM-times-input copy."""

    score: float
    percentiles: list[float]
    morf: list[float]
    lerf: list[float]
    morf_mean: float
    lerf_mean: float
    road: float
    confidence_change: float

    SUMMARY = ("score", "morf_mean", "lerf_mean", "road", "confidence_change")

    def summary(self) -> dict[str, float]:
        """The scalar figures, for tables."""
        return {k: float(getattr(self, k)) for k in self.SUMMARY}


def road_scores(
    model: TDN,
    x: torch.Tensor,
    cam: np.ndarray,
    target: int,
    percentiles: tuple[int, ...] = ROAD_PERCENTILES,
) -> dict:
    """Perturbation faithfulness of a (T, S, S) CAM for class ``target`` on one view ``x`` (1, T·15, S, S).

    The adaptation to TDN's input: a CAM pixel (t, y, x) stands for that location in *all 5 frames* of
    snippet t (the S-TDM sees the whole snippet, the appearance stream its centre frame), so removing it
    removes it from the 15 channels of segment t, and multiplying by the CAM multiplies those 15 channels.

    * **ROAD** (the noisy linear imputation of pytorch-grad-cam's ``ROADMostRelevantFirst`` /
      ``ROADLeastRelevantFirst``, its ``NoisyLinearImputer`` system). For each p in ``percentiles``, p % of
      the T·S·S locations are removed, ranked over the whole clip (segments compete, as under the CAMs' joint scale): the most relevant first
      (MoRF) or the least relevant first (LeRF). Ranking replaces pytorch-grad-cam's ``cam < percentile``
      threshold, which removes everything or nothing when many CAM values are equal (e.g. ReLU zeros); our
      p is the share removed, i.e. pytorch-grad-cam's ``percentile = 100 - p``. The imputation noise comes
      from a fixed seed, without touching torch's global random state.
    * **Confidence change** (pytorch-grad-cam's ``CamMultImageConfidenceChange``): the input multiplied by
      the CAM, each segment's map broadcast over its 15 channels.

    Scores are the target's softmax probability (``ClassifierOutputSoftmaxTarget``); every change is
    after − before, as in pytorch-grad-cam, so a faithful map gives a large negative MoRF change and a
    LeRF change near 0. Returned dict: ``score`` (probability on ``x``), ``percentiles``, ``morf`` and
    ``lerf`` (one change per percentile), their means, ``road`` = (mean LeRF − mean MoRF) / 2 (pytorch-grad-
    cam's ``ROADCombined``; higher is more faithful) and ``confidence_change``. All copies run batched in
    inference mode under the model's lock.
    """
    t = model.num_segments
    cam = np.asarray(cam, dtype=np.float32)
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(f"expected one view (1, T·15, S, S), got shape {tuple(x.shape)}")
    if cam.shape != (t, *x.shape[-2:]):
        raise ValueError(f"CAM of shape {cam.shape} does not fit the input {tuple(x.shape)} ({t} segments)")
    if not all(0 < p < 100 for p in percentiles):
        raise ValueError(f"percentiles must lie strictly between 0 and 100, got {percentiles}")
    view = x[0].detach().float().cpu()
    copies = [view]
    for most_relevant_first in (True, False):
        order = _removal_order(cam, most_relevant_first, ROAD_SEED)
        for p in percentiles:
            keep = np.ones(cam.size, dtype=bool)
            keep[order[: int(round(p / 100 * cam.size))]] = False
            copies.append(_impute(view, keep.reshape(cam.shape)))
    per_channel = torch.from_numpy(np.repeat(cam, CHANNELS_PER_SEGMENT, axis=0))
    copies.append(multiply_tensor_with_cam(view, per_channel))

    score = ClassifierOutputSoftmaxTarget(target)
    device = next(model.parameters()).device
    probs = []
    with model_lock(model), torch.inference_mode(), eval_mode(model):
        for start in range(0, len(copies), ROAD_BATCH):
            logits = model(torch.stack(copies[start : start + ROAD_BATCH]).to(device)).float().cpu()
            probs += [float(score(row)) for row in logits]
    base, n = probs[0], len(percentiles)
    morf = [p - base for p in probs[1 : 1 + n]]
    lerf = [p - base for p in probs[1 + n : 1 + 2 * n]]
    return RoadScores(
        score=base,
        percentiles=list(percentiles),
        morf=morf,
        lerf=lerf,
        morf_mean=float(np.mean(morf)),
        lerf_mean=float(np.mean(lerf)),
        road=float((np.mean(lerf) - np.mean(morf)) / 2),
        confidence_change=probs[-1] - base,
    )


# ------------------------------------------------------------------------------------------- masks


def clip_mask(mask_frames: np.ndarray, clip: Clip, view: int = 0) -> np.ndarray:
    """A source-video mask (F, H, W) → (T, S, S) bool aligned with the centre frames of ``clip``'s view.

    The mask frames at ``clip.frame_indices[view][:, CENTRE_FRAME]`` go through the clip's own geometry: the short-side
    resize to ``clip.scaled_size`` (the same PIL bilinear resize as the pixels, on 0/255, then kept where at
    least half covered, the rule the synthetic masks use) and the view's crop box.
    """
    mask_frames = np.asarray(mask_frames)
    if mask_frames.ndim != 3:
        raise ValueError(f"expected a (frames, height, width) mask, got shape {mask_frames.shape}")
    if mask_frames.shape[1:] != (clip.height, clip.width):
        raise ValueError(
            f"mask frames are {mask_frames.shape[2]}x{mask_frames.shape[1]} but the video is "
            f"{clip.width}x{clip.height}"
        )
    indices = np.asarray(clip.frame_indices[view])[:, CENTRE_FRAME]
    if indices.max() >= len(mask_frames):
        raise ValueError(f"the mask has {len(mask_frames)} frames; the clip uses frame {int(indices.max())}")
    box = clip.crop_boxes[view % clip.crops]
    out = []
    for index in indices:
        frame = np.where(mask_frames[index], np.uint8(255), np.uint8(0))
        scaled = preprocess.resize_frame(frame, clip.scale_size)
        if scaled.shape[:2] != tuple(reversed(clip.scaled_size)):
            raise ValueError(f"resized mask is {scaled.shape[:2]}, the clip's frames {clip.scaled_size}")
        out.append(preprocess.crop(scaled[..., None], box)[..., 0] >= 128)
    return np.stack(out)


def mask_path_for(video_path: str | Path) -> Path:
    """Where the synthetic dataset keeps a video's mask: ``<stem>_mask.npz`` beside it."""
    path = Path(video_path)
    return path.with_name(f"{path.stem}_mask.npz")


def load_mask_for(video_path: str | Path) -> np.ndarray | None:
    """The (F, H, W) bool mask stored beside ``video_path`` (array ``mask``), or None when there is none."""
    path = mask_path_for(video_path)
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        if "mask" not in data.files:
            raise ValueError(f"{path.name} holds no array named 'mask' (found: {', '.join(data.files)})")
        mask = data["mask"]
    if mask.ndim != 3:
        raise ValueError(f"{path.name}: expected a (frames, height, width) mask, got shape {mask.shape}")
    return mask.astype(bool)

"""Faithfulness at dataset scale: the compare study's figures for one model on every clip of a folder, and per
class (``python -m tdn explain DIR --summary``; the Dataset page shows the per-class table).

Per clip (:func:`clip_faithfulness`, on the first view, for the class the heatmap explains):

* ``road``, ``road_morf``, ``road_lerf``, ``confidence_change``: ROAD of the Grad-CAM (docs/architecture.md §11;
  :func:`tdn.interpret.faithfulness.road_scores`), higher is more faithful;
* ``importance``: the drop in the class's probability when each segment is made static
  (:func:`tdn.interpret.comparison.segment_importance`), with its peak and the segment where it peaks;
* with a mask beside the video (``<stem>_mask.npz``, as the generated set has): the pointing game over the segments
  that show the actor moving (hits and counted), the heatmap's energy share on the dilated mask, the mask's area
  share and the best share a map of this layer's resolution can reach (the ceiling).

Per class (:func:`summarise_faithfulness`): clips, mean ROAD, mean peak importance, pointing game as hits over all
counted segments of the class, mean energy share, area share and ceiling. Clips are grouped by their true class
when it is known (a ``labels.csv`` in the folder), else by the explained class; ``group_by`` says which.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from tdn.interpret.comparison import segment_importance
from tdn.interpret.faithfulness import (
    ROAD_PERCENTILES,
    actor_moving,
    best_cam,
    clip_mask,
    mask_energy,
    pointing_game,
    road_scores,
)
from tdn.interpret.gradcam import Explanation
from tdn.network.model import TDN
from tdn.video.clip import Clip

__all__ = ["SUMMARY_VERSION", "clip_faithfulness", "summarise_faithfulness"]

SUMMARY_VERSION = 1


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def clip_faithfulness(
    model: TDN,
    clip: Clip,
    explanation: Explanation,
    mask: np.ndarray | None = None,
    percentiles: tuple[int, ...] = ROAD_PERCENTILES,
) -> dict[str, Any]:
    """The per-clip figures (see the module docstring) of ``explanation`` (view 0 of ``clip``); ``mask``: the
    source video's (F, H, W) actor mask, or None."""
    x = clip.inputs[0] if clip.inputs else clip.view_input(0)
    target = explanation.target
    road = road_scores(model, x, explanation.cam, target, percentiles)
    drops = segment_importance(model, x, target, "static")
    record: dict[str, Any] = {
        "road": road.road,
        "road_morf": road.morf_mean,
        "road_lerf": road.lerf_mean,
        "confidence_change": road.confidence_change,
        "importance": [round(float(v), 6) for v in drops],
        "importance_max": float(drops.max()),
        "importance_argmax": int(drops.argmax()),
        "pointing_hits": None,
        "pointing_segments": 0,
        "mask_energy": None,
        "mask_area_share": None,
        "mask_energy_ceiling": None,
    }
    if mask is not None:
        aligned = clip_mask(mask, clip, 0)
        share, area = mask_energy(explanation.cam, aligned)
        game = pointing_game(explanation.cam, aligned, actor_moving(clip.model_frames[0], aligned))
        grid = tuple(explanation.cam_raw.shape[1:])
        record |= {
            "pointing_hits": sum(bool(h) for h in game.hits),
            "pointing_segments": game.counted,
            "mask_energy": _finite(share),
            "mask_area_share": _finite(area),
            "mask_energy_ceiling": _finite(mask_energy(best_cam(aligned, grid), aligned)[0]),
        }
    return record


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(kept)) if kept else None


def _aggregate(rows: list[Mapping[str, Any]]) -> dict[str, Any]:
    counted = sum(int(r.get("pointing_segments") or 0) for r in rows)
    hits = sum(int(r.get("pointing_hits") or 0) for r in rows)
    return {
        "clips": len(rows),
        "correct": sum(bool(r.get("correct")) for r in rows) if any("correct" in r for r in rows) else None,
        "road": _mean(r.get("road") for r in rows),
        "importance_max": _mean(r.get("importance_max") for r in rows),
        "pointing_game": hits / counted if counted else None,
        "pointing_segments": counted,
        "mask_energy": _mean(r.get("mask_energy") for r in rows),
        "mask_area_share": _mean(r.get("mask_area_share") for r in rows),
        "mask_energy_ceiling": _mean(r.get("mask_energy_ceiling") for r in rows),
    }


def summarise_faithfulness(records: list[Mapping[str, Any]], class_names: list[str]) -> dict[str, Any]:
    """Overall and per-class aggregates of per-clip records (failed clips, with ``error``, are left out).

    Each record carries ``target`` and, when known, ``label``; clips are grouped by ``label`` when every
    explained clip has one, else by ``target``. ``per_class`` lists every class that has clips, by index."""
    rows = [r for r in records if "error" not in r]
    by_label = bool(rows) and all(r.get("label") is not None for r in rows)
    key = "label" if by_label else "target"
    groups: dict[int, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(int(row[key]), []).append(row)
    per_class = [
        {"index": k, "name": class_names[k] if 0 <= k < len(class_names) else str(k), **_aggregate(groups[k])}
        for k in sorted(groups)
    ]
    return {
        "version": SUMMARY_VERSION,
        "group_by": key,
        "clips": len(rows),
        "failed": len(records) - len(rows),
        "overall": _aggregate(rows),
        "per_class": per_class,
    }

"""TDN against its TSN twin over held-out generated clips: where each model's Grad-CAM sits, whether it is
faithful, and which segments each model needs.

    python -m analysis.compare_study --num 300 --seed 4242 --out assets/results/compare_study.csv

Every clip runs through :func:`tdn.interpret.comparison.compare` exactly as one clip does in the app or the CLI (decoded
from its mp4, both models on the same view, one shared target), with the ground-truth label as the target
so both models are asked the same question whatever they predict. Per clip and model, one CSV row:

* the prediction (top-1, its probability, the label's probability, top-5 hit);
* ``mask_energy`` / ``mask_area_share``: CAM energy on the actor's mask dilated by 2 px, and that mask's area
  (``mask_ratio`` is their quotient: 1 = no better than a uniform map); ``mask_energy_ceiling`` is the
  best a map at the layer's resolution (``cam_grid``) could score (:func:`tdn.interpret.faithfulness.best_cam`);
* ``motion_energy``: CAM energy on the top decile of frame-difference magnitude (``motion_area_share`` is
  that region's area);
* ``road`` (with its MoRF/LeRF means) and ``confidence_change``: pytorch-grad-cam's ROAD and CAM-times-
  image metrics adapted to snippets (:func:`tdn.interpret.faithfulness.road_scores`);
* segment importance under both neutralisers: its sum, peak, the segment at the peak, the share of its
  positive part on segments inside the action window, and the whole vector (``;``-separated).

The clips are regenerated and cached under ``--cache`` like training data, with a dataset seed disjoint
from training (1), validation (1001) and evaluation (2001). A JSON sidecar (the CSV's name with ``.json``)
holds summary statistics per model, paired TDN − TSN differences, per-class means, and the commit,
command, date and machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import shlex
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from tdn.assets import DEMO_CHECKPOINT, DEMO_TSN_CHECKPOINT, RESULTS
from tdn.interpret.comparison import ModelSide, compare, segment_importance
from tdn.interpret.faithfulness import (
    ROAD_PERCENTILES,
    best_cam,
    clip_mask,
    load_mask_for,
    mask_energy,
    motion_mask,
    road_scores,
)
from tdn.interpret.gradcam import AUTO_LAYER, layer_for
from tdn.network.checkpoint import CheckpointInfo, load_checkpoint
from tdn.network.model import TDN
from tdn.training.synth import CLASSES, dataset_plan, generate_clip, synthetic_folder
from tdn.util import git_commit, write_atomic
from tdn.video import Clip
from tdn.video.clip import load_clip

Model = tuple[TDN, CheckpointInfo]
RESERVED_SEEDS = {1: "training", 1001: "validation", 2001: "evaluation"}
RUN_CHECKPOINTS = (Path("runs/demo_tdn/model.safetensors"), Path("runs/demo_tsn/model.safetensors"))
METRICS = (
    "prob_label",
    "pointing_game",
    "mask_energy",
    "mask_area_share",
    "mask_ratio",
    "mask_energy_ceiling",
    "motion_energy",
    "motion_area_share",
    "road",
    "road_morf",
    "road_lerf",
    "confidence_change",
    "static_sum",
    "static_max",
    "static_action_share",
    "neighbour_sum",
    "neighbour_max",
    "neighbour_action_share",
)
PAIRED = (
    "pointing_game",
    "mask_energy",
    "mask_ratio",
    "motion_energy",
    "road",
    "confidence_change",
    "prob_label",
)


def default_checkpoints() -> tuple[Path, Path]:
    """The shipped demo pair when present, else the training runs' outputs."""
    if DEMO_CHECKPOINT.is_file() and DEMO_TSN_CHECKPOINT.is_file():
        return DEMO_CHECKPOINT, DEMO_TSN_CHECKPOINT
    return RUN_CHECKPOINTS


def dataset_folder(cache: str | Path, num: int, seed: int, size: int, frames: int) -> Path:
    """Generate (once) and return the cached folder of ``num`` clips; the naming of the training cache."""
    if seed in RESERVED_SEEDS:
        raise ValueError(f"seed {seed} made the {RESERVED_SEEDS[seed]} clips; pick a held-out seed")
    return Path(synthetic_folder(str(cache), num, seed, size, frames))


def _nan_to_none(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _ratio(share: float | None, area: float | None) -> float:
    """Energy share over area share: 1 for a map no better than uniform; NaN when either is missing."""
    return share / area if share is not None and area else math.nan


def importance_summary(drops: np.ndarray, in_action: np.ndarray, prefix: str) -> dict:
    """Sum, peak, peak segment and the share of the positive drops that falls inside the action."""
    positive = np.clip(drops, 0, None)
    total = float(positive.sum())
    return {
        f"{prefix}_sum": float(drops.sum()),
        f"{prefix}_max": float(drops.max()),
        f"{prefix}_argmax": int(drops.argmax()),
        f"{prefix}_action_share": float(positive[in_action].sum() / total) if total > 0 else math.nan,
        f"{prefix}_vector": ";".join(f"{v:.6f}" for v in drops),
    }


def side_row(
    key: str,
    side: ModelSide,
    model: Model,
    x: torch.Tensor,
    label: int,
    in_action: np.ndarray,
    percentiles: tuple[int, ...],
) -> dict:
    """One CSV row for one model on one clip (``x`` is the view the comparison explained)."""
    tdn_model, info = model
    probs = side.prediction.probs
    top5 = [t.index for t in side.prediction.topk(5)]
    cam = side.explanation.cam
    row = {
        "model": key,
        "checkpoint": info.name,
        "variant": info.config.variant,
        "pred": side.prediction.top1,
        "pred_name": CLASSES[side.prediction.top1],
        "correct": side.prediction.top1 == label,
        "top5_hit": label in top5,
        "prob_pred": float(probs.max()),
        "prob_label": float(probs[label]),
        "cam_all_zero": bool(cam.max() == 0),
        "mask_energy": side.mask_energy,
        "mask_area_share": side.mask_area_share,
        "mask_ratio": _ratio(side.mask_energy, side.mask_area_share),
        "motion_energy": side.motion_energy,
        "pointing_game": side.pointing.score if side.pointing is not None else math.nan,
        "pointing_segments": side.pointing.counted if side.pointing is not None else 0,
    }
    if percentiles:
        road = road_scores(tdn_model, x, cam, label, percentiles)
        row |= {
            "road": road.road,
            "road_morf": road.morf_mean,
            "road_lerf": road.lerf_mean,
            "confidence_change": road.confidence_change,
        }
    row |= importance_summary(side.segment_importance, in_action, "static")
    neighbour = segment_importance(tdn_model, x, label, "neighbour")
    return row | importance_summary(neighbour, in_action, "neighbour")


def study_clip(
    models: dict[str, Model],
    path: Path,
    label: int,
    action: tuple[int, int],
    method: str = "gradcam",
    layer: str = "res5",
    percentiles: tuple[int, ...] = ROAD_PERCENTILES,
) -> list[dict]:
    """Compare the two models on one clip file; one row per model. ``action``: the action's first and last
    frame; ``percentiles=()`` skips ROAD (the slow part)."""
    (key_a, a), (key_b, b) = models.items()
    views: dict[tuple[int, int], Clip] = {}
    for _, info in (a, b):  # one decode per input geometry; sampling makes the frames the same anyway
        geometry = (info.input_size, info.scale_size)
        if geometry not in views:
            views[geometry] = load_clip(path, spec=info.spec)
    clip_a, clip_b = (views[(info.input_size, info.scale_size)] for _, info in (a, b))
    shared = clip_a if clip_a is clip_b else path  # else compare decodes per model, on the same frames
    mask = load_mask_for(path)
    result = compare(a, b, shared, target=label, method=method, layer=layer, mask=mask)
    centre = result.frame_indices
    in_action = (centre >= action[0]) & (centre <= action[1])
    common = {
        "file": path.name,
        "label": label,
        "label_name": CLASSES[label],
        "action_start": action[0],
        "action_end": action[1],
        "segments_in_action": int(in_action.sum()),
    }
    rows = []
    for key, side, model, clip in ((key_a, result.a, a, clip_a), (key_b, result.b, b, clip_b)):
        row = side_row(key, side, model, clip.inputs[0], label, in_action, percentiles)
        aligned = clip_mask(mask, clip)
        grid = side.explanation.cam_raw.shape[1:]
        extra = {
            "motion_area_share": float(motion_mask(clip.model_frames[0]).mean()),
            "cam_grid": f"{grid[0]}x{grid[1]}",
            "mask_energy_ceiling": mask_energy(best_cam(aligned, grid), aligned)[0],
        }
        rows.append(common | extra | row)
    return rows


def run_study(
    models: dict[str, Model],
    folder: Path,
    num: int,
    seed: int,
    size: int,
    frames: int,
    method: str,
    layer: str,
    percentiles: tuple[int, ...],
    progress: bool = True,
) -> pd.DataFrame:
    """Every clip of a cached dataset folder through :func:`study_clip`."""
    rows = []
    plan = dataset_plan(num, seed)
    for index, (label, clip_seed) in enumerate(
        tqdm(plan, desc="compare study", unit="clip", disable=not progress)
    ):
        action = generate_clip(label, clip_seed, size, frames).action  # not stored by write_dataset
        path = folder / f"synth_{index:06d}.mp4"
        for row in study_clip(models, path, label, action, method, layer, percentiles):
            rows.append({"clip": index, "clip_seed": clip_seed, **row})
    return pd.DataFrame(rows)


def describe(values: pd.Series) -> dict:
    """n, mean, std, median and the 10/25/75/90 % quantiles of the finite values."""
    v = pd.to_numeric(values, errors="coerce").dropna()
    if v.empty:
        return {"n": 0}
    q = v.quantile([0.1, 0.25, 0.5, 0.75, 0.9])
    return {
        "n": int(v.size),
        "mean": float(v.mean()),
        "std": float(v.std(ddof=0)),
        "median": float(q[0.5]),
        "q10": float(q[0.1]),
        "q25": float(q[0.25]),
        "q75": float(q[0.75]),
        "q90": float(q[0.9]),
    }


def _pooled_pointing(part: pd.DataFrame) -> float | None:
    if "pointing_segments" not in part or not part["pointing_segments"].sum():
        return None
    counted = part["pointing_segments"]
    hits = (part["pointing_game"].fillna(0) * counted).round()
    return float(hits.sum() / counted.sum())


def summarise(frame: pd.DataFrame, target_share: float = 0.5, target_ratio: float = 3.0) -> dict:
    """Per model: accuracy, metric statistics (all clips and correctly classified ones), how often the mask
    target (energy share ≥ ``target_share`` and ≥ ``target_ratio`` × area share) is met; then paired
    TDN − TSN differences per clip and per-class means."""
    out: dict = {"models": {}, "paired": {}, "per_class": {}}
    keys = list(dict.fromkeys(frame["model"]))
    for key in keys:
        part = frame[frame["model"] == key]
        met = (part["mask_energy"] >= target_share) & (
            part["mask_energy"] >= target_ratio * part["mask_area_share"]
        )
        out["models"][key] = {
            "checkpoint": str(part["checkpoint"].iloc[0]),
            "variant": str(part["variant"].iloc[0]),
            "clips": int(len(part)),
            "accuracy": float(part["correct"].mean()),
            "top5": float(part["top5_hit"].mean()),
            "cam_all_zero": int(part["cam_all_zero"].sum()),
            "mask_target_met": float(met.mean()),
            # hits over every counted segment of every clip (the card's and explain --summary's pooling)
            "pointing_game_pooled": _pooled_pointing(part),
            "metrics": {m: describe(part[m]) for m in METRICS if m in part},
            "metrics_correct_only": {m: describe(part.loc[part["correct"], m]) for m in METRICS if m in part},
        }
    if len(keys) == 2:
        a, b = (frame[frame["model"] == k].set_index("clip") for k in keys)
        for m in PAIRED:
            if m not in a:
                continue
            diff = (a[m] - b[m]).dropna()
            out["paired"][f"{m}: {keys[0]} - {keys[1]}"] = describe(diff) | {
                "share_a_higher": float((diff > 0).mean()) if len(diff) else None
            }
    for key in keys:
        part = frame[frame["model"] == key]
        grouped = part.groupby("label_name", sort=False)
        out["per_class"][key] = {
            name: {
                "accuracy": float(g["correct"].mean()),
                "mask_energy": _nan_to_none(float(g["mask_energy"].mean())),
                "mask_ratio": _nan_to_none(float(g["mask_ratio"].mean())),
                "motion_energy": _nan_to_none(float(g["motion_energy"].mean())),
            }
            for name, g in grouped
        }
    return out


def checkpoint_record(path: Path, info: CheckpointInfo) -> dict:
    """Path and hash of a checkpoint, and which shipped demo file it is byte for byte, if any."""
    record = {"path": str(path), "sha256": info.sha256}
    for shipped in (DEMO_CHECKPOINT, DEMO_TSN_CHECKPOINT):
        if shipped.is_file() and hashlib.sha256(shipped.read_bytes()).hexdigest() == info.sha256:
            record["shipped_as"] = str(shipped.relative_to(shipped.parents[2]))
    return record


def machine() -> str:
    """Where the study ran, in words."""
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return (
        f"{platform.node()}: {platform.processor() or platform.machine()}, {os.cpu_count()} cores visible, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads{gpu}, Python {platform.python_version()}"
    )


def parse_args(argv: Iterable[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.compare_study", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--num", type=int, default=300, help="held-out clips")
    parser.add_argument("--seed", type=int, default=4242, help="dataset seed (not 1, 1001 or 2001)")
    parser.add_argument("--out", default=str(RESULTS / "compare_study.csv"))
    parser.add_argument("--tdn", default=None, help="model A (default: the demo TDN, else runs/demo_tdn)")
    parser.add_argument("--tsn", default=None, help="model B (default: the demo TSN, else runs/demo_tsn)")
    parser.add_argument("--method", default="gradcam")
    parser.add_argument(
        "--layer", default=AUTO_LAYER, help="default: the app's (tdn.interpret.gradcam.default_layer)"
    )
    parser.add_argument("--percentiles", type=int, nargs="*", default=list(ROAD_PERCENTILES))
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--cache", default="runs/cache")
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    return parser.parse_args(None if argv is None else list(argv))


def main(argv: Iterable[str] | None = None) -> int:
    args = parse_args(argv)
    defaults = default_checkpoints()
    paths = {"tdn": Path(args.tdn or defaults[0]), "tsn": Path(args.tsn or defaults[1])}
    models = {key: load_checkpoint(path, device=args.device) for key, path in paths.items()}
    args.layer = layer_for(args.layer, models["tdn"][1].input_size)  # recorded by name in the summary
    folder = dataset_folder(args.cache, args.num, args.seed, args.size, args.frames)
    started = datetime.now(UTC)
    frame = run_study(
        models,
        folder,
        args.num,
        args.seed,
        args.size,
        args.frames,
        args.method,
        args.layer,
        tuple(args.percentiles),
    )
    out = Path(args.out)
    write_atomic(out, frame.to_csv(index=False, float_format="%.6g"))
    summary = {
        "description": "TDN vs its TSN twin on held-out synthetic clips; target = ground-truth label",
        "command": shlex.join([Path(sys.executable).name, "-m", "analysis.compare_study", *sys.argv[1:]]),
        "commit": git_commit(),
        "date": started.isoformat(timespec="seconds"),
        "duration_s": round((datetime.now(UTC) - started).total_seconds(), 1),
        "machine": machine(),
        "checkpoints": {k: checkpoint_record(p, models[k][1]) for k, p in paths.items()},
        "dataset": {
            "folder": str(folder),
            "num": args.num,
            "seed": args.seed,
            "size": args.size,
            "frames": args.frames,
        },
        "method": args.method,
        "layer": args.layer,
        "road_percentiles": list(args.percentiles),
        "mask_dilation_px": 2,
        "motion_top_fraction": 0.1,
        "csv": out.name,
        **summarise(frame),
    }
    write_atomic(out.with_suffix(".json"), json.dumps(summary, indent=1, allow_nan=False) + "\n")
    for key, stats in summary["models"].items():
        metrics = stats["metrics"]
        print(
            f"{key}: accuracy {stats['accuracy']:.1%}, mask energy {metrics['mask_energy'].get('mean', math.nan):.3f} "
            f"(area {metrics['mask_area_share'].get('mean', math.nan):.3f}), motion energy "
            f"{metrics['motion_energy'].get('mean', math.nan):.3f}, ROAD {metrics.get('road', {}).get('mean', math.nan):.4f}"
        )
    print(f"→ {out} and {out.with_suffix('.json').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

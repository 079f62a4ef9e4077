"""``python -m tdn card``: measure the shipped demo models and write their model card.

Everything in the card is measured by this command or read from the checkpoints' metadata: held-out
accuracy (generated clips from a seed disjoint from training and validation), GMACs and params, CPU
inference latency (decoding excluded), Grad-CAM faithfulness on the acting object's mask, and training
provenance. Output: ``assets/models/MODEL_CARD.md`` and ``assets/models/model_card.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from tdn.cli.common import load_model_from, make_output_dir, output_dir, positive_int
from tdn.network.checkpoint import CheckpointInfo
from tdn.network.model import TDN


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tdn.assets import DEMO_CHECKPOINT, DEMO_TSN_CHECKPOINT, MODELS

    parser.add_argument(
        "--checkpoint",
        action="append",
        default=None,
        help=f"models to describe (default: {DEMO_CHECKPOINT.name} and {DEMO_TSN_CHECKPOINT.name})",
    )
    parser.add_argument(
        "--eval-num",
        type=positive_int,
        default=350,
        help="held-out generated clips for accuracy (default: 350)",
    )
    parser.add_argument("--eval-seed", type=int, default=2001)
    parser.add_argument(
        "--faith-num",
        type=positive_int,
        default=40,
        help="clips for the Grad-CAM faithfulness figures (default: 40, the first of the held-out clips)",
    )
    parser.add_argument("--cache", default="runs/cache")
    parser.add_argument(
        "--out", type=output_dir, default=MODELS, help="folder for MODEL_CARD.md and model_card.json"
    )


CARD_LAYERS = ("res5", "res4", "res3", "res2", "stem")  # deepest first


def _faithfulness(model: TDN, info: CheckpointInfo, folder: Path, num: int) -> dict:
    """Mean mask-energy share vs area share per CAM layer, and ROAD, over ``num`` clips of ``folder``."""
    from tdn.interpret.faithfulness import (
        RoadScores,
        actor_moving,
        best_cam,
        clip_mask,
        load_mask_for,
        mask_energy,
        pointing_game,
        road_scores,
    )
    from tdn.interpret.gradcam import default_layer, explain
    from tdn.training.data import read_labels_csv
    from tdn.video.clip import load_clip

    records, _ = read_labels_csv(folder)
    per_layer: dict[str, list[tuple[float, float]]] = {layer: [] for layer in CARD_LAYERS}
    hits: dict[str, list[bool]] = {layer: [] for layer in CARD_LAYERS}
    ceilings: dict[str, list[float]] = {layer: [] for layer in CARD_LAYERS}
    strides = {s.name: s.stride for s in model.stages if s.cam}
    road_layer = default_layer(info.input_size)
    road = []
    for rec in tqdm(records[:num], desc=f"faithfulness {info.name}", leave=False):
        clip = load_clip(rec.path, spec=info.spec)
        mask = clip_mask(load_mask_for(rec.path), clip)
        moving = actor_moving(clip.model_frames[0], mask)
        for layer, rows in per_layer.items():
            ex = explain(model, clip, target=rec.label, layer=layer)
            rows.append(mask_energy(ex.cam, mask))
            hits[layer] += [h for h in pointing_game(ex.cam, mask, moving).hits if h is not None]
            cells = -(-info.input_size // strides[layer])
            ceilings[layer].append(mask_energy(best_cam(mask, (cells, cells)), mask)[0])
            if layer == road_layer:
                road.append(road_scores(model, clip.inputs[0], ex.cam, rec.label))
    out: dict = {}
    for layer, rows in per_layer.items():
        share = np.array([r[0] for r in rows], dtype=float)
        area = np.array([r[1] for r in rows], dtype=float)
        out[layer] = {
            "pointing_game": float(np.mean(hits[layer])) if hits[layer] else None,
            "pointing_segments": len(hits[layer]),
            "energy_share": float(np.nanmean(share)),
            "energy_ceiling": float(np.nanmean(ceilings[layer])),
            "area_share": float(area.mean()),
            "ratio": float(np.nanmean(share) / area.mean()),
            "clips": len(rows),
        }
    out["default_layer"] = road_layer
    out["road"] = {"layer": road_layer} | {
        k: float(np.mean([r.summary()[k] for r in road])) for k in RoadScores.SUMMARY
    }
    return out


def run(args: argparse.Namespace) -> int:
    from tdn.assets import DEMO_CHECKPOINT, DEMO_TSN_CHECKPOINT
    from tdn.network.flops import count_gmacs, count_params, measure_latency
    from tdn.training.data import VideoClips, read_labels_csv
    from tdn.training.evaluation import evaluate
    from tdn.training.synth import synthetic_folder

    paths = args.checkpoint or [str(DEMO_CHECKPOINT), str(DEMO_TSN_CHECKPOINT)]
    torch.set_num_threads(torch.get_num_threads())
    models = [load_model_from(path, device="cpu") for path in paths]  # every checkpoint checked first
    out = make_output_dir(Path(args.out))  # before minutes of work, not after
    cards = []
    for path, (model, info) in zip(paths, models, strict=True):
        folder = Path(synthetic_folder(args.cache, args.eval_num, args.eval_seed, info.scale_size, 48))
        records, _ = read_labels_csv(folder)
        metrics = evaluate(model, VideoClips.for_evaluation(records, info.spec))
        gmacs, stages, _, _ = count_gmacs(model, info.input_size)
        training = info.metadata.get("training", {})
        cards.append(
            {
                "name": info.name,
                "synth_version": info.synth_version,
                "file": Path(path).name,
                "config": info.config.to_dict(),
                "classes": info.class_names,
                "input_size": info.input_size,
                "eval": {
                    "num_videos": metrics.num_videos,
                    "seed": args.eval_seed,
                    "top1": metrics.top1,
                    "top5": metrics.top5,
                    "confusion": metrics.confusion,
                },
                "val_top1_during_training": info.metadata.get("metrics", {}).get("val_top1"),
                "gmacs": gmacs,
                "params": count_params(model),
                "latency_ms": measure_latency(model, info.input_size, runs=30, warmup=3),
                "latency_device": f"CPU, {torch.get_num_threads()} threads, {platform.machine()}",
                "faithfulness": _faithfulness(model, info, folder, args.faith_num),
                "training": {
                    k: training.get(k)
                    for k in ("train_time_s", "epochs_done", "machine", "lr", "batch_size", "epochs", "seed")
                },
                "provenance": info.metadata.get("provenance", {}),
                "file_mb": Path(path).stat().st_size / 2**20,
            }
        )
    (out / "model_card.json").write_text(json.dumps(cards, indent=1))
    (out / "MODEL_CARD.md").write_text(render(cards, args))
    print(f"wrote {out / 'MODEL_CARD.md'}")
    return 0


def render(cards: list[dict], args: argparse.Namespace) -> str:
    """The card as Markdown; every number comes from ``cards``."""
    lines = [
        "# Demo models: TDN and its TSN twin on generated motion clips",
        "",
        "Written by `python -m tdn card` (numbers measured, not typed). Both models share backbone, data, "
        "recipe and seed; they differ only in the temporal modules (docs/architecture.md §13).",
        "",
        "## Task",
        "",
        f"{len(cards[0]['classes'])} Something-Something-style classes generated by `tdn.training.synth` "
        f"(dataset version {cards[0].get('synth_version', 2)}) "
        "(random shapes, textures, backgrounds, distractors, noise). Every direction-of-motion class has its exact "
        "time reversal as another class, so an order-blind model cannot tell the pair apart.",
        "",
        "| index | class |",
        "|---|---|",
        *[f"| {i} | {name} |" for i, name in enumerate(cards[0]["classes"])],
        "",
        "## Results",
        "",
        f"Held-out accuracy on {cards[0]['eval']['num_videos']} generated clips from seed {args.eval_seed} "
        "(training used seed 1, validation seed 1001), 1 centre crop × 1 clip, official test sampling.",
        "",
        "| model | file | top-1 | top-5 | GMACs / clip | params | CPU latency / clip (decode excluded) | size |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in cards:
        lines.append(
            f"| {c['name']} | `{c['file']}` | {100 * c['eval']['top1']:.1f}% | {100 * c['eval']['top5']:.1f}% | "
            f"{c['gmacs']:.3f} | {c['params']:,} | {c['latency_ms']:.1f} ms ({c['latency_device']}) | "
            f"{c['file_mb']:.1f} MB |"
        )
    lines += ["", "Per-class top-1 on the held-out clips (%):", ""]
    lines += ["| class | " + " | ".join(c["name"] for c in cards) + " |", "|---|" + "---|" * len(cards)]
    for i, name in enumerate(cards[0]["classes"]):
        cells = []
        for c in cards:
            row = c["eval"]["confusion"][i]
            cells.append(f"{100 * row[i] / sum(row):.0f}" if sum(row) else "–")
        lines.append(f"| {i} {name} | " + " | ".join(cells) + " |")
    for c in cards:
        lines += ["", f"Confusion matrix of {c['name']} (rows: true class, columns: predicted):", "", "```"]
        lines += [
            f"{i:>2} " + " ".join(f"{v:>3}" for v in row) for i, row in enumerate(c["eval"]["confusion"])
        ]
        lines += ["```"]
    lines += [
        "",
        "## Where Grad-CAM looks (faithfulness)",
        "",
        "**Pointing game**: the share of segments whose Grad-CAM maximum (target = true class) falls inside "
        "the acting object's mask dilated by 2 px, counting only segments whose snippet shows the actor "
        "moving. **Energy share**: the share of the map's energy inside that mask, beside the best share a "
        "map of that layer's resolution can reach (its ceiling) and the mask's share of the area; averaged "
        "over clips. The default layer (the deepest with a map of at least 7x7) is marked. ROAD (at the "
        "default layer): target-probability change when the most / least relevant pixels are removed and "
        "imputed (see tdn/interpret/faithfulness.py).",
        "",
        "| model | layer | pointing game (segments) | energy share | ceiling | area share | ratio | clips |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in cards:
        for layer in CARD_LAYERS:
            f = c["faithfulness"][layer]
            marked = f"**{layer}** (default)" if layer == c["faithfulness"]["default_layer"] else layer
            game = "n/a" if f.get("pointing_game") is None else f"{f['pointing_game']:.3f}"
            lines.append(
                f"| {c['name']} | {marked} | {game} ({f.get('pointing_segments', 0)}) | {f['energy_share']:.3f} | "
                f"{f.get('energy_ceiling', float('nan')):.3f} | {f['area_share']:.3f} | {f['ratio']:.2f}× | "
                f"{f['clips']} |"
            )
    lines += ["", "ROAD at the default layer (mean over clips):", ""]
    for c in cards:
        road = dict(c["faithfulness"]["road"])
        layer = road.pop("layer")
        lines.append(f"* {c['name']} ({layer}): " + ", ".join(f"{k} {v:+.3f}" for k, v in road.items()))
    lines += ["", "## Training", ""]
    for c in cards:
        t, p = c["training"], c["provenance"]
        hours = (t.get("train_time_s") or 0) / 60
        lines += [
            f"* **{c['name']}**: {t.get('epochs_done')} epochs, {hours:.1f} min on {t.get('machine')}; "
            f"commit `{p.get('commit')}`; command: `{p.get('command')}`"
        ]
    lines += [
        "",
        "Training shared the 2-core machine with other work, so wall-clock times are upper bounds.",
        "",
    ]
    return "\n".join(lines)

"""Do the demo models' Grad-CAMs sit on the moving object? Mask energy vs area share, motion energy and ROAD.

Over N freshly generated clips (a held-out seed; mp4 + mask, decoded as the app decodes them) both demo
models are explained for the true label at each requested layer, through the same per-clip code as the
study (``analysis.compare_study.study_clip``). Printed per model and layer: mean and median share of CAM
energy on the actor's mask (dilated 2 px) against the mask's area share and against the best a map at
the layer's resolution could do, how many clips meet the target (energy share >= 0.5 and >= 3x the area
share), motion energy, ROAD and the CAM-times-image confidence change. The target is for the demo TDN.

Run: python -m bench.bench_faithfulness [--num 28] [--layers res5 res4 ...] [--no-road] [--tdn A --tsn B]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from analysis.compare_study import default_checkpoints, study_clip
from tdn.interpret.faithfulness import ROAD_PERCENTILES
from tdn.interpret.gradcam import default_layer
from tdn.network.checkpoint import load_checkpoint
from tdn.training.synth import dataset_plan, generate_clip, write_dataset

TARGET_SHARE, TARGET_RATIO = 0.5, 3.0


def report(frame: pd.DataFrame, layer: str) -> None:
    for key, part in frame.groupby("model", sort=False):
        share, area = part["mask_energy"], part["mask_area_share"]
        met = (share >= TARGET_SHARE) & (share >= TARGET_RATIO * area)
        mean_ok = share.mean() >= TARGET_SHARE and share.mean() >= TARGET_RATIO * area.mean()
        road = f"{part['road'].mean():+.4f}" if "road" in part else "  skipped"
        change = f"{part['confidence_change'].mean():+.4f}" if "confidence_change" in part else "  skipped"
        # Pointing game: every counted segment of every clip weighs the same (clips hold 0-8 of them).
        hits = (part["pointing_game"] * part["pointing_segments"]).sum()
        game = hits / part["pointing_segments"].sum() if part["pointing_segments"].sum() else float("nan")
        print(
            f"{layer:5} {key:4} acc {part['correct'].mean():5.1%}  pointing game {game:.3f} "
            f"({int(part['pointing_segments'].sum())} segments)  mask energy mean {share.mean():.3f} "
            f"median {share.median():.3f} | area {area.mean():.3f} (x{share.mean() / area.mean():.1f}) | best "
            f"possible at {part['cam_grid'].iloc[0]} {part['mask_energy_ceiling'].mean():.3f}  "
            f"target met {met.mean():5.1%} of clips{' [mean meets target]' if mean_ok else ''}  "
            f"motion {part['motion_energy'].mean():.3f}  ROAD {road}  conf. change {change}  "
            f"all-zero CAMs {int(part['cam_all_zero'].sum())}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--num", type=int, default=28, help="generated clips (2 per class by default)")
    parser.add_argument("--seed", type=int, default=9090, help="held-out dataset seed")
    parser.add_argument("--layers", nargs="+", default=["res5", "res4", "res3", "res2", "stem"])
    parser.add_argument("--method", default="gradcam")
    parser.add_argument(
        "--no-road", dest="road", action="store_false", help="skip ROAD (the slow part; default layer only)"
    )
    parser.add_argument("--tdn", default=None)
    parser.add_argument("--tsn", default=None)
    args = parser.parse_args()

    defaults = default_checkpoints()
    models = {
        key: load_checkpoint(path or default, device="cpu")
        for key, path, default in (("tdn", args.tdn, defaults[0]), ("tsn", args.tsn, defaults[1]))
    }
    print(
        f"{platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"{args.num} clips, seed {args.seed}, {args.method}"
    )
    for key, (_, info) in models.items():
        print(f"  {key}: {info.path} ({info.config.variant}, {info.input_size} px)")
    default = default_layer(models["tdn"][1].input_size)
    print(f"  default layer (the app's, the deepest with a map of at least 7x7): {default}; ROAD there only")
    plan = dataset_plan(args.num, args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-faithfulness-") as folder:
        write_dataset(folder, args.num, args.seed, progress=False)
        for layer in args.layers:
            start, rows = time.perf_counter(), []
            for index, (label, clip_seed) in enumerate(plan):
                action = generate_clip(label, clip_seed).action
                path = Path(folder) / f"synth_{index:06d}.mp4"
                percentiles = ROAD_PERCENTILES if args.road and layer == default else ()
                rows += study_clip(models, path, label, action, args.method, layer, percentiles)
            report(pd.DataFrame(rows), layer)
            print(f"      ({(time.perf_counter() - start) / args.num:.2f} s per clip for both models)")


if __name__ == "__main__":
    main()

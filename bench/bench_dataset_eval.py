"""Throughput of ``tdn.datasets.evaluate_dataset`` on the shipped evaluation set (assets/eval), per protocol.

``python -m bench.bench_dataset_eval [--threads 1] [--checkpoint PATH]`` prints videos/s and the decode and model
milliseconds per video, decoding inline (``workers=0``: the two add up) and one video ahead in a thread
(``workers=1``: decoding overlaps the model). Nothing is written.
"""

from __future__ import annotations

import argparse

import torch

import tdn
from tdn.assets import ASSETS, DEMO_CHECKPOINT
from tdn.datasets import evaluate_dataset, read_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=str(DEMO_CHECKPOINT))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--list", default=str(ASSETS / "eval" / "synth_val" / "labels.csv"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, info = tdn.load_checkpoint(args.checkpoint, device="cpu")
    dataset = read_dataset(args.list, class_names=info.class_names)
    evaluate_dataset(
        model, info, dataset.__class__(**{**vars(dataset), "entries": dataset.entries[:2]}), progress=False
    )
    print(f"{info.name}, {len(dataset.entries)} videos, {torch.get_num_threads()} thread(s)")
    for protocol in ("ss-1crop", "ss-3crop", "k400-30view"):
        for workers in (0, 1):
            s = evaluate_dataset(model, info, dataset, protocol, progress=False, workers=workers)
            t, n = s["timing"], s["metrics"]["videos"]
            print(
                f"{protocol:12s} workers={workers}: {t['videos_per_s']:5.1f} videos/s · decode "
                f"{1000 * t['decode_s'] / n:6.1f} ms · model {1000 * t['model_s'] / n:6.1f} ms per video · "
                f"top-1 {s['metrics']['top1']:.1f} %"
            )


if __name__ == "__main__":
    main()

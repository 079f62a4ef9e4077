"""Memory over repeated explanations: RSS growth per 100 runs (hooks, graphs or caches leaking would show).

Runs N explanations (Grad-CAM + difference maps) of rotating clips on one shared model and prints RSS after
warm-up and every 100 runs. Run: python -m bench.bench_leak [--runs 200] [--checkpoint PATH]
"""

from __future__ import annotations

import argparse
import gc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    from tdn.assets import DEMO_CHECKPOINT, sample_clips
    from tdn.interpret.gradcam import METHODS, explain
    from tdn.interpret.tdmaps import difference_maps
    from tdn.network.checkpoint import load_checkpoint
    from tdn.video.clip import load_clip

    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--checkpoint", default=str(DEMO_CHECKPOINT))
    args = parser.parse_args()
    model, info = load_checkpoint(args.checkpoint, device="cpu")
    clips = [load_clip(p, spec=info.spec) for p in sample_clips()]
    methods = list(METHODS)
    for i in range(20):  # warm-up: allocator pools and caches settle
        explain(model, clips[i % len(clips)], method=methods[i % len(methods)])
    gc.collect()
    start = rss_mb()
    print(f"{info.name}: RSS after warm-up {start:.1f} MB")
    for i in range(1, args.runs + 1):
        clip = clips[i % len(clips)]
        explain(model, clip, method=methods[i % len(methods)], layer=["res5", "res4", "res3", "stem"][i % 4])
        difference_maps(model, clip.inputs[0])
        if i % 100 == 0:
            gc.collect()
            now = rss_mb()
            print(
                f"after {i:>4} runs: RSS {now:.1f} MB, growth {100 * (now - start) / i:+.2f} MB per 100 runs"
            )
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
    print(f"hooks left on the model: {hooks}")


if __name__ == "__main__":
    main()

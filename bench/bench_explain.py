"""Grad-CAM cost on TDN-R50 8f at 224² (CPU): time against the plain forward, and peak memory.

Each mode runs in a fresh process so that its peak RSS (ru_maxrss) is its own:
  forward   – eval forward under inference_mode (the baseline)
  lens      – tdn.interpret.gradcam (pytorch-grad-cam with the shallow backward and the lock)
  stock     – pytorch-grad-cam's GradCAM used out of the box on the same model and layer
Also: 4 threads sharing one model through tdn.interpret.gradcam versus the same calls in sequence (throughput).
Run: python -m bench.bench_explain [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _model():
    import torch

    from tdn.network.model import build_model

    torch.manual_seed(0)
    model = build_model("resnet50", 8, 174).eval()
    with torch.no_grad():  # trained-like statistics so activations stay O(1)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.fill_(0.5)
    return model


def child(mode: str, runs: int) -> None:
    import torch
    from pytorch_grad_cam import GradCAM

    from tdn.interpret.gradcam import explain

    model = _model()
    x = torch.randn(1, 120, 224, 224)
    times = []
    for i in range(runs + 1):
        start = time.perf_counter()
        if mode == "forward":
            with torch.inference_mode():
                model(x)
        elif mode == "lens":
            explain(model, x, layer="res5")
        else:
            with GradCAM(model=model, target_layers=[model.base_model.layer4_bak]) as cam:
                cam(input_tensor=x, targets=None)
        if i:
            times.append((time.perf_counter() - start) * 1000)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"mode": mode, "median_ms": statistics.median(times), "peak_rss_mb": peak_mb}))


def threads_vs_sequential(calls: int = 8, workers: int = 4) -> tuple[float, float]:
    import torch

    from tdn.interpret.gradcam import explain

    model = _model()
    xs = [torch.randn(1, 120, 224, 224) for _ in range(calls)]
    explain(model, xs[0])
    start = time.perf_counter()
    for x in xs:
        explain(model, x)
    sequential = time.perf_counter() - start
    start = time.perf_counter()
    chunks = [xs[i::workers] for i in range(workers)]
    threads = [threading.Thread(target=lambda c=c: [explain(model, x) for x in c]) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sequential, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--child", default=None)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.runs)
        return
    import torch

    print(
        f"TDN-R50 8f, 224², torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.runs}"
    )
    rows = {}
    for mode in ("forward", "lens", "stock"):
        out = subprocess.run(
            [sys.executable, __file__, "--child", mode, "--runs", str(args.runs)],
            capture_output=True,
            text=True,
            check=True,
        )
        rows[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    base = rows["forward"]["median_ms"]
    print(f"{'mode':<10} {'median ms':>10} {'× forward':>10} {'peak RSS MB':>12}")
    for mode, row in rows.items():
        print(
            f"{mode:<10} {row['median_ms']:>10.1f} {row['median_ms'] / base:>10.2f} {row['peak_rss_mb']:>12.0f}"
        )
    seq, par = threads_vs_sequential()
    print(
        f"8 explanations: sequential {seq:.2f} s, 4 threads on one shared model {par:.2f} s "
        f"(throughput ratio {seq / par:.2f}; the lock serialises, torch uses every core per call)"
    )


if __name__ == "__main__":
    main()

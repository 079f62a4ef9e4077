"""CPU forward latency of TDN-R50 8f against torchvision's ResNet-50 on the same 8 centre frames.

Interleaved in one process (A, B, A, B, ...) so that machine noise hits both alike; prints medians and their
ratio at batch 1 and 4. Also checks that the speed path keeps the reference fixture within 1e-4.
Run: python bench/bench_model.py [--runs 7]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from tdn.inference import inference_copy  # noqa: E402
from tdn.model import build_model  # noqa: E402


def timed(fn, x: torch.Tensor) -> float:
    start = time.perf_counter()
    fn(x)
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()

    import json

    from reference_fill import REFERENCE, fill_state_dict, manifest_entries, reference_input

    tdn = build_model("resnet50", 8, 174).eval()
    tdn.load_state_dict(fill_state_dict(manifest_entries()))
    ref = json.loads(REFERENCE.read_text())["cases"][0]
    with torch.inference_mode():
        delta = (tdn(reference_input(0))[0] - torch.tensor(ref["logits"])).abs().max().item()
    resnet = torchvision.models.resnet50(num_classes=174).eval()
    fast = inference_copy(tdn)  # what tdn.inference.predict runs: BatchNorm folded into the convolutions
    with torch.inference_mode():
        delta_fast = (fast(reference_input(0))[0] - torch.tensor(ref["logits"])).abs().max().item()

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}"
    )
    print(f"fixture max |Δlogit| = {delta:.2e} plain, {delta_fast:.2e} folded (must be ≤ 1e-4)")
    print(
        f"{'batch':>5} {'TDN ms':>9} {'TDN folded ms':>14} {'ResNet-50 ×8 ms':>16} {'ratio':>6} {'folded':>7}"
        f"  (median of {args.runs}, interleaved)"
    )
    for batch in args.batches:
        x = torch.randn(batch, 120, 224, 224)
        centre = x.view(batch, 8, 5, 3, 224, 224)[:, :, 2].reshape(batch * 8, 3, 224, 224).contiguous()
        t_tdn, t_fast, t_res = [], [], []
        with torch.inference_mode():
            for i in range(args.warmup + args.runs):
                a, f, b = timed(tdn, x), timed(fast, x), timed(resnet, centre)
                if i >= args.warmup:
                    t_tdn.append(a)
                    t_fast.append(f)
                    t_res.append(b)
        m_tdn, m_fast, m_res = (statistics.median(t) for t in (t_tdn, t_fast, t_res))
        print(
            f"{batch:>5} {m_tdn:>9.1f} {m_fast:>14.1f} {m_res:>16.1f} {m_tdn / m_res:>6.3f} {m_fast / m_res:>7.3f}"
        )
    print("arithmetic ratio (GMACs): 35.64 / 32.7 = 1.09")


if __name__ == "__main__":
    main()

"""One training step of the demo TDN (ResNet-18 x0.25, 8 segments, 112 px, batch 16) in both memory layouts.

A step is what ``tdn.training.loop`` does per batch: forward in train mode, cross-entropy, backward, AdamW.
The two layouts run interleaved in one process from the same weights, so the ratio is measured in one run;
the data pipeline (augmentation, ~12 ms a clip here) is not included.

Run: python -m bench.bench_train [--runs 10] [--batch 16] [--variant tdn]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from tdn.network.model import build_model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--variant", default="tdn")
    args = parser.parse_args()

    torch.manual_seed(0)
    options = {"ltdm_reduction": 4} if args.variant == "tdn" else {}
    first = build_model("resnet18", 8, 14, args.variant, width=0.25, **options).train()
    last = build_model("resnet18", 8, 14, args.variant, width=0.25, **options).train()
    last.load_state_dict(first.state_dict())
    last.to(memory_format=torch.channels_last)
    x = torch.randn(args.batch, 8 * 15, 112, 112)
    y = torch.randint(0, 14, (args.batch,))
    setups = []
    for model, layout in ((first, torch.contiguous_format), (last, torch.channels_last)):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        setups.append((model, optimizer, x.contiguous(memory_format=layout)))

    def step(model, optimizer, inp) -> float:
        start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(inp), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return (time.perf_counter() - start) * 1000

    times: list[list[float]] = [[], []]
    for i in range(args.warmup + args.runs):
        for slot, setup in zip(times, setups, strict=True):
            ms = step(*setup)
            if i >= args.warmup:
                slot.append(ms)
    a, b = (statistics.median(t) for t in times)
    pairs = statistics.median(p / q for p, q in zip(times[0], times[1], strict=True))
    print(
        f"{platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads; demo {args.variant} "
        f"(ResNet-18 x0.25, 8x112 px), batch {args.batch}, median of {args.runs}, interleaved"
    )
    print(
        f"train step: channels-first {a:.0f} ms, channels-last {b:.0f} ms: {a / b:.2f}x faster "
        f"[median of per-pair ratios {pairs:.2f}]"
    )


if __name__ == "__main__":
    main()

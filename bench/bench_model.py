"""CPU forward latency of TDN-R50 8f against torchvision's ResNet-50 on the same 8 centre frames.

Interleaved in one process (A, B, A, B, ...) so that machine noise hits both alike; prints medians and their
ratio at batch 1 and 4, then per stage (S-TDM, stem, res2-res5, head) on the predict path. Also checks that the speed path keeps the reference fixture within 1e-4.
Run: python -m bench.bench_model [--runs 15]. The process is prepared as the CLI and the app prepare theirs
(``tdn.contract.prepare_process``: OpenMP wait policy, glibc heap policy); ``TDN_MALLOC=default`` measures without
the heap policy.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

from tdn.contract import CENTRE_FRAME, CHANNELS_PER_SEGMENT, prepare_process

HEAP_POLICY = prepare_process()  # before torch loads, as the CLI and the app do

import torch  # noqa: E402
import torchvision  # noqa: E402

from tdn.inference import inference_copy  # noqa: E402
from tdn.network.convbn import run_conv_bn  # noqa: E402
from tdn.network.model import build_model  # noqa: E402


def timed(fn, x: torch.Tensor) -> float:
    start = time.perf_counter()
    fn(x)
    return (time.perf_counter() - start) * 1000


def lap(out: dict[str, float], name: str, fn):
    """``fn()``, its milliseconds stored as ``out[name]``."""
    start = time.perf_counter()
    value = fn()
    out[name] = (time.perf_counter() - start) * 1000
    return value


def tdn_stages(model, x: torch.Tensor) -> dict[str, float]:
    """Milliseconds per stage of one forward of a TDN, stage by stage as ``TDNBackbone.forward`` runs them."""
    b = model.base_model
    t = model.num_segments
    x = x.reshape(x.shape[0] * t, CHANNELS_PER_SEGMENT, *x.shape[-2:])
    c = CENTRE_FRAME * 3
    out: dict[str, float] = {}
    s0, s1 = lap(out, "S-TDM", lambda: b.short_term(x))
    r0 = lap(out, "stem", lambda: b.maxpool(b.relu(run_conv_bn(b.conv1, b.bn1, x[:, c : c + 3]))))
    f = lap(out, "res2", lambda: b.fuse2(b.layer1_bak(b.fuse1(r0, s0)), s1))
    for name, stage in (("res3", b.layer2_bak), ("res4", b.layer3_bak), ("res5", b.layer4_bak)):
        f = lap(out, name, lambda stage=stage, f=f: stage(f))
    lap(
        out,
        "head",
        lambda: model.new_fc(torch.flatten(b.avgpool(f), 1)).view(-1, t, model.new_fc.out_features).mean(1),
    )
    return out


def resnet_stages(model, x: torch.Tensor) -> dict[str, float]:
    """The same for torchvision's ResNet-50 (no S-TDM)."""
    out: dict[str, float] = {}
    f = lap(out, "stem", lambda: model.maxpool(model.relu(model.bn1(model.conv1(x)))))
    for name, stage in (
        ("res2", model.layer1),
        ("res3", model.layer2),
        ("res4", model.layer3),
        ("res5", model.layer4),
    ):
        f = lap(out, name, lambda stage=stage, f=f: stage(f))
    lap(out, "head", lambda: model.fc(torch.flatten(model.avgpool(f), 1)))
    return out


def stage_table(fast, resnet_cl, x: torch.Tensor, centre: torch.Tensor, runs: int, warmup: int) -> None:
    """Per-stage medians, TDN's predict path against ResNet-50 channels-last, interleaved."""
    ours, theirs = [], []
    with torch.inference_mode():
        for i in range(warmup + runs):
            a, b = tdn_stages(fast, x), resnet_stages(resnet_cl, centre)
            if i >= warmup:
                ours.append(a)
                theirs.append(b)
    print(f"per stage, batch {x.shape[0]} (fast path vs ResNet-50 channels-last, median ms of {runs}):")
    total_a = total_b = 0.0
    for name in ("S-TDM", "stem", "res2", "res3", "res4", "res5", "head"):
        a = statistics.median(r[name] for r in ours)
        b = statistics.median(r[name] for r in theirs) if name in theirs[0] else 0.0
        total_a, total_b = total_a + a, total_b + b
        ratio = f"{a / b:6.2f}" if b else "     -"
        print(f"  {name:6} {a:8.1f} {b:8.1f} {ratio}")
    print(f"  {'sum':6} {total_a:8.1f} {total_b:8.1f} {total_a / total_b:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()

    import json

    from tests.reference_fill import REFERENCE, fill_state_dict, manifest_entries, reference_input

    tdn = build_model("resnet50", 8, 174).eval()
    tdn.load_state_dict(fill_state_dict(manifest_entries()))
    ref = json.loads(REFERENCE.read_text())["cases"][0]
    with torch.inference_mode():
        delta = (tdn(reference_input(0))[0] - torch.tensor(ref["logits"])).abs().max().item()
    resnet = torchvision.models.resnet50(num_classes=174).eval()
    # the baseline gets the same layout trick, so the ratio compares like with like
    resnet_cl = torchvision.models.resnet50(num_classes=174).eval().to(memory_format=torch.channels_last)
    resnet_cl.load_state_dict(resnet.state_dict())
    fast = inference_copy(tdn)  # what tdn.inference.predict runs: BN folded, channels-last
    with torch.inference_mode():
        delta_fast = (fast(reference_input(0))[0] - torch.tensor(ref["logits"])).abs().max().item()

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
        f"heap policy {'on' if HEAP_POLICY else 'off (TDN_MALLOC=default or not glibc)'}"
    )
    print(f"fixture max |Δlogit| = {delta:.2e} plain, {delta_fast:.2e} folded (must be ≤ 1e-4)")
    print(
        f"{'batch':>5} {'TDN ms':>8} {'R50 ms':>8} {'ratio':>6} | {'TDN fast ms':>11} {'R50 cl ms':>9} "
        f"{'ratio':>6}  (median of {args.runs}, interleaved; fast = BN folded + channels-last; [median of the\n"
        f"{'':>5} per-pair ratios, each TDN run against the ResNet run right after it: less noise on a shared machine])"
    )
    for batch in args.batches:
        x = torch.randn(batch, 120, 224, 224)
        centre = x.view(batch, 8, 5, 3, 224, 224)[:, :, 2].reshape(batch * 8, 3, 224, 224).contiguous()
        models = ((tdn, x), (resnet, centre), (fast, x), (resnet_cl, centre))
        times: list[list[float]] = [[] for _ in models]
        with torch.inference_mode():
            for i in range(args.warmup + args.runs):
                for slot, (model, inp) in zip(times, models, strict=True):
                    t = timed(model, inp)
                    if i >= args.warmup:
                        slot.append(t)
        a, b, c, d = (statistics.median(t) for t in times)
        plain_pairs = statistics.median(p / q for p, q in zip(times[0], times[1], strict=True))
        fast_pairs = statistics.median(p / q for p, q in zip(times[2], times[3], strict=True))
        mins = [min(t) for t in times]  # noise on a shared machine only ever adds time
        print(
            f"{batch:>5} {a:>8.1f} {b:>8.1f} {a / b:>6.3f} [{plain_pairs:.3f}] | {c:>11.1f} {d:>9.1f} {c / d:>6.3f} "
            f"[{fast_pairs:.3f}]   fastest runs: {mins[0]:.1f} / {mins[1]:.1f} = {mins[0] / mins[1]:.3f} plain, "
            f"{mins[2]:.1f} / {mins[3]:.1f} = {mins[2] / mins[3]:.3f} fast"
        )
        if batch == args.batches[0]:
            stage_table(fast, resnet_cl, x, centre, args.runs, args.warmup)
    print("arithmetic ratio (GMACs): 35.64 / 32.7 = 1.09")


if __name__ == "__main__":
    main()

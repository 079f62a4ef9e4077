"""``python -m tdn profile``: params, GMACs (multiply-adds) per stage and measured latency."""

from __future__ import annotations

import argparse
import json

from tdn.network.checkpoint import resolve_device
from tdn.network.flops import profile_model
from tdn.network.model import ARCHS, VARIANTS, build_model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", default="resnet50", choices=sorted(ARCHS))
    parser.add_argument("--segments", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--variant", default="tdn", choices=list(VARIANTS))
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--classes", type=int, default=174)
    parser.add_argument("--runs", type=int, default=5, help="timed forwards (0 skips latency)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    model = build_model(args.arch, args.segments, args.classes, args.variant, width=args.width)
    model.to(resolve_device(args.device)).eval()
    prof = profile_model(model, args.size, args.runs)
    if args.json:
        print(json.dumps(prof.to_dict()))
        return 0
    print(f"TDN {args.arch} ×{args.width:g} {args.variant}, {args.segments} segments, {args.size}² input")
    print(f"  params      {prof.params:,}")
    print(f"  GMACs       {prof.gmacs:.2f}  (multiply-adds; FlopCounterMode FLOPs / 2)")
    for stage, g in prof.stages.items():
        print(f"    {stage:<30} {g:8.3f}")
    print(f"    {'of which L-TDM (all blocks)':<30} {prof.ltdm_gmacs:8.3f}")
    print(f"    {'of which shift (all blocks)':<30} {prof.shift_gmacs:8.3f}")
    if prof.latency_ms is not None:
        print(f"  latency     {prof.latency_ms:.1f} ms per forward (median of {args.runs}) on {prof.device}")
    return 0

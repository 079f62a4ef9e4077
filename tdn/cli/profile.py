"""``python -m tdn profile``: params, GMACs (multiply-adds) per stage and measured latency."""

from __future__ import annotations

import argparse
import json

import torch

from tdn.cli.common import (
    UsageError,
    add_device_arguments,
    apply_precision,
    nonnegative_int,
    one_line,
    positive_float,
    positive_int,
)
from tdn.contract import CHANNELS_PER_SEGMENT
from tdn.network.checkpoint import DeviceError, resolve_device
from tdn.network.flops import profile_model
from tdn.network.model import ARCHS, VARIANTS, build_model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", default="resnet50", choices=sorted(ARCHS))
    parser.add_argument("--segments", type=positive_int, default=8)
    parser.add_argument("--size", type=positive_int, default=224, help="input side in pixels")
    parser.add_argument("--variant", default="tdn", choices=list(VARIANTS))
    parser.add_argument("--width", type=positive_float, default=1.0, help="channel width multiplier")
    parser.add_argument("--classes", type=positive_int, default=174)
    parser.add_argument("--runs", type=nonnegative_int, default=5, help="timed forwards (0 skips latency)")
    add_device_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    try:
        apply_precision(args)
        device = resolve_device(args.device)
    except DeviceError as e:
        raise UsageError(f"--device {args.device}: {one_line(e)}") from None
    try:  # a configuration the network cannot be built with, or an input it cannot take
        model = build_model(args.arch, args.segments, args.classes, args.variant, width=args.width)
        model.check_input(
            torch.empty(1, args.segments * CHANNELS_PER_SEGMENT, args.size, args.size, device="meta")
        )
    except ValueError as e:
        raise UsageError(one_line(e)) from None
    model.to(device).eval()
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

"""GPU figures for TDN-R50 (run by bench/gpu_check.sh on a GPU machine; a quick CPU run checks the script).

Prints and writes one JSON: the fixture's max |Δlogit| in fp32, TF32 and bf16; whether Grad-CAM is
bit-identical across repeated calls from 8 threads at every layer; milliseconds per video at batch 1 and
16 for eager fp32, eager TF32 channels-last, bf16 autocast channels-last and ``torch.compile`` (bf16,
channels-last); the host→GPU copy of one video as float32 (pageable) against uint8 (pinned); peak memory.

Usage: ``python -m bench.bench_gpu [--out FILE] [--runs 20]``; ``--device cpu --arch resnet18 --size 112
--batches 1 --runs 2`` is a smoke test.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import threading
import time

import numpy as np
import torch

from tdn.assets import DEMO_CHECKPOINT, sample_clips
from tdn.interpret.gradcam import LAYERS, explain
from tdn.network.checkpoint import load_checkpoint
from tdn.network.model import build_model
from tdn.network.runtime import autocast_for, set_precision
from tdn.video import load_clip
from tdn.video.preprocess import to_model_input_on
from tests.reference_fill import REFERENCE, fill_state_dict, manifest_entries, reference_input


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_ms(fn, device: torch.device, runs: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def fixture_deltas(device: torch.device) -> dict[str, float]:
    reference = json.loads(REFERENCE.read_text())
    case = reference["cases"][0]
    model = build_model("resnet50", 8, 174)
    model.load_state_dict(fill_state_dict(manifest_entries()))
    model.to(device).eval()
    x = reference_input(case["input_seed"], case["num_segments"]).to(device)
    expected = torch.tensor(case["logits"])
    out = {}
    for mode in ("fp32", "tf32", "bf16"):
        set_precision(mode)
        with torch.inference_mode(), autocast_for(device):
            logits = model(x).float().cpu()[0]
        out[mode] = float((logits - expected).abs().max())
    set_precision("fp32")
    return out


def determinism(device: torch.device, threads: int = 8, repeats: int = 3) -> dict[str, bool]:
    set_precision("fp32")
    model, info = load_checkpoint(DEMO_CHECKPOINT, device=str(device))
    clip = load_clip(sample_clips()[0], spec=info.spec)
    result = {}
    for layer in LAYERS:
        first = explain(model, clip, layer=layer).cam_raw
        maps: list[np.ndarray] = []

        def run(layer: str = layer, maps: list[np.ndarray] = maps) -> None:
            for _ in range(repeats):
                maps.append(explain(model, clip, layer=layer).cam_raw)

        pool = [threading.Thread(target=run) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        result[layer] = len(maps) == threads * repeats and all(np.array_equal(m, first) for m in maps)
    return result


def speed(args: argparse.Namespace, device: torch.device) -> dict:
    t = 8
    base = build_model(args.arch, t, 174).to(device).eval()
    modes = {
        "eager_fp32": ("fp32", False, False),
        "eager_tf32_channels_last": ("tf32", True, False),
        "bf16_autocast_channels_last": ("bf16", True, False),
        "compile_bf16_channels_last": ("bf16", True, True),
    }
    out: dict = {}
    for name, (precision, channels_last, compiled) in modes.items():
        set_precision(precision)
        model = base.to(memory_format=torch.channels_last) if channels_last else base
        runner = torch.compile(model) if compiled else model
        row = {}
        for batch in args.batches:
            x = torch.randn(batch, t * 15, args.size, args.size, device=device)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)

            def forward(x: torch.Tensor = x, runner: torch.nn.Module = runner) -> None:
                with torch.inference_mode(), autocast_for(device):
                    runner(x)

            start = time.perf_counter()
            forward()  # first call: compilation for torch.compile
            _sync(device)
            first_ms = (time.perf_counter() - start) * 1000
            ms = _time_ms(forward, device, args.runs)
            row[f"batch{batch}"] = {
                "ms_per_batch": ms,
                "ms_per_video": ms / batch,
                "first_call_ms": first_ms,
                "peak_memory_mib": torch.cuda.max_memory_allocated(device) / 2**20
                if device.type == "cuda"
                else None,
            }
        out[name] = row
        base = base.to(memory_format=torch.contiguous_format)
    set_precision("fp32")
    return out


def copy_cost(device: torch.device, size: int) -> dict:
    frames = np.random.default_rng(0).integers(0, 256, (8, 5, size, size, 3), dtype=np.uint8)
    as_float = torch.randn(1, 8 * 15, size, size)
    return {
        "float32_pageable_ms": _time_ms(lambda: as_float.to(device), device, 20),
        "uint8_pinned_normalised_on_device_ms": _time_ms(
            lambda: to_model_input_on(frames, device), device, 20
        ),
        "float32_bytes": as_float.numel() * 4,
        "uint8_bytes": frames.size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    device = torch.device(args.device)
    report = {
        "machine": {
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "fixture_max_abs_delta_logit": fixture_deltas(device),
        "gradcam_deterministic": determinism(device),
        "copy": copy_cost(device, args.size),
        "speed": speed(args, device),
    }
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()

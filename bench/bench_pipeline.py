"""``load_clip`` against the official TDN test pipeline's own way of reading the same frames, interleaved in one
process so that a busy machine slows both alike.

The official pipeline (MCG-NJU/TDN's video dataset with decord): ``decord.VideoReader(path)``, ``get_batch`` of
the sampled frame indices, every frame to a PIL image, ``GroupScale(256)`` (PIL bilinear resize of the short
side), then ``GroupCenterCrop(224)`` for 1 crop or ``GroupFullResSample(256)`` for 3 (left/
right/centre, or top/bottom/centre for portrait). Both sides here take the indices ``load_clip`` sampled (spec §2.2 of
docs/architecture.md), so they read the same frames; the pixels of the views are compared too.

Cases: 8x5 frames of a 10 s 720p H.264 clip; 1 crop at 1080p; 3 crops x 10 clips (the Kinetics protocol, 400
frames) of the 720p clip; and a 1-hour clip (160x90, 10 fps). Clips are the ones ``bench/bench_decode.py``
makes (cached in ``$TDN_BENCH_DIR``). Usage: ``python -m bench.bench_pipeline [--runs 5]``. Prints; never
asserts. Target (speed issue): ``load_clip`` ≤ 0.5x the official time, pixels equal.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch  # before decord: decord first breaks BLAS here

from bench.bench_decode import CLIPS, make_clip
from tdn.contract import ClipSpec
from tdn.video import load_clip

CLIPS.setdefault("1080p_10s", (1920, 1080, 30, 10, "medium", None))
CASES = {  # key: (description, clip, crops, clips)
    "720p": ("720p, 8x5 frames, 1 crop", "720p_10s", 1, 1),
    "1080p": ("1080p, 8x5 frames, 1 crop", "1080p_10s", 1, 1),
    "30view": ("720p, 3 crops x 10 clips (400 frames)", "720p_10s", 3, 10),
    "hour": ("1-hour clip, 8x5 frames, 1 crop", "hour_160x90", 1, 1),
}
SPEC = ClipSpec(8, 224, 256)


def official(path: str, indices: np.ndarray, crops: int) -> np.ndarray:
    """Views (V, T, 5, S, S, 3) the way the official test pipeline makes them from these (V, T, 5) frame indices."""
    import decord
    from PIL import Image

    reader = decord.VideoReader(path, num_threads=1)
    indices = indices[::crops]  # Clip.frame_indices has a row per view; the crops of a clip share theirs
    flat = indices.reshape(-1)
    order, inverse = np.unique(flat, return_inverse=True)
    frames = reader.get_batch(order.tolist()).asnumpy()
    views = []
    for clip_rows in inverse.reshape(indices.shape[0], -1):
        images = [Image.fromarray(frames[i]) for i in clip_rows]
        w, h = images[0].size
        # torchvision Resize(256) on PIL: the long side is int(256 * long / short)
        size = (256, int(256 * h / w)) if w <= h else (int(256 * w / h), 256)
        scaled = [im.resize(size, Image.BILINEAR) for im in images]
        sw, sh = size
        if crops == 1:  # torchvision CenterCrop: offsets rounded
            boxes = [(int(round((sw - 224) / 2.0)), int(round((sh - 224) / 2.0)), 224)]
        else:  # GroupFullResSample without flips: offsets 0, 4 steps, 2 steps of (extent - 256) // 4
            xs, ys = (sw - 256) // 4, (sh - 256) // 4
            boxes = [(0, 0, 256), (4 * xs, 4 * ys, 256), (2 * xs, 2 * ys, 256)]
        for x, y, side in boxes:
            crop = np.stack([np.asarray(im.crop((x, y, x + side, y + side))) for im in scaled])
            views.append(crop.reshape(indices.shape[1], indices.shape[2], side, side, 3))
    return np.stack(views)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_pipeline", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    args = parser.parse_args(argv)
    print(
        f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"load {os.getloadavg()[0]:.1f}; median of {args.runs} interleaved runs"
    )
    for key in args.cases.split(","):
        name, clip_name, crops, clips = CASES[key]
        path = str(make_clip(clip_name))
        ours_ms, theirs_ms = [], []
        clip = load_clip(path, spec=SPEC, crops=crops, clips=clips, build_inputs=False)  # warm both
        reference = official(path, clip.frame_indices, crops)
        for _ in range(args.runs):
            start = time.perf_counter()
            clip = load_clip(path, spec=SPEC, crops=crops, clips=clips, build_inputs=False)
            ours_ms.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            reference = official(path, clip.frame_indices, crops)
            theirs_ms.append((time.perf_counter() - start) * 1000)
        ours, theirs = statistics.median(ours_ms), statistics.median(theirs_ms)
        same = clip.model_frames.shape == reference.shape
        diff = int(np.abs(clip.model_frames.astype(int) - reference.astype(int)).max()) if same else -1
        print(
            f"{name:40s} load_clip {ours:7.0f} ms  official {theirs:7.0f} ms  ratio {ours / theirs:4.2f}  "
            f"pixels {'equal' if diff == 0 else f'max diff {diff}' if same else 'shapes differ'}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

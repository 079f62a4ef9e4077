"""How long ``load_clip`` takes for 8 segments x 5 frames, and how much memory it needs.

Prints, never asserts. Two clips are generated once and cached (``$TDN_BENCH_DIR``, default
``/tmp/tdn-bench``): a 10 s 1280x720 30 fps H.264 clip (x264 defaults: keyframe every 250 frames,
B-frames; two slices per frame, as PyAV's encoder threading writes it), the same with one slice per frame
(as the ffmpeg command line writes it; see ``CLIPS``) and a real 1-hour clip at 160x90 and 10 fps (36,000 frames). Each case runs in a fresh
Python process so that its peak RSS is its own; the import baseline (numpy, torch, PyAV) is printed
beside it. Usage: ``python -m bench.bench_decode [--runs 7]``.

``--containers`` times the same 15-minute stream (320x240, 25 fps, x264 ``veryfast`` from FFmpeg's
``testsrc2``, made once with the ``ffmpeg`` command line) as MP4 and stream-copied to MPEG-TS, FLV and
Matroska, in-process, with the frame count, the seeks and the packets the reader sent to the decoder.

``--compare REV`` times ``tdn/video.py`` as it was at git revision REV (a self-contained module before the
split into decode.py and isolation.py) against the current code, alternating old and new runs in one
process so that a busy machine slows both alike, and checks that both give the same pixels.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

COMPARED = [
    "720p exact (path, in-process)",
    "720p 3 crops x 2 clips (6 views)",
    "1 h clip (path, in-process)",
]

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("TDN_BENCH_DIR", "/tmp/tdn-bench"))
# name: (width, height, fps, seconds, x264 preset, encoder threading). PyAV's default encoder threading
# gives x264 sliced threads (here 2 slices per frame); "FRAME" is what the ffmpeg command line writes:
# one slice per frame, which FFmpeg's slice-threaded decoding cannot split.
CLIPS = {
    "720p_10s": (1280, 720, 30, 10, "medium", None),
    "720p_10s_1slice": (1280, 720, 30, 10, "medium", "FRAME"),
    "hour_160x90": (160, 90, 10, 3600, "ultrafast", None),
}
CASES = {
    "720p exact (path, in-process)": ("720p_10s", {}),
    "720p exact (bytes, isolated)": ("720p_10s", {"as_bytes": True}),
    "720p reduced decode (exact=False)": ("720p_10s", {"exact": False}),
    "720p exact, 1 slice per frame": ("720p_10s_1slice", {}),
    "720p reduced, 1 slice per frame": ("720p_10s_1slice", {"exact": False}),
    "720p 3 crops x 2 clips (6 views)": ("720p_10s", {"crops": 3, "clips": 2}),
    "1 h clip (path, in-process)": ("hour_160x90", {}),
}


def make_clip(name: str) -> Path:
    """Encode (once) a clip with a moving texture and a moving bright block; returns its path."""
    width, height, fps, seconds, preset, threading = CLIPS[name]
    path = CACHE / f"{name}.mp4"
    if path.exists():
        return path
    import av

    CACHE.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([(xx * 255 // width), (yy * 255 // height), ((xx // 16 + yy // 16) % 2) * 200], -1)
    base = base.astype(np.uint8)
    partial = path.with_suffix(".partial.mp4")
    with av.open(str(partial), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": preset}
        if threading:
            stream.codec_context.thread_type = threading
        block = max(8, height // 4)
        for i in range(fps * seconds):
            frame = np.roll(base, shift=(i % height, (3 * i) % width), axis=(0, 1))
            x = (7 * i) % (width - block)
            frame[height // 3 : height // 3 + block, x : x + block] = 255
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    partial.rename(path)
    print(f"  generated {path} ({path.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - start:.1f} s")
    return path


CONTAINER_SECONDS = 900
CONTAINERS = ("mp4", "ts", "flv", "mkv")


def make_container_clips() -> dict[str, Path]:
    """The 15-minute stream as MP4 (encoded once) and stream-copied into the other CONTAINERS."""
    import shutil

    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise SystemExit("--containers needs the ffmpeg command line (apt-get install ffmpeg)")
    CACHE.mkdir(parents=True, exist_ok=True)
    paths = {kind: CACHE / f"testsrc2_15min_320x240.{kind}" for kind in CONTAINERS}
    quiet = [ffmpeg, "-v", "error", "-nostdin", "-y"]
    if not paths["mp4"].exists():
        source = f"testsrc2=size=320x240:rate=25:duration={CONTAINER_SECONDS}"
        partial = paths["mp4"].with_suffix(".partial.mp4")
        subprocess.run(
            [*quiet, "-f", "lavfi", "-i", source, "-c:v", "libx264", "-preset", "veryfast"]
            + ["-pix_fmt", "yuv420p", str(partial)],
            check=True,
        )
        partial.rename(paths["mp4"])
    for kind in CONTAINERS[1:]:
        if not paths[kind].exists():
            subprocess.run([*quiet, "-i", str(paths["mp4"]), "-c", "copy", str(paths[kind])], check=True)
    return paths


def containers(runs: int) -> None:
    """load_clip on the same stream in each container: median wall time, frames, reader statistics."""
    from tdn.video import load_clip, sampling
    from tdn.video.reader import PyAVReader

    paths = make_container_clips()
    print(f"{CONTAINER_SECONDS / 60:.0f}-minute 320x240 25 fps H.264, 8 segments x 5 frames, in-process")
    base = None
    for kind, path in paths.items():
        load_clip(path)  # warm-up
        walls = []
        for _ in range(runs):
            start = time.perf_counter()
            clip = load_clip(path)
            walls.append((time.perf_counter() - start) * 1000)
        reader = PyAVReader(str(path), 0)
        list(reader.raw_frames(np.unique(sampling.test_indices(reader.num_frames, 8)).tolist()))
        median = statistics.median(walls)
        base = base or median
        print(
            f"  {kind:4} {median:7.0f} ms (min {min(walls):5.0f}, x{median / base:.2f} of mp4)  "
            f"{clip.num_frames} frames  seeks {reader.stats['seeks']}, packets decoded "
            f"{reader.stats['packets']}, plain passes {reader.stats['plain_passes']}"
        )


def run_case(clip: str, options: dict, runs: int) -> dict:
    """Inside a fresh process: time load_clip ``runs`` times; report medians and peak RSS."""
    from tdn.video import load_clip, warm_up_isolation

    path = CACHE / f"{clip}.mp4"
    as_bytes = options.pop("as_bytes", False)
    source = path.read_bytes() if as_bytes else path
    if as_bytes:
        warm_up_isolation()

    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    load_clip(source, **options)  # warm-up: first-use costs (zygote start, lazy imports)
    walls, cpus, stages = [], [], []
    for _ in range(runs):
        start, cpu = time.perf_counter(), time.process_time()
        clip = load_clip(source, **options)
        walls.append((time.perf_counter() - start) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
        stages.append(clip.timings_ms)
    keys = stages[0].keys()
    return {
        "median_ms": statistics.median(walls),
        "min_ms": min(walls),
        "cpu_ms": statistics.median(cpus),
        "stages_ms": {k: statistics.median(s[k] for s in stages) for k in keys},
        "baseline_rss_mb": baseline_kb / 1024,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "frames": clip.num_frames,
        "size": f"{clip.width}x{clip.height}",
        "exact": clip.exact,
    }


def load_revision(rev: str) -> object:
    """``tdn/video.py`` as of git revision ``rev``, imported under another name beside the current one."""
    source = subprocess.run(
        ["git", "show", f"{rev}:tdn/video.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    name = "tdn_video_at_" + "".join(ch if ch.isalnum() else "_" for ch in rev)
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up here
    exec(compile(source, f"{rev}:tdn/video.py", "exec"), module.__dict__)
    return module


def compare(rev: str, runs: int) -> None:
    """Old and new ``load_clip`` alternately on the in-process cases; medians of wall and CPU time."""
    import tdn.video.clip as new

    old = load_revision(rev)
    print(f"old: tdn/video.py at {rev}; new: the working tree. {runs} alternating runs each, in-process")
    print("cpu: this process's CPU time, all its threads (decoder threads and the resize pool included)")
    for case in COMPARED:
        clip, options = CASES[case]
        path = CACHE / f"{clip}.mp4"
        results: dict[str, tuple[list[float], list[float]]] = {"old": ([], []), "new": ([], [])}
        outputs = {}
        for label, module in (("old", old), ("new", new)):  # warm-up: lazy imports, caches
            outputs[label] = module.load_clip(path, **options)  # type: ignore[attr-defined]
        same = all(
            np.array_equal(getattr(outputs["old"], key), getattr(outputs["new"], key))
            for key in ("frame_indices", "model_frames", "display_frames")
        )
        for _ in range(runs):
            for label, module in (("old", old), ("new", new)):
                start, cpu = time.perf_counter(), time.process_time()
                module.load_clip(path, **options)  # type: ignore[attr-defined]
                results[label][0].append((time.perf_counter() - start) * 1000)
                results[label][1].append((time.process_time() - cpu) * 1000)
        row = {k: (statistics.median(w), min(w), statistics.median(c)) for k, (w, c) in results.items()}
        print(
            f"{case:36} old {row['old'][0]:6.0f} ms (min {row['old'][1]:4.0f}, cpu {row['old'][2]:4.0f})  "
            f"new {row['new'][0]:6.0f} ms (min {row['new'][1]:4.0f}, cpu {row['new'][2]:4.0f})  "
            f"new/old wall {row['new'][0] / row['old'][0]:.2f}, cpu {row['new'][2] / row['old'][2]:.2f}  "
            f"same pixels: {'yes' if same else 'NO'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--compare", metavar="REV", help="time tdn/video.py at git revision REV against now")
    parser.add_argument("--containers", action="store_true", help="the same stream as MP4, TS, FLV, MKV")
    args = parser.parse_args()
    if args.containers:
        containers(args.runs)
        return
    if args.compare:
        print(
            f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
        )
        for name in CLIPS:
            make_clip(name)
        compare(args.compare, args.runs)
        return
    if args.case:
        clip, options = CASES[args.case]
        print(json.dumps(run_case(clip, dict(options), args.runs)))
        return
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    for name in CLIPS:
        make_clip(name)
    print(
        "median/min: wall time of load_clip; cpu: this process's CPU time (an isolated decode's is not in it)"
    )
    print(
        f"{'case':36} {'median':>8} {'min':>7} {'cpu':>7} {'peak RSS':>9} {'baseline':>9}  stages (median ms)"
    )
    for case in CASES:
        out = subprocess.run(
            [sys.executable, __file__, "--case", case, "--runs", str(args.runs)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        stages = ", ".join(f"{k} {v:.0f}" for k, v in r["stages_ms"].items() if k != "total")
        print(
            f"{case:36} {r['median_ms']:6.0f}ms {r['min_ms']:5.0f}ms {r['cpu_ms']:5.0f}ms {r['peak_rss_mb']:6.0f} MB "
            f"{r['baseline_rss_mb']:6.0f} MB  {stages}  [{r['size']}, {r['frames']} frames, exact={r['exact']}]"
        )


if __name__ == "__main__":
    main()

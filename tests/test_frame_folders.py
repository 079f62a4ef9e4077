"""A folder of extracted frames is a clip everywhere a video is: ``tdn.load_clip`` and ``tdn predict``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

import tdn
from tdn.assets import DEMO_CHECKPOINT

ROOT = Path(__file__).resolve().parents[1]


def _frames(folder: Path, n: int = 30) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(3)
    for p in range(1, n + 1):  # SSv1 naming: 1-based, five digits, JPEG
        Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(folder / f"{p:05d}.jpg")
    return folder


def test_load_clip_takes_a_frame_folder(tmp_path: Path) -> None:
    folder = _frames(tmp_path / "clip")
    clip = tdn.load_clip(folder, num_segments=4)
    assert clip.num_frames == 30 and clip.frame_indices.shape == (1, 4, 5)
    # 0-based index i is file i + 1: the centre frame of segment 0 is exactly that file, resized as a video would be
    i = int(clip.frame_indices[0, 0, 2])
    expected = np.asarray(Image.open(folder / f"{i + 1:05d}.jpg").convert("RGB"))
    from tdn.video import preprocess

    want = preprocess.center_crop(preprocess.resize_short_side(expected[None]), 224)[0]
    assert np.array_equal(clip.model_frames[0, 0, 2], want)


def test_predict_cli_takes_a_frame_folder(tmp_path: Path) -> None:
    folder = _frames(tmp_path / "clip")
    done = subprocess.run(
        [sys.executable, "-m", "tdn", "predict", str(folder), "--checkpoint", str(DEMO_CHECKPOINT), "--json"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    row = json.loads(done.stdout.splitlines()[0])
    assert row["file"] == str(folder) and len(row["topk"]) == 5

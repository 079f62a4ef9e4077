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


def test_an_uploaded_archive_of_frames_is_the_same_clip_as_the_folder(tmp_path: Path) -> None:
    """What the app does with a .zip/.tar upload: unpack privately (in the decode process), take the frame
    folder, decode it exactly as the folder itself; no temporary folder is left behind."""
    import io
    import tarfile
    import tempfile
    import zipfile

    from tdn.contract import ClipSpec
    from tdn.video import ClipError
    from tdn.video.archive import is_archive_name, load_archive_clip

    folder = _frames(tmp_path / "clip")
    spec = ClipSpec(4, 112, 128)
    want = tdn.load_clip(folder, spec=spec)
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, f"clip/{path.name}")
    before = set(Path(tempfile.gettempdir()).glob("tdn-*"))
    got = load_archive_clip(packed.getvalue(), spec, isolate=True, source_name="clip.zip")
    assert set(Path(tempfile.gettempdir()).glob("tdn-*")) <= before
    assert np.array_equal(got.frame_indices, want.frame_indices)
    assert np.array_equal(got.model_frames, want.model_frames)
    assert torch_equal(got.inputs[0], want.inputs[0]) and got.source_name == "clip.zip/clip"
    assert "unpack" in got.timings_ms and not got.warnings

    # two folders in a tar: the first, and a warning that says so
    tar_path = tmp_path / "two.tar.gz"
    with tarfile.open(tar_path, "w:gz") as archive:
        archive.add(folder, "a")
        archive.add(folder, "b")
    assert is_archive_name(tar_path.name) and not is_archive_name("clip.mp4")
    two = load_archive_clip(tar_path, spec, isolate=False)
    assert np.array_equal(two.model_frames, want.model_frames)
    assert any("2 frame folders" in w and "(a)" in w for w in two.warnings)

    plain = io.BytesIO()
    with zipfile.ZipFile(plain, "w") as archive:
        archive.writestr("notes.txt", "no frames here")
    for data, kind, words in (
        (plain.getvalue(), "not_video", "holds no folder of frames"),
        (b"PK\x03\x04 not really a zip", "not_video", "up.zip: not a zip or tar archive"),
    ):
        try:
            load_archive_clip(data, spec, source_name="up.zip")
        except ClipError as error:
            assert error.kind == kind and words in str(error), (kind, str(error))
        else:
            raise AssertionError(f"{kind}: no error")


def torch_equal(a, b) -> bool:  # noqa: ANN001
    import torch

    return bool(torch.equal(a, b))

"""The command line: predict (JSON, batches, exit codes), explain (NPZ contract), profile (JSON keys)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tdn.network.checkpoint import save_checkpoint
from tdn.network.model import build_model
from tdn.training.synth import CLASSES, write_dataset

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "tdn", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
    )


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    clips = root / "clips"
    write_dataset(clips, 3, seed=11, size=64, frames=20, progress=False)
    (clips / "broken.mp4").write_bytes(b"this is not a video at all" * 10)
    torch.manual_seed(0)
    model = build_model("resnet18", 4, len(CLASSES), width=0.25)
    ckpt = save_checkpoint(model.eval(), root / "tiny.safetensors", CLASSES, input_size=64, scale_size=64)
    return clips, ckpt, root


def test_predict_one_video_json(setup):
    clips, ckpt, _ = setup
    proc = _run(
        "predict", str(clips / "synth_000000.mp4"), "--checkpoint", str(ckpt), "--json", "--topk", "3"
    )
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)
    assert {"file", "topk", "frame_indices", "timings_ms"} <= set(row)
    assert len(row["topk"]) == 3 and {"index", "name", "prob"} == set(row["topk"][0])
    assert row["topk"][0]["prob"] >= row["topk"][1]["prob"]
    assert np.array(row["frame_indices"]).shape == (1, 4, 5)
    assert row["topk"][0]["name"] == CLASSES[row["topk"][0]["index"]]


def test_predict_folder_reports_bad_files_and_keeps_going(setup):
    clips, ckpt, _ = setup
    proc = _run("predict", str(clips), "--checkpoint", str(ckpt), "--json", "--crops", "3", "--clips", "2")
    assert proc.returncode == 1  # one file failed
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == 4
    bad = [r for r in rows if "error" in r]
    assert len(bad) == 1 and bad[0]["file"].endswith("broken.mp4") and bad[0]["kind"]
    good = [r for r in rows if "topk" in r]
    assert all(np.array(r["frame_indices"]).shape == (6, 4, 5) for r in good)  # 2 clips × 3 crops
    assert "Traceback" not in proc.stderr and "broken.mp4" in proc.stderr


def test_predict_errors_have_exit_code_2(setup, tmp_path):
    clips, ckpt, _ = setup
    assert _run("predict", str(tmp_path / "missing.mp4"), "--checkpoint", str(ckpt)).returncode == 2
    wrong = tmp_path / "wrong.pth"
    wrong.write_text("name,top1\n")
    proc = _run("predict", str(clips / "synth_000000.mp4"), "--checkpoint", str(wrong))
    assert proc.returncode == 2 and "not a checkpoint" in proc.stderr and "Traceback" not in proc.stderr


def test_explain_writes_the_npz_contract(setup):
    clips, ckpt, root = setup
    out = root / "explained"
    proc = _run(
        "explain",
        str(clips / "synth_000001.mp4"),
        "--checkpoint",
        str(ckpt),
        "--method",
        "layercam",
        "--layer",
        "res4",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    npz = np.load(out / "maps.npz")
    assert npz["cam"].shape == (4, 64, 64) and npz["cam"].dtype == np.float32
    assert npz["cam"].min() >= 0 and npz["cam"].max() <= 1
    assert npz["frames"].shape == (4, 64, 64, 3) and npz["frames"].dtype == np.uint8
    expected = [int(np.floor((20 - 4) / 4 * (0.5 + i))) + 2 for i in range(4)]  # centre of each test snippet
    assert npz["frame_indices"].tolist() == expected
    for name in ("overlay.mp4", "overlay.gif", "grid.png", "explanation.json"):
        assert (out / name).stat().st_size > 0


def test_profile_json():
    proc = _run(
        "profile",
        "--arch",
        "resnet18",
        "--width",
        "0.25",
        "--segments",
        "4",
        "--size",
        "64",
        "--runs",
        "1",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    prof = json.loads(proc.stdout)
    assert {"params", "gmacs", "stages", "latency_ms", "device"} <= set(prof)
    assert prof["gmacs"] == pytest.approx(sum(prof["stages"].values()), rel=1e-6)  # stages cover every MAC

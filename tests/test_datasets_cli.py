"""``tdn evaluate --list``: the published formats through the command line, on the shipped evaluation set."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tdn.assets import ASSETS, DEMO_CHECKPOINT

ROOT = Path(__file__).resolve().parents[1]
FRAMES = ASSETS / "eval" / "synth_val_frames"


def _evaluate(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "tdn", "evaluate", "--checkpoint", str(DEMO_CHECKPOINT), "--device", "cpu"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_official_list_of_frame_folders_with_json_and_resume(tmp_path: Path) -> None:
    out = tmp_path / "eval.jsonl"
    first = _evaluate(
        "--list", str(FRAMES / "val_list.txt"), "--root", str(FRAMES), "--out", str(out), "--json"
    )
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["metrics"]["top1"] >= 50 and len(summary["metrics"]["confusion"]) == 14
    assert len(out.read_text().splitlines()) >= 14
    again = _evaluate(
        "--list", str(FRAMES / "val_list.txt"), "--root", str(FRAMES), "--out", str(out), "--json"
    )
    assert json.loads(again.stdout)["metrics"] == summary["metrics"]  # resumed: nothing redone, same result


@pytest.mark.parametrize("bad", [["--protocol", "ss-9crop"], ["--list", "/nonexistent/list.txt"]])
def test_bad_list_arguments_exit_2_without_a_traceback(bad: list[str]) -> None:
    args = ["--list", str(FRAMES / "val_list.txt"), "--root", str(FRAMES), *bad]
    done = _evaluate(*args)
    assert done.returncode == 2 and "Traceback" not in done.stderr and done.stderr.startswith("error:")

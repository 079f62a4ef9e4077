"""The public API is what the README shows: every Python example in it runs, through ``import tdn``, in a
fresh interpreter started in another folder, twice in a row (the second run catches names that a first
import replaced, as ``tdn.explain`` once was by its own module)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.videogen import write_video

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)

RUN_TWICE = """
import sys
source = sys.stdin.read()
for round in (1, 2):
    exec(compile(source, "README example", "exec"), {"__name__": "__main__"})
    print(f"--- round {round} done")
"""


def test_the_readme_has_examples() -> None:
    assert len(BLOCKS) >= 2 and all("import tdn" in b for b in BLOCKS)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs_twice_in_a_fresh_interpreter(
    index: int, tmp_path: Path, official_state_dict: dict[str, torch.Tensor]
) -> None:
    block = BLOCKS[index]
    # The files an example names are made in the folder it runs in: an official-layout checkpoint as the
    # official training writes it (DDP prefixes inside a dict) and a short video.
    if "best.pth.tar" in block:
        state = {"module." + k: v for k, v in official_state_dict.items()}
        torch.save({"epoch": 1, "arch": "resnet50", "state_dict": state}, tmp_path / "best.pth.tar")
    if "video.mp4" in block:
        rng = np.random.default_rng(0)
        write_video(tmp_path / "video.mp4", rng.integers(0, 255, (40, 240, 320, 3), dtype=np.uint8))
    done = subprocess.run(
        [sys.executable, "-c", RUN_TWICE],
        input=block,
        cwd=tmp_path,  # not the checkout: the installed package must be what is imported
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "--- round 2 done" in done.stdout
    first, second = done.stdout.split("--- round 1 done")
    assert first.strip() and first.strip() == second.replace("--- round 2 done", "").strip()


def test_public_names_survive_importing_every_submodule() -> None:
    code = """
import importlib, pkgutil, tdn
first = {name: getattr(tdn, name) for name in tdn.__all__}
for info in pkgutil.walk_packages(tdn.__path__, "tdn."):
    if not info.name.endswith("__main__"):
        importlib.import_module(info.name)
for name in tdn.__all__:
    assert getattr(tdn, name) is first[name], name
    assert not type(getattr(tdn, name)).__name__ == "module", name
print("ok", len(tdn.__all__))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd="/")
    assert done.returncode == 0 and done.stdout.startswith("ok"), done.stderr[-3000:]

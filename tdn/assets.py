"""The one place that knows where the shipped assets live (demo checkpoints, sample clips, labels, results)."""

from __future__ import annotations

import os
from pathlib import Path

# The checkout's assets/ (an editable install keeps the package in the checkout); TDN_LENS_ASSETS points
# elsewhere, e.g. at a copy of assets/ beside a regular install.
ASSETS = Path(os.environ.get("TDN_LENS_ASSETS") or Path(__file__).resolve().parents[1] / "assets")
MODELS = ASSETS / "models"
CLIPS = ASSETS / "clips"
LABELS = ASSETS / "labels"
RESULTS = ASSETS / "results"
DEMO_CHECKPOINT = MODELS / "demo_tdn_r18w25_t8_112.safetensors"
DEMO_TSN_CHECKPOINT = MODELS / "demo_tsn_r18w25_t8_112.safetensors"
# The clip the app opens on: a plain motion the demo gets right with confidence, where TSN's blindness to
# direction shows in the comparison (the alphabetically first sample is "Holding something still").
DEFAULT_SAMPLE = "moving_something_from_left_to_right.mp4"


def sample_clips() -> list[Path]:
    """The bundled sample clips, sorted by name."""
    return sorted(p for p in CLIPS.glob("*.mp4"))

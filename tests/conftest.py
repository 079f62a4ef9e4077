"""Shared fixtures: the filled official-layout state dict is built once per session."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from reference_fill import REFERENCE, fill_state_dict, manifest_entries  # noqa: E402


@pytest.fixture(scope="session")
def reference() -> dict:
    return json.loads(REFERENCE.read_text())


@pytest.fixture(scope="session")
def official_state_dict() -> dict[str, torch.Tensor]:
    return fill_state_dict(manifest_entries())

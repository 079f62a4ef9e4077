"""Shared fixtures: the filled official-layout state dict is built once per session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tdn.network.runtime import set_precision
from tests.reference_fill import REFERENCE, fill_state_dict, manifest_entries

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def exact_numerics() -> None:
    """The suite checks exactness: IEEE float32 on CUDA too (TF32 would move logits by ~1e-3)."""
    set_precision("fp32")


@pytest.fixture(scope="session")
def reference() -> dict:
    return json.loads(REFERENCE.read_text())


@pytest.fixture(scope="session")
def official_state_dict() -> dict[str, torch.Tensor]:
    return fill_state_dict(manifest_entries())

"""The numeric-reference fill ("tdn-fill-v1") and input ("tdn-input-v1"), rewritten from their documented
rules (shared/spec/tdn-architecture.md §12), with digests so a test can prove the bits before comparing."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from pathlib import Path

import torch

FIXTURES = Path(__file__).parent / "fixtures"
MANIFEST = FIXTURES / "tdn_r50_seg8_manifest.json"
REFERENCE = FIXTURES / "tdn_r50_seg8_c174_reference.json"


def uniform(g: torch.Generator, shape: list[int], lo: float, hi: float) -> torch.Tensor:
    """lo + (hi − lo)·U[0, 1) in float32, each operation rounded once."""
    return torch.rand(tuple(shape), generator=g, dtype=torch.float32) * (hi - lo) + lo


def manifest_entries(path: Path = MANIFEST) -> list[tuple[str, list[int], str]]:
    return [(k, list(s), d) for k, s, d in json.loads(path.read_text())["entries"]]


def fill_state_dict(
    entries: list[tuple[str, list[int], str]], seed: int = 20211201
) -> dict[str, torch.Tensor]:
    """One generator, manifest order; BN stats and affine, fan-in-scaled weights, small biases."""
    g = torch.Generator().manual_seed(seed)
    names = {k for k, _, _ in entries}
    out: dict[str, torch.Tensor] = {}
    for key, shape, _ in entries:
        owner, _, leaf = key.rpartition(".")
        bn = f"{owner}.running_mean" in names
        if leaf == "num_batches_tracked":
            out[key] = torch.zeros(shape, dtype=torch.int64)
        elif leaf == "running_mean" or (bn and leaf == "bias"):
            out[key] = uniform(g, shape, -0.1, 0.1)
        elif leaf == "running_var":
            out[key] = uniform(g, shape, 0.5, 1.5)
        elif bn and leaf == "weight":
            out[key] = uniform(g, shape, -0.1, 0.1) + 1.0
        elif leaf == "weight" and len(shape) >= 2:
            bound = math.sqrt(3.0 / math.prod(shape[1:]))
            out[key] = uniform(g, shape, -bound, bound)
        elif leaf == "bias":
            out[key] = uniform(g, shape, -0.02, 0.02)
        else:
            raise ValueError(f"no fill rule for {key}")
    return out


def reference_input(seed: int, num_segments: int = 8, size: int = 224) -> torch.Tensor:
    """Static blocky scene + per-segment change + per-frame change, already normalised (B=1)."""
    g = torch.Generator().manual_seed(seed)

    def blocky(lead: tuple[int, ...], cell: int) -> torch.Tensor:
        low = uniform(g, [*lead, 3, size // cell, size // cell], -1.0, 1.0)
        return low.repeat_interleave(cell, dim=-2).repeat_interleave(cell, dim=-1)

    scene, seg, frame = (
        blocky((1, 1, 1), 8),
        blocky((1, num_segments, 1), 16),
        blocky((1, num_segments, 5), 4),
    )
    x = scene * 1.25 + seg * 0.5 + frame * 0.125
    return x.reshape(1, num_segments * 15, size, size).contiguous()


def digest(tensors: Iterable[torch.Tensor]) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().contiguous().numpy().tobytes())
    return h.hexdigest()


def state_dict_digest(sd: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k, t in sd.items():
        h.update(k.encode())
        h.update(digest([t]).encode())
    return h.hexdigest()

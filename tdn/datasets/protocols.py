"""The test protocols of the model zoo: how many views of a video, of which size, fused how.

* ``ss-1crop``: T segments × 1 centre crop × 1 clip, at the model's input size (224 for the official models,
  after the short side went to 256) — the Something-Something figures of the zoo.
* ``ss-3crop``: × 3 full-resolution crops of the short-side size (256), left, right and centre
  (docs/architecture.md §2.3): 3 views.
* ``k400-30view``: 3 crops × 10 clips placed deterministically (docs/architecture.md §2.2; the official
  Kinetics test draws them at random): 30 views.

A video's prediction is the mean over its views of the softmax of each view's logits (§2.4), which is what
:func:`tdn.inference.predict` computes; :func:`fuse` is the same rule in NumPy, for checks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tdn.contract import ClipSpec

__all__ = ["PROTOCOLS", "Protocol", "default_protocol", "fuse", "get_protocol"]


@dataclass(frozen=True)
class Protocol:
    """``crops`` × ``clips`` views per video; the size of a view follows from the model's :class:`ClipSpec`."""

    name: str
    crops: int
    clips: int
    description: str

    @property
    def views(self) -> int:
        return self.crops * self.clips

    def view_size(self, spec: ClipSpec) -> int:
        """Side of one view: the centre crop for 1 crop, the short-side size for 3 full-resolution crops."""
        return spec.input_size if self.crops == 1 else spec.scale_size

    def describe(self, spec: ClipSpec) -> str:
        size = self.view_size(spec)
        return (
            f"{self.name}: {spec.num_segments} segments × {self.crops} crop{'s' * (self.crops > 1)} × "
            f"{self.clips} clip{'s' * (self.clips > 1)} at {size}² ({self.views} view{'s' * (self.views > 1)})"
        )

    def to_dict(self) -> dict:
        return {"name": self.name, "crops": self.crops, "clips": self.clips, "views": self.views}


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol("ss-1crop", 1, 1, "Something-Something: 1 centre crop, 1 clip"),
        Protocol("ss-3crop", 3, 1, "Something-Something: 3 full-resolution crops, 1 clip"),
        Protocol("k400-30view", 3, 10, "Kinetics-400: 3 full-resolution crops × 10 clips"),
    )
}


def get_protocol(name: str | Protocol) -> Protocol:
    """The protocol of that name; ValueError naming the known ones otherwise."""
    if isinstance(name, Protocol):
        return name
    if name not in PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def default_protocol(list_format: str) -> Protocol:
    """The zoo's protocol for a list format: 30 views for Kinetics, 1 centre crop otherwise."""
    return PROTOCOLS["k400-30view" if list_format == "k400-csv" else "ss-1crop"]


def fuse(view_logits: np.ndarray) -> np.ndarray:
    """(V, K) logits → (K,) fused probabilities: the mean over views of each view's softmax (float64)."""
    logits = np.asarray(view_logits, dtype=np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    return probs.mean(axis=0)

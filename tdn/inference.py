"""Predictions: run a model over every view of a clip and fuse them as the official protocol (docs/architecture.md §2.4)."""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from tdn.network.fold import folded_copy
from tdn.network.model import TDN
from tdn.network.runtime import autocast_for, model_lock, use_thread_policy
from tdn.util import ms_since
from tdn.video.preprocess import to_model_input_on

if TYPE_CHECKING:
    from tdn.video.clip import Clip


@dataclass(frozen=True)
class ClassScore:
    """One class of a prediction: its index in the checkpoint, its name and its fused probability."""

    index: int
    name: str
    prob: float

    def to_dict(self) -> dict:
        return {"index": self.index, "name": self.name, "prob": self.prob}


@dataclass
class Prediction:
    """Fused class probabilities of one clip, with the per-view logits they came from."""

    probs: torch.Tensor  # (K,) mean over views of softmax(logits)
    view_logits: torch.Tensor  # (V, K)
    class_names: list[str]
    timings_ms: dict[str, float] = field(default_factory=dict)

    def topk(self, k: int = 5) -> list[ClassScore]:
        """The k most probable classes, most probable first."""
        values, indices = self.probs.topk(min(k, self.probs.numel()))
        return [
            ClassScore(int(i), self.class_names[int(i)], float(v))
            for v, i in zip(values, indices, strict=True)
        ]

    @property
    def top1(self) -> int:
        return int(self.probs.argmax())


_folded: weakref.WeakKeyDictionary[TDN, tuple[tuple, TDN]] = weakref.WeakKeyDictionary()
_folded_lock = threading.Lock()


def inference_copy(model: TDN) -> TDN:
    """The BatchNorm-folded copy of ``model`` (``tdn.network.fold``), made once and remade if any weight changes.

    Predictions run on it: faster, and free of the hooks an explanation may have on ``model`` at that
    moment, so predictions and explanations of one shared model can run at the same time."""
    # Any in-place weight update bumps a version; a device or dtype move replaces the storage.
    stamp = tuple((t.data_ptr(), t._version, t.dtype) for t in model.state_dict().values()) + (
        model.num_segments,
    )
    with _folded_lock:
        cached = _folded.get(model)
        if cached is None or cached[0] != stamp:
            with model_lock(model):
                cached = _folded[model] = (stamp, folded_copy(model))
        return cached[1]


def forget_inference_copy(model: TDN) -> None:
    """Drop the folded copy of ``model`` now (e.g. to free GPU memory), not when ``model`` is collected."""
    with _folded_lock:
        _folded.pop(model, None)


@torch.inference_mode()
def forward_views(model: TDN, views: list[torch.Tensor], batch_size: int = 4) -> torch.Tensor:
    """Logits (V, K) of each view; views of equal size are batched (eval outputs do not depend on batching)."""
    device = next(model.parameters()).device
    out = []
    with model_lock(model), autocast_for(device):
        for start in range(0, len(views), batch_size):
            chunk = torch.cat(views[start : start + batch_size]).to(device, non_blocking=True)
            out.append(model(chunk).float().cpu())
    return torch.cat(out)


def predict(
    model: TDN,
    clip: Clip | torch.Tensor | list[torch.Tensor],
    class_names: list[str] | None = None,
    fast: bool = True,
) -> Prediction:
    """Classify a ``tdn.Clip`` (or one (B, T·15, H, W) tensor of views, or a list of them): the mean over
    views of the softmax of the logits.

    ``fast`` runs the BatchNorm-folded copy (logits equal up to float rounding)."""
    device = next(model.parameters()).device
    if isinstance(clip, torch.Tensor):
        views = list(clip.split(1))
    elif isinstance(clip, list):
        views = clip
    elif device.type == "cuda":
        # uint8 pixels cross to the GPU (a quarter of the float bytes) and are normalised there.
        views = [to_model_input_on(frames, device, clip.mean, clip.std) for frames in clip.model_frames]
    else:
        views = clip.inputs or [clip.view_input(v) for v in range(clip.num_views)]
    names = class_names or [f"class {i}" for i in range(model.config.num_classes)]
    start = time.perf_counter()
    if device.type == "cpu":
        use_thread_policy(model)  # the model's thread policy, capped at the cores free right now
    logits = forward_views(inference_copy(model) if fast else model, views)
    return Prediction(logits.softmax(-1).mean(0), logits, names, {"forward": ms_since(start)})

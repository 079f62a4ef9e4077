"""Grad-CAM family explanations of a TDN, one heatmap per segment on that snippet's centre frame.

pytorch-grad-cam does the CAM arithmetic (used in its ``with`` form). Around it this module adds what a
video model shared by many users needs:

* **Shallow backward.** Every parameter's ``requires_grad`` is switched off and the target layer's output is
  re-entered into autograd as a fresh leaf, so nothing before the target layer keeps a graph and backward
  computes activation gradients only from the head down to that layer: no weight or input gradients.
* **Joint scaling.** pytorch-grad-cam min-max scales every map on its own, which would hide which segment
  matters. Here the T maps of a video share one scale (divided by their common maximum), so a quiet segment
  looks quiet.
* **Exact under concurrency.** Hooks live on the shared model only inside ``model_lock(model)``; afterwards,
  on success or error, the model has no hooks and its training mode and ``requires_grad`` flags are restored.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from pytorch_grad_cam import EigenCAM, GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, XGradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from tdn.contract import CENTRE_FRAME
from tdn.network.model import TDN, Stage, TDNConfig, stage_table
from tdn.network.runtime import autocast_for, deterministic_cudnn, eval_mode, model_lock, use_thread_policy
from tdn.video.clip import Clip


class _RawScale:
    """Mixin: keep each CAM's raw (ReLU'd) values at feature resolution instead of scaling per image."""

    def compute_cam_per_layer(
        self, input_tensor: torch.Tensor, targets: list | None, eigen_smooth: bool
    ) -> list[np.ndarray]:
        # float32 before NumPy: activations may be bf16 under autocast, which NumPy cannot hold.
        acts = [a.float().cpu().numpy() for a in self.activations_and_grads.activations]
        grads = [g.float().cpu().numpy() for g in self.activations_and_grads.gradients]
        cams = []
        for i, layer in enumerate(self.target_layers):
            cam = self.get_cam_image(
                input_tensor, layer, targets, acts[i], grads[i] if i < len(grads) else None, eigen_smooth
            )
            cams.append(np.maximum(cam, 0)[:, None])
        return cams

    def aggregate_multi_layers(self, cam_per_target_layer: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(cam_per_target_layer, axis=1).mean(axis=1)


METHODS: dict[str, type] = {
    name: type(f"Raw{cls.__name__}", (_RawScale, cls), {})
    for name, cls in {
        "gradcam": GradCAM,
        "gradcam++": GradCAMPlusPlus,
        "hirescam": HiResCAM,
        "xgradcam": XGradCAM,
        "layercam": LayerCAM,
        "eigencam": EigenCAM,
    }.items()
}
METHOD_LABELS = {
    "gradcam": "Grad-CAM",
    "gradcam++": "Grad-CAM++",
    "hirescam": "HiResCAM",
    "xgradcam": "XGrad-CAM",
    "layercam": "LayerCAM",
    "eigencam": "EigenCAM (gradient-free)",
}

# The Grad-CAM layers are the stages marked ``cam`` in the model's stage table; names and strides are the
# same for every TDN, so the table of the default configuration serves where no model is at hand.
_CAM_STAGES: dict[str, Stage] = {s.name: s for s in stage_table(TDNConfig()) if s.cam}
LAYERS: tuple[str, ...] = tuple(_CAM_STAGES)
AUTO_LAYER = "auto"
AUTO_MIN_CELLS = 7  # res5 of the official 224 px models: the map size Grad-CAM is usually read at


def default_layer(input_size: int) -> str:
    """The deepest layer whose map has at least ``AUTO_MIN_CELLS`` cells a side for this input size:
    res5 at 224 px (7x7), res4 at 112 px (7x7, where res5 is 4x4). On the demo TDN (112 px) that
    choice doubles the Grad-CAM energy on the moving object (bench/bench_faithfulness.py)."""
    for stage in sorted(_CAM_STAGES.values(), key=lambda s: -s.stride):
        if -(-input_size // stage.stride) >= AUTO_MIN_CELLS:
            return stage.name
    return LAYERS[0]


def layer_description(layer: str) -> str:
    """What the layer ``layer`` (a name of :data:`LAYERS`) is, in a few words."""
    return _CAM_STAGES[layer].description


def layer_for(layer: str, input_size: int) -> str:
    """``layer`` itself, or :func:`default_layer` for ``input_size`` when it is ``"auto"``."""
    return default_layer(input_size) if layer == AUTO_LAYER else layer


class ExplainError(ValueError):
    """An explanation request that cannot be served (unknown method, layer or target)."""


@dataclass
class Explanation:
    """Per-segment heatmaps aligned with the centre frames the model saw.

    ``cam`` (T, S, S) in [0, 1] at model resolution, one shared scale for the whole video; ``cam_raw``
    (T, h, w) the unscaled maps at the layer's resolution; ``frames`` (T, S, S, 3) uint8, the exact centre
    frames of each snippet; ``frame_indices`` (T,) their 0-based indices in the source video.
    """

    cam: np.ndarray
    cam_raw: np.ndarray
    frames: np.ndarray
    frame_indices: np.ndarray
    target: int
    target_name: str
    score: float  # softmax probability of the target
    logit: float
    method: str
    layer: str
    timings_ms: dict[str, float] = field(default_factory=dict)

    def cam_at(self, size: tuple[int, int]) -> np.ndarray:
        """The maps resized (bilinear) to ``size`` = (height, width), e.g. display frames."""
        return resize_maps(self.cam, size)


def resize_maps(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, h, w) float maps → (N, H, W) by bilinear interpolation (cv2, float32)."""
    h, w = size
    return np.stack([cv2.resize(m.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) for m in maps])


def resolve_layer(model: TDN, layer: str) -> tuple[str, nn.Module]:
    """The stage name and module of ``layer`` (a name or alias of a Grad-CAM layer) in ``model``."""
    for stage in model.stages:
        if stage.cam and layer in (stage.name, *stage.aliases):
            return stage.name, model.get_submodule(stage.module)
    raise ExplainError(f"unknown layer {layer!r}; choose one of {', '.join(LAYERS)}")


@contextmanager
def shallow_backward(model: nn.Module, layer: nn.Module) -> Iterator[None]:
    """Within the block, gradients flow from the output back to ``layer``'s output and no further."""
    flags = [(p, p.requires_grad) for p in model.parameters()]

    def reenter(_m: nn.Module, _inp: tuple, out: torch.Tensor) -> torch.Tensor:
        return out.detach().requires_grad_(True)

    # prepend: pytorch-grad-cam's own hooks on this layer must see the re-entered leaf.
    handle = layer.register_forward_hook(reenter, prepend=True)
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        with eval_mode(model):
            yield
    finally:
        handle.remove()
        for p, flag in flags:
            p.requires_grad_(flag)


def explain(
    model: TDN,
    clip: Clip | torch.Tensor,
    target: int | None = None,
    method: str = "gradcam",
    layer: str = "res5",
    view: int = 0,
    class_names: list[str] | None = None,
) -> Explanation:
    """Explain one view of ``clip`` (a ``tdn.Clip``, or a (1, T·15, S, S) tensor) for class ``target``
    (default: the top-1 class). ``layer="auto"``: :func:`default_layer` for the input's size. Thread-safe
    on a shared model."""
    if method not in METHODS:
        raise ExplainError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if isinstance(clip, torch.Tensor):
        x, frames, indices = clip, _frames_from_input(clip), np.arange(model.num_segments)
    else:
        x = clip.inputs[view]
        frames = clip.model_frames[view][:, CENTRE_FRAME]
        indices = clip.frame_indices[view][:, CENTRE_FRAME]
    layer_name, module = resolve_layer(model, layer_for(layer, x.shape[-1]))
    k = model.config.num_classes
    if target is not None and not 0 <= target < k:
        raise ExplainError(f"target class {target} is outside 0..{k - 1}")
    device = next(model.parameters()).device
    x = x.to(device)
    if device.type == "cpu":
        use_thread_policy(model)
    t0 = time.perf_counter()
    cams = None
    with (
        model_lock(model),
        deterministic_cudnn(),  # the same maps for the same clip, run after run, on CUDA too
        shallow_backward(model, module),
        autocast_for(device),
        METHODS[method](model=model, target_layers=[module]) as cam,
    ):
        targets = None if target is None else [ClassifierOutputTarget(target)]
        cams = cam(input_tensor=x, targets=targets)
        logits = cam.outputs.detach().float().cpu()[0]
        cam.outputs = None  # drop the retained graph now, not when the object is collected
    if cams is None:  # pytorch-grad-cam's __exit__ swallows IndexError; never return garbage
        raise ExplainError(f"{METHOD_LABELS[method]} failed on layer {layer_name}")
    elapsed = (time.perf_counter() - t0) * 1000
    chosen = int(logits.argmax()) if target is None else target
    raw = cams.astype(np.float32)  # (T, h, w)
    peak = float(raw.max())
    scaled = raw / peak if peak > 0 else np.zeros_like(raw)
    size = tuple(x.shape[-2:])
    names = class_names or [f"class {i}" for i in range(k)]
    return Explanation(
        cam=np.clip(resize_maps(scaled, size), 0, 1),
        cam_raw=raw,
        frames=frames,
        frame_indices=np.asarray(indices),
        target=chosen,
        target_name=names[chosen],
        score=float(logits.softmax(-1)[chosen]),
        logit=float(logits[chosen]),
        method=method,
        layer=layer_name,
        timings_ms={"cam": elapsed},
    )


def _frames_from_input(x: torch.Tensor) -> np.ndarray:
    """Centre frames (T, S, S, 3) uint8 recovered from a normalised input tensor (for tensor inputs)."""
    from tdn.video.preprocess import denormalize

    return denormalize(x[:1].cpu())[:, CENTRE_FRAME]

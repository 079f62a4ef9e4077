"""Temporal-difference maps of every TDM stage, captured from one forward without changing its outputs.

What is captured, per segment (docs/architecture.md §10):

* **S-TDM, input** – the 4 RGB differences F1−F0 … F4−F3 of each snippet (on the normalised input the model
  sees) → ``stdm_rgb_diff`` (T, 4, S, S).
* **S-TDM, S0** – the difference stream after conv1_5 + pool, the tensor β-added at fusion 1 → ``stdm_s0``.
* **S-TDM, S1** – S0 after its own res2 copy (``resnext_layer1``), β-added at fusion 2 → ``stdm_s1``.
* **L-TDM, every block of res3–res5** – from the block's L-TDM input X the module's own code recomputes the
  forward and backward feature differences Df, Db, the excitation Y and the modulation X·Y.

**How channels are aggregated.** A difference or feature map with C channels becomes one map per segment by
the root-mean-square over channels, sqrt(mean_c v²): a magnitude, so that opposite signs in different
channels do not cancel. The excitation Y is signed by design (−0.5…0.5: damp or boost), so it is reduced by
the plain channel mean, keeping its sign. Maps stay at the resolution of their layer; ``upsample`` resizes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from tdn.contract import CHANNELS_PER_SEGMENT
from tdn.network.model import TDN, snippet_differences
from tdn.network.runtime import autocast_for, eval_mode, model_lock
from tdn.network.temporal import LongTermTDM


def rms_over_channels(x: Tensor) -> np.ndarray:
    """(N, C, h, w) → (N, h, w) root-mean-square over channels, float32."""
    return x.float().pow(2).mean(1).sqrt().cpu().numpy()


def mean_over_channels(x: Tensor) -> np.ndarray:
    return x.float().mean(1).cpu().numpy()


@dataclass
class LTDMMaps:
    """The L-TDM of one block: each array (T, h, w) at the block's input resolution."""

    block: str  # e.g. "res3.0" (layer2_bak.0)
    forward_diff: np.ndarray
    backward_diff: np.ndarray
    excitation: np.ndarray  # signed channel mean of Y
    modulation: np.ndarray  # RMS of X·Y
    channels: int
    reduced_channels: int


@dataclass
class TDMaps:
    """All difference maps of one clip view; every array's first axis is the segment."""

    stdm_rgb_diff: np.ndarray | None  # (T, 4, S, S)
    stdm_s0: np.ndarray | None  # (T, h0, w0)
    stdm_s1: np.ndarray | None  # (T, h0, w0)
    ltdm: list[LTDMMaps] = field(default_factory=list)

    def blocks(self) -> list[str]:
        return [m.block for m in self.ltdm]

    def block(self, name: str) -> LTDMMaps:
        for m in self.ltdm:
            if m.block == name:
                return m
        raise KeyError(f"no L-TDM block {name!r}; available: {', '.join(self.blocks()) or 'none'}")


def ltdm_modules(model: TDN) -> list[tuple[str, LongTermTDM]]:
    """(user-facing block name, module) for every L-TDM, in forward order."""
    out = []
    for stage in model.stages:
        if stage.ltdm:
            for name, module in model.get_submodule(stage.module).named_modules():
                if isinstance(module, LongTermTDM):
                    out.append((f"{stage.name}.{name.split('.')[0]}", module))
    return out


@torch.inference_mode()
def difference_maps(model: TDN, x: Tensor) -> tuple[TDMaps, Tensor]:
    """Run one forward of the view ``x`` (1, T·15, S, S) and capture every TDM stage; returns the maps and
    the logits (identical to a plain forward: the hooks only read)."""
    t = model.num_segments
    backbone = model.base_model
    captured: dict[str, Tensor] = {}
    ltdm_maps: list[LTDMMaps] = []

    def keep(name: str):
        def hook(_m: nn.Module, _inp: tuple, out: Tensor) -> None:
            captured[name] = out.detach()

        return hook

    def ltdm_hook(block: str):
        def hook(module: LongTermTDM, inp: tuple) -> None:
            x_in = inp[0].detach()
            d_fwd, d_bwd = module.differences(x_in)
            y = module.excitation(x_in)
            ltdm_maps.append(
                LTDMMaps(
                    block,
                    rms_over_channels(d_fwd),
                    rms_over_channels(d_bwd),
                    mean_over_channels(y),
                    rms_over_channels(x_in * y),
                    x_in.shape[1],
                    d_fwd.shape[1],
                )
            )

        return hook

    device = next(model.parameters()).device
    x = x.to(device)
    with model_lock(model), eval_mode(model), autocast_for(device):
        handles = []
        try:
            if hasattr(backbone, "conv1_5"):
                handles.append(backbone.maxpool_diff.register_forward_hook(keep("s0")))
                handles.append(backbone.resnext_layer1.register_forward_hook(keep("s1")))
            handles += [m.register_forward_pre_hook(ltdm_hook(b)) for b, m in ltdm_modules(model)]
            logits = model(x)
        finally:
            for h in handles:
                h.remove()
    rgb = None
    if "s0" in captured:
        s = x.shape[-1]
        diffs = snippet_differences(x[0].view(t, CHANNELS_PER_SEGMENT, x.shape[-2], s))  # (T, 12, H, W)
        rgb = diffs.view(t, 4, 3, x.shape[-2], s).float().pow(2).mean(2).sqrt().cpu().numpy()
    return (
        TDMaps(
            stdm_rgb_diff=rgb,
            stdm_s0=rms_over_channels(captured["s0"]) if "s0" in captured else None,
            stdm_s1=rms_over_channels(captured["s1"]) if "s1" in captured else None,
            ltdm=ltdm_maps,
        ),
        logits.float().cpu(),
    )

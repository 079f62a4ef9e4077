"""An inference copy of a TDN with every BatchNorm folded into the convolution before it.

Eval-mode BN is an affine map per channel, so ``bn(conv(x)) = conv'(x)`` with
``w' = w·γ/σ`` and ``b' = (b − μ)·γ/σ + β`` (σ = sqrt(var + eps)). TDN has 116 BNs in ResNet-50 form (53 in a
plain ResNet-50): each is a full pass over its feature map on the CPU. Folding removes those passes; the
logits move by float rounding only (checked against the reference fixture in the tests). The plain model
folds the same way on the fly while it is frozen (``tdn.network.convbn``); this copy folds once for good and
adds what only a frozen copy can have: channels-last weights and no parameters to watch.
The copy keeps every module name that explanations hook, but its state dict is not checkpoint-compatible.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from tdn.network.backbone import BasicBlock, Bottleneck
from tdn.network.convbn import folded_weights, hooked
from tdn.network.model import TDN, Fusion
from tdn.network.temporal import LongTermTDM


@torch.no_grad()
def fold_pair(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Fold ``bn`` into ``conv`` in place (the caller then replaces ``bn`` by Identity)."""
    weight, bias = folded_weights(conv.weight, conv.bias, bn)
    conv.weight.copy_(weight)
    conv.bias = nn.Parameter(bias)


_PAIRS = {
    Bottleneck: (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")),
    BasicBlock: (("conv1", "bn1"), ("conv2", "bn2")),
    LongTermTDM: (
        ("conv1", "bn1"),
        ("conv3", "bn3"),
        ("conv3_smallscale2", "bn3_smallscale2"),
        ("conv3_smallscale4", "bn3_smallscale4"),
    ),
}


def folded_copy(model: TDN) -> TDN:
    """A deep copy of ``model`` in eval mode with BatchNorm folded away and channels-last weights;
    ``model`` is untouched."""
    fast = copy.deepcopy(model).eval()
    for module in list(fast.modules()):
        for conv_name, bn_name in _PAIRS.get(type(module), ()):
            fold_pair(getattr(module, conv_name), getattr(module, bn_name))
            setattr(module, bn_name, nn.Identity())
        is_pair = isinstance(module, nn.Sequential) and len(module) >= 2
        if is_pair and isinstance(module[0], nn.Conv2d) and isinstance(module[1], nn.BatchNorm2d):
            fold_pair(module[0], module[1])
            module[1] = nn.Identity()
    backbone = fast.base_model
    fold_pair(backbone.conv1, backbone.bn1)
    backbone.bn1 = nn.Identity()
    for p in fast.parameters():
        p.requires_grad_(False)
    # The fusions may write into the maps they are given where no hook can be holding one (deepcopy keeps
    # any hook a caller left on the model; the fusion checks global hooks itself).
    if not hooked(*fast.modules()):
        for module in fast.modules():
            if isinstance(module, Fusion):
                module.in_place = True
    # oneDNN convolutions run natively in channels-last; without it every conv reorders its input.
    return fast.to(memory_format=torch.channels_last)

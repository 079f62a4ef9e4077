"""Convolutions that fold the BatchNorm after them while the model is frozen (docs/architecture.md §5).

Eval-mode BN is an affine map per channel, so ``bn(conv(x)) = conv'(x)`` with ``w' = w·γ/σ`` and
``b' = (b − μ)·γ/σ + β`` (σ = sqrt(var + eps)). TDN-R50 has 116 BNs (a plain ResNet-50 53); on the CPU each is
one more pass over its feature map, about a tenth of a forward. :class:`FoldingConv2d` is an ``nn.Conv2d``
(same parameters, same state-dict keys, official checkpoints load as before) whose forward takes the BN that
follows it: in eval mode, when nothing asks for a gradient of these weights (inference, explanations, whose
parameters are frozen), it runs one convolution with the folded weights, kept until any of the six tensors
they come from changes; otherwise conv then BN, exactly as before. Forward hooks on such a conv see the
BN's output; the BN module itself is then not called.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def folded_weights(weight: Tensor, bias: Tensor | None, bn: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """The weight and bias of ``bn ∘ conv`` for a conv with ``weight`` and ``bias`` and an eval-mode ``bn``."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shift = -bn.running_mean if bias is None else bias - bn.running_mean
    return weight * scale.view(-1, *([1] * (weight.dim() - 1))), shift * scale + bn.bias


def _foldable(bn: nn.Module | None) -> bool:
    return isinstance(bn, nn.BatchNorm2d) and not bn.training and bn.running_mean is not None and bn.affine


class FoldingConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose ``forward(x, bn)`` computes ``bn(conv(x))``, folded where that is exact and frozen."""

    _fold_cache: tuple[tuple, Tensor, Tensor] | None = None

    def _sources(self, bn: nn.BatchNorm2d) -> tuple[Tensor, ...]:
        tensors = (self.weight, bn.weight, bn.bias, bn.running_mean, bn.running_var)
        return tensors if self.bias is None else (*tensors, self.bias)

    def effective(self, bn: nn.Module | None) -> tuple[Tensor, Tensor | None, nn.Module | None]:
        """(weight, bias, what still has to run after the convolution): the folded pair and None when
        ``bn`` can be folded now, else the conv's own parameters and ``bn``."""
        if not _foldable(bn) or torch.compiler.is_compiling():
            # A compiled graph gets conv then BN, which the compiler fuses itself; the cache is eager-only.
            return self.weight, self.bias, bn
        sources = self._sources(bn)
        if torch.is_grad_enabled() and any(t.requires_grad for t in sources):
            return self.weight, self.bias, bn  # a weight gradient is wanted: keep the graph through BN
        # A changed parameter (optimiser step, load_state_dict, .to()) changes a pointer or a version.
        key = (bn.eps, *((t.data_ptr(), t._version, t.dtype, t.device) for t in sources))
        cache = self._fold_cache
        if cache is None or cache[0] != key:
            # Plain tensors even inside inference_mode: an explanation's later backward saves them.
            with torch.inference_mode(False), torch.no_grad():
                weight, bias = folded_weights(self.weight, self.bias, bn)
            cache = self._fold_cache = (key, weight, bias)
        return cache[1], cache[2], None

    def forward(self, x: Tensor, bn: nn.Module | None = None) -> Tensor:
        if bn is None:
            return super().forward(x)
        weight, bias, rest = self.effective(bn)
        out = self._conv_forward(x, weight, bias)
        return out if rest is None else rest(out)

    def train(self, mode: bool = True) -> FoldingConv2d:
        if mode:
            self._fold_cache = None  # training changes the weights every step: do not hold a stale copy
        return super().train(mode)

    def __getstate__(self) -> dict:
        # Copies (deepcopy, pickling) start without the folded pair; it is rebuilt on first use.
        state = dict(super().__getstate__())  # object's default hands out __dict__ itself
        state.pop("_fold_cache", None)
        return state


class ConvBN(nn.Sequential):
    """``Sequential(conv, bn)`` (the official keys ``.0`` and ``.1``) run as one folding convolution."""

    def forward(self, x: Tensor) -> Tensor:
        return self[0](x, self[1])


class ConvBNReLU(nn.Sequential):
    """``Sequential(conv, bn, relu)`` (the official S-TDM ``conv1_5``) run as one folding convolution."""

    def forward(self, x: Tensor) -> Tensor:
        return self[2](self[0](x, self[1]))

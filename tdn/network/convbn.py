"""Convolutions that fold the BatchNorm after them while the model is frozen (docs/architecture.md §5).

Eval-mode BN is an affine map per channel, so ``bn(conv(x)) = conv'(x)`` with ``w' = w·γ/σ`` and
``b' = (b − μ)·γ/σ + β`` (σ = sqrt(var + eps)). TDN-R50 has 116 BNs (a plain ResNet-50 53); on the CPU each is
one more pass over its feature map, about a tenth of a forward. :class:`FoldingConv2d` is an ``nn.Conv2d``
(same parameters, same state-dict keys, official checkpoints load as before); blocks call
:func:`run_conv_bn` with it and the BN that follows it. In eval mode, when nothing asks for a gradient of these
weights (inference, explanations, whose parameters are frozen), that runs one convolution with the folded
weights, kept until any tensor they come from changes; otherwise, and whenever the conv or its BN carries a
hook (or a global module hook is set), the two modules run as before, so every hook sees what it saw. The
cache does not see writes through ``.data``; ``train()``, ``.to()`` and ``load_state_dict`` are seen.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn.modules import module as _module


def folded_weights(weight: Tensor, bias: Tensor | None, bn: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """The weight and bias of ``bn ∘ conv`` for a conv with ``weight`` and ``bias`` and an eval-mode ``bn``."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shift = -bn.running_mean if bias is None else bias - bn.running_mean
    return weight * scale.view(-1, *([1] * (weight.dim() - 1))), shift * scale + bn.bias


def _foldable(bn: nn.Module | None) -> bool:
    return isinstance(bn, nn.BatchNorm2d) and not bn.training and bn.running_mean is not None and bn.affine


class FoldingConv2d(nn.Conv2d):
    """``nn.Conv2d`` that can fold the BN after it (:func:`run_conv_bn`) where that is exact and frozen; called
    alone it is a plain convolution."""

    _fold_cache: tuple[tuple, Tensor, Tensor] | None = None

    def _sources(self, bn: nn.BatchNorm2d) -> tuple[Tensor, ...]:
        tensors = (self.weight, bn.weight, bn.bias, bn.running_mean, bn.running_var)
        if bn.num_batches_tracked is not None:
            # A training-mode BN forward updates the running statistics inside its kernel without a new
            # version; its Python-side counter update does bump this one.
            tensors = (*tensors, bn.num_batches_tracked)
        return tensors if self.bias is None else (*tensors, self.bias)

    def folded(self, bn: nn.Module) -> tuple[Tensor, Tensor] | None:
        """The (weight, bias) of ``bn ∘ self`` when ``bn`` can be folded now, else None (run conv, then BN)."""
        if not _foldable(bn) or torch.compiler.is_compiling():
            # A compiled graph gets conv then BN, which the compiler fuses itself; the cache is eager-only.
            return None
        sources = self._sources(bn)
        if torch.is_grad_enabled() and any(t.requires_grad for t in sources):
            return None  # a weight gradient is wanted: keep the graph through BN
        if any(t.is_inference() for t in sources):
            return None  # made under inference_mode: no version counter to key on
        # A changed parameter (optimiser step, load_state_dict, .to()) changes a pointer or a version.
        key = (bn.eps, *((t.data_ptr(), t._version, t.dtype, t.device) for t in sources))
        cache = self._fold_cache
        if cache is None or cache[0] != key:
            # Plain tensors even inside inference_mode: an explanation's later backward saves them.
            with torch.inference_mode(False), torch.no_grad():
                weight, bias = folded_weights(self.weight, self.bias, bn)
            cache = self._fold_cache = (key, weight, bias)
        return cache[1], cache[2]

    def train(self, mode: bool = True) -> FoldingConv2d:
        if mode:
            self._fold_cache = None  # training changes the weights every step: do not hold a stale copy
        return super().train(mode)

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> FoldingConv2d:
        self._fold_cache = None  # .to(), .half(), .cuda(): do not keep the old device's pair alive
        return super()._apply(fn, recurse)

    def __getstate__(self) -> dict:
        # Copies (deepcopy, pickling) start without the folded pair; it is rebuilt on first use.
        state = dict(super().__getstate__())  # object's default hands out __dict__ itself
        state.pop("_fold_cache", None)
        return state


def hooked(*modules: nn.Module) -> bool:
    """Whether calling these modules would run a hook (their own, or a global module hook)."""
    if (
        _module._global_forward_hooks
        or _module._global_forward_pre_hooks
        or _module._global_backward_hooks
        or _module._global_backward_pre_hooks
    ):
        return True
    return any(
        m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks
        for m in modules
    )


def run_conv_bn(conv: nn.Conv2d, bn: nn.Module, x: Tensor) -> Tensor:
    """``bn(conv(x))``: one folded convolution where :meth:`FoldingConv2d.folded` allows it and no hook
    would miss a call, else the two modules as they are."""
    pair = conv.folded(bn) if isinstance(conv, FoldingConv2d) and not hooked(conv, bn) else None
    return bn(conv(x)) if pair is None else conv._conv_forward(x, *pair)


class ConvBN(nn.Sequential):
    """``Sequential(conv, bn)`` (the official keys ``.0`` and ``.1``) run as one folding convolution."""

    def forward(self, x: Tensor) -> Tensor:
        return run_conv_bn(self[0], self[1], x)


class ConvBNReLU(nn.Sequential):
    """``Sequential(conv, bn, relu)`` (the official S-TDM ``conv1_5``) run as one folding convolution."""

    def forward(self, x: Tensor) -> Tensor:
        return self[2](run_conv_bn(self[0], self[1], x))

"""Exact, fast replacements for ``F.interpolate(x, size)`` in its legacy 'nearest' mode, 2x2 average pooling and the
stem's 3x3 max-pooling.

torch's CPU kernel for nearest upsampling spends most of its time in a layout copy, far longer than a
gather of the same pixels (README, "Benchmarks"). TDN upsamples many times per forward, so the model uses
these gathers instead; they pick exactly the same source pixels (index = floor(dst·in/out)).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def nearest_index(src: int, dst: int, device: torch.device) -> Tensor:
    """Source row of each of ``dst`` output rows: floor(i · (src/dst)) in float32, as PyTorch's legacy
    nearest kernels compute it (the scale a float32 division), clamped to the last row.

    Built on ``device`` from sizes alone (no tensor crosses from the host, so no synchronisation), and
    traceable by ``torch.compile`` without a graph break."""
    scale = torch.full((), float(src), dtype=torch.float32, device=device) / dst
    idx = torch.arange(dst, dtype=torch.float32, device=device).mul_(scale).floor_().to(torch.int64)
    return idx.clamp_(max=src - 1)


class _Gather(torch.autograd.Function):
    """``x.index_select(dim, idx)`` for a non-decreasing ``idx``, with a deterministic backward.

    index_select's own backward adds gradients with atomics on CUDA, in a different order every run;
    Grad-CAM below res5 flows through these gathers. Here each source row's gradient is a sum over one
    contiguous run of output rows, taken from a cumulative sum: the same result every run."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: Tensor, dim: int, idx: Tensor) -> Tensor:
        ctx.dim, ctx.size = dim, x.shape[dim]
        ctx.save_for_backward(idx)
        return x.index_select(dim, idx)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> tuple[Tensor, None, None]:
        (idx,) = ctx.saved_tensors
        dim = ctx.dim
        counts = torch.bincount(idx, minlength=ctx.size)
        ends = counts.cumsum(0)  # output rows [ends[j] - counts[j], ends[j]) came from source row j
        padded = torch.cat([torch.zeros_like(grad.narrow(dim, 0, 1)), grad.cumsum(dim)], dim)
        total = padded.index_select(dim, ends) - padded.index_select(dim, ends - counts)
        return total, None, None


def nearest_resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Legacy-nearest resize of the last two dims of x to ``size``; bit-identical to F.interpolate."""
    h, w = x.shape[-2:]
    oh, ow = size
    if (h, w) == (oh, ow):
        return x
    if oh % h == 0 and ow % w == 0:  # integer factors: a broadcast, no gather
        fh, fw = oh // h, ow // w
        lead = x.shape[:-2]
        return x[..., :, None, :, None].expand(*lead, h, fh, w, fw).reshape(*lead, oh, ow)
    ih, iw = nearest_index(h, oh, x.device), nearest_index(w, ow, x.device)
    if x.requires_grad and x.device.type == "cuda":
        return _Gather.apply(_Gather.apply(x, x.dim() - 2, ih), x.dim() - 1, iw)
    return x.index_select(-2, ih).index_select(-1, iw)


def add_upsampled(base: Tensor, alpha: float, small: Tensor, beta: float, in_place: bool = False) -> Tensor:
    """alpha·base + beta·nearest_resize(small, base size), without materialising the upsampled map when the
    factor is an integer. ``in_place``: write the sum into ``base`` (no autograd; the caller owns ``base``),
    sparing a fresh full-size map and its page faults."""
    h, w = small.shape[-2:]
    oh, ow = base.shape[-2:]
    if oh % h == 0 and ow % w == 0:
        fh, fw = oh // h, ow // w
        lead = base.shape[:-2]
        # torch.add(input, other, alpha=a) = input + a·other, with the small map broadcast as input.
        if (
            small.dim() == 4
            and not small.is_contiguous(memory_format=torch.channels_last)
            and not (torch.is_grad_enabled() and small.requires_grad)  # out= has no autograd
            and not torch.compiler.is_compiling()  # a compiled graph fuses the sum itself
        ):
            # Channels-first: widen the columns first (a quarter of the output's size), since a broadcast
            # along the innermost axis keeps the add off its vectorised loop (res2's 8x256x56x56: 7.7 -> 4.0
            # ms, values and strides equal). Channels-last maps have the channels innermost: one pass.
            wide = small.new_empty((*lead, h, ow), dtype=torch.result_type(small, beta))
            torch.mul(small.unsqueeze(-1).expand(*lead, h, w, fw), beta, out=wide.view(*lead, h, w, fw))
            rows = base.view(*lead, h, fh, ow)
            out = torch.add(wide[..., :, None, :], rows, alpha=alpha, out=rows if in_place else None)
        else:
            cells = base.view(*lead, h, fh, w, fw)
            scaled = (small * beta)[..., :, None, :, None]
            out = torch.add(scaled, cells, alpha=alpha, out=cells if in_place else None)
        return base if in_place else out.reshape(*lead, oh, ow)  # a view when both maps share a layout
    if in_place:
        return base.mul_(alpha).add_(nearest_resize(small, (oh, ow)), alpha=beta)
    return alpha * base + beta * nearest_resize(small, (oh, ow))


def avg_pool_2x2(x: Tensor) -> Tensor:
    """``F.avg_pool2d(x, 2, 2)`` (odd trailing rows and columns dropped, as it does) as two strided adds.

    torch's CPU pooling kernel runs several times slower than the memory traffic needs on these large
    maps (S-TDM's input: 15 channels at full resolution); the values agree up to float rounding."""
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    lead = x.shape[:-2]
    rows = x[..., :h, :w].reshape(*lead, h // 2, 2, w)
    pairs = (rows[..., 0, :] + rows[..., 1, :]).reshape(*lead, h // 2, w // 2, 2)
    return (pairs[..., 0] + pairs[..., 1]).mul_(0.25)


class AvgPool2x2(nn.AvgPool2d):
    """``nn.AvgPool2d(2, 2)`` computed by :func:`avg_pool_2x2`."""

    def __init__(self) -> None:
        super().__init__(2, 2)

    def forward(self, x: Tensor) -> Tensor:
        return avg_pool_2x2(x)


def _every_second(x: Tensor, dim: int, start: int, count: int) -> Tensor:
    """Elements start, start+2, ..., start+2(count-1) of x along ``dim`` (< 0), as a view."""
    span = x.narrow(dim, start, 2 * count - 1)
    return span[(Ellipsis, slice(None, None, 2), *([slice(None)] * (-dim - 1)))]


def _max3_stride2(x: Tensor, dim: int) -> Tensor:
    """Max over windows of 3 with stride 2 and one padded (ignored) element each side, along ``dim`` (< 0)."""
    n = x.shape[dim]
    size, pairs = (n - 1) // 2 + 1, n // 2
    out = x.new_empty(*x.shape[:dim], size, *x.shape[dim:][1:])
    # Output j covers inputs 2j-1, 2j, 2j+1: first the pairs (2j, 2j+1), then the left neighbour 2j-1.
    if pairs:
        head = out.narrow(dim, 0, pairs)
        torch.maximum(_every_second(x, dim, 0, pairs), _every_second(x, dim, 1, pairs), out=head)
    if size > pairs:  # odd length: the last window holds 2j-1 and 2j only
        out.narrow(dim, pairs, 1).copy_(x.narrow(dim, n - 1, 1))
    if size > 1:
        rest = out.narrow(dim, 1, size - 1)
        torch.maximum(rest, _every_second(x, dim, 1, size - 1), out=rest)
    return out


def max_pool_3x3_s2(x: Tensor) -> Tensor:
    """``F.max_pool2d(x, 3, 2, 1)`` on a channels-first CPU map without a gradient, as two separable passes.

    torch's channels-first CPU kernel takes ~36 ms for the stem's 8x64x112x112 map on 2 cores, these strided
    maxima ~7 ms; the values are identical (a maximum is exact, NaN propagates in both). Anything else (a
    gradient, whose ties max_pool2d routes to one input and a maximum splits; channels-last, where torch's own
    kernel is the fast one; another device; a graph being compiled) runs torch's pooling."""
    if (
        torch.compiler.is_compiling()
        or x.device.type != "cpu"
        or x.dim() != 4
        or not x.is_contiguous()
        or (torch.is_grad_enabled() and x.requires_grad)
    ):
        return F.max_pool2d(x, 3, 2, 1)
    return _max3_stride2(_max3_stride2(x, -1), -2)


class MaxPool3x3(nn.MaxPool2d):
    """``nn.MaxPool2d(3, 2, 1)`` computed by :func:`max_pool_3x3_s2` where that is exact and faster."""

    def __init__(self) -> None:
        super().__init__(3, 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        return max_pool_3x3_s2(x)

"""Exact, fast replacement for ``F.interpolate(x, size)`` in its legacy 'nearest' mode.

torch's CPU kernel for nearest upsampling spends most of its time in a layout copy, far longer than a
gather of the same pixels (README, "Benchmarks"). TDN upsamples many times per forward, so the model uses
these gathers instead; they pick exactly the same source pixels (index = floor(dst·in/out)).
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor


@lru_cache(maxsize=256)
def _nearest_index(src: int, dst: int) -> tuple[int, ...]:
    scale = torch.tensor(src / dst, dtype=torch.float32)
    idx = torch.floor(torch.arange(dst, dtype=torch.float32) * scale).to(torch.int64).clamp_(max=src - 1)
    return tuple(idx.tolist())


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
    ih = torch.tensor(_nearest_index(h, oh), device=x.device)
    iw = torch.tensor(_nearest_index(w, ow), device=x.device)
    return x.index_select(-2, ih).index_select(-1, iw)


def add_upsampled(base: Tensor, alpha: float, small: Tensor, beta: float) -> Tensor:
    """alpha·base + beta·nearest_resize(small, base size), without materialising the upsampled map when the
    factor is an integer."""
    h, w = small.shape[-2:]
    oh, ow = base.shape[-2:]
    if oh % h == 0 and ow % w == 0:
        fh, fw = oh // h, ow // w
        lead = base.shape[:-2]
        out = (alpha * base).view(*lead, h, fh, w, fw) + (beta * small)[..., :, None, :, None]
        return out.view(*lead, oh, ow)
    return alpha * base + beta * nearest_resize(small, (oh, ow))

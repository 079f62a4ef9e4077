"""The temporal modules of TDN: the long-term TDM (L-TDM) and the learnable temporal shift.

Both act on a (N·T, C, H, W) tensor whose batch axis holds whole videos of T segments in order.
Attribute names follow the official state dict (``mse.*`` and ``shift.conv.weight``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

import torch
import torch.nn.functional as F
from torch import nn

from tdn.network.convbn import FoldingConv2d, hooked, run_conv_bn
from tdn.network.upsample import add_upsampled, avg_pool_2x2


def _split_time(x: torch.Tensor, num_segments: int) -> torch.Tensor:
    """View (N·T, C, H, W) as (N, T, C, H, W), with a readable error when T does not divide the batch."""
    nt, c, h, w = x.shape
    if nt % num_segments:
        raise ValueError(
            f"the batch axis holds {nt} frames, which is not a whole number of {num_segments}-segment videos"
        )
    return x.view(nt // num_segments, num_segments, c, h, w)


def _is_channels_last(x: torch.Tensor) -> bool:
    """Whether x is laid out channels-last (and not also plain contiguous, as a 1x1 map is both)."""
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


_AS_WRITTEN: ContextVar[bool] = ContextVar("tdn_ltdm_as_written", default=False)


@contextlib.contextmanager
def as_written() -> Iterator[None]:
    """Run the L-TDM's expansion as the official 1x1 convolution (what ``count_gmacs`` counts): the fast
    product below adds a ones channel for the bias, whose multiply-adds the official network does not have."""
    token = _AS_WRITTEN.set(True)
    try:
        yield
    finally:
        _AS_WRITTEN.reset(token)


def _expand_channels(conv: FoldingConv2d, bn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``bn(conv(x))`` for the L-TDM's 1x1 conv from C/16 channels back to C (BN folded in when it can be).

    On a channels-first CPU map torch's kernel for so few input channels is ~10x slower than the same sums
    as one batched matrix product (8 -> 128 channels on 16 maps of 56x56: 23.9 vs 2.4 ms). The product is
    used where no weight gradient is wanted (inference, explanations); training keeps the convolution,
    whose weight gradient is the faster of the two."""
    n, c, h, w = x.shape
    if (
        x.device.type != "cpu"
        or _AS_WRITTEN.get()
        or not x.is_contiguous()
        or (torch.is_grad_enabled() and conv.weight.requires_grad)
        or hooked(conv, bn)
    ):
        return run_conv_bn(conv, bn, x)
    pair = conv.folded(bn)
    weight, bias = (conv.weight, conv.bias) if pair is None else pair
    weight, flat = weight.view(-1, c), x.view(n, c, h * w)
    if bias is not None:
        # The bias as one more input channel of ones: baddbmm would first copy the broadcast bias into the
        # C-wide output (a full extra pass); a ones row on the C/16-wide input costs a sixteenth of that.
        weight = torch.cat([weight, bias.view(-1, 1)], 1)
        flat = torch.cat([flat, flat.new_ones(n, 1, h * w)], 1)
    out = torch.bmm(weight.expand(n, -1, -1), flat).view(n, -1, h, w)
    return bn(out) if pair is None else out


def _differences_into_one(
    b: torch.Tensor, c_hat: torch.Tensor, num_segments: int, layout: torch.memory_format
) -> torch.Tensor | None:
    """[c(t+1) − b(t); c(t−1) − b(t)], zero at the clip ends, written straight into one (2·N·T, C, H, W) map of
    ``layout`` (without autograd): two subtractions and two zero fills, where the pad, the layout copy and the
    stack take three more passes. None when b and ĉ are not both dense in that layout, or differ in dtype.
    The caller has checked that the batch holds whole videos."""
    dense = b.is_contiguous(memory_format=layout) and c_hat.is_contiguous(memory_format=layout)
    if not dense or b.dtype != c_hat.dtype:
        return None
    nt, c, h, w = b.shape
    n, t = nt // num_segments, num_segments
    out = torch.empty((2 * nt, c, h, w), dtype=b.dtype, device=b.device, memory_format=layout)

    def frames(m: torch.Tensor) -> torch.Tensor:
        # Each frame's map is one dense run in memory whatever the layout: view it as (videos, T, values).
        flat = m.permute(0, 2, 3, 1) if layout == torch.channels_last else m
        return flat.view(-1, t, c * h * w)

    bf, cf, of = frames(b), frames(c_hat), frames(out).view(2, n, t, c * h * w)
    torch.sub(cf[:, 1:], bf[:, :-1], out=of[0, :, :-1])  # forward: the next segment's ĉ minus this b
    of[0, :, -1].zero_()
    torch.sub(cf[:, :-1], bf[:, 1:], out=of[1, :, 1:])  # backward: the previous segment's ĉ minus this b
    of[1, :, 0].zero_()
    return out


class LongTermTDM(nn.Module):
    """L-TDM (official ``mSEModule``): a bidirectional, multi-scale cross-segment difference excitation.

    ``forward(x) = x + x * Y`` with ``Y = (G_forward + G_backward) / 2`` in (-0.5, 0.5) (docs/architecture.md §5).
    """

    def __init__(self, channels: int, num_segments: int, reduction: int = 16) -> None:
        super().__init__()
        reduced = max(1, channels // reduction)
        self.num_segments = num_segments
        self.conv1 = FoldingConv2d(channels, reduced, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(reduced)
        self.conv2 = nn.Conv2d(reduced, reduced, 3, padding=1, groups=reduced, bias=False)
        self.conv3 = FoldingConv2d(reduced, channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels)
        self.conv3_smallscale2 = FoldingConv2d(reduced, reduced, 3, padding=1, bias=False)
        self.bn3_smallscale2 = nn.BatchNorm2d(reduced)
        self.conv3_smallscale4 = FoldingConv2d(reduced, reduced, 3, padding=1, bias=False)
        self.bn3_smallscale4 = nn.BatchNorm2d(reduced)

    def differences(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward and backward feature differences Df, Db, each (N·T, C/16, H, W), zero at the clip ends."""
        d_fwd, d_bwd = self._stacked_differences(x).chunk(2)
        return d_fwd, d_bwd

    def _stacked_differences(self, x: torch.Tensor) -> torch.Tensor:
        """[Df; Db] stacked on the batch axis, (2·N·T, C/16, H, W) in x's memory layout."""
        b = run_conv_bn(self.conv1, self.bn1, x)
        c_hat = self.conv2(b)
        b5 = _split_time(b, self.num_segments)  # whole videos, or a readable error
        layout = torch.channels_last if _is_channels_last(x) else torch.contiguous_format
        if not torch.is_grad_enabled() and not torch.compiler.is_compiling():
            stacked = _differences_into_one(b, c_hat, self.num_segments, layout)
            if stacked is not None:
                return stacked
        c5 = _split_time(c_hat, self.num_segments)
        # The depthwise conv is applied to the neighbour, never to the current segment (docs/architecture.md §5.3).
        d_fwd = F.pad(c5[:, 1:] - b5[:, :-1], (0, 0, 0, 0, 0, 0, 0, 1))
        d_bwd = F.pad(c5[:, :-1] - b5[:, 1:], (0, 0, 0, 0, 0, 0, 1, 0))
        # The 5-D pad returns channels-first; give the maps x's layout back, or every convolution after this
        # reorders them (on the channels-last inference copy, a 1x1 conv from C/16 channels runs ~10x slower).
        return torch.cat([d_fwd.flatten(0, 1), d_bwd.flatten(0, 1)]).contiguous(memory_format=layout)

    def _gate_logits(self, d: torch.Tensor) -> torch.Tensor:
        """BN(conv(M)) with M the mean of D and its two scale branches; G = sigmoid(·) − 0.5."""
        h, w = d.shape[-2:]
        coarse = run_conv_bn(self.conv3_smallscale2, self.bn3_smallscale2, avg_pool_2x2(d))
        fine = run_conv_bn(self.conv3_smallscale4, self.bn3_smallscale4, d)
        # + coarse upsampled by legacy 'nearest' (the official F.interpolate), as a broadcast where the factor is
        # whole; without autograd written into the fresh d + fine
        in_place = not torch.is_grad_enabled() and not torch.compiler.is_compiling()
        mixed = add_upsampled(torch.add(d, fine), 1.0, coarse, 1.0, in_place=in_place)
        return _expand_channels(self.conv3, self.bn3, mixed.mul_(1.0 / 3))  # (d + coarse + fine) / 3

    def excitation(self, x: torch.Tensor) -> torch.Tensor:
        """The excitation Y = (G_f + G_b)/2 in (-0.5, 0.5), same shape as x."""
        return self._twice_excitation(x).mul_(0.5)

    def _twice_excitation(self, x: torch.Tensor) -> torch.Tensor:
        """2·Y = σ_f + σ_b − 1, the sum (σ_f − ½) + (σ_b − ½) in fewer passes over a C-wide tensor."""
        d = self._stacked_differences(x)
        if self.training:
            # Separate passes keep the official per-direction BatchNorm statistics.
            d_fwd, d_bwd = d.chunk(2)
            a_fwd, a_bwd = self._gate_logits(d_fwd), self._gate_logits(d_bwd)
        else:
            # Eval-mode BN is per-sample affine, so both directions can share one batched pass exactly.
            a = self._gate_logits(d)
            if not torch.is_grad_enabled():
                # Nothing will differentiate through the logits: reuse their storage for σ and the sum
                # instead of allocating three more C-wide maps (a fresh large map costs its page faults).
                s_fwd, s_bwd = a.sigmoid_().chunk(2)
                return s_fwd.add_(s_bwd).sub_(1.0)
            a_fwd, a_bwd = a.chunk(2)
        return (torch.sigmoid(a_fwd) + torch.sigmoid(a_bwd)).sub_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(x, x, self._twice_excitation(x), value=0.5)  # x + x·Y in one pass


class TemporalShift(nn.Module):
    """Learnable temporal shift: a depthwise kernel-3 convolution along the segment axis (docs/architecture.md §5).

    The weight keeps the official Conv1d layout ``[C, 1, 3]`` (taps for t-1, t, t+1), but the forward
    runs as three scaled slices on the (N, T, C, H, W) view instead of permuting to (N·H·W, C, T):
    the same arithmetic without two full-tensor transposes.
    """

    def __init__(self, channels: int, num_segments: int, fold_div: int = 8) -> None:
        super().__init__()
        self.num_segments = num_segments
        self.conv = nn.Conv1d(channels, channels, 3, padding=1, groups=channels, bias=False)
        self.reset_to_tsm(fold_div)

    @torch.no_grad()
    def reset_to_tsm(self, fold_div: int = 8) -> None:
        """TSM initialisation: C/8 channels read t+1, the next C/8 read t-1, the rest stay in place."""
        channels = self.conv.weight.shape[0]
        fold = channels // fold_div
        w = torch.zeros_like(self.conv.weight)
        w[:fold, 0, 2] = 1.0
        w[fold : 2 * fold, 0, 0] = 1.0
        w[2 * fold :, 0, 1] = 1.0
        self.conv.weight.copy_(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x5 = _split_time(x, self.num_segments)
        # While torch.compile traces: the slices below, which it fuses.
        eager_cpu = x.device.type == "cpu" and not torch.compiler.is_compiling()
        if eager_cpu and _is_channels_last(x) and torch.get_num_threads() > 1:
            # Channels-last memory is (N, T, H, W, C), which is exactly a channels-last-3d (N, C, T, H, W)
            # tensor: the shift is then one depthwise (3, 1, 1) convolution, a single pass where the slices
            # below take three (the inference copy's layout; ~3x faster on CPU, same sums). With one thread
            # torch runs this kernel without oneDNN, slower than the slices: then the slices.
            n, t, c, h, w_ = x5.shape
            y = F.conv3d(
                x5.permute(0, 2, 1, 3, 4), self.conv.weight.view(c, 1, 3, 1, 1), padding=(1, 0, 0), groups=c
            )
            return y.permute(0, 2, 1, 3, 4).reshape(n * t, c, h, w_)
        w = self.conv.weight.to(x.dtype).view(1, 1, -1, 3, 1, 1)  # bf16 under autocast, as x
        out = x * w.view(1, -1, 3)[..., 1, None, None]  # the 4-D product keeps x's memory format cheaply
        if self.num_segments > 1:
            out5 = out.view_as(x5)
            out5[:, 1:].addcmul_(x5[:, :-1], w[:, :, :, 0])  # tap t-1
            out5[:, :-1].addcmul_(x5[:, 1:], w[:, :, :, 2])  # tap t+1
        return out

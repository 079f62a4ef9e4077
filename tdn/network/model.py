"""The TDN network: a TSN-style wrapper (``TDN``) around the two-stream backbone (``TDNBackbone``).

The module tree mirrors the official one (docs/architecture.md §1, §7), so an official state dict loads strictly:
``base_model.*`` is the backbone, ``new_fc`` the classifier. The same design scales down (ResNet-18/34,
a width multiplier) and switches its temporal parts off for ablations (docs/architecture.md §13).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor, nn

from tdn.contract import CENTRE_FRAME, CHANNELS_PER_SEGMENT, FRAMES_PER_SNIPPET
from tdn.network.backbone import BasicBlock, Block, Bottleneck, conv_bn, make_stage
from tdn.network.convbn import ConvBNReLU, FoldingConv2d, hooked, run_conv_bn
from tdn.network.upsample import AvgPool2x2, MaxPool3x3, add_upsampled

ARCHS: dict[str, tuple[Block, tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
    "resnet101": (Bottleneck, (3, 4, 23, 3)),
}
OFFICIAL_ARCHS = ("resnet50", "resnet101")

# variant name -> (S-TDM, L-TDM, shift), docs/architecture.md §13
VARIANTS: dict[str, tuple[bool, bool, bool]] = {
    "tsn": (False, False, False),
    "tsm": (False, False, True),
    "s-tdm": (True, False, True),
    "l-tdm": (False, True, True),
    "tdn": (True, True, True),
}


def fusion_weights(num_segments: int) -> tuple[float, float]:
    """α, β of the S-TDM fusion: 0.5/0.5 for exactly 8 segments, 0.75/0.25 otherwise (docs/architecture.md §1)."""
    return (0.5, 0.5) if int(num_segments) == 8 else (0.75, 0.25)


@dataclass(frozen=True)
class TDNConfig:
    """Everything that decides a TDN's structure; stored in our checkpoints' metadata."""

    arch: str = "resnet50"
    num_segments: int = 8
    num_classes: int = 174
    s_tdm: bool = True
    l_tdm: bool = True
    shift: bool = True
    width: float = 1.0
    dropout: float = 0.5
    ltdm_reduction: int = 16
    variant: str = field(default="tdn")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Stage:
    """One stage of a TDN, as every tool names it (in the spirit of timm's ``feature_info``).

    ``module`` is the module whose output is the stage's feature map (what Grad-CAM reads); ``macs_of``
    the modules whose multiply-adds the FLOPs profile books to it; ``stride`` its reduction against the
    input; ``cam`` whether it is offered as a Grad-CAM layer; ``ltdm`` whether its blocks hold L-TDMs."""

    name: str
    label: str
    module: str
    macs_of: tuple[str, ...]
    stride: int | None  # None: no spatial map
    channels: int
    description: str
    aliases: tuple[str, ...] = ()
    cam: bool = False
    ltdm: bool = False
    s_tdm: bool = False


def stage_table(cfg: TDNConfig) -> tuple[Stage, ...]:
    """Every stage of a TDN built from ``cfg``, in forward order (S-TDM rows only when it has an S-TDM)."""
    block, _ = ARCHS[cfg.arch]
    w = [max(1, round(c * cfg.width)) for c in (64, 128, 256, 512)]
    e = block.expansion
    lt = cfg.l_tdm
    rows = [
        Stage(
            "stem",
            "stem (RGB conv1)",
            "base_model.fuse1",
            ("base_model.conv1",),
            4,
            w[0],
            "fused stem: RGB conv1 + pool, plus S-TDM S0 (1/4 resolution)",
            ("fused_stem",),
            cam=True,
        ),
        Stage(
            "s-tdm.stem",
            "S-TDM stem (conv1_5)",
            "base_model.maxpool_diff",
            ("base_model.conv1_5",),
            8,
            w[0],
            "S-TDM S0: differences of each snippet after conv1_5 + pool (1/8)",
            s_tdm=True,
        ),
        Stage(
            "s-tdm.res2",
            "S-TDM res2 (resnext_layer1)",
            "base_model.resnext_layer1",
            ("base_model.resnext_layer1",),
            8,
            w[0] * e,
            "S-TDM S1: S0 after its own res2 (1/8)",
            s_tdm=True,
        ),
        Stage(
            "res2",
            "res2 (layer1)",
            "base_model.fuse2",
            ("base_model.layer1_bak",),
            4,
            w[0] * e,
            "res2 (layer1) fused with S-TDM S1 (1/4 resolution)",
            ("layer1",),
            cam=True,
        ),
        Stage(
            "res3",
            "res3 (layer2)",
            "base_model.layer2_bak",
            ("base_model.layer2_bak",),
            8,
            w[1] * e,
            f"res3 (layer2{', with L-TDM' if lt else ''}; 1/8 resolution)",
            ("layer2",),
            cam=True,
            ltdm=lt,
        ),
        Stage(
            "res4",
            "res4 (layer3)",
            "base_model.layer3_bak",
            ("base_model.layer3_bak",),
            16,
            w[2] * e,
            f"res4 (layer3{', with L-TDM' if lt else ''}; 1/16 resolution)",
            ("layer3",),
            cam=True,
            ltdm=lt,
        ),
        Stage(
            "res5",
            "res5 (layer4)",
            "base_model.layer4_bak",
            ("base_model.layer4_bak",),
            32,
            w[3] * e,
            f"res5 (layer4{', with L-TDM' if lt else ''}; 1/32 resolution)",
            ("layer4",),
            cam=True,
            ltdm=lt,
        ),
        Stage(
            "classifier",
            "classifier (new_fc)",
            "new_fc",
            ("new_fc",),
            None,
            cfg.num_classes,
            "per-segment class logits, averaged over segments",
        ),
    ]
    return tuple(s for s in rows if cfg.s_tdm or not s.s_tdm)


class Fusion(nn.Module):
    """α·appearance + β·nearest-upsampled(motion); a parameter-free module so hooks can see its output.

    ``in_place`` (set only on the hook-free prediction copy, ``tdn.network.fold.folded_copy``): without
    autograd the sum is written into the appearance map, which nothing else holds there."""

    in_place = False

    def __init__(self, alpha: float, beta: float) -> None:
        super().__init__()
        self.alpha, self.beta = alpha, beta

    def forward(self, appearance: Tensor, motion: Tensor | None) -> Tensor:
        if motion is None:
            return appearance
        # Legacy 'nearest' (floor of dst·in/out), the official F.interpolate default, done as a broadcast.
        # (not while torch.compile traces: out= on a view breaks its graph, and it fuses the sum itself)
        in_place = (
            self.in_place
            and not torch.is_grad_enabled()
            and not torch.compiler.is_compiling()
            and not hooked()
        )
        return add_upsampled(appearance, self.alpha, motion, self.beta, in_place=in_place)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}"


class TDNBackbone(nn.Module):
    """Official ``TDN_Net``: an appearance ResNet on the centre frame plus the S-TDM difference stream."""

    def __init__(self, cfg: TDNConfig) -> None:
        super().__init__()
        block, layers = ARCHS[cfg.arch]
        t = cfg.num_segments
        widths = [max(1, round(w * cfg.width)) for w in (64, 128, 256, 512)]
        stem = widths[0]
        self.conv1, self.bn1 = conv_bn(3, stem, 7, 2)
        self.relu = nn.ReLU(inplace=True)
        if cfg.arch in OFFICIAL_ARCHS and cfg.s_tdm and cfg.width == 1.0:
            # Dead in forward; kept only so official checkpoints load strictly (docs/architecture.md §1).
            # Never trained: DDP would wait for its gradient forever, and an optimiser would decay it.
            self.conv1_temp = nn.Conv2d(3, stem, 7, 2, 3, bias=True).requires_grad_(False)
        if cfg.s_tdm:
            self.conv1_5 = ConvBNReLU(
                FoldingConv2d(12, stem, 7, 2, 3, bias=False), nn.BatchNorm2d(stem), nn.ReLU(inplace=True)
            )
            self.maxpool_diff = MaxPool3x3()
            self.resnext_layer1 = make_stage(block, stem, widths[0], layers[0], 1, t)
        self.maxpool = MaxPool3x3()
        alpha, beta = fusion_weights(t)
        self.fuse1 = Fusion(alpha, beta)
        self.layer1_bak = make_stage(block, stem, widths[0], layers[0], 1, t)
        self.fuse2 = Fusion(alpha, beta)
        temporal = {"ltdm": cfg.l_tdm, "shift": cfg.shift, "ltdm_reduction": cfg.ltdm_reduction}
        e = block.expansion
        self.layer2_bak = make_stage(block, widths[0] * e, widths[1], layers[1], 2, t, **temporal)
        self.layer3_bak = make_stage(block, widths[1] * e, widths[2], layers[2], 2, t, **temporal)
        self.layer4_bak = make_stage(block, widths[2] * e, widths[3], layers[3], 2, t, **temporal)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        if cfg.s_tdm:
            self.avg_diff = AvgPool2x2()
        self.fc = nn.Dropout(cfg.dropout)
        self.feature_dim = widths[3] * e
        self.num_segments = t

    def short_term(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """S-TDM: the 4 RGB frame differences of each snippet → S0 (1/8 resolution) and S1 (after res2)."""
        # avg_pool(F[i+1] - F[i]) = avg_pool(F[i+1]) - avg_pool(F[i]): pooling first takes differences of a quarter
        # of the pixels (the same values up to float rounding, docs/architecture.md §4).
        s0 = self.maxpool_diff(self.conv1_5(snippet_differences(self.avg_diff(x))))
        return s0, self.resnext_layer1(s0)

    def forward(self, x: Tensor) -> Tensor:
        """(N·T, 15, H, W) normalised snippets → (N·T, feature_dim) pooled features."""
        c = CENTRE_FRAME * 3
        s0 = s1 = None
        if hasattr(self, "conv1_5"):
            s0, s1 = self.short_term(x)
        r0 = self.maxpool(self.relu(run_conv_bn(self.conv1, self.bn1, x[:, c : c + 3])))
        out = self.layer1_bak(self.fuse1(r0, s0))
        out = self.fuse2(out, s1)
        out = self.layer4_bak(self.layer3_bak(self.layer2_bak(out)))
        return self.fc(torch.flatten(self.avgpool(out), 1))


def snippet_differences(x: Tensor) -> Tensor:
    """(M, 15, H, W) snippets → (M, 12, H, W) stack [F1−F0, F2−F1, F3−F2, F4−F3] (later minus earlier)."""
    return x[:, 3:] - x[:, :-3]


class TDN(nn.Module):
    """TSN-style wrapper: per-segment logits from ``new_fc``, averaged over the T segments."""

    def __init__(self, cfg: TDNConfig) -> None:
        super().__init__()
        self.config = cfg
        self.num_segments = cfg.num_segments
        self.base_model = TDNBackbone(cfg)
        self.new_fc = nn.Linear(self.base_model.feature_dim, cfg.num_classes)

    @property
    def stages(self) -> tuple[Stage, ...]:
        """The stage table of this model (:func:`stage_table`)."""
        return stage_table(self.config)

    def check_input(self, x: Tensor) -> None:
        """Raise a ValueError that names the problem when x is not (B, T·15, H, W)."""
        t = self.num_segments
        if x.dim() != 4:
            raise ValueError(
                f"TDN expects a 4-D input (batch, {t}·{CHANNELS_PER_SEGMENT} channels, height, width); got shape {tuple(x.shape)}"
            )
        if x.shape[1] != t * CHANNELS_PER_SEGMENT:
            raise ValueError(
                f"TDN built for {t} segments expects {t * CHANNELS_PER_SEGMENT} channels "
                f"({t} segments × {FRAMES_PER_SNIPPET} frames × RGB); got {x.shape[1]}"
                + (
                    f" (that would be {x.shape[1] // CHANNELS_PER_SEGMENT} segments)"
                    if x.shape[1] % CHANNELS_PER_SEGMENT == 0
                    else ""
                )
            )
        if min(x.shape[-2:]) < 32:
            raise ValueError(
                f"frames of {tuple(x.shape[-2:])} pixels are too small; TDN needs at least 32×32"
            )

    def segment_logits(self, x: Tensor) -> Tensor:
        """(B, T·15, H, W) → (B, T, K) logits of each segment before the consensus."""
        self.check_input(x)
        b, _, h, w = x.shape
        feats = self.base_model(x.reshape(b * self.num_segments, CHANNELS_PER_SEGMENT, h, w))
        return self.new_fc(feats).view(b, self.num_segments, -1)

    def forward(self, x: Tensor) -> Tensor:
        return self.segment_logits(x).mean(dim=1)


def make_config(
    arch: str = "resnet50",
    num_segments: int = 8,
    num_classes: int = 174,
    variant: str = "tdn",
    *,
    s_tdm: bool | None = None,
    l_tdm: bool | None = None,
    shift: bool | None = None,
    width: float = 1.0,
    dropout: float = 0.5,
    ltdm_reduction: int = 16,
) -> TDNConfig:
    """Validate arguments and turn a variant name (plus optional per-module overrides) into a config."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if int(num_segments) != num_segments or num_segments < 1:
        raise ValueError(f"num_segments must be a positive integer, got {num_segments!r}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    if not 0 < width <= 4:
        raise ValueError(f"width must be in (0, 4], got {width}")
    flags = VARIANTS[variant]
    s, lt, sh = (
        flag if override is None else override
        for flag, override in zip(flags, (s_tdm, l_tdm, shift), strict=True)
    )
    return TDNConfig(
        arch=arch,
        num_segments=int(num_segments),
        num_classes=int(num_classes),
        s_tdm=s,
        l_tdm=lt,
        shift=sh,
        width=float(width),
        dropout=float(dropout),
        ltdm_reduction=int(ltdm_reduction),
        variant=variant,
    )


def build_model(
    arch: str = "resnet50",
    num_segments: int = 8,
    num_classes: int = 174,
    variant: str = "tdn",
    **options: bool | float | int | None,
) -> TDN:
    """Build an untrained TDN; nothing is ever downloaded. Options: s_tdm, l_tdm, shift, width, dropout,
    ltdm_reduction."""
    model = TDN(make_config(arch, num_segments, num_classes, variant, **options))
    init_weights(model)
    return model


@torch.no_grad()
def init_weights(model: TDN) -> None:
    """From-scratch initialisation: He-normal convs, unit BN, zero-γ last BN per residual branch."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    for m in model.modules():
        if isinstance(m, Bottleneck):
            nn.init.zeros_(m.bn3.weight)
        elif isinstance(m, BasicBlock):
            nn.init.zeros_(m.bn2.weight)
        elif hasattr(m, "reset_to_tsm"):
            m.reset_to_tsm()
    backbone = model.base_model
    if hasattr(backbone, "conv1_5"):
        # Official S-TDM init: the RGB stem kernel averaged over colour, replicated over the 12 channels.
        backbone.conv1_5[0].weight.copy_(backbone.conv1.weight.mean(1, keepdim=True).expand(-1, 12, -1, -1))
    nn.init.normal_(model.new_fc.weight, 0, 0.001)
    nn.init.zeros_(model.new_fc.bias)

"""ResNet blocks and stages as the official TDN builds them ("FBResNet": every conv has a bias).

Blocks take an optional temporal pair (L-TDM ``mse`` and ``shift``). In a Bottleneck they run after the
first 1×1 conv/BN/ReLU and before the (possibly strided) 3×3 conv, exactly where the official
``BottleneckShift`` puts them. A BasicBlock has no 1×1 reduction, so they run on the residual branch's
input, again before the strided conv, at the block's input resolution.
"""

from __future__ import annotations

from torch import Tensor, nn

from tdn.network.convbn import ConvBN, FoldingConv2d, run_conv_bn
from tdn.network.temporal import LongTermTDM, TemporalShift


def conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> tuple[FoldingConv2d, nn.BatchNorm2d]:
    """A biased conv (FBResNet style) and its BatchNorm; the block runs them with ``run_conv_bn``."""
    conv = FoldingConv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=True)
    return conv, nn.BatchNorm2d(out_ch)


def make_downsample(in_ch: int, out_ch: int, stride: int) -> ConvBN:
    return ConvBN(*conv_bn(in_ch, out_ch, 1, stride))


class Bottleneck(nn.Module):
    """1×1 → [L-TDM → shift] → 3×3 (stride) → 1×1, ×4 expansion, post-activation residual."""

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        ltdm: LongTermTDM | None = None,
        shift: TemporalShift | None = None,
    ) -> None:
        super().__init__()
        self.conv1, self.bn1 = conv_bn(inplanes, planes, 1)
        if ltdm is not None:
            self.mse = ltdm
        if shift is not None:
            self.shift = shift
        self.conv2, self.bn2 = conv_bn(planes, planes, 3, stride)
        self.conv3, self.bn3 = conv_bn(planes, planes * self.expansion, 1)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(run_conv_bn(self.conv1, self.bn1, x))
        if hasattr(self, "mse"):
            out = self.mse(out)
        if hasattr(self, "shift"):
            out = self.shift(out)
        out = self.relu(run_conv_bn(self.conv2, self.bn2, out))
        out = run_conv_bn(self.conv3, self.bn3, out)
        # In place, as torchvision: a new map here costs a full allocation and its page faults.
        out += identity
        return self.relu(out)


class BasicBlock(nn.Module):
    """[L-TDM → shift] → 3×3 (stride) → 3×3, post-activation residual (ResNet-18/34)."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        ltdm: LongTermTDM | None = None,
        shift: TemporalShift | None = None,
    ) -> None:
        super().__init__()
        if ltdm is not None:
            self.mse = ltdm
        if shift is not None:
            self.shift = shift
        self.conv1, self.bn1 = conv_bn(inplanes, planes, 3, stride)
        self.conv2, self.bn2 = conv_bn(planes, planes, 3)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = x
        if hasattr(self, "mse"):
            out = self.mse(out)
        if hasattr(self, "shift"):
            out = self.shift(out)
        out = self.relu(run_conv_bn(self.conv1, self.bn1, out))
        out = run_conv_bn(self.conv2, self.bn2, out)
        out += identity
        return self.relu(out)


Block = type[Bottleneck] | type[BasicBlock]


def make_stage(
    block: Block,
    inplanes: int,
    planes: int,
    num_blocks: int,
    stride: int,
    num_segments: int,
    ltdm: bool = False,
    shift: bool = False,
    ltdm_reduction: int = 16,
) -> nn.Sequential:
    """One ResNet stage; the first block always has a downsample branch, as in the official code."""
    blocks = []
    for i in range(num_blocks):
        in_ch = inplanes if i == 0 else planes * block.expansion
        # Bottleneck: the temporal modules see the reduced width; BasicBlock: the block input.
        t_ch = planes if block is Bottleneck else in_ch
        blocks.append(
            block(
                in_ch,
                planes,
                stride if i == 0 else 1,
                make_downsample(in_ch, planes * block.expansion, stride) if i == 0 else None,
                LongTermTDM(t_ch, num_segments, ltdm_reduction) if ltdm else None,
                TemporalShift(t_ch, num_segments) if shift else None,
            )
        )
    return nn.Sequential(*blocks)

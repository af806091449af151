"""ResNet-18/50 backbones as PASS uses them (stride 32, optional stage-1..3 maps).

Stem: ``ConstantPad2d(1)`` then ``conv7x7 stride 2 pad 2`` (3 in total, the same as torchvision's pad 3),
BN, ReLU, ``maxpool 3/2/1``, then ``layer1..layer4``. Parameter names follow torchvision (``conv1``,
``bn1``, ``layer{i}.{j}.conv1``, ``.downsample.0|1``) so weights map one to one. BatchNorm, ReLU and
max pooling are ``models.batchnorm`` / ``relu`` / ``maxpool``: Jittor's ops, with multithreaded kernels
when training on the CPU.
"""

from __future__ import annotations

import jittor as jt
from jittor import nn

from models.batchnorm import BatchNorm2d
from models.init import kaiming_init_
from models.maxpool import MaxPool2d
from models.relu import relu


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual: ``[B, in, H, W]`` -> ``[B, planes, H/stride, W/stride]``."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = BatchNorm2d(planes)
        self.downsample = downsample

    def execute(self, x: jt.Var) -> jt.Var:
        identity = x if self.downsample is None else self.downsample(x)
        out = relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (strided, v1.5) -> 1x1 with a residual: ``[B, in, H, W]`` -> ``[B, 4*planes, H/s, W/s]``."""

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        base_width: int = 64,
    ):
        width = int(planes * (base_width / 64.0))
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride)
        self.bn2 = BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = BatchNorm2d(planes * self.expansion)
        self.downsample = downsample

    def execute(self, x: jt.Var) -> jt.Var:
        identity = x if self.downsample is None else self.downsample(x)
        out = relu(self.bn1(self.conv1(x)))
        out = relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return relu(out + identity)


class ResNet(nn.Module):
    """PASS ResNet backbone: ``[B, 3, H, W]`` -> ``[B, num_features, H/32, W/32]``.

    ``width`` is the stem width (64 in ResNet-18/50; smaller for the demo). ``stage_channels[s]`` is the
    width of stage ``s`` (1..4); ``num_features = stage_channels[4]``.
    """

    output_stride = 32

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: tuple[int, ...], width: int = 64):
        self.block = block
        self.inplanes = width
        self.padding = nn.ConstantPad2d(1, 0.0)
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=2, bias=False)
        self.bn1 = BatchNorm2d(width)
        self.maxpool = MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], stride=2)
        self.stage_channels = {s: width * 2 ** (s - 1) * block.expansion for s in (1, 2, 3, 4)}
        self.num_features = self.stage_channels[4]
        kaiming_init_(self)

    def _make_layer(self, block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def execute(self, x: jt.Var, return_stages: bool = False):
        """``x [B, 3, H, W]`` -> ``[B, F, H/32, W/32]``; with ``return_stages`` also
        ``{1: c1 [B, F/8, H/4, W/4], 2: c2 [.., H/8], 3: c3 [.., H/16]}`` (the layer1..3 outputs)."""
        x = relu(self.bn1(self.conv1(self.padding(x))))
        x = self.maxpool(x)
        c1 = self.layer1(x)
        c2 = self.layer2(c1)
        c3 = self.layer3(c2)
        x = self.layer4(c3)
        if return_stages:
            return x, {1: c1, 2: c2, 3: c3}
        return x


def resnet18(width: int = 64) -> ResNet:
    """ResNet-18 (BasicBlock [2, 2, 2, 2]); 512 output channels at ``width=64``."""
    return ResNet(BasicBlock, (2, 2, 2, 2), width=width)


def resnet50(width: int = 64) -> ResNet:
    """ResNet-50 (Bottleneck [3, 4, 6, 3]); 2048 output channels at ``width=64``."""
    return ResNet(Bottleneck, (3, 4, 6, 3), width=width)

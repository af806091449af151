"""Heads of PASS / SAMPASS (spec section 2.3), sized from the backbone width ``F = num_features``.

Convolutions are Kaiming-normal (fan_out) initialised and affine BatchNorms start at weight 1, bias 0,
as PASS does for every ``Conv2d`` of its model.
"""

from __future__ import annotations

import jittor as jt
from jittor import nn

from models.batchnorm import BatchNorm2d
from models.init import classifier_init_, kaiming_init_


def l2_normalize(x: jt.Var, dim: int = 1, eps: float = 1e-12) -> jt.Var:
    """``x / max(||x||_2, eps)`` along ``dim`` (torch ``F.normalize``)."""
    norm = jt.sqrt((x * x).sum(dim=dim, keepdims=True))
    return x / norm.maximum(eps)


def conv1x1(in_channels: int, out_channels: int, bias: bool) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, bias=bias)


class ProjectionHead(nn.Module):
    """Image-level MLP: ``[B, in] -> [B, out]``.

    ``Linear(in -> hidden), BN1d, ReLU, Linear(hidden -> out), BN1d(affine=False)``; with ``hidden == 0``
    a single ``Linear(in -> out)``. ``out_features`` is the embedding width.
    """

    def __init__(self, in_features: int, hidden: int, out_features: int):
        self.out_features = out_features
        if hidden == 0:
            self.net = nn.Sequential(nn.Linear(in_features, out_features))
        else:
            self.net = nn.Sequential(
                nn.Linear(in_features, hidden),
                nn.BatchNorm1d(hidden),
                nn.ReLU(),
                nn.Linear(hidden, out_features),
                nn.BatchNorm1d(out_features, affine=False),
            )

    def execute(self, x: jt.Var) -> jt.Var:
        return self.net(x)


class Prototypes(nn.Module):
    """``K`` prototypes without bias: ``[B, feat_dim] -> [B, K]`` scores (cosines once rows are unit)."""

    def __init__(self, feat_dim: int, num_prototypes: int):
        self.weight = nn.Linear(feat_dim, num_prototypes, bias=False).weight  # [K, feat_dim]

    def normalize_weights(self) -> None:
        """Rescale each prototype (row) to unit L2 norm, in place, the prototypes staying trainable."""
        from models.losses.prototypes import normalize_prototypes

        normalize_prototypes(self.weight)

    def execute(self, x: jt.Var, detach_weights: bool = False) -> jt.Var:
        """``detach_weights``: no gradient to the prototypes (the deep-to-shallow branch)."""
        w = self.weight.detach() if detach_weights else self.weight
        return nn.matmul_transpose(x, w)


class PixelProjectionHead(nn.Module):
    """Pixel MLP of P2P: ``[B, F, h, w] -> [B, out, h, w]``.

    ``Conv1x1(F -> hidden), BN, ReLU, Conv1x1(hidden -> hidden), BN, ReLU, Conv1x1(hidden -> out),
    BN(affine=False)``, convs without bias.
    """

    def __init__(self, in_channels: int, hidden: int, out_channels: int, bias: bool = False):
        self.net = nn.Sequential(
            conv1x1(in_channels, hidden, bias),
            BatchNorm2d(hidden),
            nn.ReLU(),
            conv1x1(hidden, hidden, bias),
            BatchNorm2d(hidden),
            nn.ReLU(),
            conv1x1(hidden, out_channels, bias),
            BatchNorm2d(out_channels, affine=False),
        )
        kaiming_init_(self)

    def execute(self, x: jt.Var) -> jt.Var:
        return self.net(x)


class PixelPredictorHead(nn.Module):
    """SimSiam-style predictor on ``[B, d, h, w]``.

    ``Conv1x1(d -> d, no bias), BN, ReLU, Conv1x1(d -> d, bias)``.
    """

    def __init__(self, dim: int):
        self.net = nn.Sequential(
            conv1x1(dim, dim, False), BatchNorm2d(dim), nn.ReLU(), conv1x1(dim, dim, True)
        )
        kaiming_init_(self)

    def execute(self, x: jt.Var) -> jt.Var:
        return self.net(x)


def shallow_width(num_features: int, stage: int) -> int:
    """Width of stage ``stage`` (1..3) for deep-to-shallow heads: ``F / 2^(4 - stage)``."""
    if stage not in (1, 2, 3):
        raise ValueError(f"shallow stage must be 1, 2 or 3, got {stage}")
    return num_features // 2 ** (4 - stage)


class ShallowHead(nn.Module):
    """D2S head of one stage: ``[B, Fs, h, w]`` -> embedding ``[B, feat_dim]`` (before L2 normalisation).

    ``pixel``: ``Conv1x1(Fs -> hidden), BN, ReLU, Conv1x1(hidden -> hidden), BN, ReLU,
    Conv1x1(hidden -> Fs), BN(affine=False)`` (convs without bias, as in PASS), then global average pooling,
    then ``projection``: a :class:`ProjectionHead` ``Fs -> hidden -> feat_dim``.
    """

    def __init__(self, in_channels: int, hidden: int, feat_dim: int):
        self.pixel = PixelProjectionHead(in_channels, hidden, in_channels)
        self.projection = ProjectionHead(in_channels, hidden, feat_dim)

    def execute(self, x: jt.Var) -> jt.Var:
        return self.projection(self.pixel(x).mean(dims=(2, 3)))


class ShallowHeads(nn.Module):
    """One :class:`ShallowHead` per stage in ``stages`` (attributes ``stage1``..``stage3``).

    ``execute({s: c_s [B, F/2^(4-s), h_s, w_s]})`` -> ``{s: [B, feat_dim]}``, indexed by stage.
    """

    def __init__(self, num_features: int, stages: tuple[int, ...], hidden: int, feat_dim: int):
        self.stages = tuple(sorted(set(stages)))
        for s in self.stages:
            setattr(self, f"stage{s}", ShallowHead(shallow_width(num_features, s), hidden, feat_dim))

    def head(self, stage: int) -> ShallowHead:
        return getattr(self, f"stage{stage}")

    def execute(self, stage_maps: dict[int, jt.Var]) -> dict[int, jt.Var]:
        return {s: self.head(s)(stage_maps[s]) for s in self.stages}


class PixelAttention(nn.Module):
    """``fbg``: per-channel, per-pixel foreground attention in (0, 1): ``[B, F, h, w] -> [B, F, h, w]``.

    ``sigmoid(BN(Conv1x1(ReLU(BN(Conv1x1(x)))), affine) + threshold)``, convs with bias; ``threshold`` is
    a learnable ``[1, F, 1, 1]`` bias, initialised to 0 and saved with the other parameters.
    """

    def __init__(self, channels: int):
        self.net = nn.Sequential(
            conv1x1(channels, channels, True),
            BatchNorm2d(channels),
            nn.ReLU(),
            conv1x1(channels, channels, True),
            BatchNorm2d(channels),
        )
        self.threshold = jt.zeros((1, channels, 1, 1))
        kaiming_init_(self)

    def execute(self, x: jt.Var) -> jt.Var:
        return jt.sigmoid(self.net(x) + self.threshold)


class LastLayer(nn.Module):
    """Per-pixel classifier ``Conv1x1(F -> C+1, bias)``: ``[B, F, h, w] -> [B, C+1, h, w]``, class 0 = bg."""

    def __init__(self, in_channels: int, num_classes: int):
        self.conv = conv1x1(in_channels, num_classes + 1, True)
        classifier_init_(self.conv)

    def execute(self, x: jt.Var) -> jt.Var:
        return self.conv(x)


class ProgressiveUpsamplingHead(nn.Module):
    """SAMPASS head: ``up2(bilinear x4(up1(x)))``: ``[B, F, h, w] -> [B, C+1, 4h, 4w]``.

    ``up1 = Conv3x3(F -> hidden, bias), BN, ReLU``; ``up2 = Conv1x1(hidden -> C+1, bias)``; the x4 upsampling
    is bilinear with ``align_corners=False``. Pass ``size`` to resize the logits (bilinear) to a target.
    """

    def __init__(self, in_channels: int, num_classes: int, hidden: int = 256):
        self.up1 = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3, padding=1, bias=True), BatchNorm2d(hidden), nn.ReLU()
        )
        self.up2 = conv1x1(hidden, num_classes + 1, True)
        kaiming_init_(self)
        classifier_init_(self.up2)

    def execute(self, x: jt.Var, size: tuple[int, int] | None = None) -> jt.Var:
        x = self.up1(x)
        x = nn.interpolate(x, size=(x.shape[2] * 4, x.shape[3] * 4), mode="bilinear", align_corners=False)
        x = self.up2(x)
        if size is not None and tuple(size) != tuple(x.shape[2:]):
            x = nn.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
        return x

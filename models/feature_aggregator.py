"""SAMPASS Feature Aggregator: every ViT block's output, reduced and summed into one 512-wide map.

Spec section 2.2, with ``D`` the encoder width, ``F`` = ``out_channels`` and ``n`` blocks::

    DC_i = Conv1x1(D -> F, bias), BN, ReLU        i = 0..n-1   ("DownChannel")
    SC_i = Conv3x3(F -> F, bias), BN, ReLU        i = 0..n-2   ("Conv2D")
    Fuse = 3 x [Conv3x3(F -> F, bias), BN, ReLU]               ("FusionConv")

    x = embed(img)
    for i, blk in enumerate(blocks):
        x = blk(x); f = channels_first(x)
        i == 0:    d = DC_0(f);      s = d + SC_0(d)
        0 < i < n-1: d = DC_i(f) + s; s = d + SC_i(d)
        i == n-1:  d = DC_{n-1}(f) + s; out = Fuse(d)        (no residual around Fuse)
"""

from __future__ import annotations

import jittor as jt
from jittor import nn

from models.batchnorm import BatchNorm2d
from models.init import kaiming_init_
from models.sam_encoder import SamImageEncoder


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=True),
        BatchNorm2d(out_channels),
        nn.ReLU(),
    )


def _set_eval(module: nn.Module) -> None:
    """Eval mode for ``module`` and its children, without Jittor's ``eval()`` stop_grad bookkeeping."""
    for m in module.modules():
        m.is_train = False


class FeatureAggregator(nn.Module):
    """SAM encoder + adapter: ``[B, 3, H, W]`` -> ``[B, out_channels, H/16, W/16]`` (H, W multiples of 16).

    With ``freeze_encoder`` (the default) the encoder's parameters are ``stop_grad`` (so no optimiser
    updates them), its blocks run without building a backward graph, and it stays in eval mode even when
    this module, or a parent, is switched to training mode.
    """

    def __init__(self, encoder: SamImageEncoder, out_channels: int = 512, freeze_encoder: bool = True):
        self.encoder = encoder
        self.freeze_encoder = freeze_encoder
        self.num_features = out_channels
        self.output_stride = encoder.patch_size
        depth = len(encoder.blocks)
        if depth < 2:
            raise ValueError("the Feature Aggregator needs an encoder with at least 2 blocks")
        self.downconv = nn.ModuleList(
            [conv_bn_relu(encoder.embed_dim, out_channels, 1) for _ in range(depth)]
        )
        self.spaceconv = nn.ModuleList(
            [conv_bn_relu(out_channels, out_channels, 3) for _ in range(depth - 1)]
        )
        self.fusion = nn.Sequential(*[conv_bn_relu(out_channels, out_channels, 3) for _ in range(3)])
        for part in (self.downconv, self.spaceconv, self.fusion):
            kaiming_init_(part)
        if freeze_encoder:
            for p in encoder.parameters():
                p.stop_grad()
            _set_eval(encoder)

    def train(self):
        super().train()
        if self.freeze_encoder:
            _set_eval(self.encoder)
        return self

    def trainable_parameters(self) -> list[jt.Var]:
        """Parameters an optimiser should update (the adapter alone when the encoder is frozen)."""
        return [p for p in self.parameters() if not p.is_stop_grad()]

    def _encode(self, x: jt.Var):
        """Yield each encoder block's output as ``[B, D, h, w]``."""
        x = self.encoder.embed(x)
        for blk in self.encoder.blocks:
            x = blk(x)
            yield x.transpose(0, 3, 1, 2)

    def execute(self, img: jt.Var) -> jt.Var:
        if self.freeze_encoder and self.encoder.is_training():
            _set_eval(self.encoder)  # a parent's train() reached the encoder
        blocks = self._encode(img)
        last = len(self.downconv) - 1
        s = None
        for i in range(last + 1):
            if self.freeze_encoder:
                with jt.no_grad():
                    f = next(blocks)
            else:
                f = next(blocks)
            d = self.downconv[i](f) if i == 0 else self.downconv[i](f) + s
            if i < last:
                s = d + self.spaceconv[i](d)
        return self.fusion(d)


def input_multiple(backbone: nn.Module) -> int:
    """Input sides must be multiples of this: the ViT patch of a SAM backbone; ResNets take any size."""
    return backbone.output_stride if isinstance(backbone, FeatureAggregator) else 1

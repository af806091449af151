"""The Stage-2 network (spec 4.2, 5, 6.1): backbone + ``fbg`` pixel attention + image head + prototypes.

One pooling everywhere (decisions.md): the attention pools the **L2-normalised** up-sampled features,
in pixel-attention training and in clustering alike. Heads are sized from ``backbone.num_features``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jittor as jt
from jittor import nn

from models.heads import PixelAttention, ProjectionHead, Prototypes, l2_normalize

UPSAMPLE = 4


@dataclass
class PixelAttentionOutputs:
    """``embedding [N*B, feat_dim]`` (unit rows), ``output [N*B, K]`` in crop order, and
    ``attention [N*B, 1, 4h, 4w]`` (channel mean of ``fbg``)."""

    embedding: jt.Var
    output: jt.Var
    attention: jt.Var


class PixelAttentionNet(nn.Module):
    """Backbone and ``projection_head`` are frozen (only ``fbg`` and ``prototypes`` train).

    Frozen is not the same as eval mode: :meth:`eval_mode_modules` lists what keeps its Stage-1
    BatchNorm statistics during training (the backbone, whose input is what those statistics were
    computed on). The projection head sees attention-pooled, unit-norm features, tens of times smaller
    than Stage 1's pooled ones, so it normalises with batch statistics, as PASS and SAMPASS do
    (``model.train()`` in ``main_pixel_attention.py``).

    ``hidden_mlp``/``feat_dim``/``num_prototypes`` = 0 builds backbone + ``fbg`` only (clustering).
    """

    def __init__(self, backbone: nn.Module, hidden_mlp: int, feat_dim: int, num_prototypes: int):
        self.backbone = backbone
        width = self.backbone.num_features
        self.fbg = PixelAttention(width)
        self.projection_head = ProjectionHead(width, hidden_mlp, feat_dim) if feat_dim else None
        self.prototypes = Prototypes(feat_dim, num_prototypes) if feat_dim and num_prototypes else None

    def eval_mode_modules(self) -> list[nn.Module]:
        """Frozen modules that stay in eval mode while ``fbg`` trains (only the backbone)."""
        return [self.backbone]

    def trainable_parameters(self) -> list[jt.Var]:
        """Parameters of ``fbg`` and ``prototypes`` only (spec 4.1)."""
        params = list(self.fbg.parameters())
        if self.prototypes is not None:
            params += list(self.prototypes.parameters())
        return params

    def features(self, x: jt.Var) -> jt.Var:
        """``[B, 3, H, W]`` -> ``U_n [B, D, 4h, 4w]``: x4 bilinear up-sampled, unit-norm backbone features."""
        return self.unit_features(self.backbone_features(x))

    def backbone_features(self, x: jt.Var) -> jt.Var:
        """``[B, 3, H, W]`` -> ``[B, D, h, w]``. The backbone is frozen: no gradient is built through it,
        and in eval mode (:meth:`eval_mode_modules`) a fixed input always gives the same features."""
        with jt.no_grad():
            f = self.backbone(x)
        return f.stop_grad()

    def unit_features(self, f: jt.Var) -> jt.Var:
        """Backbone features ``[B, D, h, w]`` -> ``U_n [B, D, 4h, 4w]`` (x4 bilinear, unit norm per pixel)."""
        h, w = int(f.shape[2]), int(f.shape[3])
        up = nn.interpolate(f, size=(h * UPSAMPLE, w * UPSAMPLE), mode="bilinear", align_corners=False)
        return l2_normalize(up, dim=1)

    def attend(self, u_n: jt.Var) -> tuple[jt.Var, jt.Var]:
        """``U_n`` -> (pooled ``avgpool(U_n * fbg(U_n)) [B, D]``, attention ``mean_c fbg [B, 1, 4h, 4w]``)."""
        a = self.fbg(u_n)
        return (u_n * a).mean(dims=(2, 3)), a.mean(dim=1, keepdims=True)

    def dense(self, x: jt.Var) -> tuple[jt.Var, jt.Var]:
        """Spec 6.1: ``(U_n [B, D, 4h, 4w], attention [B, 1, 4h, 4w])``."""
        return self.dense_from_backbone(self.backbone_features(x))

    def dense_from_backbone(self, f: jt.Var) -> tuple[jt.Var, jt.Var]:
        """:meth:`dense` of backbone features already computed (``[B, D, h, w]``)."""
        u_n = self.unit_features(f)
        return u_n, self.attend(u_n)[1]

    def execute(self, crops: Sequence[jt.Var]) -> PixelAttentionOutputs:
        if self.projection_head is None or self.prototypes is None:
            raise ValueError("this PixelAttentionNet was built without heads (feat_dim or K = 0)")
        pooled, maps = [], []
        start = 0
        while start < len(crops):  # crops of one size go through the backbone together
            end = start
            while end < len(crops) and crops[end].shape[-1] == crops[start].shape[-1]:
                end += 1
            v, a = self.attend(self.features(jt.concat(list(crops[start:end]), dim=0)))
            pooled.append(v)
            maps.append(a)
            start = end
        embedding = l2_normalize(self.projection_head(jt.concat(pooled, dim=0)), dim=1)
        attention = maps[0] if len(maps) == 1 else None
        return PixelAttentionOutputs(embedding, self.prototypes(embedding), attention)

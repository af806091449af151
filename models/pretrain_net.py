"""The Stage-1 network (spec 3.2): backbone + image head + prototypes + pixel heads (+ D2S heads).

Heads are sized from the backbone's ``num_features``; nothing here reads files or a config object.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jittor as jt
from jittor import nn

from models.heads import (
    PixelPredictorHead,
    PixelProjectionHead,
    ProjectionHead,
    Prototypes,
    ShallowHeads,
    l2_normalize,
)


@dataclass
class PretrainOutputs:
    """``embedding [N*B, D]`` (unit rows) and ``output [N*B, K]`` in crop order; ``z``, ``p``
    ``[2B, D, g, g]`` on the overlap grids of crops 0 and 1; ``shallow {s: [2B, D]}`` (unit rows)."""

    embedding: jt.Var
    output: jt.Var
    z: jt.Var
    p: jt.Var
    shallow: dict[int, jt.Var]


class PretrainNet(nn.Module):
    """``execute(crops, grid_q, grid_k)`` -> :class:`PretrainOutputs`, on a built ``backbone``
    (:func:`tools.networks.build_network` makes it from ``model.arch``).

    ``crops``: list of ``[B, 3, s_v, s_v]`` in crop order (crops 0 and 1 are the P2P pair); crops of the
    same size that follow each other run through the backbone together, as SwAV does.
    """

    def __init__(
        self,
        backbone: nn.Module,
        hidden_mlp: int,
        feat_dim: int,
        num_prototypes: int,
        shallow_stages: Sequence[int] = (),
    ):
        self.backbone = backbone
        width = self.backbone.num_features
        self.shallow_stages = tuple(sorted(set(shallow_stages)))
        if self.shallow_stages and not hasattr(self.backbone, "stage_channels"):
            name = type(backbone).__name__
            raise ValueError(f"deep-to-shallow supervision needs a ResNet backbone; {name} has no stages")
        self.projection_head = ProjectionHead(width, hidden_mlp, feat_dim)
        self.prototypes = Prototypes(feat_dim, num_prototypes)
        self.projection_head_pixel = PixelProjectionHead(width, hidden_mlp, feat_dim)
        self.predictor_head_pixel = PixelPredictorHead(feat_dim)
        self.shallow = (
            ShallowHeads(width, self.shallow_stages, hidden_mlp, feat_dim) if self.shallow_stages else None
        )

    def execute(self, crops: Sequence[jt.Var], grid_q: jt.Var, grid_k: jt.Var) -> PretrainOutputs:
        b = int(crops[0].shape[0])
        pooled = []
        z = p = None
        shallow: dict[int, jt.Var] = {}
        start = 0
        while start < len(crops):
            end = start
            while end < len(crops) and crops[end].shape[-1] == crops[start].shape[-1]:
                end += 1
            x = jt.concat(list(crops[start:end]), dim=0)
            if start == 0:
                if self.shallow is not None:
                    feats, stages = self.backbone(x, return_stages=True)
                    pair = {s: stages[s][: 2 * b] for s in self.shallow_stages}
                    shallow = {s: l2_normalize(e, dim=1) for s, e in self.shallow(pair).items()}
                else:
                    feats = self.backbone(x)
                grid = jt.concat([grid_q, grid_k], dim=0)  # [2B, g, g, 2]
                pixel = self.projection_head_pixel(feats[: 2 * b])
                z = nn.grid_sample(pixel, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
                p = self.predictor_head_pixel(z)
            else:
                feats = self.backbone(x)
            pooled.append(feats.mean(dims=(2, 3)))
            start = end
        embedding = l2_normalize(self.projection_head(jt.concat(pooled, dim=0)), dim=1)
        return PretrainOutputs(embedding, self.prototypes(embedding), z, p, shallow)

"""The saliency term of pixel attention (spec 4.3, SAMPASS): BCE between the attention and MaskCut maps."""

from __future__ import annotations

import jittor as jt
from jittor import nn


def saliency_bce(attention: jt.Var, saliency: jt.Var) -> tuple[jt.Var, jt.Var]:
    """``(BCE, attention resized)``: ``attention [B, 1, h, w]`` is bilinearly resized to the saliency
    maps' ``[B, 1, H, W]`` (values in [0, 1]) and clamped to ``[1e-6, 1 - 1e-6]`` before the log."""
    resized = nn.interpolate(attention, size=tuple(saliency.shape[2:]), mode="bilinear", align_corners=False)
    a = resized.clamp(1e-6, 1 - 1e-6)
    bce = -(saliency * jt.log(a) + (1 - saliency) * jt.log(1 - a)).mean()
    return bce, resized

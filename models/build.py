"""A small backbone registry: ``create_backbone("resnet18")``; every backbone knows its width and stride.

Each backbone maps ``[B, 3, H, W]`` to ``[B, num_features, H / output_stride, W / output_stride]``.
"""

from __future__ import annotations

from collections.abc import Callable

from jittor import nn

from models.feature_aggregator import FeatureAggregator
from models.resnet import resnet18, resnet50
from models.sam_encoder import sam_tiny, sam_vit_b


def _sam_vit_b_adapter(out_channels: int = 512, freeze_encoder: bool = True, img_size: int = 1024):
    return FeatureAggregator(sam_vit_b(img_size), out_channels=out_channels, freeze_encoder=freeze_encoder)


def _sam_tiny_adapter(out_channels: int = 64, freeze_encoder: bool = True, img_size: int = 128):
    return FeatureAggregator(sam_tiny(img_size), out_channels=out_channels, freeze_encoder=freeze_encoder)


BACKBONES: dict[str, Callable[..., nn.Module]] = {
    "resnet18": resnet18,
    "resnet50": resnet50,
    "sam_vit_b_adapter": _sam_vit_b_adapter,
    "sam_tiny_adapter": _sam_tiny_adapter,
}


def create_backbone(name: str, **kwargs) -> nn.Module:
    """Build a registered backbone. Keyword arguments go to its builder:

    * ``resnet18`` / ``resnet50``: ``width`` (stem width, 64) -> 512 / 2048 features, stride 32;
    * ``sam_vit_b_adapter``: ``out_channels`` (512), ``freeze_encoder`` (True), ``img_size`` (1024);
      stride 16;
    * ``sam_tiny_adapter``: the same on the small test encoder (``out_channels`` 64, ``img_size`` 128).
    """
    try:
        builder = BACKBONES[name]
    except KeyError:
        raise ValueError(f"unknown backbone '{name}'; choose one of {', '.join(sorted(BACKBONES))}") from None
    return builder(**kwargs)

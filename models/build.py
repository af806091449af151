"""The backbone registry: one :class:`ArchSpec` per ``model.arch``, in the manner of segment-anything's
``build_sam.py`` and timm's ``create_model``. Adding a backbone is one entry here (and its module).

Each backbone maps ``[B, 3, H, W]`` to ``[B, num_features, H / output_stride, W / output_stride]``. An entry
owns which model settings its builder takes (``settings``), whether it is a SAM ViT (inputs padded to patch
multiples, optional frozen encoder with official weights) and whether it has ResNet stages (deep-to-shallow).
Nothing here reads a file or a config object: :func:`backbone_from_settings` gets the settings as keywords.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jittor import nn

from models.feature_aggregator import FeatureAggregator
from models.resnet import resnet18, resnet50
from models.sam_encoder import sam_tiny, sam_vit_b


@dataclass(frozen=True)
class ArchSpec:
    """One registered backbone.

    ``build(**kwargs)`` makes it; ``settings`` maps the model settings it takes (``model.<name>``) to
    its builder's keywords; ``num_features``/``output_stride`` describe its output at the default settings
    (the built module's own ``num_features`` is what heads are sized from); ``sam`` marks a SAM ViT
    behind the Feature Aggregator (``backbone.encoder`` takes official SAM weights);
    ``needs_weights_when_frozen``: a frozen encoder without them is refused (random frozen ViT-B features
    are useless); ``stages``: deep-to-shallow supervision can tap ResNet stages 1..3; ``test_only``: a tiny
    variant for tests.
    """

    name: str
    build: Callable[..., nn.Module]
    num_features: int
    output_stride: int
    settings: tuple[tuple[str, str], ...] = ()
    sam: bool = False
    needs_weights_when_frozen: bool = False
    stages: bool = False
    test_only: bool = False


RESNET_SETTINGS = (("width", "width"),)
SAM_SETTINGS = (("adapter_width", "out_channels"), ("freeze_encoder", "freeze_encoder"))


def _sam_adapter(encoder: Callable[[int], nn.Module], default_width: int, default_size: int):
    def build(out_channels: int = default_width, freeze_encoder: bool = True, img_size: int = default_size):
        return FeatureAggregator(encoder(img_size), out_channels=out_channels, freeze_encoder=freeze_encoder)

    return build


ARCHS: dict[str, ArchSpec] = {
    spec.name: spec
    for spec in (
        ArchSpec("resnet18", resnet18, 512, 32, settings=RESNET_SETTINGS, stages=True),
        ArchSpec("resnet50", resnet50, 2048, 32, settings=RESNET_SETTINGS, stages=True),
        ArchSpec(
            "sam_vit_b_adapter",
            _sam_adapter(sam_vit_b, 512, 1024),
            512,
            16,
            settings=SAM_SETTINGS,
            sam=True,
            needs_weights_when_frozen=True,
        ),
        # A tiny SAM variant for tests: the same code paths at a fraction of the cost (a small ResNet
        # needs no entry: ``model.width``).
        ArchSpec(
            "sam_tiny_adapter",
            _sam_adapter(sam_tiny, 64, 128),
            64,
            16,
            settings=SAM_SETTINGS,
            sam=True,
            test_only=True,
        ),
    )
}


def arch_spec(name: str) -> ArchSpec:
    """The registry entry of ``name``; an unknown name is a ``ValueError`` listing the known ones."""
    try:
        return ARCHS[name]
    except KeyError:
        known = ", ".join(n for n, s in ARCHS.items() if not s.test_only)
        raise ValueError(f"unknown model.arch {name!r}; choose one of {known}") from None


def create_backbone(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered backbone; keywords go to its builder (``resnet18``/``resnet50``: ``width``, the
    stem width, 64; SAM adapters: ``out_channels``, ``freeze_encoder``, ``img_size``)."""
    return arch_spec(name).build(**kwargs)


def backbone_from_settings(name: str, **settings: Any) -> nn.Module:
    """Build ``name`` from model settings (``model.*`` values as keywords): each entry takes only the
    settings it declares, so a ResNet ignores ``adapter_width``."""
    spec = arch_spec(name)
    return spec.build(**{keyword: settings[name] for name, keyword in spec.settings if name in settings})

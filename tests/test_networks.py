"""One network factory and one weight loader: every stage's network comes from ``build_network`` and its
weights from ``load_network_weights``; a backbone is one registry entry."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

pytest.importorskip("jittor")

import models.build as registry  # noqa: E402
from models.pixel_attention_net import PixelAttentionNet  # noqa: E402
from models.pretrain_net import PretrainNet  # noqa: E402
from models.resnet import resnet18  # noqa: E402
from models.segmenter import Segmenter  # noqa: E402
from tools.config.loader import load_config  # noqa: E402
from tools.engine.checkpoint import save_checkpoint  # noqa: E402
from tools.engine.state import model_state  # noqa: E402
from tools.errors import LussError  # noqa: E402
from tools.networks import ROLES, build_network, load_network_weights  # noqa: E402

# A ResNet-18 of stem width 16 first (arch, width), then small heads.
SMALL = [
    "model.arch=resnet18",
    "model.width=16",
    "model.hidden_mlp=16",
    "model.feat_dim=8",
    "model.num_prototypes=5",
]


def _config(*extra: str):
    return load_config("demo", [*SMALL, *extra])


def test_each_role_builds_its_network_from_the_registry_entry():
    config = _config("pretrain.shallow_stages=[3]")
    kinds = {
        "pretrain": PretrainNet,
        "attention": PixelAttentionNet,
        "attention_features": PixelAttentionNet,
        "segmenter": Segmenter,
    }
    assert set(kinds) == set(ROLES)
    for role, kind in kinds.items():
        net = build_network(config, role, num_classes=3)
        assert isinstance(net, kind)
        assert net.backbone.num_features == 8 * 16  # stage 4 of a ResNet-18 of stem width 16
    assert build_network(config, "attention_features").prototypes is None


def test_a_new_backbone_is_one_registry_entry(monkeypatch):
    spec = registry.ArchSpec("resnet18_w8", lambda: resnet18(width=8), 64, 32, stages=True, test_only=True)
    monkeypatch.setitem(registry.ARCHS, spec.name, spec)
    config = load_config("demo", ["model.arch=resnet18_w8", *SMALL[2:]])
    for role in ROLES:
        assert build_network(config, role, num_classes=2).backbone.num_features == 64


def test_unknown_arch_and_role_name_the_choices():
    with pytest.raises(LussError, match="resnet18.*resnet50.*sam_vit_b_adapter"):
        build_network(load_config("demo", ["model.arch=vit_h"]), "pretrain")
    with pytest.raises(LussError, match="attention_features"):
        build_network(_config(), "nothing")


def test_weights_follow_the_rule_of_their_source(tmp_path):
    config = _config()
    stage_one = build_network(config, "pretrain")
    path = tmp_path / "pretrain.pkl"
    state = model_state(stage_one)
    save_checkpoint(path, {"model": state})

    segmenter = build_network(config, "segmenter", num_classes=3)
    load_network_weights(segmenter, "pretrain->segmenter", path)
    got = model_state(segmenter.backbone)
    assert all(np.array_equal(got[k], state[f"backbone.{k}"]) for k in got)

    attention = build_network(config, "attention")  # Stage 1 has no fbg: it keeps its initialisation
    load_network_weights(attention, "pretrain->attention", path)
    got = model_state(attention)
    assert np.array_equal(got["prototypes.weight"], state["prototypes.weight"])

    other = build_network(load_config("demo", SMALL[:2]), "segmenter", num_classes=3)  # other feat sizes
    with pytest.raises(LussError, match="pretrain.pkl"):
        load_network_weights(
            build_network(_config("model.feat_dim=4"), "attention"), "pretrain->attention", path
        )
    load_network_weights(other, "pretrain->segmenter", path)  # the backbone alone fits

    with pytest.raises(LussError, match="luss pretrain --run RUN"):
        load_network_weights(segmenter, "pretrain->segmenter", tmp_path / "missing.pkl")
    with pytest.raises(LussError, match="unknown weight source"):
        load_network_weights(segmenter, "nothing", path)


def test_registry_entries_describe_what_they_build():
    for spec in registry.ARCHS.values():
        if spec.name == "sam_vit_b_adapter":
            continue  # ViT-B: 90 M parameters, covered lazily by test_heads
        net = registry.backbone_from_settings(spec.name, adapter_width=spec.num_features, freeze_encoder=True)
        assert (net.num_features, net.output_stride) == (spec.num_features, spec.output_stride)
        assert hasattr(net, "stage_channels") == spec.stages
        assert hasattr(net, "encoder") == spec.sam
    assert dataclasses.is_dataclass(registry.ArchSpec)


def test_model_width_sets_the_resnet_width_and_every_head_follows():
    config = load_config("demo", ["model.width=8", "model.hidden_mlp=16", "model.feat_dim=8"])
    net = build_network(config, "pretrain")
    assert net.backbone.num_features == 64  # 8 * 2**3 at stage 4
    import jittor as jt

    out = net.backbone(jt.randn(1, 3, 64, 64))
    assert tuple(out.shape) == (1, 64, 2, 2)
    segmenter = build_network(config, "segmenter", num_classes=3)
    assert segmenter.backbone.num_features == 64

"""Heads are sized from the backbone width and compute what spec section 2.3 says."""

from __future__ import annotations

import jittor as jt
import numpy as np
import pytest
from jittor import nn

from models.build import create_backbone
from models.heads import (
    LastLayer,
    PixelAttention,
    PixelPredictorHead,
    PixelProjectionHead,
    ProgressiveUpsamplingHead,
    ProjectionHead,
    Prototypes,
    ShallowHeads,
    shallow_width,
)

pytestmark = pytest.mark.jittor


def randn(*shape) -> jt.Var:
    return jt.array(np.random.default_rng(0).standard_normal(shape).astype(np.float32))


def test_projection_head_layers_and_single_linear_variant():
    head = ProjectionHead(32, 16, 8)
    kinds = [nn.Linear, nn.BatchNorm, nn.ReLU, nn.Linear, nn.BatchNorm]
    assert len(head.net) == 5 and all(isinstance(m, k) for m, k in zip(head.net, kinds, strict=False))
    assert not head.net[4].affine
    assert head(randn(4, 32)).shape == (4, 8)
    single = ProjectionHead(32, 0, 8)
    assert len(single.net) == 1 and single(randn(4, 32)).shape == (4, 8)


def test_prototypes_normalise_rows_and_can_be_detached():
    protos = Prototypes(8, 5)
    protos.normalize_weights()
    np.testing.assert_allclose(np.linalg.norm(protos.weight.numpy(), axis=1), 1.0, atol=1e-6)
    assert not protos.weight.is_stop_grad()  # jt.no_grad() + assign would have frozen them
    x = randn(3, 8)
    np.testing.assert_allclose(protos(x).numpy(), x.numpy() @ protos.weight.numpy().T, atol=1e-5)
    (g,) = jt.grad(protos(x, detach_weights=True).sum() + 0 * protos.weight.sum(), [protos.weight])
    assert np.all(g.numpy() == 0)


def test_pixel_heads_keep_the_grid():
    proj = PixelProjectionHead(32, 16, 8)
    assert all(m.bias is None for m in proj.net if isinstance(m, nn.Conv2d))
    z = proj(randn(2, 32, 7, 7))
    assert z.shape == (2, 8, 7, 7)
    pred = PixelPredictorHead(8)
    assert pred.net[0].bias is None and pred.net[3].bias is not None
    assert pred(z).shape == (2, 8, 7, 7)


@pytest.mark.parametrize(
    ("features", "widths"), [(512, {1: 64, 2: 128, 3: 256}), (2048, {1: 256, 2: 512, 3: 1024})]
)
def test_shallow_widths_are_f_over_two_to_the_four_minus_stage(features, widths):
    assert {s: shallow_width(features, s) for s in (1, 2, 3)} == widths


def test_shallow_heads_embed_each_stage_map_of_a_resnet():
    net = create_backbone("resnet18", width=16)
    _, stages = net(randn(2, 3, 64, 64), return_stages=True)
    heads = ShallowHeads(net.num_features, stages=(3, 1), hidden=16, feat_dim=8)
    assert heads.stages == (1, 3)
    assert heads.head(1).pixel.net[0].in_channels == net.stage_channels[1]
    out = heads(stages)
    assert set(out) == {1, 3} and all(v.shape == (2, 8) for v in out.values())


def test_pixel_attention_threshold_is_a_saved_learnable_bias():
    fbg = PixelAttention(16)
    assert "threshold" in fbg.state_dict() and fbg.threshold.shape == (1, 16, 1, 1)
    assert np.all(fbg.threshold.numpy() == 0)
    assert any(p is fbg.threshold for p in fbg.parameters()) and not fbg.threshold.is_stop_grad()
    fbg.eval()
    a = fbg(randn(2, 16, 5, 5))
    assert a.shape == (2, 16, 5, 5) and a.numpy().min() > 0 and a.numpy().max() < 1
    assert fbg.net[0].bias is not None and fbg.net[4].affine
    fbg.threshold.assign(jt.full((1, 16, 1, 1), 30.0))
    assert fbg(randn(2, 16, 5, 5)).numpy().min() > 0.99


def test_last_layer_has_a_background_class():
    assert LastLayer(32, 50)(randn(1, 32, 4, 4)).shape == (1, 51, 4, 4)


def test_progressive_upsampling_is_conv_then_x4_bilinear_then_conv():
    head = ProgressiveUpsamplingHead(32, 10)
    head.eval()
    x = randn(1, 32, 4, 6)
    out = head(x)
    assert out.shape == (1, 11, 16, 24)
    expected = head.up2(nn.interpolate(head.up1(x), size=(16, 24), mode="bilinear", align_corners=False))
    np.testing.assert_allclose(out.numpy(), expected.numpy(), atol=1e-5)
    assert head(x, size=(50, 70)).shape == (1, 11, 50, 70)


@pytest.mark.parametrize(
    ("name", "kwargs", "features", "stride"),
    [
        ("resnet18", {}, 512, 32),
        ("resnet50", {}, 2048, 32),
        ("sam_vit_b_adapter", {}, 512, 16),
        ("sam_tiny_adapter", {"out_channels": 48}, 48, 16),
    ],
)
def test_registry_backbones_know_their_width_and_stride(name, kwargs, features, stride):
    net = create_backbone(name, **kwargs)  # lazily initialised: building ViT-B computes nothing
    assert (net.num_features, net.output_stride) == (features, stride)
    assert PixelAttention(net.num_features).threshold.shape[1] == features


def test_heads_on_the_tiny_adapter():
    net = create_backbone("sam_tiny_adapter")
    feats = net(randn(2, 3, 64, 64))
    assert feats.shape == (2, net.num_features, 4, 4)
    emb = ProjectionHead(net.num_features, 32, 16)(feats.mean(dims=(2, 3)))
    assert emb.shape == (2, 16)
    assert ProgressiveUpsamplingHead(net.num_features, 5)(feats).shape == (2, 6, 16, 16)


def test_unknown_backbone_names_the_choices():
    with pytest.raises(ValueError, match="resnet18"):
        create_backbone("vit_h")


@pytest.mark.parametrize("head", ["last_layer", "progressive"])
def test_classifier_starts_near_uniform_on_large_features(head):
    """Backbone features of a few units must not give a first cross-entropy of tens (issue: CE ~120)."""
    jt.set_global_seed(0)
    classes = 8
    module = LastLayer(512, classes) if head == "last_layer" else ProgressiveUpsamplingHead(512, classes)
    module.eval()
    x = jt.array(np.abs(np.random.default_rng(0).normal(0, 5, (2, 512, 3, 3))).astype(np.float32))
    logits = module(x)
    target = jt.zeros((2,) + tuple(logits.shape[2:]), dtype="int32")
    ce = float(nn.cross_entropy_loss(logits, target).item())
    assert abs(ce - np.log(classes + 1)) < 0.5

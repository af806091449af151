"""The Feature Aggregator follows spec section 2.2 and keeps a frozen encoder frozen and in eval mode."""

from __future__ import annotations

import jittor as jt
import numpy as np
import pytest
from jittor import nn

from models.feature_aggregator import FeatureAggregator
from models.sam_encoder import sam_tiny, sam_vit_b

pytestmark = pytest.mark.jittor


def tiny_adapter(freeze: bool = True, width: int = 32) -> FeatureAggregator:
    jt.set_global_seed(0)
    return FeatureAggregator(sam_tiny(), out_channels=width, freeze_encoder=freeze)


def image(h: int = 64, w: int = 96, batch: int = 2) -> jt.Var:
    return jt.array(np.random.default_rng(0).standard_normal((batch, 3, h, w)).astype(np.float32))


def test_output_is_width_by_token_grid():
    fa = tiny_adapter()
    assert (fa.num_features, fa.output_stride) == (32, 16)
    assert fa(image(64, 96)).shape == (2, 32, 4, 6)
    assert fa(image(128, 128, batch=1)).shape == (1, 32, 8, 8)


def test_forward_is_the_spec_recurrence():
    """DC_0, then d = DC_i(f_i) + s and s = d + SC_i(d), the last block's d goes through Fuse only."""
    fa = tiny_adapter()
    fa.eval()
    x = image()
    tokens = fa.encoder.embed(x)
    feats = []
    for blk in fa.encoder.blocks:
        tokens = blk(tokens)
        feats.append(tokens.transpose(0, 3, 1, 2))
    d = fa.downconv[0](feats[0])
    s = d + fa.spaceconv[0](d)
    for i in (1, 2):
        d = fa.downconv[i](feats[i]) + s
        s = d + fa.spaceconv[i](d)
    expected = fa.fusion(fa.downconv[3](feats[3]) + s)
    np.testing.assert_allclose(fa(x).numpy(), expected.numpy(), atol=1e-5)
    assert (len(fa.downconv), len(fa.spaceconv), len(fa.fusion)) == (4, 3, 3)


def test_frozen_encoder_gets_no_updates_and_the_adapter_does():
    fa = tiny_adapter()
    fa.train()
    assert all(p.is_stop_grad() for p in fa.encoder.parameters())
    trainable = {id(p) for p in fa.trainable_parameters()}
    assert not trainable & {id(p) for p in fa.encoder.parameters()}
    encoder_before = {k: v.numpy().copy() for k, v in fa.encoder.state_dict().items()}
    adapter_before = fa.downconv[0][0].weight.numpy().copy()
    opt = nn.SGD(fa.parameters(), lr=0.1, momentum=0.9)
    opt.step((fa(image()) ** 2).mean())
    for k, v in fa.encoder.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), encoder_before[k], err_msg=k)
    assert not np.allclose(fa.downconv[0][0].weight.numpy(), adapter_before)


def test_frozen_encoder_stays_in_eval_mode_under_a_parent_train():
    class Parent(nn.Module):
        def __init__(self):
            self.backbone = tiny_adapter()

        def execute(self, x):
            return self.backbone(x)

    parent = Parent()
    parent.train()  # Jittor sets is_train on every sub-module, the encoder included
    parent(image())
    assert not any(m.is_training() for m in parent.backbone.encoder.modules())
    assert parent.backbone.downconv[0][1].is_training()  # the adapter's BN does train
    parent.backbone.train()
    assert not parent.backbone.encoder.is_training()


def test_unfrozen_encoder_is_trainable():
    fa = tiny_adapter(freeze=False)
    fa.train()
    assert fa.encoder.is_training()
    grads = jt.grad(
        (fa(image()) ** 2).mean(), [fa.encoder.patch_embed.proj.weight, fa.encoder.blocks[0].attn.qkv.weight]
    )
    assert all(np.abs(g.numpy()).sum() > 0 for g in grads)


def test_sam_vit_b_adapter_has_the_logged_parameter_counts():
    """DownChannel ~ 4.74 M, SpaceConv ~ 25.97 M, Fusion ~ 7.08 M (BN running statistics excluded)."""
    fa = FeatureAggregator(sam_vit_b())  # Jittor initialises lazily: nothing large is computed here

    def count(module) -> int:
        return sum(int(np.prod(v.shape)) for k, v in module.state_dict().items() if "running_" not in k)

    assert (count(fa.downconv), count(fa.spaceconv), count(fa.fusion)) == (4_737_024, 25_969_152, 7_082_496)
    assert fa.num_features == 512

"""MaskCut on ReLU features needs them centred: raw non-negative features link every patch pair."""

import numpy as np
import pytest

jt = pytest.importorskip("jittor")

from tools.clustering.maskcut_stage import centred  # noqa: E402
from tools.clustering.ncut import affinity_matrix, saliency_map  # noqa: E402


def relu_scene(seed=0):
    """``[8, 12, 12]`` non-negative features: a 5 x 5 object on a background, both positive codes."""
    rng = np.random.default_rng(seed)
    obj = np.zeros((12, 12), bool)
    obj[3:8, 4:9] = True
    bg_code, fg_code = rng.uniform(0.5, 1.0, 8), rng.uniform(0.5, 1.0, 8)
    fg_code[:4] += 0.8  # the object differs, but every cosine stays high
    f = np.where(obj[None], fg_code[:, None, None], bg_code[:, None, None])
    f = np.maximum(f + rng.normal(0, 0.05, f.shape), 0).astype(np.float32)
    return f, obj


def test_raw_relu_features_link_every_pair_centred_ones_find_the_object():
    f, obj = relu_scene()
    assert (affinity_matrix(f.reshape(8, -1), 0.6) == 1).all()  # tau cannot separate anything
    extract = centred(lambda x: x)
    c = extract(jt.array(f[None])).numpy()[0]
    np.testing.assert_allclose(c.reshape(8, -1).mean(axis=1), 0, atol=1e-5)
    mask = saliency_map(c, num_masks=1, tau=0.0) > 0
    inter, union = (mask & obj).sum(), (mask | obj).sum()
    assert inter / union > 0.9


@pytest.mark.parametrize("stage, stride, channels", [(4, 32, 8 * 16), (3, 16, 4 * 16)])
def test_saliency_stage_picks_the_resnet_stage_maskcut_cuts(tmp_path, stage, stride, channels):
    """``cluster.saliency.stage``: stage 3 gives stride-16 features of layer3's width, centred per image."""
    from tests.test_cluster_stage import fake_stage_one
    from tools.clustering.maskcut_stage import stage_one_extractor
    from tools.config.loader import load_config
    from tools.run_layout import RunLayout

    config = load_config("demo", ["model.width=16", f"cluster.saliency.stage={stage}"])
    layout = RunLayout.at(tmp_path / "run")
    fake_stage_one(config, layout.final_checkpoint("pretrain"))
    extract, got_stride, info = stage_one_extractor(config, layout)
    assert (got_stride, info["stage"]) == (stride, stage)
    x = np.random.default_rng(0).normal(size=(1, 3, 64, 96)).astype(np.float32)
    f = extract(jt.array(x)).numpy()
    assert f.shape == (1, channels, 64 // stride, 96 // stride)
    np.testing.assert_allclose(f.mean(axis=(2, 3)), 0, atol=1e-4)

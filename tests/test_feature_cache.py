"""Pixel attention keeps the frozen backbone's features of the saliency BCE's fixed images (the cache)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tools.stages.feature_cache import FrozenFeatureCache


def _rows(keys, dim=3):
    """A stand-in network: the features of sample ``k`` are ``k`` everywhere."""
    return np.stack([np.full((dim, 2, 2), float(k), np.float32) for k in keys])


def test_cache_serves_kept_rows_and_computes_only_the_missing_ones():
    cache = FrozenFeatureCache(budget_mb=1)
    asked: list[list[int]] = []

    def compute_for(indices):
        def compute(positions):
            asked.append([indices[p] for p in positions])
            return _rows([indices[p] for p in positions])

        return compute

    first = [4, 7, 1]
    np.testing.assert_array_equal(cache.features(first, compute_for(first)), _rows(first))
    mixed = [7, 9, 4, 2]
    np.testing.assert_array_equal(cache.features(mixed, compute_for(mixed)), _rows(mixed))
    assert asked == [[4, 7, 1], [9, 2]]
    assert len(cache) == 5
    assert (cache.hits, cache.misses) == (2, 5)
    again = [1, 2, 4, 7, 9]
    np.testing.assert_array_equal(cache.features(again, compute_for(again)), _rows(again))
    assert len(asked) == 2  # every row was kept: nothing computed
    assert (cache.hits, cache.misses) == (7, 5)
    assert cache.summary()["hit_rate"] == round(7 / 12, 4)


def test_cache_keeps_nothing_past_its_budget():
    row_bytes = _rows([0]).nbytes
    cache = FrozenFeatureCache(budget_mb=2.5 * row_bytes / 2**20)  # room for two rows
    keys = [0, 1, 2, 3]
    out = cache.features(keys, lambda positions: _rows([keys[p] for p in positions]))
    np.testing.assert_array_equal(out, _rows(keys))
    assert len(cache) == 2 and cache.bytes == 2 * row_bytes
    off = FrozenFeatureCache(budget_mb=0)
    off.features(keys, lambda positions: _rows([keys[p] for p in positions]))
    assert len(off) == 0
    with pytest.raises(ValueError, match="budget_mb"):
        FrozenFeatureCache(budget_mb=-1)


def test_cache_refuses_a_compute_that_drops_rows():
    cache = FrozenFeatureCache(budget_mb=1)
    with pytest.raises(ValueError, match="2 missing"):
        cache.features([0, 1], lambda positions: _rows([0]))


def test_cached_pixel_attention_trains_as_the_uncached_one(tmp_path):
    """Two epochs of pixel attention with the saliency BCE: the second epoch takes every whole image's
    backbone features from the cache, and the trained ``fbg`` is the one recomputing them gives."""
    pytest.importorskip("jittor")
    from test_cluster_stage import fake_stage_one, tiny_config

    from tools.data.demo import DemoSpec, generate_demo_dataset
    from tools.engine.checkpoint import load_checkpoint
    from tools.run_layout import RunLayout
    from tools.stages.cluster import run_cluster

    spec = DemoSpec(classes=2, train_per_class=4, val_per_class=0, test_per_class=0, size=40)
    data = generate_demo_dataset(tmp_path / "data", spec, progress=False)
    stage_one = tmp_path / "stage-one.pkl"
    fake_stage_one(tiny_config(), stage_one)  # random weights: both runs start from this one
    trained = {}
    for budget in (0.0, 64.0):
        config = tiny_config()
        config.cluster.saliency.image_size = 96
        config.pixel_attention.saliency_weight = 0.9
        config.pixel_attention.saliency_image_size = 32
        config.pixel_attention.loop.epochs = 2
        config.pixel_attention.feature_cache_mb = budget
        layout = RunLayout.at(tmp_path / f"run-{budget}")
        layout.final_checkpoint("pretrain").parent.mkdir(parents=True)
        shutil.copy(stage_one, layout.final_checkpoint("pretrain"))
        run_cluster(config, data, layout.root, steps=["saliency", "attention"], say=lambda m: None)
        rows = [json.loads(line) for line in (layout.pixel_attention_dir() / "metrics.jsonl").open()]
        hit_rates = [r["feature_cache_hit_rate"] for r in rows if "feature_cache_hit_rate" in r]
        assert hit_rates[-1] == (0.5 if budget else 0.0)  # epoch 2 of 2 served from the cache
        state = load_checkpoint(layout.pixel_attention_dir() / "checkpoints" / "final.pkl")["model"]
        trained[budget] = {k: np.asarray(v) for k, v in state.items() if k.startswith("fbg.")}
    assert trained[0.0].keys() == trained[64.0].keys() and trained[0.0]
    for key, value in trained[0.0].items():
        np.testing.assert_allclose(trained[64.0][key], value, rtol=1e-5, atol=1e-6, err_msg=key)

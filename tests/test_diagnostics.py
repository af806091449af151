"""The learning diagnostics tell collapse, hedging and spread apart (values, not just shapes)."""

import numpy as np
import pytest

jt = pytest.importorskip("jittor")

from models.diagnostics import attention_diagnostics, embedding_diagnostics  # noqa: E402


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def values(d):
    return {k: float(v.item()) for k, v in d.items()}


def test_spread_embeddings_and_peaked_scores():
    rng = np.random.default_rng(0)
    emb = unit(rng.standard_normal((512, 32))).astype(np.float32)
    protos = unit(rng.standard_normal((16, 32))).astype(np.float32)
    d = values(embedding_diagnostics(jt.array(emb), jt.array(emb @ protos.T)))
    assert d["emb_spread"] == pytest.approx(1.0, abs=0.05)
    assert d["score_spread"] > 0.1
    assert d["protos_used"] == 1.0


def test_collapse_and_hedging_read_zero():
    rng = np.random.default_rng(1)
    one = unit(rng.standard_normal((1, 32))).astype(np.float32)
    emb = np.repeat(one, 64, axis=0)
    scores = np.full((64, 16), 0.25, np.float32)
    scores[:, 3] += 1e-3  # every image picks prototype 3
    d = values(embedding_diagnostics(jt.array(emb), jt.array(scores)))
    assert d["emb_spread"] < 1e-3
    assert d["score_spread"] < 1e-3
    assert d["protos_used"] == pytest.approx(1 / 16)


def test_attention_foreground_and_saliency_iou():
    a = np.zeros((2, 1, 4, 4), np.float32)
    a[:, :, :2] = 0.9  # top half attended
    sal = np.zeros_like(a)
    sal[:, :, :, :2] = 1.0  # left half salient
    d = values(attention_diagnostics(jt.array(a), jt.array(sal)))
    assert d["attn_fg"] == pytest.approx(0.5)
    assert d["attn_mean"] == pytest.approx(0.45)
    assert d["attn_sal_iou"] == pytest.approx(1 / 3, abs=1e-4)
    assert "attn_sal_iou" not in attention_diagnostics(jt.array(a))

"""Deep-to-shallow supervision (spec 3.3): detached prototypes, views indexed per stage."""

from __future__ import annotations

import numpy as np
import pytest

jt = pytest.importorskip("jittor")

from models.losses.d2s import d2s_loss  # noqa: E402

pytestmark = pytest.mark.jittor


def _inputs(b=3, d=4, k=5, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.dirichlet(np.ones(k), size=(2, b)).astype(np.float32)
    emb = rng.normal(size=(2 * b, d)).astype(np.float32)
    w = rng.normal(size=(k, d)).astype(np.float32)
    return {0: jt.array(q[0]), 1: jt.array(q[1])}, emb, w


def test_gradient_reaches_shallow_embedding_but_not_prototypes():
    codes, emb, w = _inputs()
    emb_v, w_v = jt.array(emb), jt.array(w)
    losses = d2s_loss(codes, {3: emb_v}, w_v, batch_size_local=3, temperature=0.1)
    g_emb, g_w = jt.grad(losses[3], [emb_v, w_v])
    assert np.abs(g_emb.numpy()).sum() > 0
    assert not g_w.numpy().any()


def test_codes_of_one_crop_supervise_the_other_crop():
    codes, emb, w = _inputs()
    b, t = 3, 0.1
    loss = d2s_loss(codes, {2: jt.array(emb)}, jt.array(w), b, t)[2].item()
    logits = emb @ w.T / t
    logits -= logits.max(1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    q0, q1 = codes[0].numpy(), codes[1].numpy()
    expected = 0.5 * (-(q0 * log_p[b:]).sum(1).mean() - (q1 * log_p[:b]).sum(1).mean())
    assert loss == pytest.approx(expected, rel=1e-5)


def test_each_stage_uses_its_own_views():
    codes, emb, w = _inputs()
    other = emb[::-1].copy()
    losses = d2s_loss(codes, {1: jt.array(emb), 3: jt.array(other)}, jt.array(w), 3, 0.1)
    alone = d2s_loss(codes, {3: jt.array(other)}, jt.array(w), 3, 0.1)
    assert losses[3].item() == pytest.approx(alone[3].item(), rel=1e-6)
    assert losses[1].item() != pytest.approx(losses[3].item())

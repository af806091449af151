"""SwAV swapped prediction and its queue (spec 3.3)."""

from __future__ import annotations

import numpy as np
import pytest

jt = pytest.importorskip("jittor")

from models.losses.sinkhorn import sinkhorn_knopp  # noqa: E402
from models.losses.swav import SwAVQueue, swav_codes, swav_loss  # noqa: E402

pytestmark = pytest.mark.jittor


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def _batch(b=4, n=3, d=6, k=5, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(k, d)).astype(np.float32)
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    emb = rng.normal(size=(n * b, d)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return emb, emb @ w.T, w


def test_loss_matches_hand_computation_without_queue():
    b, n, t = 4, 3, 0.1
    emb, out, w = _batch(b=b, n=n)
    loss = swav_loss(
        jt.array(emb), jt.array(out), jt.array(w), b, [2, 1], [0, 1], t, 0.05, 3, queue=None
    ).item()
    expected = 0.0
    for c in (0, 1):
        q = sinkhorn_knopp(jt.array(out[c * b : (c + 1) * b])).numpy()
        views = [v for v in range(n) if v != c]
        expected += sum(-(q * _log_softmax(out[v * b : (v + 1) * b] / t)).sum(1).mean() for v in views) / (
            n - 1
        )
    assert loss == pytest.approx(expected / 2, rel=1e-5)


def test_uniform_codes_give_log_k():
    # Equal scores everywhere: codes are uniform and every prediction is uniform, so the loss is log K.
    b, k = 4, 5
    out = np.zeros((2 * b, k), np.float32)
    emb = np.zeros((2 * b, 3), np.float32)
    w = np.ones((k, 3), np.float32)
    loss = swav_loss(jt.array(emb), jt.array(out), jt.array(w), b, 2, [0, 1], 0.1, 0.05, 3, None).item()
    assert loss == pytest.approx(np.log(k), rel=1e-6)


def test_queue_fills_then_is_used():
    b, n = 4, 2
    queue = SwAVQueue(num_assigned=2, length=8, feat_dim=6)
    emb1, out1, w = _batch(b=b, n=n, seed=1)
    emb2, out2, _ = _batch(b=b, n=n, seed=2)
    emb3, out3, _ = _batch(b=b, n=n, seed=3)
    args = (jt.array(w), b, [0, 1], 0.05, 3)
    swav_codes(jt.array(emb1), jt.array(out1), *args, queue=queue)
    assert not queue.in_use
    np.testing.assert_allclose(queue.rows[0].numpy()[:b], emb1[:b])
    np.testing.assert_allclose(queue.rows[1].numpy()[:b], emb1[b:])
    assert not queue.rows[0].numpy()[b:].any()
    swav_codes(jt.array(emb2), jt.array(out2), *args, queue=queue)
    # Newest first, the previous batch shifted down by B rows.
    np.testing.assert_allclose(queue.rows[0].numpy(), np.concatenate([emb2[:b], emb1[:b]]))
    codes = swav_codes(jt.array(emb3), jt.array(out3), *args, queue=queue)
    assert queue.in_use
    # The codes of crop 0 came from Sinkhorn on [queue (before the shift) ; batch].
    scores = np.concatenate([np.concatenate([emb2[:b], emb1[:b]]) @ w.T, out3[:b]])
    expected = sinkhorn_knopp(jt.array(scores)).numpy()[-b:]
    np.testing.assert_allclose(codes[0].numpy(), expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(queue.rows[0].numpy(), np.concatenate([emb3[:b], emb2[:b]]))


def test_queue_state_round_trip():
    queue = SwAVQueue(2, 8, 6)
    emb, _, _ = _batch(b=4, n=2)
    queue.push(0, jt.array(emb[:4]))
    queue.in_use = True
    state = queue.state_dict()
    restored = SwAVQueue(2, 8, 6)
    restored.load_state_dict(state)
    assert restored.in_use
    for a, r in zip(queue.rows, restored.rows, strict=True):
        np.testing.assert_array_equal(a.numpy(), r.numpy())
    with pytest.raises(ValueError, match="queue_length"):
        SwAVQueue(2, 12, 6).load_state_dict(state)


def test_local_length_rounds_to_the_per_rank_batch():
    assert SwAVQueue.local_length(2560, 4, 16) == 640
    assert SwAVQueue.local_length(2048, 4, 24) == 504
    assert SwAVQueue.starts_at(15, 2048, 15) and not SwAVQueue.starts_at(14, 2048, 15)
    assert not SwAVQueue.starts_at(100, 0, 15)


def _train_toy_swav(view_noise: float, iterations: int = 120) -> float:
    """SwAV on 8 well-separated clusters seen through two noisy views; mean loss of the last 20 steps."""
    from models.heads import ProjectionHead, Prototypes, l2_normalize
    from models.losses.prototypes import normalize_prototypes
    from tools.config.schema import OptimConfig
    from tools.engine.optimizer import SGDLarc

    jt.set_global_seed(0)
    rng = np.random.default_rng(0)
    classes, width, dim, k, b = 8, 32, 32, 16, 32
    centres = rng.normal(size=(classes, width)).astype(np.float32)
    head, prototypes = ProjectionHead(width, 64, dim), Prototypes(dim, k)
    optimizer = SGDLarc([*head.parameters(), *prototypes.parameters()], OptimConfig())
    losses = []
    for _ in range(iterations):
        normalize_prototypes(prototypes.weight)
        x = centres[rng.integers(0, classes, b)]
        views = [x + view_noise * rng.normal(size=x.shape).astype(np.float32) for _ in range(2)]
        embedding = l2_normalize(head(jt.array(np.concatenate(views))), dim=1)
        output = prototypes(embedding)
        loss = swav_loss(embedding, output, prototypes.weight, b, 2, [0, 1], 0.1, 0.05, 3, None)
        optimizer.step(loss, 0.3)
        losses.append(loss.item())
    return float(np.mean(losses[-20:]))


def test_swapped_prediction_learns_when_views_agree_and_hedges_at_log_k_when_they_cannot():
    # Views that share their cluster: the loss ends far below ln K (the gradient path works).
    assert _train_toy_swav(view_noise=0.3) < np.log(16) - 1.0
    # Views drowned in noise cannot be matched: the best the network can do is predict uniformly, and
    # the loss settles at ln K. This is what full-strength colour jitter did to the demo (see demo.yaml).
    assert abs(_train_toy_swav(view_noise=6.0) - np.log(16)) < 0.1

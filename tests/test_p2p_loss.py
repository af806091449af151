"""P2P pixel alignment with non-overlapping pairs masked out (spec 3.3, 13.3 item 10)."""

from __future__ import annotations

import numpy as np
import pytest

jt = pytest.importorskip("jittor")

from models.losses.p2p import p2p_loss  # noqa: E402

pytestmark = pytest.mark.jittor


def _features(b=3, c=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(2 * b, c, 7, 7)).astype(np.float32)


def test_identical_prediction_and_target_give_minus_one():
    z = _features()
    swapped = np.concatenate([z[3:], z[:3]])  # p1 = z2 and p2 = z1
    loss = p2p_loss(jt.array(z), jt.array(swapped), jt.array([1, 1, 1])).item()
    assert loss == pytest.approx(-1.0, abs=1e-6)


def test_invalid_pairs_do_not_change_the_loss():
    z, p = _features(seed=1), _features(seed=2)
    valid = jt.array([True, False, True])
    base = p2p_loss(jt.array(z), jt.array(p), valid).item()
    z2, p2 = z.copy(), p.copy()
    for rows in (1, 4):  # both crops of pair 1
        z2[rows] = 0.0  # what grid_sample returns outside the image
        p2[rows] = 123.0
    assert p2p_loss(jt.array(z2), jt.array(p2), valid).item() == pytest.approx(base, rel=1e-6)


def test_mean_is_over_valid_pairs_only():
    z, p = _features(seed=3), _features(seed=4)
    one = p2p_loss(jt.array(z[[0, 3]]), jt.array(p[[0, 3]]), jt.array([1])).item()
    masked = p2p_loss(jt.array(z), jt.array(p), jt.array([1, 0, 0])).item()
    assert masked == pytest.approx(one, rel=1e-6)


def test_all_invalid_is_zero_with_finite_gradient():
    z = jt.zeros((4, 4, 7, 7))
    p = jt.array(_features(b=2, seed=5))
    loss = p2p_loss(z, p, jt.array([0, 0]))
    assert loss.item() == 0.0
    grad = jt.grad(loss, p).numpy()
    assert np.isfinite(grad).all() and not grad.any()

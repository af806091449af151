"""Prototype upkeep: row normalisation, freezing for the first iterations, explicit loss weights."""

from __future__ import annotations

import numpy as np
import pytest

jt = pytest.importorskip("jittor")

from models.losses.prototypes import (  # noqa: E402
    frozen_prototype_ids,
    normalize_prototypes,
    prototype_parameters,
)
from models.losses.total import PretrainLossWeights, combine_pretrain_losses  # noqa: E402
from tools.config.schema import OptimConfig  # noqa: E402
from tools.engine.optimizer import SGDLarc  # noqa: E402

pytestmark = pytest.mark.jittor


def test_normalize_prototypes_in_place():
    w = jt.array(np.array([[3.0, 4.0], [0.0, 2.0]], np.float32))
    normalize_prototypes(w)
    np.testing.assert_allclose(w.numpy(), [[0.6, 0.8], [0.0, 1.0]], atol=1e-6)
    assert not w.is_stop_grad()  # still a trainable parameter


def test_frozen_prototypes_are_skipped_by_the_optimizer_until_n_iterations():
    proto = jt.array(np.ones((2, 2), np.float32))
    other = jt.array(np.ones((2,), np.float32))
    named = [("prototypes.weight", proto), ("head.bias", other)]
    assert prototype_parameters(named) == [proto]
    opt = SGDLarc([proto, other], OptimConfig(momentum=0.9, weight_decay=0.1))
    for iteration in range(3):
        loss = (proto * proto).sum() + (other * other).sum()
        opt.step(loss, lr=0.1, skip=frozen_prototype_ids([proto], iteration, freeze_niters=2))
        if iteration < 2:
            np.testing.assert_array_equal(proto.numpy(), 1.0)  # no update, no decay, no momentum
    assert (proto.numpy() < 1.0).all() and (other.numpy() < 1.0).all()


def test_weights_are_plain_multipliers():
    swav, p2p, d2s = jt.array(2.0), jt.array(-0.5), {3: jt.array(4.0)}
    pass_like = PretrainLossWeights(swav=0.5, d2s=0.5, p2p=1.0)
    assert combine_pretrain_losses(swav, p2p, d2s, pass_like).item() == pytest.approx(0.5 * 2 + 0.5 * 4 - 0.5)
    assert combine_pretrain_losses(swav, p2p, None, PretrainLossWeights()).item() == pytest.approx(1.5)

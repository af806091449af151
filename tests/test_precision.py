"""Mixed precision: the config key, the device rule, loss scaling, and what must stay float32."""

from __future__ import annotations

import numpy as np
import pytest

jt = pytest.importorskip("jittor")

from models.losses.prototypes import normalize_prototypes  # noqa: E402
from models.losses.sinkhorn import sinkhorn_knopp  # noqa: E402
from models.losses.swav import SwAVQueue  # noqa: E402
from models.precision import autocast, full_precision, restore_float32_buffers  # noqa: E402
from tools.config.loader import ConfigError, load_config  # noqa: E402
from tools.config.schema import LoopConfig, OptimConfig  # noqa: E402
from tools.engine.optimizer import SGDLarc  # noqa: E402
from tools.engine.precision import DynamicLossScale, resolve_precision  # noqa: E402

pytestmark = pytest.mark.jittor


def test_precision_key_accepts_only_known_values():
    config = load_config("demo", ["pretrain.loop.precision=amp"])
    assert config.pretrain.loop.precision == "amp"
    with pytest.raises(ConfigError, match="expected one of 'fp32', 'amp'"):
        load_config("demo", ["pretrain.loop.precision=fp16"])


def test_amp_only_on_cuda_and_tf32_only_for_fp32():
    amp = LoopConfig(precision="amp")
    assert resolve_precision(amp, on_cuda=True).amp
    assert not resolve_precision(amp, on_cuda=True).tf32  # fp16 inputs + use_tensorcore = fp16 sums
    on_cpu = resolve_precision(amp, on_cuda=False)
    assert not on_cpu.amp and "falls back to fp32" in on_cpu.note
    assert resolve_precision(LoopConfig(), on_cuda=True).tf32
    assert not resolve_precision(LoopConfig(tf32=False), on_cuda=True).tf32
    assert not resolve_precision(LoopConfig(), on_cuda=False).tf32


def test_autocast_makes_float_ops_fp16_and_full_precision_undoes_it():
    x = jt.array(np.ones((4, 3), np.float32))  # jt.ones is a broadcast scalar: scalars keep float32
    with autocast(True):
        assert str((x + x).dtype) == "float16"
        with full_precision():
            assert str((x + x).dtype) == "float32"
        assert str((x + x).dtype) == "float16"
    assert str((x + x).dtype) == "float32"
    with autocast(False):
        assert str((x + x).dtype) == "float32"


def test_sinkhorn_and_queue_stay_float32_under_autocast():
    scores = jt.array(np.random.default_rng(0).uniform(-1, 1, (8, 5)).astype(np.float32))
    queue = SwAVQueue(1, 16, 5)
    with autocast(True):
        codes = sinkhorn_knopp(scores, epsilon=0.05, n_iters=3)
        queue.push(0, scores)
    assert str(codes.dtype) == "float32"
    assert str(queue.rows[0].dtype) == "float32"
    np.testing.assert_allclose(codes.numpy().sum(axis=1), 1.0, atol=1e-5)


def test_prototype_normalisation_keeps_fp32_master_weights_under_autocast():
    weight = jt.array(np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32))
    with autocast(True):
        normalize_prototypes(weight)
    assert str(weight.dtype) == "float32"
    assert not weight.is_stop_grad()
    np.testing.assert_allclose(np.linalg.norm(weight.numpy(), axis=1), 1.0, atol=1e-6)


def test_buffers_recreated_in_fp16_are_restored_to_fp32():
    class WithStats(jt.nn.Module):
        def __init__(self):
            self.weight = jt.array(np.ones(3, np.float32))
            self.running = jt.array(np.zeros(3, np.float32)).stop_grad()

        def execute(self, x):
            self.running.update(self.running + (x.mean(0) - self.running) * 0.5)
            return x * self.weight

    module = WithStats()
    with autocast(True):
        module(jt.array(np.ones((2, 3), np.float32)))
    assert str(module.running.dtype) == "float16"
    assert restore_float32_buffers(module) == 1
    assert str(module.running.dtype) == "float32"
    assert str(module.weight.dtype) == "float32"  # parameters are the optimiser's, never touched
    np.testing.assert_allclose(module.running.numpy(), 0.5)


def test_loss_scale_halves_on_overflow_and_grows_after_clean_steps():
    scale = DynamicLossScale(init_scale=1024.0, growth_interval=3)
    scale.update(finite=False)
    assert scale.scale == 512.0 and scale.skipped_steps == 1
    for _ in range(3):
        scale.update(finite=True)
    assert scale.scale == 1024.0 and scale.clean_steps == 0
    assert DynamicLossScale.all_finite([jt.ones((3,)), jt.zeros((2, 2))])
    assert not DynamicLossScale.all_finite([jt.ones((3,)), jt.array([1.0, float("inf")])])
    assert not DynamicLossScale.all_finite([jt.array([float("nan")])])
    restored = DynamicLossScale()
    restored.load_state_dict(scale.state_dict())
    assert restored.state_dict() == scale.state_dict()


def _one_step(scaler: DynamicLossScale | None, loss_factor: float = 1.0) -> tuple[np.ndarray, bool]:
    w = jt.array(np.array([1.0, -2.0, 3.0], np.float32))
    opt = SGDLarc([w], OptimConfig(momentum=0.9, weight_decay=0.1), scaler)
    updated = opt.step(((w * w).sum() + w.sum()) * loss_factor, lr=0.1)
    return w.numpy(), updated


def test_scaled_step_equals_the_unscaled_one():
    plain, _ = _one_step(None)
    scaled, updated = _one_step(DynamicLossScale(init_scale=2.0**10))
    assert updated
    np.testing.assert_array_equal(scaled, plain)  # a power-of-two scale is exact


def test_overflowing_step_updates_nothing_and_lowers_the_scale():
    scaler = DynamicLossScale(init_scale=2.0**10)
    weights, updated = _one_step(scaler, loss_factor=1e36)  # 1e36 * 2**10 overflows float32
    assert not updated
    np.testing.assert_array_equal(weights, [1.0, -2.0, 3.0])
    assert scaler.scale == 2.0**9 and scaler.skipped_steps == 1

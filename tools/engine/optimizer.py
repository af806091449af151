"""SGD with momentum and optional LARC, with PyTorch semantics and a per-step skip list.

Why not ``jt.optim.SGD``: PASS freezes the prototypes for the first iterations by dropping their
gradient (``p.grad = None``), which makes torch's SGD skip them entirely (no weight decay, no
momentum). Reproducing that needs a step that can skip parameters; LARC (PASS:
``trust_coefficient=0.001, clip=False``) needs per-parameter norms. Gradients come from Jittor's
``Optimizer.backward``, which also mean-reduces them across MPI ranks.

With a :class:`~tools.engine.precision.DynamicLossScale` (AMP), the loss is scaled before the backward
pass, the (fp16) gradients are cast to fp32 and unscaled, and a step with an overflowed gradient
updates nothing (every rank sees the same all-reduced gradients, so every rank skips it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from tools.config.schema import OptimConfig
from tools.engine.precision import DynamicLossScale


class SGDLarc:
    """``step(loss, lr, skip)`` = backward + SGD(m, wd) [+ LARC] on every parameter not in ``skip``."""

    def __init__(self, params: Sequence, config: OptimConfig, loss_scale: DynamicLossScale | None = None):
        import jittor as jt

        params = [p for p in params if not p.is_stop_grad()]
        if not params:
            raise ValueError("no trainable parameters")
        self.params = params
        self.config = config
        self.loss_scale = loss_scale
        self._inner = jt.optim.Optimizer(params, lr=0.0)
        self.momentum_buffers = [jt.zeros(p.shape, p.dtype).stop_grad() for p in params]

    def step(self, loss, lr: float, skip: Iterable[int] = (), outputs: Sequence = ()) -> bool:
        """Back-propagate ``loss`` and update; parameters whose ``id`` is in ``skip`` are left alone.
        ``outputs`` (Jittor Vars, e.g. running metric sums) are executed in the same sync as the update.

        Returns whether the parameters were updated (``False``: AMP gradients overflowed, step skipped).
        """
        import jittor as jt

        cfg = self.config
        skip_ids = set(skip)
        scaler = self.loss_scale
        self._inner.backward(loss * scaler.scale if scaler is not None else loss)
        grads = self._inner.param_groups[0]["grads"]
        if scaler is not None:
            grads = [g.float32() / scaler.scale for g in grads]
            finite = scaler.all_finite(grads)
            scaler.update(finite)
            if not finite:
                self._inner.post_step()
                if outputs:
                    jt.sync(list(outputs))  # a skipped step's graph is not kept alive until the next one
                return False
        for p, g, buf in zip(self.params, grads, self.momentum_buffers, strict=True):
            if id(p) in skip_ids:
                continue
            d_p = g
            if cfg.larc:
                # apex LARC: scale the raw gradient (weight decay folded in) by trust * |w| / |g + wd w|.
                p_norm = jt.norm(p.flatten(), 2)
                g_norm = jt.norm(g.flatten(), 2)
                adaptive = cfg.larc_trust * p_norm / (g_norm + p_norm * cfg.weight_decay + 1e-8)
                if cfg.larc_clip and lr > 0:
                    adaptive = jt.minimum(adaptive / lr, 1.0)
                # LARC leaves a parameter with a zero norm or a zero gradient untouched (no decay either).
                applies = ((p_norm > 0) & (g_norm > 0)).float32()
                d_p = applies * (g + cfg.weight_decay * p) * adaptive + (1 - applies) * g
            elif cfg.weight_decay:
                d_p = g + cfg.weight_decay * p
            if cfg.momentum:
                buf.update(cfg.momentum * buf + d_p)
                d_p = buf
            p.update(p - lr * d_p)
        self._inner.post_step()
        jt.sync(self.params + self.momentum_buffers + list(outputs))
        return True

    def state_dict(self) -> dict:
        state = {"momentum_buffers": [b.numpy() for b in self.momentum_buffers]}
        if self.loss_scale is not None:
            state["loss_scale"] = self.loss_scale.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        import jittor as jt

        buffers = state["momentum_buffers"]
        if len(buffers) != len(self.momentum_buffers):
            raise ValueError(
                f"optimizer state has {len(buffers)} buffers, the model has {len(self.momentum_buffers)} "
                "trainable parameters"
            )
        for buf, value in zip(self.momentum_buffers, buffers, strict=True):
            if tuple(buf.shape) != tuple(np.shape(value)):
                raise ValueError(f"momentum buffer shape {np.shape(value)} != parameter {tuple(buf.shape)}")
            buf.update(jt.array(value))
        if self.loss_scale is not None and "loss_scale" in state:
            self.loss_scale.load_state_dict(state["loss_scale"])

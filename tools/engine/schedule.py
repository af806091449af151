"""Learning-rate schedules as arrays computed once (one value per iteration)."""

from __future__ import annotations

import numpy as np

from tools.config.schema import OptimConfig


def lr_schedule(optim: OptimConfig, epochs: int, iters_per_epoch: int) -> np.ndarray:
    """Linear warm-up from ``start_warmup_lr`` then cosine from ``base_lr`` to ``final_lr``.

    ``lr[t] = final + (base - final) * (1 + cos(pi * t / T)) / 2`` over the post-warm-up iterations,
    exactly as SwAV/PASS compute it.
    """
    warmup_iters = optim.warmup_epochs * iters_per_epoch
    warmup = np.linspace(optim.start_warmup_lr, optim.base_lr, warmup_iters, dtype=np.float64)
    total = max(0, epochs * iters_per_epoch - warmup_iters)
    t = np.arange(total, dtype=np.float64)
    cosine = optim.final_lr + 0.5 * (optim.base_lr - optim.final_lr) * (1 + np.cos(np.pi * t / max(total, 1)))
    return np.concatenate([warmup, cosine])

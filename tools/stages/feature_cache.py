"""Features of a frozen network on inputs that never change, computed once and kept up to a budget.

Pixel attention trains ``fbg`` on a frozen, eval-mode backbone. Its saliency BCE feeds the backbone the
same whole image every epoch (resized, no augmentation), so the backbone features of that image are the
same every epoch too, and recomputing them is wasted work (on the demo about a fifth of the attention
step: 85 s -> 68 s; the ``fbg`` head on the up-sampled maps, which trains, is most of the rest).
:class:`FrozenFeatureCache` keeps them per sample index, as host arrays, until ``budget_mb`` is used;
samples past the budget are recomputed every time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


class FrozenFeatureCache:
    """``index -> features [D, h, w]`` of one frozen network on one fixed input per sample."""

    def __init__(self, budget_mb: float):
        if budget_mb < 0:
            raise ValueError(f"budget_mb must be >= 0, got {budget_mb}")
        self.budget_bytes = int(budget_mb * 2**20)
        self.rows: dict[int, np.ndarray] = {}
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self.rows)

    def features(self, indices: Sequence[int], compute: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """Features of ``indices`` (``[B, D, h, w]``, batch order): cached rows as they are, the others
        from ``compute(positions)``, which gets the positions (into ``indices``) of the missing samples
        and returns their features in that order; those are kept while the budget lasts."""
        keys = [int(i) for i in indices]
        missing = [p for p, k in enumerate(keys) if k not in self.rows]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if not missing:
            return np.stack([self.rows[k] for k in keys])
        fresh = np.asarray(compute(np.array(missing, dtype=np.int64)))
        if len(fresh) != len(missing):
            raise ValueError(f"compute returned {len(fresh)} rows for {len(missing)} missing samples")
        for p, row in zip(missing, fresh, strict=True):
            self._keep(keys[p], row)
        if len(missing) == len(keys):
            return fresh
        fresh_at = dict(zip(missing, fresh, strict=True))
        return np.stack([fresh_at[p] if p in fresh_at else self.rows[k] for p, k in enumerate(keys)])

    def _keep(self, key: int, row: np.ndarray) -> None:
        if key in self.rows or self.bytes + row.nbytes > self.budget_bytes:
            return
        self.rows[key] = np.array(row, copy=True)  # own the memory: ``row`` may view a batch array
        self.bytes += row.nbytes

    def summary(self) -> dict[str, float]:
        """``{"cached": n, "cache_mb": MiB, "hit_rate": hits / lookups}``; the hit rate is logged."""
        lookups = self.hits + self.misses
        return {
            "cached": len(self.rows),
            "cache_mb": round(self.bytes / 2**20, 1),
            "hit_rate": round(self.hits / lookups, 4) if lookups else 0.0,
        }

"""Features of a frozen network on inputs that never change, computed once and kept up to a budget.

Pixel attention trains ``fbg`` on a frozen, eval-mode backbone. Its saliency BCE feeds the backbone the
same whole image every epoch (resized, no augmentation), so the backbone features of that image are the
same every epoch too: recomputing them is most of the stage's work (a 224 px image has 2.7 times the
pixels of the two 96 px SwAV crops of the demo). :class:`FrozenFeatureCache` keeps them per sample index,
as host arrays, until ``budget_mb`` is used; samples past the budget are recomputed every time.
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
        missing = np.array([p for p, k in enumerate(keys) if k not in self.rows], dtype=np.int64)
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        fresh = compute(missing) if len(missing) else None
        if fresh is not None and len(fresh) != len(missing):
            raise ValueError(f"compute returned {len(fresh)} rows for {len(missing)} missing samples")
        if fresh is not None:
            for row, p in zip(fresh, missing, strict=True):
                self._keep(keys[p], row)
        if fresh is not None and len(missing) == len(keys):
            return np.asarray(fresh)
        out_rows: list[np.ndarray] = []
        fresh_at = {int(p): n for n, p in enumerate(missing)}
        for p, k in enumerate(keys):
            out_rows.append(fresh[fresh_at[p]] if p in fresh_at else self.rows[k])
        return np.stack(out_rows)

    def _keep(self, key: int, row: np.ndarray) -> None:
        if key in self.rows or self.bytes + row.nbytes > self.budget_bytes:
            return
        self.rows[key] = np.array(row, copy=True)  # own the memory: ``row`` may view a batch array
        self.bytes += row.nbytes

    def summary(self) -> dict[str, float]:
        """``{"cached": n, "cache_mb": MiB, "hit_rate": hits / lookups}`` for logs and ``.done`` files."""
        lookups = self.hits + self.misses
        return {
            "cached": len(self.rows),
            "cache_mb": round(self.bytes / 2**20, 1),
            "hit_rate": round(self.hits / lookups, 4) if lookups else 0.0,
        }

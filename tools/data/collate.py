"""Stacking per-sample numpy structures into batches (the loader's default ``collate``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def collate_numpy(samples: Sequence[Any]) -> Any:
    """Stack a batch of samples that share one structure.

    Arrays and numbers are stacked along a new first axis; tuples and lists are collated position by
    position (a list of crops becomes a list of ``[B, ...]`` arrays); dicts key by key; strings are
    returned as a list.
    """
    first = samples[0]
    if isinstance(first, np.ndarray | np.generic | int | float | bool):
        return np.stack([np.asarray(s) for s in samples])
    if isinstance(first, str):
        return list(samples)
    if isinstance(first, dict):
        return {key: collate_numpy([s[key] for s in samples]) for key in first}
    if isinstance(first, tuple | list):
        lengths = {len(s) for s in samples}
        if len(lengths) != 1:
            raise ValueError(f"samples of one batch have different lengths {sorted(lengths)}")
        collated = [collate_numpy(list(group)) for group in zip(*samples, strict=True)]
        return tuple(collated) if isinstance(first, tuple) else collated
    raise TypeError(f"cannot collate samples of type {type(first).__name__}")

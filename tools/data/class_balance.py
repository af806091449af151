"""Per-class weights of the Stage-3 cross-entropy, from the pixel frequencies of its training labels.

k-means leaves clusters of unequal size; on a small train set a cluster of a few images becomes a
pseudo-class the finetuned network stops predicting, and the Hungarian match then loses its class
(measured on the demo: pseudo-classes at 1.0 % and 1.5 % of the validation pixels fell to 0.1 % and
0.0 % after the finetune). ``finetune.class_balance`` (an exponent ``alpha``; 0, PASS's plain
cross-entropy, turns it off) re-weights the **foreground** classes among themselves:

    w_c = (mean_fg_frequency / frequency_c) ** alpha,   c = 1..C present in the labels,

rescaled so that the foreground pixels keep their total weight (``sum_c frequency_c * w_c`` is
unchanged). Background keeps weight 1, so the balance between foreground and background, which the
threshold sweep chose, is not moved; classes absent from the labels keep weight 1 (they never occur).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from tools.data.label_codec import IGNORE_ID, read_label_png


def label_pixel_counts(
    paths: Iterable[Path], num_classes: int, advance: Callable[[], None] | None = None
) -> np.ndarray:
    """``int64 [C+1]``: pixels of each id ``0..C`` over the label PNGs (ignore ``1000`` not counted);
    ``advance()`` is called after each file (a progress bar)."""
    counts = np.zeros(num_classes + 1, dtype=np.int64)
    for path in paths:
        ids = read_label_png(path)
        ids = ids[(ids != IGNORE_ID) & (ids <= num_classes)]
        counts += np.bincount(ids.ravel(), minlength=num_classes + 1)[: num_classes + 1]
        if advance is not None:
            advance()
    return counts


def foreground_balance_weights(counts: np.ndarray, alpha: float) -> np.ndarray:
    """``float32 [C+1]`` loss weights from per-id pixel ``counts`` (id 0 = background); see the module."""
    counts = np.asarray(counts, dtype=np.float64)
    weights = np.ones(counts.shape, dtype=np.float64)
    foreground = counts[1:]
    present = foreground > 0
    if alpha == 0 or not present.any():
        return weights.astype(np.float32)
    frequency = foreground[present] / foreground[present].sum()
    raw = (frequency.mean() / frequency) ** alpha
    raw *= 1.0 / float((frequency * raw).sum())  # the foreground's total weight is unchanged
    weights[1:][present] = raw
    return weights.astype(np.float32)

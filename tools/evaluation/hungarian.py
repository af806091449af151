"""Image-level Hungarian matching of predicted ids to ground-truth classes (the official scheme).

``M[i][j]`` counts the images in which predicted id ``i`` and GT class ``j`` *both appear* (an
image-level co-occurrence, not a pixel confusion matrix), over foreground ids ``1..C`` only. The
bijection ``1..C -> 1..C`` maximising the total count is the match; ``0 -> 0`` is added.

The two official implementations minimise ``1 - M/N`` (ImageNet-S ``match.py``) or ``-M`` (PASS
``src/utils.py::hungarian``) with ``munkres``; both pick an assignment of maximal total count.
Among equal-count assignments we prefer the one keeping the most ids unchanged (``i -> i``) and leave
the rest to scipy's deterministic solver; Munkres may pick another of the tied assignments.

Predicted ids outside ``1..C`` raise ``ValueError``: the official matrix is square ``C x C`` and a
bijection cannot place them (PASS silently drops them from the matrix, then crashes with a KeyError
when it relabels the prediction). Over-clustered predictions need a user-made match file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from scipy import sparse
from scipy.optimize import linear_sum_assignment


def _ids_array(ids: Iterable[int], num_classes: int, what: str, index: int) -> np.ndarray:
    arr = np.fromiter((int(v) for v in ids), dtype=np.int64)
    arr = arr[arr != 0]  # background never takes part in the matching
    bad = arr[(arr < 1) | (arr > num_classes)]
    if bad.size:
        raise ValueError(
            f"{what} id {int(bad[0])} in image #{index} is outside 1..{num_classes}: the image-level "
            f"Hungarian matches ids 1..{num_classes} one-to-one to the {num_classes} classes (as the "
            "official evaluator). Give over-clustered predictions a match file that maps every id."
        )
    return np.unique(arr)


def cooccurrence_from_pairs(
    pred_images: np.ndarray,
    pred_ids: np.ndarray,
    gt_images: np.ndarray,
    gt_ids: np.ndarray,
    num_images: int,
    num_classes: int,
) -> np.ndarray:
    """``[C, C]`` int64 co-occurrence from (image index, id) pairs, each pair listed once.

    ``M[i - 1, j - 1]`` = #images holding predicted id ``i`` and GT class ``j``. Built as
    ``A^T B`` of sparse image-by-class incidence matrices, so 919 classes x 12k images stays cheap.
    """
    shape = (num_images, num_classes)
    a = sparse.csr_matrix((np.ones(len(pred_ids), np.int64), (pred_images, pred_ids - 1)), shape=shape)
    b = sparse.csr_matrix((np.ones(len(gt_ids), np.int64), (gt_images, gt_ids - 1)), shape=shape)
    return np.asarray((a.T @ b).toarray(), dtype=np.int64)


def cooccurrence_matrix(
    pred_sets: Sequence[Iterable[int]], gt_sets: Sequence[Iterable[int]], num_classes: int
) -> np.ndarray:
    """``[C, C]`` image-level co-occurrence of predicted ids (rows) and GT classes (columns)."""
    if len(pred_sets) != len(gt_sets):
        raise ValueError(f"{len(pred_sets)} prediction sets but {len(gt_sets)} ground-truth sets")
    pred_parts = [_ids_array(s, num_classes, "predicted", i) for i, s in enumerate(pred_sets)]
    gt_parts = [_ids_array(s, num_classes, "ground-truth", i) for i, s in enumerate(gt_sets)]

    def flat(parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        images = np.repeat(np.arange(len(parts)), [len(p) for p in parts])
        ids = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        return images, ids

    return cooccurrence_from_pairs(*flat(pred_parts), *flat(gt_parts), len(pred_sets), num_classes)


def match_from_cooccurrence(matrix: np.ndarray) -> dict[int, int]:
    """Maximal-count bijection of a ``[C, C]`` co-occurrence matrix -> ``{pred: gt}`` plus ``{0: 0}``."""
    counts = np.asarray(matrix, dtype=np.int64)
    num_classes = counts.shape[0]
    if counts.shape != (num_classes, num_classes):
        raise ValueError(f"co-occurrence matrix must be square, got {counts.shape}")
    # Scaling by C + 1 keeps the count objective primary: the identity bonus sums to at most C.
    weight = counts * (num_classes + 1) + np.eye(num_classes, dtype=np.int64)
    rows, cols = linear_sum_assignment(weight, maximize=True)
    match = {0: 0}
    match.update({int(r) + 1: int(c) + 1 for r, c in zip(rows, cols, strict=True)})
    return match


def hungarian_match(
    pred_sets: Sequence[set[int]], gt_sets: Sequence[set[int]], num_classes: int
) -> dict[int, int]:
    """Match predicted ids to GT classes by image-level co-occurrence (official ImageNet-S scheme).

    ``pred_sets[n]`` / ``gt_sets[n]``: ids present in image ``n`` (0 is allowed and ignored; the
    ignore id 1000 must already be removed). Returns ``{pred_id: class_id}`` for every id in
    ``1..C`` plus ``{0: 0}``. Raises ``ValueError`` for ids outside ``0..C``.
    """
    return match_from_cooccurrence(cooccurrence_matrix(pred_sets, gt_sets, num_classes))

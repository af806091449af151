"""Stage 2.2 maths on plain arrays (spec 5.4, 5.6): seeded faiss k-means, NMI, Hungarian cluster accuracy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment


def l2_normalize_rows(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), eps)


@dataclass
class KMeansResult:
    centroids: np.ndarray  # float32 [K, D], not re-normalised (as PASS saves them)
    train_labels: np.ndarray  # int64 [N_train], 0..K-1
    other_labels: np.ndarray  # int64 [N_other]


def kmeans(
    train: np.ndarray, num_clusters: int, niter: int, nredo: int, seed: int, other: np.ndarray | None = None
) -> KMeansResult:
    """K-means on L2-normalised rows of ``train`` (no PCA, no subsampling); ``other`` is only assigned.

    Deterministic for a given ``seed`` (faiss' CPU clustering with a fixed seed).
    """
    import faiss

    x = l2_normalize_rows(train)
    n, d = x.shape
    if n < num_clusters:
        raise ValueError(f"k-means needs at least K = {num_clusters} points, got {n}")
    clus = faiss.Clustering(d, num_clusters)
    clus.seed = int(seed)
    clus.niter = int(niter)
    clus.nredo = int(nredo)
    clus.max_points_per_centroid = 10_000_000
    clus.verbose = False
    index = faiss.IndexFlatL2(d)
    clus.train(x, index)
    centroids = faiss.vector_to_array(clus.centroids).reshape(num_clusters, d).astype(np.float32)

    def assign(rows: np.ndarray) -> np.ndarray:
        if len(rows) == 0:
            return np.zeros(0, np.int64)
        _, ids = index.search(l2_normalize_rows(rows), 1)
        return ids[:, 0].astype(np.int64)

    empty = np.zeros((0, d), np.float32)
    return KMeansResult(centroids, assign(x), assign(empty if other is None else other))


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def normalized_mutual_info(labels_true: np.ndarray, labels_pred: np.ndarray) -> float:
    """NMI with arithmetic-mean normalisation (sklearn's default)."""
    _, t = np.unique(labels_true, return_inverse=True)
    _, p = np.unique(labels_pred, return_inverse=True)
    table = np.zeros((t.max() + 1, p.max() + 1), np.float64)
    np.add.at(table, (t, p), 1)
    n = table.sum()
    h_t, h_p = _entropy(table.sum(axis=1)), _entropy(table.sum(axis=0))
    if h_t == 0 or h_p == 0:
        return 1.0 if h_t == h_p else 0.0
    nz = table > 0
    outer = np.outer(table.sum(axis=1), table.sum(axis=0))
    mi = float((table[nz] / n * np.log(table[nz] * n / outer[nz])).sum())
    return mi / ((h_t + h_p) / 2)


def cluster_accuracy(labels_true: np.ndarray, labels_pred: np.ndarray) -> float:
    """PASS ``reAssignSingle``: best one-to-one cluster->class matching, matched count / N."""
    t = np.asarray(labels_true, np.int64)
    p = np.asarray(labels_pred, np.int64)
    size = int(max(t.max(initial=0), p.max(initial=0))) + 1
    counts = np.zeros((size, size), np.int64)
    np.add.at(counts, (p, t), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum()) / max(len(t), 1)

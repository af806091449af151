"""Distance-matching head (PASS ``distance_matching/``): each pixel's score per class is the cosine
similarity of its backbone feature to that class's embedding.

``[B, F, h, w]`` -> features upsampled ``x4`` (bilinear, as PASS) and L2-normalised -> ``[B, K, 4h, 4w]``.
Two rules:

* ``k = 0`` (default): score of class ``c`` = ``cos(feature, class_embedding[c])``; the arg-max is the
  nearest class by cosine similarity;
* ``k > 0``: PASS's weighted k-NN over the labelled instances (``k`` most similar, weight
  ``exp(cos / T)``, summed per class; DINO ``eval_knn``), PASS defaults ``k = 10``, ``T = 0.07``.
"""

from __future__ import annotations

import jittor as jt
import numpy as np
from jittor import nn

UPSAMPLE = 4


def upsample_features(x: jt.Var) -> jt.Var:
    """``[B, F, h, w]`` -> ``[B, F, 4h, 4w]``, bilinear (PASS ``get_instance.py``)."""
    h, w = x.shape[2:]
    return nn.interpolate(x, size=(h * UPSAMPLE, w * UPSAMPLE), mode="bilinear", align_corners=False)


class UpsampledFeatures(nn.Module):
    """Head that returns the backbone features upsampled x4: what the class embeddings are built from."""

    upsample = UPSAMPLE

    def execute(self, x: jt.Var) -> jt.Var:
        return upsample_features(x)


def normalize_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


class CosineHead(nn.Module):
    """``embeddings [N, F]`` with ``labels [N]`` in ``0..K-1`` (class ids; 0 = background)."""

    upsample = UPSAMPLE

    def __init__(
        self, embeddings: np.ndarray, labels: np.ndarray, num_classes: int, k: int = 0, t: float = 0.07
    ):
        super().__init__()
        if embeddings.ndim != 2 or len(embeddings) != len(labels):
            raise ValueError(
                f"embeddings [N, F] and labels [N] expected, got {embeddings.shape}, {labels.shape}"
            )
        self.num_outputs = num_classes + 1
        if k == 0 and not np.array_equal(labels, np.arange(self.num_outputs)):
            raise ValueError("k = 0 needs one embedding per class 0..C, in class order")
        self.k, self.t = k, t
        self.labels = np.asarray(labels, np.int64)
        self._embeddings = normalize_rows(np.asarray(embeddings, np.float32))

    def execute(self, x: jt.Var) -> jt.Var:
        feats = upsample_features(x).numpy().transpose(0, 2, 3, 1)  # [B, H, W, F]
        sims = normalize_rows(feats) @ self._embeddings.T  # [B, H, W, N]
        # k = 0: one embedding per class, in class order, so the similarities are the scores.
        scores = sims if self.k == 0 else self._knn_votes(sims)
        return jt.array(np.ascontiguousarray(scores.transpose(0, 3, 1, 2)).astype(np.float32))

    def _knn_votes(self, sims: np.ndarray) -> np.ndarray:
        k = min(self.k, sims.shape[-1])
        top = np.argpartition(-sims, k - 1, axis=-1)[..., :k]
        weights = np.exp(np.take_along_axis(sims, top, axis=-1) / self.t)
        votes = np.zeros((*sims.shape[:-1], self.num_outputs), np.float64)
        for j in range(k):  # k is small (10): one scatter-add per neighbour rank
            np.add.at(votes, (*np.indices(sims.shape[:-1]), self.labels[top[..., j]]), weights[..., j])
        return votes

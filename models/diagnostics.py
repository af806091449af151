"""Numbers that show whether a stage learns, logged next to its losses (``metrics.jsonl``, report).

All are lazy Jittor scalars without gradient: the trainer only evaluates them on logged steps.

* ``emb_spread``: ``sqrt(D) * mean_d std_b(embedding[b, d])`` of the unit-norm embeddings. About 1 for
  embeddings spread over the sphere, 0 when every image maps to the same point (collapse).
* ``score_spread``: mean over images of the standard deviation of the prototype scores. When swapped
  prediction hedges, every score becomes equal and this falls towards 0 while SwAV sits at ln K.
* ``protos_used``: the fraction of prototypes that are the best match of at least one image in the
  batch; few prototypes for many images means the codes collapsed onto a handful of clusters.
* ``attn_fg`` / ``attn_mean``: fraction of attention pixels >= 0.5 and mean attention (pixel attention);
  ``attn_sal_iou``: IoU of attention >= 0.5 with the saliency mask >= 0.5 (when saliency supervises it).
"""

from __future__ import annotations

import math

import jittor as jt


def embedding_diagnostics(embedding: jt.Var, scores: jt.Var) -> dict[str, jt.Var]:
    """``embedding [N, D]`` (unit rows) and prototype ``scores [N, K]`` of one batch."""
    e = embedding.detach()
    s = scores.detach()
    d, k = int(e.shape[1]), int(s.shape[1])
    centred = e - e.mean(dim=0, keepdims=True)
    spread = jt.sqrt((centred * centred).mean(dim=0) + 1e-12).mean() * math.sqrt(d)
    dev = s - s.mean(dim=1, keepdims=True)
    score_spread = jt.sqrt((dev * dev).mean(dim=1) + 1e-12).mean()
    best = (s >= s.max(dim=1, keepdims=True)).float32()
    used = (best.max(dim=0) > 0).float32().sum() / k
    return {"emb_spread": spread, "score_spread": score_spread, "protos_used": used}


def attention_diagnostics(attention: jt.Var, saliency: jt.Var | None = None) -> dict[str, jt.Var]:
    """``attention [B, 1, h, w]`` in (0, 1); ``saliency`` of the same shape in [0, 1] when there is one."""
    a = attention.detach()
    fg = (a >= 0.5).float32()
    out = {"attn_fg": fg.mean(), "attn_mean": a.mean()}
    if saliency is not None:
        sal = (saliency >= 0.5).float32()
        inter = (fg * sal).sum()
        union = ((fg + sal) > 0).float32().sum()
        out["attn_sal_iou"] = inter / (union + 1e-6)
    return out

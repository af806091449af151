"""Dense-CRF clean-up of one MaskCut mask (SAMPASS ``cutler/crf.py``, upstream-spec section 9.3 step 4).

Unary ``softmax([1 - m, m])`` over the two labels; Potts pairwise terms: Gaussian (sxy 3, compat 7)
and bilateral (sxy 50, srgb 5, compat 10); 10 mean-field iterations; MAP, then holes filled. A mask
the CRF changes too much (IoU with the input below 0.5) is dropped, as MaskCut does. Needs the
``pydensecrf2`` package (installed by ``make install``); imported only when the step asks for it.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from tools.errors import LussError

ITERATIONS = 10
GAUSSIAN = {"sxy": 3, "compat": 7}
BILATERAL = {"sxy": 50, "srgb": 5, "compat": 10}
MIN_IOU = 0.5


def _densecrf():
    try:
        import pydensecrf.densecrf as dcrf
        from pydensecrf.utils import unary_from_softmax
    except ImportError:
        raise LussError(
            "cluster.saliency.crf=true needs the dense CRF package: pip install pydensecrf2 "
            "(make install does it), or set cluster.saliency.crf=false."
        ) from None
    return dcrf, unary_from_softmax


def crf_refine(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``image [H, W, 3] uint8``, ``mask [H, W] bool`` -> the CRF's filled MAP mask ``[H, W] bool``."""
    dcrf, unary_from_softmax = _densecrf()
    height, width = mask.shape
    m = mask.astype(np.float32)
    logits = np.stack([1.0 - m, m])
    probs = np.exp(logits) / np.exp(logits).sum(axis=0, keepdims=True)
    crf = dcrf.DenseCRF2D(width, height, 2)
    crf.setUnaryEnergy(np.array(unary_from_softmax(probs), dtype=np.float32, order="C"))
    crf.addPairwiseGaussian(**GAUSSIAN)
    crf.addPairwiseBilateral(rgbim=np.array(image, dtype=np.uint8, order="C"), **BILATERAL)  # writable copy
    q = np.asarray(crf.inference(ITERATIONS)).reshape(2, height, width)
    return ndimage.binary_fill_holes(q[1] >= 0.5)


def crf_or_drop(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The CRF mask, or all-False when it overlaps the input mask with IoU below 0.5."""
    if not mask.any():
        return mask
    refined = crf_refine(image, mask)
    union = np.logical_or(mask, refined).sum()
    iou = np.logical_and(mask, refined).sum() / union if union else 0.0
    return refined if iou >= MIN_IOU else np.zeros_like(mask)

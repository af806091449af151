"""SAM semantic voting: relabel every SAM mask with the majority label of the prediction inside it.

Pure numpy. Masks are held as tight crops (:class:`MaskSet`), so a vote touches only each mask's
bounding box, not the whole image.

Vote modes
----------
``original`` (default)
    Every mask's label is the majority of the **unrefined** prediction inside it, so no mask's vote
    depends on another's. Where masks overlap, the paint order decides; it is a fixed function of
    the masks themselves, never of the order SAM returned them: **area descending** (large masks
    first, so a smaller, more specific mask painted later wins its pixels), ties broken by predicted
    IoU descending, then stability score descending, then the tight box (y0, x0, y1, x1) ascending,
    then the mask bits. The result is therefore independent of the mask order.
``sampass``
    The SAMPASS ``test.py`` algorithm (upstream-spec §8.2): masks visited by predicted IoU descending
    (stable, so equal scores keep SAM's order), each voting on the map **already modified** by the
    masks before it, in place. Later (lower-IoU) masks overwrite earlier ones.

Majority ties go to the smallest label, as ``np.unique`` + ``argmax`` in the reference. Pixels that
no mask covers keep the network's label.

Background policy (label 0 = background)
----------------------------------------
A mask whose majority is a class always paints its whole area with that class (it may fill
background holes, as in the reference). For a mask whose majority is background:

``erase`` (default)
    The whole mask becomes background, as in the reference, where 0 is just another label.
``protect``
    Background votes never turn a pixel that is foreground in the **unrefined** prediction into
    background: only pixels that were background there are (re)set to 0.

Why ``erase`` is the default: SAM's benefit on ImageNet-S is mostly at object borders, where the
upsampled network prediction overshoots onto the background; background-majority masks are what trim
that overshoot, and ``protect`` forbids exactly that. The risk of ``erase``, a large scene-level mask
wiping the object, is bounded in ``original`` mode because larger masks are painted first, so the
object's own (smaller) mask repaints it afterwards. It is also the reference behaviour, so the
SAMPASS number is reproducible. ``protect`` is the safer choice when SAM misses objects (a high
``pred_iou_thresh``) and recall matters more than boundaries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

BACKGROUND = 0
VOTE_MODES = ("original", "sampass")
BACKGROUND_POLICIES = ("erase", "protect")
VoteMode = Literal["original", "sampass"]
BackgroundPolicy = Literal["erase", "protect"]


def tight_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """``(y0, x0, y1, x1)`` with exclusive ends around the set pixels; ``(0, 0, 0, 0)`` if empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return (0, 0, 0, 0)
    cols = np.flatnonzero(mask.any(axis=0))
    return (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)


def decode_uncompressed_rle(rle: dict[str, Any]) -> np.ndarray:
    """SAM's ``uncompressed_rle`` (column-major run lengths, starting with a 0-run) -> bool ``[H, W]``."""
    h, w = (int(v) for v in rle["size"])
    counts = np.asarray(rle["counts"], dtype=np.int64)
    values = np.zeros(counts.size, dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, counts)
    if flat.size != h * w:
        raise ValueError(f"RLE covers {flat.size} pixels, expected {h}x{w}")
    return flat.reshape(w, h).T


@dataclass
class MaskSet:
    """The masks of one image as tight crops, plus SAM's scores for each.

    ``boxes[i] = (y0, x0, y1, x1)`` (exclusive ends) and ``patches[i]`` is the bool crop
    ``mask[y0:y1, x0:x1]``. ``bbox_xywh`` is SAM's own record, kept for provenance only.
    """

    height: int
    width: int
    boxes: np.ndarray  # int32 [N, 4]
    patches: list[np.ndarray]
    predicted_iou: np.ndarray  # float32 [N]
    stability_score: np.ndarray  # float32 [N]
    area: np.ndarray  # int64 [N], set pixels
    bbox_xywh: np.ndarray  # float32 [N, 4]

    def __len__(self) -> int:
        return len(self.patches)

    @property
    def image_size(self) -> tuple[int, int]:
        return (self.height, self.width)

    @classmethod
    def empty(cls, height: int, width: int) -> MaskSet:
        return cls.from_dense(np.zeros((0, height, width), dtype=bool))

    @classmethod
    def from_dense(
        cls,
        masks: np.ndarray | Sequence[np.ndarray],
        predicted_iou: Sequence[float] | None = None,
        stability_score: Sequence[float] | None = None,
        bbox_xywh: np.ndarray | None = None,
        image_size: tuple[int, int] | None = None,
    ) -> MaskSet:
        """Full-size bool masks ``[N, H, W]`` -> crops. Missing scores default to 0."""
        dense = [np.asarray(m, dtype=bool) for m in masks]
        if image_size is None:
            if not dense:
                shape = np.shape(masks)
                if len(shape) != 3:
                    raise ValueError("image_size is needed for an empty list of masks")
                image_size = (int(shape[1]), int(shape[2]))
            else:
                image_size = (int(dense[0].shape[0]), int(dense[0].shape[1]))
        n = len(dense)
        boxes = np.zeros((n, 4), dtype=np.int32)
        patches = []
        for i, mask in enumerate(dense):
            if mask.shape != tuple(image_size):
                raise ValueError(f"mask {i} has shape {mask.shape}, expected {tuple(image_size)}")
            boxes[i] = tight_box(mask)
            y0, x0, y1, x1 = boxes[i]
            patches.append(np.ascontiguousarray(mask[y0:y1, x0:x1]))
        return cls(
            height=int(image_size[0]),
            width=int(image_size[1]),
            boxes=boxes,
            patches=patches,
            predicted_iou=_scores(predicted_iou, n),
            stability_score=_scores(stability_score, n),
            area=np.array([int(p.sum()) for p in patches], dtype=np.int64),
            bbox_xywh=np.zeros((n, 4), np.float32)
            if bbox_xywh is None
            else np.asarray(bbox_xywh, np.float32),
        )

    @classmethod
    def from_records(cls, records: Sequence[dict[str, Any]], image_size: tuple[int, int]) -> MaskSet:
        """The list ``SamAutomaticMaskGenerator.generate`` returns (binary masks or uncompressed RLE)."""
        dense = []
        for rec in records:
            seg = rec["segmentation"]
            if isinstance(seg, dict):
                if not isinstance(seg.get("counts"), list):
                    raise ValueError("coco_rle output is not supported; use binary_mask or uncompressed_rle")
                seg = decode_uncompressed_rle(seg)
            dense.append(seg)
        return cls.from_dense(
            dense,
            predicted_iou=[float(r["predicted_iou"]) for r in records],
            stability_score=[float(r["stability_score"]) for r in records],
            bbox_xywh=np.array([r["bbox"] for r in records], np.float32).reshape(-1, 4),
            image_size=image_size,
        )

    def dense(self, index: int) -> np.ndarray:
        """Mask ``index`` at full size."""
        out = np.zeros(self.image_size, dtype=bool)
        y0, x0, y1, x1 = self.boxes[index]
        out[y0:y1, x0:x1] = self.patches[index]
        return out


def _scores(values: Sequence[float] | None, n: int) -> np.ndarray:
    if values is None:
        return np.zeros(n, np.float32)
    out = np.asarray(values, dtype=np.float32).reshape(-1)
    if out.size != n:
        raise ValueError(f"expected {n} scores, got {out.size}")
    return out


def majority_label(values: np.ndarray) -> int:
    """Most frequent label of a 1-D int array; ties -> the smallest label (the reference's rule)."""
    return int(np.argmax(np.bincount(values)))


def paint_order(masks: MaskSet) -> np.ndarray:
    """``original``-mode order: area desc, IoU desc, stability desc, box asc, then mask bits."""
    b = masks.boxes
    # np.lexsort sorts by the last key first.
    keys = (b[:, 3], b[:, 2], b[:, 1], b[:, 0], -masks.stability_score, -masks.predicted_iou, -masks.area)
    order = list(np.lexsort(keys))
    # Masks equal on every numeric key are ordered by their bits, so even they cannot depend on input order.
    numeric = [tuple(k[i] for k in reversed(keys)) for i in order]
    start = 0
    for end in range(1, len(order) + 1):
        if end == len(order) or numeric[end] != numeric[start]:
            if end - start > 1:
                order[start:end] = sorted(
                    order[start:end], key=lambda i: np.packbits(masks.patches[i]).tobytes()
                )
            start = end
    return np.asarray(order, dtype=np.int64)


def sampass_order(masks: MaskSet) -> np.ndarray:
    """SAMPASS order: predicted IoU descending, stable (equal scores keep SAM's order)."""
    return np.argsort(-masks.predicted_iou, kind="stable")


def _paint(out: np.ndarray, original: np.ndarray, masks: MaskSet, i: int, label: int, policy: str) -> None:
    y0, x0, y1, x1 = masks.boxes[i]
    region = out[y0:y1, x0:x1]  # a view: assignment writes through to `out`
    patch = masks.patches[i]
    if label == BACKGROUND and policy == "protect":
        patch = patch & (original[y0:y1, x0:x1] == BACKGROUND)
    region[patch] = label


def vote_by_masks(
    pred: np.ndarray,
    masks: MaskSet | np.ndarray,
    mode: VoteMode = "original",
    background_policy: BackgroundPolicy = "erase",
) -> np.ndarray:
    """Refine an ``[H, W]`` non-negative int label map by majority votes inside SAM masks.

    ``masks`` is a :class:`MaskSet` or full-size bool masks ``[N, H, W]`` (then all scores are 0
    and the ``sampass`` order is the given order). Returns a new array; ``pred`` is not modified.
    """
    if mode not in VOTE_MODES:
        raise ValueError(f"vote mode must be one of {VOTE_MODES}, got {mode!r}")
    if background_policy not in BACKGROUND_POLICIES:
        raise ValueError(f"background policy must be one of {BACKGROUND_POLICIES}, got {background_policy!r}")
    pred = np.asarray(pred)
    if pred.ndim != 2 or not np.issubdtype(pred.dtype, np.integer):
        raise ValueError(f"pred must be an [H, W] integer label map, got {pred.dtype} {pred.shape}")
    if not isinstance(masks, MaskSet):
        masks = MaskSet.from_dense(masks, image_size=pred.shape)
    if masks.image_size != pred.shape:
        raise ValueError(f"masks are {masks.image_size} but the prediction is {pred.shape}")
    if pred.size and pred.min() < 0:
        raise ValueError("pred holds negative labels")

    out = pred.copy()
    if mode == "original":
        labels = {}
        for i in range(len(masks)):
            if masks.area[i] > 0:
                y0, x0, y1, x1 = masks.boxes[i]
                labels[i] = majority_label(pred[y0:y1, x0:x1][masks.patches[i]])
        for i in paint_order(masks):
            if int(i) in labels:
                _paint(out, pred, masks, int(i), labels[int(i)], background_policy)
    else:
        for i in sampass_order(masks):
            i = int(i)
            if masks.area[i] > 0:
                y0, x0, y1, x1 = masks.boxes[i]
                label = majority_label(out[y0:y1, x0:x1][masks.patches[i]])
                _paint(out, pred, masks, i, label, background_policy)
    return out

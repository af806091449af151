"""Per-image cache of SAM masks: ``RUN/refine/sam-masks/<split>/<wnid>/<stem>.npz``.

Re-voting (another vote mode or background policy) reads these and never runs SAM again.

Format (``np.savez_compressed``, read with ``allow_pickle=False``; version 1):

=================  =========================  ==================================================
key                dtype / shape              meaning
=================  =========================  ==================================================
``version``        int32 scalar               format version (1)
``fingerprint``    str scalar                 hash of model type, checkpoint name and generator
                                              parameters (``generator_config.cache_fingerprint``)
``params``         str scalar                 the JSON that was hashed, for humans
``image_size``     int32 [2]                  (H, W)
``boxes``          int32 [N, 4]               tight (y0, x0, y1, x1), exclusive ends
``bits``           uint8 [ceil(sum(h*w)/8)]   ``np.packbits`` of every mask's box crop, row-major,
                                              concatenated in mask order
``predicted_iou``  float32 [N]                SAM's predicted IoU
``stability``      float32 [N]                SAM's stability score
``bbox_xywh``      float32 [N, 4]             SAM's own bbox record
=================  =========================  ==================================================

Only each mask's box is stored (one bit a pixel), then zlib'd: a mask costs about
``box_h * box_w / 8`` bytes before compression and typically far less after, plus 36 bytes of
metadata. Masks are kept in SAM's order, which the ``sampass`` vote needs for equal scores.
A file that is missing, unreadable, of another version, fingerprint or image size is a cache miss
(``None``), and the caller regenerates it; writes are atomic, so a killed run never leaves half a file.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from tools.atomic_io import atomic_path
from tools.refine.voting import MaskSet

CACHE_VERSION = 1
CACHE_SUFFIX = ".npz"


def encode_mask_set(masks: MaskSet, fingerprint: str, params: str = "") -> dict[str, np.ndarray]:
    """The arrays stored for one image."""
    flat = [p.reshape(-1) for p in masks.patches]
    stream = np.concatenate(flat) if flat else np.zeros(0, dtype=bool)
    return {
        "version": np.array(CACHE_VERSION, dtype=np.int32),
        "fingerprint": np.array(fingerprint),
        "params": np.array(params),
        "image_size": np.array(masks.image_size, dtype=np.int32),
        "boxes": masks.boxes.astype(np.int32),
        "bits": np.packbits(stream),
        "predicted_iou": masks.predicted_iou.astype(np.float32),
        "stability": masks.stability_score.astype(np.float32),
        "bbox_xywh": masks.bbox_xywh.astype(np.float32).reshape(-1, 4),
    }


def decode_mask_set(arrays: dict[str, np.ndarray]) -> MaskSet:
    """Inverse of :func:`encode_mask_set`."""
    height, width = (int(v) for v in arrays["image_size"])
    boxes = np.asarray(arrays["boxes"], dtype=np.int32).reshape(-1, 4)
    sizes = (boxes[:, 2] - boxes[:, 0]).astype(np.int64) * (boxes[:, 3] - boxes[:, 1])
    total = int(sizes.sum())
    stream = np.unpackbits(arrays["bits"], count=total).astype(bool)
    if stream.size != total:
        raise ValueError(f"mask bits hold {stream.size} pixels, boxes need {total}")
    patches = []
    offset = 0
    for (y0, x0, y1, x1), size in zip(boxes, sizes, strict=True):
        patches.append(stream[offset : offset + size].reshape(int(y1 - y0), int(x1 - x0)))
        offset += int(size)
    return MaskSet(
        height=height,
        width=width,
        boxes=boxes,
        patches=patches,
        predicted_iou=np.asarray(arrays["predicted_iou"], dtype=np.float32),
        stability_score=np.asarray(arrays["stability"], dtype=np.float32),
        area=np.array([int(p.sum()) for p in patches], dtype=np.int64),
        bbox_xywh=np.asarray(arrays["bbox_xywh"], dtype=np.float32).reshape(-1, 4),
    )


def save_mask_cache(path: str | os.PathLike[str], masks: MaskSet, fingerprint: str, params: str = "") -> None:
    """Write one image's masks atomically (parent folders are created)."""
    arrays = encode_mask_set(masks, fingerprint, params)
    with atomic_path(path, suffix=".npz.tmp") as tmp, open(tmp, "wb") as fh:
        # A file object, so numpy does not append its own ".npz" to the temporary name.
        np.savez_compressed(fh, **arrays)


def load_mask_cache(
    path: str | os.PathLike[str],
    fingerprint: str | None = None,
    image_size: tuple[int, int] | None = None,
) -> MaskSet | None:
    """The cached masks, or ``None`` when missing, unreadable or stale (fingerprint/size/version)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if int(data["version"]) != CACHE_VERSION:
                return None
            if fingerprint is not None and str(data["fingerprint"]) != fingerprint:
                return None
            if image_size is not None and tuple(int(v) for v in data["image_size"]) != tuple(image_size):
                return None
            arrays = {key: data[key] for key in data.files}
        return decode_mask_set(arrays)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        # A truncated or foreign file is just a miss: SAM regenerates it and the write replaces it.
        return None


def cache_path(cache_dir: Path, key: str) -> Path:
    """``cache_dir/<wnid>/<stem>.npz`` for a sample key ``<wnid>/<stem>``."""
    return cache_dir / f"{key}{CACHE_SUFFIX}"

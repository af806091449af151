"""Checking one dataset file: an image (stat, header or every pixel) and its mask. Every finding names the
file (relative to the dataset root) and the fix. Run per chunk, in a process pool, by ``validate.py``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from tools.data.images import image_info, load_rgb_image
from tools.data.label_codec import IGNORE_ID, decode_label_image
from tools.errors import DatasetError, LabelFormatError

# none: only counted; stat: exists, is not empty (the cheap check every stage runs); header: opens the
# header; full: decodes every pixel (finds truncated files).
ImageCheck = Literal["none", "stat", "header", "full"]
IMAGE_CHECKS = ("none", "stat", "header", "full")
Finding = tuple[str, str]  # ("error" | "warning", message)
Pair = tuple[str | None, str | None]  # root-relative (image, mask)

# Header format -> the extensions it is expected under; anything else is only a warning.
_FORMAT_EXTENSIONS = {"JPEG": {".jpeg", ".jpg"}, "PNG": {".png"}}
_EXIF_ORIENTATION = 0x0112
_RESTORE = "Fix: copy it again from the original archive, or delete it (and its mask)."
_RESTORE_MASK = "Fix: restore it from the ImageNet-S annotation zip."


@dataclass(frozen=True)
class CheckJob:
    """A chunk of files to check. ``pairs`` hold root-relative ``(image, mask)``; either may be None."""

    root: str
    image_check: ImageCheck
    num_classes: int
    pairs: tuple[Pair, ...]


def _stat_finding(root: Path, rel: str, what: str) -> Finding | None:
    """A missing (e.g. broken symlink) or empty file; ``None`` when the file has bytes."""
    fix = _RESTORE_MASK if what == "mask" else _RESTORE
    try:
        size = (root / rel).stat().st_size
    except FileNotFoundError:
        return ("error", f"{rel}: {what} vanished or is a broken symlink. {fix}")
    except OSError as exc:
        return ("error", f"{rel}: cannot stat this {what} ({exc}). {fix}")
    if size == 0:
        return ("error", f"{rel}: empty {what} (0 bytes; an interrupted copy?). {fix}")
    return None


def check_image(root: Path, rel: str, how: ImageCheck) -> tuple[tuple[int, int] | None, list[Finding]]:
    """Returns the image's ``(width, height)`` (None if unknown or unreadable) and its findings."""
    if how == "none":
        return None, []
    empty = _stat_finding(root, rel, "image")
    if empty is not None or how == "stat":
        return None, [] if empty is None else [empty]
    path = root / rel
    try:
        info = image_info(path)
        if how == "full":
            load_rgb_image(path)
    except (DatasetError, FileNotFoundError) as exc:
        return None, [("error", f"{rel}: unreadable or truncated image ({_reason(exc)}). {_RESTORE}")]
    found: list[Finding] = []
    if info.mode != "RGB":
        found.append(
            (
                "warning",
                f"{rel}: {info.mode} image (not RGB); luss converts it to RGB when "
                "loading. No action needed (re-save as RGB to silence this).",
            )
        )
    expected = _FORMAT_EXTENSIONS.get(info.format or "")
    if expected is not None and path.suffix.lower() not in expected:
        found.append(
            (
                "warning",
                f"{rel}: holds {info.format} data despite its {path.suffix} name; "
                "it still loads. No action needed.",
            )
        )
    orientation = _exif_orientation(path)
    if orientation not in (None, 1):
        found.append(
            (
                "warning",
                f"{rel}: EXIF orientation {orientation} (viewers show it rotated); luss reads the stored "
                "pixels, which ImageNet-S masks are aligned with. No action needed (do not re-save it "
                "rotated).",
            )
        )
    return info.size, found


def _exif_orientation(path: Path) -> int | None:
    try:
        with Image.open(path) as img:
            return img.getexif().get(_EXIF_ORIENTATION)
    except (OSError, SyntaxError, ValueError):
        return None


def _reason(exc: BaseException) -> str:
    cause = exc.__cause__ or exc
    return f"{type(cause).__name__}: {cause}"


def check_mask(
    root: Path, rel: str, image_rel: str | None, size: tuple[int, int] | None, num_classes: int
) -> list[Finding]:
    empty = _stat_finding(root, rel, "mask")
    if empty is not None:
        return [empty]
    try:
        with Image.open(root / rel) as img:
            img.load()
            labels = decode_label_image(img, rel)
    except LabelFormatError as exc:
        return [("error", str(exc))]
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        return [
            (
                "error",
                f"{rel}: cannot read the mask PNG ({type(exc).__name__}: {exc}). {_RESTORE_MASK}",
            )
        ]
    found: list[Finding] = []
    height, width = labels.shape
    if size is not None and size != (width, height):
        found.append(
            (
                "error",
                f"{rel}: mask is {width}x{height} but image {image_rel} is "
                f"{size[0]}x{size[1]} (WxH). Fix: masks must be at the image's original "
                "resolution; restore the original image or mask.",
            )
        )
    present = np.flatnonzero(np.bincount(labels.ravel()))
    bad = present[(present > num_classes) & (present != IGNORE_ID)]
    if bad.size:
        shown = ", ".join(str(int(i)) for i in bad[:5]) + (", ..." if bad.size > 5 else "")
        found.append(
            (
                "error",
                f"{rel}: ids {shown} are outside 0..{num_classes} and {IGNORE_ID} (ignore). "
                f"Fix: this mask belongs to a dataset with more classes, or the train "
                f"folder is missing classes (it has {num_classes}).",
            )
        )
    return found


def check_chunk(job: CheckJob) -> list[Finding]:
    """Every finding of a chunk; masks are decoded unless the images are only stat'ed or counted."""
    root = Path(job.root)
    found: list[Finding] = []
    for image_rel, mask_rel in job.pairs:
        size = None
        if image_rel is not None:
            size, image_found = check_image(root, image_rel, job.image_check)
            found.extend(image_found)
        if mask_rel is None:
            continue
        if job.image_check in ("none", "stat"):
            empty = _stat_finding(root, mask_rel, "mask") if job.image_check == "stat" else None
            found.extend([] if empty is None else [empty])
        else:
            found.extend(check_mask(root, mask_rel, image_rel, size, job.num_classes))
    return found

"""Opening dataset images robustly.

ImageNet holds a few odd files: CMYK and greyscale JPEGs, and a PNG saved with a ``.JPEG`` name.
Everything downstream expects 8-bit RGB, so :func:`load_rgb_image` converts once, here. Pixels are
kept in stored order (no EXIF rotation), because ImageNet-S masks are aligned with the stored pixels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from tools.errors import DamagedImageError, DatasetError

# PIL's own errors for a file it cannot parse or decode. DecompressionBombError is not an OSError.
_READ_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)

NATIVE_MODES = frozenset({"RGB"})


@dataclass(frozen=True)
class ImageInfo:
    """What the file header says, without decoding pixels. ``size`` is ``(width, height)``."""

    path: Path
    format: str | None
    mode: str
    size: tuple[int, int]

    @property
    def needs_conversion(self) -> bool:
        return self.mode not in NATIVE_MODES


def _unreadable(path: Path, exc: BaseException) -> DamagedImageError:
    return DamagedImageError(
        f"{path}: cannot read this image ({type(exc).__name__}: {exc}). The file is damaged, truncated "
        "or not an image. Fix: copy it again from the original archive, or delete it (and its mask).",
        str(path),
    )


def image_info(path: str | os.PathLike[str]) -> ImageInfo:
    """Format, mode and ``(width, height)`` from the header only (fast: no pixel decoding).

    A truncated file usually passes this check; only :func:`load_rgb_image` decodes every pixel.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            info = ImageInfo(path=path, format=img.format, mode=img.mode, size=(img.width, img.height))
    except FileNotFoundError:
        raise
    except _READ_ERRORS as exc:
        raise _unreadable(path, exc) from exc
    if info.size[0] <= 0 or info.size[1] <= 0:
        raise DatasetError(f"{path}: image header says size {info.size}. Fix: replace the file.")
    return info


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """``(width, height)`` read from the header only."""
    return image_info(path).size


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode -> ``RGB``. Alpha is dropped (not composited): masks cover transparent pixels too."""
    if img.mode == "RGB":
        return img
    if img.mode == "P" and "transparency" in img.info:
        # Going through RGBA avoids PIL's warning about byte transparency in palette images.
        img = img.convert("RGBA")
    if img.mode in ("I;16", "I", "F"):
        # 16/32-bit greyscale: scale into 0..255 instead of letting convert() clip.
        arr = np.asarray(img, dtype=np.float64)
        hi = float(arr.max()) if arr.size else 0.0
        arr = np.clip(arr * (255.0 / hi), 0, 255) if hi > 255 else np.clip(arr, 0, 255)
        img = Image.fromarray(arr.astype(np.uint8))
    return img.convert("RGB")


def load_rgb_image(path: str | os.PathLike[str]) -> Image.Image:
    """Decode the whole file and return an ``RGB`` image of the stored ``(width, height)``.

    CMYK, greyscale (L), palette (P) and LA/RGBA files are converted. A missing file raises
    ``FileNotFoundError``; an unreadable or truncated one raises :class:`DatasetError` naming it.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            # load() decodes every pixel, so a truncated file fails here rather than later in a worker.
            img.load()
            return to_rgb(img)
    except FileNotFoundError:
        raise
    except _READ_ERRORS as exc:
        raise _unreadable(path, exc) from exc

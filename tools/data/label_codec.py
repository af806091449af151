"""The ImageNet-S label PNG encoding: 8-bit RGB, ``id = R + 256 * G``, ``B = 0``.

``0`` is background, ``1..C`` are classes, ``1000`` is the ignored region of ground truth (stored
as RGB (232, 3, 0)). Decoding casts to int32 *before* multiplying, so nothing overflows uint8.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from tools.atomic_io import atomic_write_bytes
from tools.errors import LabelFormatError

BACKGROUND_ID = 0
IGNORE_ID = 1000
MAX_ID = 256 * 256 - 1


def decode_label_rgb(rgb: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` uint8 -> ``[H, W]`` int32 ids (``R + 256 * G``)."""
    if rgb.ndim != 3 or rgb.shape[2] < 2:
        raise ValueError(f"expected an [H, W, 3] RGB array, got shape {rgb.shape}")
    return rgb[:, :, 0].astype(np.int32) + 256 * rgb[:, :, 1].astype(np.int32)


def encode_label_rgb(labels: np.ndarray) -> np.ndarray:
    """``[H, W]`` integer ids -> ``[H, W, 3]`` uint8 (``R = id % 256, G = id // 256, B = 0``)."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"expected an [H, W] label array, got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > MAX_ID):
        raise ValueError(f"label ids must be in 0..{MAX_ID}, got {labels.min()}..{labels.max()}")
    ids = labels.astype(np.int32)
    rgb = np.zeros((*ids.shape, 3), dtype=np.uint8)
    rgb[:, :, 0] = ids % 256
    rgb[:, :, 1] = ids // 256
    return rgb


def label_png_bytes(labels: np.ndarray) -> bytes:
    """Encode ids as the bytes of an 8-bit RGB PNG."""
    buf = io.BytesIO()
    Image.fromarray(encode_label_rgb(labels)).save(buf, format="PNG")
    return buf.getvalue()


def write_label_png(path: str | os.PathLike[str], labels: np.ndarray) -> None:
    """Write ids as an RGB PNG atomically (parent folders are created)."""
    atomic_write_bytes(path, label_png_bytes(labels))


def decode_label_image(img: Image.Image, source: str = "<image>") -> np.ndarray:
    """Decode an opened PIL image in the ImageNet-S encoding; ``source`` names it in errors."""
    if img.mode != "RGB":
        raise LabelFormatError(
            f"{source}: label PNG has mode {img.mode!r}, expected 8-bit 'RGB' with id = R + 256*G "
            "(the official evaluator fails on other modes). Re-encode it with "
            "tools.data.label_codec.write_label_png."
        )
    rgb = np.asarray(img)
    if rgb[:, :, 2].any():
        raise LabelFormatError(
            f"{source}: blue channel is not zero; this is not an ImageNet-S label PNG "
            "(id = R + 256*G, B = 0). Was a colour visualisation saved instead of the ids?"
        )
    return decode_label_rgb(rgb)


def read_label_png(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an ImageNet-S label PNG -> ``[H, W]`` int32 ids. Errors name the file."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            return decode_label_image(img, str(path))
    except FileNotFoundError:
        raise
    except LabelFormatError:
        raise
    except (OSError, SyntaxError, ValueError) as exc:
        raise LabelFormatError(f"{path}: cannot read as a PNG ({exc}).") from exc

"""Photometric augmentations of the SwAV recipe (spec 3.1) on PIL images, driven by a numpy Generator.

Each function mirrors the torchvision (PIL backend) / SwAV transform it names, with the same
parameter ranges, so crops look like the reference's; the random stream is our own (a
``numpy.random.Generator``), which makes a sample reproducible from ``(seed, epoch, index)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

IMAGENET_MEAN = (0.485, 0.456, 0.406)
# SwAV's std has 0.228 where ImageNet's is 0.229; every reference repo kept the typo, and their
# checkpoints were trained with it, so it is the default here (pass (0.229, 0.224, 0.225) to fix it).
SWAV_STD = (0.228, 0.224, 0.225)


@dataclass(frozen=True)
class ColorJitterSpec:
    """``RandomApply(ColorJitter(brightness, contrast, saturation, hue), p)``, torchvision semantics."""

    brightness: float = 0.8
    contrast: float = 0.8
    saturation: float = 0.8
    hue: float = 0.2
    p: float = 0.8

    @classmethod
    def swav(
        cls, strength: float = 1.0, p: float = 0.8, hue: float | None = None, saturation: float | None = None
    ) -> ColorJitterSpec:
        """SwAV's ``get_color_distortion(s)``: brightness, contrast, saturation ``0.8 s``, hue ``0.2 s``
        (``hue`` / ``saturation`` replace those amplitudes when given: 0 keeps every crop's hue /
        saturation while the rest is still jittered)."""
        if strength < 0:
            raise ValueError(f"colour strength must be >= 0, got {strength}")
        if saturation is None:
            saturation = 0.8 * strength
        if saturation < 0:
            raise ValueError(f"saturation jitter must be >= 0, got {saturation}")
        if hue is None:
            hue = 0.2 * strength
            if hue > 0.5:
                raise ValueError(
                    f"colour strength {strength} gives a hue jitter of 0.2 s = {hue:g}, above half a turn: "
                    "use a strength <= 2.5 or set the hue amplitude"
                )
        if not 0 <= hue <= 0.5:
            raise ValueError(f"hue jitter must be in [0, 0.5] of a turn, got {hue}")
        return cls(0.8 * strength, 0.8 * strength, saturation, hue, p)


def adjust_hue(img: Image.Image, hue_factor: float) -> Image.Image:
    """Rotate hue by ``hue_factor`` of a turn (``[-0.5, 0.5]``), as torchvision's PIL ``adjust_hue``."""
    h, s, v = img.convert("HSV").split()
    h_arr = np.asarray(h, dtype=np.uint8)
    # uint8 arithmetic wraps around, which is exactly a rotation of the hue circle.
    with np.errstate(over="ignore"):
        h_arr = h_arr + np.uint8(int(hue_factor * 255) % 256)
    return Image.merge("HSV", (Image.fromarray(h_arr), s, v)).convert("RGB")


def color_jitter(img: Image.Image, spec: ColorJitterSpec, rng: np.random.Generator) -> Image.Image:
    """Brightness, contrast, saturation and hue in a random order with factors drawn up front."""
    if rng.random() >= spec.p:
        return img
    order = rng.permutation(4)
    b = rng.uniform(max(0.0, 1 - spec.brightness), 1 + spec.brightness)
    c = rng.uniform(max(0.0, 1 - spec.contrast), 1 + spec.contrast)
    s = rng.uniform(max(0.0, 1 - spec.saturation), 1 + spec.saturation)
    h = rng.uniform(-spec.hue, spec.hue)
    for op in order:
        if op == 0:
            img = ImageEnhance.Brightness(img).enhance(b)
        elif op == 1:
            img = ImageEnhance.Contrast(img).enhance(c)
        elif op == 2:
            img = ImageEnhance.Color(img).enhance(s)
        else:
            img = adjust_hue(img, h)
    return img


def random_grayscale(img: Image.Image, p: float, rng: np.random.Generator) -> Image.Image:
    """With probability ``p``, luminance copied to all three channels (torchvision ``RandomGrayscale``)."""
    if rng.random() < p:
        return img.convert("L").convert("RGB")
    return img


def random_gaussian_blur(
    img: Image.Image, p: float, radius: tuple[float, float], rng: np.random.Generator
) -> Image.Image:
    """SwAV ``PILRandomGaussianBlur``: with probability ``p``, a PIL Gaussian blur of radius ``U(radius)``."""
    if rng.random() < p:
        return img.filter(ImageFilter.GaussianBlur(radius=rng.uniform(*radius)))
    return img


def to_normalized_chw(
    img: Image.Image, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = SWAV_STD
) -> np.ndarray:
    """``ToTensor`` + ``Normalize``: uint8 ``[H, W, 3]`` -> float32 ``[3, H, W]`` = ``(x/255 - mean)/std``."""
    arr = np.asarray(img, dtype=np.float32)
    scale = 1.0 / (255.0 * np.asarray(std, dtype=np.float32))
    offset = np.asarray(mean, dtype=np.float32) / np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray((arr * scale - offset).transpose(2, 0, 1))

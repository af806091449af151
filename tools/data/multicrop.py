"""SwAV multi-crop samples with the P2P overlap grids (spec 3.1), numpy/PIL only (no framework tensors).

A sample is built entirely from a ``numpy.random.Generator`` seeded by ``(seed, epoch, index)``, so any
worker process, or a resumed run, rebuilds exactly the same crops.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from tools.data.augment import (
    IMAGENET_MEAN,
    SWAV_STD,
    ColorJitterSpec,
    color_jitter,
    random_gaussian_blur,
    random_grayscale,
    to_normalized_chw,
)
from tools.data.images import load_rgb_image
from tools.data.overlap_grid import overlap_grid


@dataclass(frozen=True)
class MultiCropSpec:
    """Crop groups: ``counts[g]`` crops of ``sizes[g]`` pixels with area scale in ``[min, max]_scales[g]``.

    Crops 0 and 1 (the first group) are the pair whose overlap grids P2P uses, so ``counts[0] >= 2``.
    ``std`` defaults to the SwAV value with its 0.228 typo (see :mod:`tools.data.augment`).
    """

    sizes: Sequence[int] = (224, 96)
    counts: Sequence[int] = (2, 6)
    min_scales: Sequence[float] = (0.14, 0.05)
    max_scales: Sequence[float] = (1.0, 0.14)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter: ColorJitterSpec = field(default_factory=ColorJitterSpec)
    grayscale_p: float = 0.2
    blur_p: float = 0.5
    blur_radius: tuple[float, float] = (0.1, 2.0)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = SWAV_STD

    def __post_init__(self) -> None:
        n = len(self.sizes)
        if not (len(self.counts) == len(self.min_scales) == len(self.max_scales) == n):
            raise ValueError("sizes, counts, min_scales and max_scales must have the same length")
        if self.counts[0] < 2:
            raise ValueError("the first crop group needs at least 2 crops (the P2P pair)")

    @property
    def num_crops(self) -> int:
        return int(sum(self.counts))

    def crop_settings(self) -> list[tuple[int, float, float]]:
        """``(size, min_scale, max_scale)`` for every crop, in crop order."""
        out = []
        groups = zip(self.sizes, self.counts, self.min_scales, self.max_scales, strict=True)
        for size, count, lo, hi in groups:
            out.extend([(int(size), float(lo), float(hi))] * int(count))
        return out


@dataclass(frozen=True)
class CropRect:
    """Where a crop came from: ``(left, top, w, h)`` in original pixels, and whether it was mirrored."""

    left: int
    top: int
    width: int
    height: int
    flipped: bool

    @property
    def rect(self) -> tuple[int, int, int, int]:
        return (self.left, self.top, self.width, self.height)


def random_resized_crop_rect(
    width: int,
    height: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    rng: np.random.Generator,
) -> tuple[int, int, int, int]:
    """torchvision ``RandomResizedCrop.get_params``: ``(left, top, w, h)``; 10 tries, then a centre crop."""
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return left, top, w, h
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        w, h = int(round(height * max(ratio))), height
    else:
        w, h = width, height
    return (width - w) // 2, (height - h) // 2, w, h


def make_crop(
    img: Image.Image,
    size: int,
    scale: tuple[float, float],
    spec: MultiCropSpec,
    rng: np.random.Generator,
) -> tuple[np.ndarray, CropRect]:
    """One augmented crop ``float32 [3, size, size]`` and where it came from."""
    left, top, w, h = random_resized_crop_rect(img.width, img.height, scale, spec.ratio, rng)
    # Resizing a box is crop + bilinear resize (PIL antialiases when shrinking, as torchvision's PIL path).
    crop = img.resize((size, size), Image.BILINEAR, box=(left, top, left + w, top + h))
    flipped = bool(rng.random() < spec.flip_p)
    if flipped:
        crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
    crop = color_jitter(crop, spec.jitter, rng)
    crop = random_grayscale(crop, spec.grayscale_p, rng)
    crop = random_gaussian_blur(crop, spec.blur_p, spec.blur_radius, rng)
    return to_normalized_chw(crop, spec.mean, spec.std), CropRect(left, top, w, h, flipped)


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of one sample; independent streams for every ``(seed, epoch, index)``."""
    return np.random.default_rng(np.random.SeedSequence([seed, epoch, index]))


class MultiCropDataset:
    """``samples[i]`` -> ``(crops, grid_q, grid_k, overlaps)``, numpy only.

    ``crops``: list of ``spec.num_crops`` float32 ``[3, s, s]`` arrays in crop order; ``grid_q``,
    ``grid_k``: float32 ``[grid_size, grid_size, 2]`` over the overlap of crops 0 and 1 (see
    :func:`tools.data.overlap_grid.overlap_grid`); ``overlaps``: bool ``[]`` (a 0-d array, so it
    collates to ``[B]``). Call :meth:`set_epoch` before each epoch: the crops depend on it.
    """

    def __init__(
        self,
        samples: Sequence[str | os.PathLike[str]],
        spec: MultiCropSpec,
        grid_size: int = 7,
        seed: int = 0,
    ):
        self.samples = list(samples)
        self.spec = spec
        self.grid_size = grid_size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def crops_with_rects(self, index: int) -> tuple[list[np.ndarray], list[CropRect]]:
        """All crops of sample ``index`` and their rectangles (the grids are derived from these)."""
        rng = sample_rng(self.seed, self.epoch, index)
        img = load_rgb_image(self.samples[index])
        crops, rects = [], []
        for size, lo, hi in self.spec.crop_settings():
            crop, rect = make_crop(img, size, (lo, hi), self.spec, rng)
            crops.append(crop)
            rects.append(rect)
        return crops, rects

    def __getitem__(self, index: int) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
        crops, rects = self.crops_with_rects(index)
        q, k = rects[0], rects[1]
        grid_q, grid_k, overlaps = overlap_grid(q.rect, k.rect, q.flipped, k.flipped, self.grid_size)
        return crops, grid_q, grid_k, np.asarray(overlaps)

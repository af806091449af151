"""Stage 3 data: (train image, pseudo-label) pairs with joint augmentation (spec section 7.1).

A sample is a random resized crop (scale ``(min_scale, 1)``, ratio ``(3/4, 4/3)``) resized to
``crop_size``: **bilinear** for the image, **nearest** for the labels; then a horizontal flip with
probability 0.5, applied to both; then ImageNet normalisation of the image only. Labels are int32 ids
``0..C`` with ``1000`` = ignore. Everything is numpy/PIL so the worker-process ``BatchLoader`` can
build batches; every sample's randomness comes from ``(seed, epoch, index)``, so a resumed run sees
the same crops.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from tools.data.imagenet_s import Sample
from tools.data.images import load_rgb_image
from tools.data.label_codec import IGNORE_ID, read_label_png
from tools.data.multicrop import random_resized_crop_rect, sample_rng
from tools.errors import DatasetError
from tools.predict.labels import nearest_resize_labels
from tools.predict.preprocess import to_normalized_chw

CROP_RATIO = (3 / 4, 4 / 3)


class MissingPseudoLabelsError(DatasetError):
    """Stage 3 needs one pseudo-label PNG per train image, written by ``luss cluster``."""


def check_pseudo_labels(samples: Sequence[Sample], label_dir: Path) -> None:
    """Raise naming the missing files (and the fix) unless every sample has its pseudo-label PNG."""
    missing = [label_dir / s.png_name() for s in samples if not (label_dir / s.png_name()).is_file()]
    if missing:
        error = MissingPseudoLabelsError(
            f"{len(missing)} of {len(samples)} train images have no pseudo-label PNG under {label_dir} "
            f"(first: {missing[0]}). Run `luss cluster --run RUN --data D` first; it writes "
            "RUN/cluster/pseudo-labels/train/<wnid>/<stem>.png for every train image."
        )
        error.problems = [str(p) for p in missing]
        raise error


def crop_pair(
    image: Image.Image,
    labels: np.ndarray,
    crop_size: int,
    min_scale: float,
    rng: np.random.Generator,
    flip_p: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Joint transform: ``image`` (PIL), ``labels`` ``[H, W]`` -> uint8 ``[S, S, 3]``, int32 ``[S, S]``."""
    width, height = image.size
    left, top, w, h = random_resized_crop_rect(width, height, (min_scale, 1.0), CROP_RATIO, rng)
    crop = image.resize((crop_size, crop_size), Image.BILINEAR, box=(left, top, left + w, top + h))
    label_crop = nearest_resize_labels(labels[top : top + h, left : left + w], crop_size, crop_size)
    pixels = np.asarray(crop)
    if rng.random() < flip_p:
        pixels, label_crop = pixels[:, ::-1], label_crop[:, ::-1]
    return np.ascontiguousarray(pixels), np.ascontiguousarray(label_crop, dtype=np.int32)


class PseudoLabelDataset:
    """``dataset[i]`` -> ``(image float32 [3, S, S] normalised, labels int32 [S, S])``.

    ``label_dir/<wnid>/<stem>.png`` holds the pseudo-label of ``samples[i]`` (RGB, id = R + 256*G,
    0 = background, 1..num_classes = clusters, 1000 = ignore). Any other id is an error naming the file.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        label_dir: str | Path,
        num_classes: int,
        crop_size: int = 224,
        min_scale: float = 0.08,
        seed: int = 0,
        flip_p: float = 0.5,
    ):
        self.samples = list(samples)
        self.label_dir = Path(label_dir)
        self.num_classes = num_classes
        self.crop_size = crop_size
        self.min_scale = min_scale
        self.seed = seed
        self.flip_p = flip_p
        self.epoch = 0
        check_pseudo_labels(self.samples, self.label_dir)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def label_path(self, sample: Sample) -> Path:
        """The label PNG of ``sample``: ``label_dir/<wnid>/<stem>.png``."""
        return self.label_dir / sample.png_name()

    def load_labels(self, sample: Sample, width: int, height: int) -> np.ndarray:
        path = self.label_path(sample)
        labels = read_label_png(path)
        bad = (labels > self.num_classes) & (labels != IGNORE_ID)
        if bad.any():
            raise DatasetError(
                f"{path}: pseudo-label id {int(labels[bad].max())} is outside 0..{self.num_classes} "
                f"(and is not the ignore id {IGNORE_ID}). Was it written for another number of clusters? "
                "Re-run `luss cluster` for this run."
            )
        if labels.shape != (height, width):  # the reference nearest-resizes to the image size
            labels = nearest_resize_labels(labels, height, width)
        return labels

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        sample = self.samples[index]
        image = load_rgb_image(sample.image_path)
        labels = self.load_labels(sample, *image.size)
        rng = sample_rng(self.seed, self.epoch, index)
        pixels, label_crop = crop_pair(image, labels, self.crop_size, self.min_scale, rng, self.flip_p)
        return to_normalized_chw(pixels), label_crop

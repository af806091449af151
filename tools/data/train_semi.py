"""The train-semi split: 10 labelled train images per class (ImageNet-S), the only pixel labels the
distance-matching and semi-supervised protocols may use."""

from __future__ import annotations

from pathlib import Path

from tools.data.imagenet_s import ImageNetS, Sample
from tools.errors import DatasetError


def labelled_train_semi(dataset: ImageNetS, purpose: str) -> tuple[list[Sample], Path]:
    """``(train-semi samples, their mask folder)``; raises naming what is missing and where it comes from."""
    if not dataset.has_split("train-semi"):
        raise DatasetError(
            f"{dataset.split_dir('train-semi')}: missing. {purpose} needs DATA/train-semi/ and "
            "DATA/train-semi-segmentation/: `luss prepare` writes them (`luss demo-data` too, since "
            "version 3)."
        )
    samples = dataset.samples("train-semi")
    mask_dir = dataset.segmentation_dir("train-semi")
    missing = [s.png_name() for s in samples if not (mask_dir / s.png_name()).is_file()]
    if missing:
        raise DatasetError(
            f"{mask_dir}: {len(missing)} of {len(samples)} train-semi images have no mask (first: "
            f"{missing[0]}). Fix: rerun `luss prepare` (it extracts them from the annotation zip)."
        )
    return samples, mask_dir

"""Checking an ImageNet-S tree before a long run: every problem names the file and the fix.

Two phases: listing (folders, class names, image/mask pairing; in-process, only ``os.scandir``) and
file checks (decode images, read masks; in a process pool for large trees). Paths in messages are
relative to the dataset root. Lists keep the first ``MAX_LISTED`` problems; the counts keep all.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from tools.data.imagenet_s import IMAGE_EXTENSIONS, SEGMENTATION_DIRS, list_class_dirs
from tools.data.images import image_info, load_rgb_image
from tools.data.label_codec import IGNORE_ID, decode_label_image
from tools.errors import DatasetError, LabelFormatError
from tools.progress import progress_bar

ImageCheck = Literal["header", "full", "none"]
KNOWN_SPLITS = ("train", "validation", "test", "train-semi")
REQUIRED_SPLITS = ("train", "validation")
MAX_LISTED = 200
_PARALLEL_MIN_FILES = 400  # below this a process pool costs more than it saves
_CHUNK = 256
# Header format -> the extensions it is expected under; anything else is only a warning.
_FORMAT_EXTENSIONS = {"JPEG": {".jpeg", ".jpg"}, "PNG": {".png"}}


@dataclass
class SplitCounts:
    """What one split holds. ``masks`` is ``None`` for a split without a segmentation folder."""

    classes: int = 0
    images: int = 0
    masks: int | None = None


@dataclass
class ValidationReport:
    """Outcome of :func:`validate_dataset`. ``ok`` is true when there is no error (warnings allowed)."""

    root: Path
    num_classes: int = 0
    counts: dict[str, SplitCounts] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error_count: int = 0
    warning_count: int = 0

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def error(self, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_LISTED:
            self.errors.append(message)

    def warning(self, message: str) -> None:
        self.warning_count += 1
        if len(self.warnings) < MAX_LISTED:
            self.warnings.append(message)


# ------------------------------------------------------------------------------------- file checks


Finding = tuple[str, str]  # ("error" | "warning", message)
Pair = tuple[str | None, str | None]  # root-relative (image, mask)


@dataclass(frozen=True)
class _Job:
    """A chunk of files to check. ``pairs`` hold root-relative ``(image, mask)``; either may be None."""

    root: str
    image_check: ImageCheck
    num_classes: int
    pairs: tuple[Pair, ...]


def _check_image(root: Path, rel: str, how: ImageCheck) -> tuple[tuple[int, int] | None, list[Finding]]:
    """Returns the image's ``(width, height)`` (None if unreadable) and its findings."""
    path = root / rel
    try:
        info = image_info(path)
        if how == "full":
            load_rgb_image(path)
    except (DatasetError, FileNotFoundError) as exc:
        return None, [
            (
                "error",
                f"{rel}: unreadable or truncated image ({_reason(exc)}). Fix: copy it "
                "again from the original archive, or delete it (and its mask).",
            )
        ]
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
    return info.size, found


def _reason(exc: BaseException) -> str:
    cause = exc.__cause__ or exc
    return f"{type(cause).__name__}: {cause}"


def _check_mask(
    root: Path, rel: str, image_rel: str | None, size: tuple[int, int] | None, num_classes: int
) -> list[Finding]:
    path = root / rel
    try:
        with Image.open(path) as img:
            img.load()
            labels = decode_label_image(img, rel)
    except LabelFormatError as exc:
        return [("error", str(exc))]
    except (OSError, SyntaxError, ValueError) as exc:
        return [
            (
                "error",
                f"{rel}: cannot read the mask PNG ({type(exc).__name__}: {exc}). Fix: restore "
                "it from the ImageNet-S annotation zip.",
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


def _check_chunk(job: _Job) -> list[Finding]:
    root = Path(job.root)
    found: list[Finding] = []
    for image_rel, mask_rel in job.pairs:
        size = None
        if image_rel is not None:
            size, image_found = _check_image(root, image_rel, job.image_check)
            found.extend(image_found)
        if mask_rel is not None:
            found.extend(_check_mask(root, mask_rel, image_rel, size, job.num_classes))
    return found


def _resolve_workers(workers: int, total: int) -> int:
    if workers <= 0:
        workers = (os.cpu_count() or 1) if total >= _PARALLEL_MIN_FILES else 1
    return max(1, min(workers, total))


def _run_checks(
    jobs: Sequence[_Job], total: int, workers: int, progress: bool, sink: Callable[[list[Finding]], None]
) -> None:
    workers = min(workers, max(1, len(jobs)))
    with contextlib.ExitStack() as stack:
        # "spawn", and before the bar's refresh thread exists: a fork would copy that thread.
        pool = (
            stack.enter_context(ProcessPoolExecutor(workers, mp_context=get_context("spawn")))
            if workers > 1
            else None
        )
        advance = stack.enter_context(progress_bar("Checking files", total, progress))
        results = pool.map(_check_chunk, jobs) if pool is not None else map(_check_chunk, jobs)
        for job, found in zip(jobs, results, strict=True):
            sink(found)
            advance(len(job.pairs))


# ----------------------------------------------------------------------------------------- listing


def _files(folder: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_file() and not e.name.startswith("."))


def _is_image(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS


def _list_split(root: Path, split: str, report: ValidationReport) -> dict[str, list[str]]:
    """``{wnid: [image file names]}`` of a split; reports layout problems."""
    split_dir = root / split
    stray = [n for n in _files(split_dir) if _is_image(n)]
    if stray:
        report.error(
            f"{split}/: {len(stray)} images (e.g. {stray[0]}) lie directly in the split folder. "
            f"Fix: ImageNet-S keeps them in class folders, {split}/<wnid>/<name>.JPEG."
        )
    classes = {}
    for wnid in list_class_dirs(split_dir):
        names = [n for n in _files(split_dir / wnid) if _is_image(n)]
        dupes = [s for s, c in Counter(Path(n).stem for n in names).items() if c > 1]
        for stem in dupes:
            report.error(
                f"{split}/{wnid}/{stem}.*: several images share this name stem, so their outputs "
                "(<wnid>/<stem>.png) would collide. Fix: keep one of them."
            )
        if not names:
            report.warning(f"{split}/{wnid}/: class folder holds no images. Fix: fill it or remove it.")
        classes[wnid] = names
    return classes


def _pair_masks(
    root: Path, split: str, images: dict[str, list[str]], report: ValidationReport
) -> tuple[list[Pair], int]:
    """Match ``<split>/<wnid>/<stem>.*`` with ``<seg>/<wnid>/<stem>.png``; returns pairs and mask count."""
    seg = SEGMENTATION_DIRS[split]
    seg_dir = root / seg
    pairs: list[Pair] = []
    n_masks = 0
    mask_classes = set(list_class_dirs(seg_dir))
    for wnid in sorted(set(images) | mask_classes):
        masks: dict[str, str] = {}
        if wnid in mask_classes:
            for name in _files(seg_dir / wnid):
                if Path(name).suffix == ".png":
                    masks[Path(name).stem] = name
                else:
                    report.warning(f"{seg}/{wnid}/{name}: not a .png mask; ignored. Fix: remove it.")
        n_masks += len(masks)
        for name in images.get(wnid, []):
            stem = Path(name).stem
            mask = masks.pop(stem, None)
            if mask is None:
                report.error(
                    f"{split}/{wnid}/{name}: no mask {seg}/{wnid}/{stem}.png. Fix: restore the mask "
                    f"from the ImageNet-S annotation zip, or remove the image."
                )
            pairs.append((f"{split}/{wnid}/{name}", None if mask is None else f"{seg}/{wnid}/{mask}"))
        for stem, mask in sorted(masks.items()):
            report.error(
                f"{seg}/{wnid}/{mask}: mask without an image {split}/{wnid}/{stem}.JPEG. Fix: "
                "restore the image, or delete the mask."
            )
    return pairs, n_masks


def _plan_split(root: Path, split: str, classes: set[str], report: ValidationReport) -> list[Pair]:
    """List one split, report its layout problems and return the files to check."""
    if not (root / split).is_dir():
        report.error(
            f"{split}/: split folder is missing. Fix: create it as ImageNet-S datapreparation "
            f"does, {split}/<wnid>/<name>.JPEG (or leave it out with --split)."
        )
        return []
    images = _list_split(root, split, report)
    counts = SplitCounts(classes=len(images), images=sum(len(v) for v in images.values()))
    report.counts[split] = counts
    if counts.images == 0:
        report.error(f"{split}/: split holds no images. Fix: expected {split}/<wnid>/<name>.JPEG.")
    if split != "train":
        for wnid in sorted(set(images) - classes):
            report.error(
                f"{split}/{wnid}/: class folder is not a train class (not in train/). Fix: "
                "rename it to its train wnid, or add the class to train/."
            )
        for wnid in sorted(classes - set(images)):
            report.warning(f"{split}/: no folder for train class {wnid}.")
    seg = SEGMENTATION_DIRS.get(split)
    if seg is not None and (root / seg).is_dir():
        pairs, counts.masks = _pair_masks(root, split, images, report)
        return pairs
    if seg is not None and split != "test":  # test masks exist only on the server (or in demo data)
        report.error(
            f"{seg}/: segmentation folder is missing. Fix: unpack the ImageNet-S annotation "
            f"zip so that {seg}/<wnid>/<name>.png sits next to {split}/."
        )
    return [(f"{split}/{w}/{n}", None) for w in sorted(images) for n in images[w]]


def _default_splits(root: Path) -> list[str]:
    return [s for s in KNOWN_SPLITS if s in REQUIRED_SPLITS or (root / s).is_dir()]


def validate_dataset(
    root: str | os.PathLike[str],
    splits: Iterable[str] | None = None,
    check_train_images: ImageCheck = "header",
    workers: int = 0,
    progress: bool = True,
) -> ValidationReport:
    """Check an ImageNet-S tree; never raises for a problem in the data (it is in the report).

    ``splits``: which of ``train, validation, test, train-semi`` to check; default train and
    validation (required) plus test/train-semi when present. Class ids come from ``train/``.
    ``check_train_images``: ``header`` opens each train image's header (fast), ``full`` decodes it
    (finds truncated files), ``none`` only counts. Validation/test images are always fully decoded.
    ``workers``: processes, 0 = one per CPU for large trees and in-process for small ones.
    """
    root = Path(root)
    report = ValidationReport(root=root)
    if not root.is_dir():
        report.error(
            f"{root}: dataset folder not found. Fix: pass the ImageNet-S root (holding train/, "
            "validation/, validation-segmentation/), or create one with `luss demo-data`."
        )
        return report
    chosen = _default_splits(root) if splits is None else list(dict.fromkeys(splits))
    unknown = [s for s in chosen if s not in KNOWN_SPLITS]
    if unknown:
        raise ValueError(f"unknown split(s) {unknown}; choose from {list(KNOWN_SPLITS)}")
    if check_train_images not in ("header", "full", "none"):
        raise ValueError(f"check_train_images must be header, full or none, got {check_train_images!r}")

    train_dir = root / "train"
    class_source = train_dir if train_dir.is_dir() else root / "validation"
    classes = set(list_class_dirs(class_source)) if class_source.is_dir() else set()
    report.num_classes = len(classes)

    work: list[tuple[ImageCheck, list[Pair]]] = []
    for split in chosen:
        pairs = _plan_split(root, split, classes, report)
        how: ImageCheck = check_train_images if split == "train" else "full"
        if pairs and how != "none":
            work.append((how, pairs))

    total = sum(len(pairs) for _, pairs in work)
    n_workers = _resolve_workers(workers, total)
    # Several chunks per worker balance the load; capped so one chunk stays cheap to pickle.
    size = _CHUNK if n_workers == 1 else max(1, min(_CHUNK, math.ceil(total / (4 * n_workers))))
    jobs = [
        _Job(str(root), how, report.num_classes, tuple(pairs[i : i + size]))
        for how, pairs in work
        for i in range(0, len(pairs), size)
    ]

    def sink(found: list[Finding]) -> None:
        for level, message in found:
            (report.error if level == "error" else report.warning)(message)

    _run_checks(jobs, total, n_workers, progress, sink)
    return report

"""Checking an ImageNet-S tree before a long run: every problem names the file and the fix.

Two phases: listing (folders, class names, image/mask pairing; in-process, only ``os.scandir``) and
file checks (decode images, read masks; in a process pool for large trees). Paths in messages are
relative to the dataset root. Lists keep the first ``MAX_LISTED`` problems; the counts keep all.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

from tools.data.file_checks import IMAGE_CHECKS, CheckJob, Finding, ImageCheck, Pair, check_chunk
from tools.data.imagenet_s import IMAGE_EXTENSIONS, SEGMENTATION_DIRS, list_class_dirs
from tools.errors import DatasetError
from tools.progress import progress_bar
from tools.workers import chunk_size, worker_count

KNOWN_SPLITS = ("train", "validation", "test", "train-semi")
REQUIRED_SPLITS = ("train", "validation")
MAX_LISTED = 200
_PARALLEL_MIN_FILES = 1000  # below this a process pool costs more than it saves (bench_validate.py)
_CHUNK = 256


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


def _run_checks(
    jobs: Sequence[CheckJob], total: int, workers: int, progress: bool, sink: Callable[[list[Finding]], None]
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
        results = pool.map(check_chunk, jobs) if pool is not None else map(check_chunk, jobs)
        for job, found in zip(jobs, results, strict=True):
            sink(found)
            advance(len(job.pairs))


# ----------------------------------------------------------------------------------------- listing


# Files that copy tools, viewers and OSes leave behind; luss ignores them but says so.
_STRAY_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}


def _files(root: Path, rel: str, report: ValidationReport, wanted: Callable[[str], bool]) -> list[str]:
    """Sorted names of the regular files in ``root/rel`` that ``wanted`` accepts; reports the rest:
    broken symlinks (errors, a loader would silently miss them) and stray files (warnings)."""
    names = []
    for entry in os.scandir(root / rel):
        if entry.is_symlink() and not os.path.exists(entry.path):
            report.error(
                f"{rel}/{entry.name}: broken symlink (its target {os.readlink(entry.path)} is missing). "
                "Fix: restore the target or delete the link."
            )
        elif entry.is_file() and not entry.name.startswith(".") and wanted(entry.name):
            names.append(entry.name)
        elif entry.is_file():
            kind = "system file" if entry.name.lower() in _STRAY_NAMES else "stray file"
            report.warning(f"{rel}/{entry.name}: {kind}, not part of ImageNet-S; ignored. Fix: delete it.")
    return sorted(names)


def _is_image(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS


def _check_name(rel: str, report: ValidationReport) -> None:
    name = Path(rel).name
    if " " in name or not name.isascii():
        report.warning(
            f"{rel}: the name holds a space or non-ASCII characters; luss reads it, and its outputs "
            "(<wnid>/<stem>.png, the submission zip) keep the name. Fix: rename it to its ImageNet-S "
            "name if it has one."
        )


def _list_split(root: Path, split: str, report: ValidationReport) -> dict[str, list[str]]:
    """``{wnid: [image file names]}`` of a split; reports layout problems."""
    stray = _files(root, split, report, _is_image)
    if stray:
        report.error(
            f"{split}/: {len(stray)} images (e.g. {stray[0]}) lie directly in the split folder. "
            f"Fix: ImageNet-S keeps them in class folders, {split}/<wnid>/<name>.JPEG."
        )
    classes = {}
    for wnid in list_class_dirs(root / split):
        names = _files(root, f"{split}/{wnid}", report, _is_image)
        for name in names:
            _check_name(f"{split}/{wnid}/{name}", report)
        dupes = [s for s, c in Counter(Path(n).stem for n in names).items() if c > 1]
        for stem in dupes:
            report.error(
                f"{split}/{wnid}/{stem}.*: several images share this name stem, so their outputs "
                "(<wnid>/<stem>.png) would collide. Fix: keep one of them."
            )
        if not names and split == "train":
            report.error(
                f"train/{wnid}/: class folder holds no images, yet it counts as a class (ids are the rank "
                "of the train folders). Fix: fill it from the original archive, or remove it."
            )
        elif not names:
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
            for name in _files(root, f"{seg}/{wnid}", report, lambda n: Path(n).suffix == ".png"):
                masks[Path(name).stem] = name
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


def _plan_split(
    root: Path, split: str, classes: set[str], report: ValidationReport, masks: bool = True
) -> list[Pair]:
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
    seg = SEGMENTATION_DIRS.get(split) if masks else None
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
    check_train_images: ImageCheck = "full",
    workers: int = 0,
    progress: bool = True,
    check_other_images: ImageCheck = "full",
    masks: bool = True,
) -> ValidationReport:
    """Check an ImageNet-S tree; never raises for a problem in the data (it is in the report).

    ``splits``: which of ``train, validation, test, train-semi`` to check; default train and
    validation (required) plus test/train-semi when present. Class ids come from ``train/``.
    ``check_train_images``: ``full`` decodes every pixel (finds truncated files), ``header`` opens
    each header, ``stat`` only finds missing and empty files, ``none`` only counts.
    ``check_other_images``: the same for the other splits; their masks are decoded unless it is
    ``stat`` or ``none``. ``workers``: processes, 0 = one per CPU for large trees and in-process for
    small ones (or when only ``stat`` runs). ``masks``: False skips the segmentation folders.
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
    for check in (check_train_images, check_other_images):
        if check not in IMAGE_CHECKS:
            raise ValueError(f"image checks are one of {IMAGE_CHECKS}, got {check!r}")

    train_dir = root / "train"
    class_source = train_dir if train_dir.is_dir() else root / "validation"
    classes = set(list_class_dirs(class_source)) if class_source.is_dir() else set()
    report.num_classes = len(classes)

    work: list[tuple[ImageCheck, list[Pair]]] = []
    for split in chosen:
        pairs = _plan_split(root, split, classes, report, masks)
        how: ImageCheck = check_train_images if split == "train" else check_other_images
        if pairs and how != "none":
            work.append((how, pairs))

    total = sum(len(pairs) for _, pairs in work)
    only_stat = all(how == "stat" for how, _ in work)
    n_workers = worker_count(1 if only_stat and workers == 0 else workers, total, _PARALLEL_MIN_FILES)
    # Several chunks per worker balance the load; capped so one chunk stays cheap to pickle.
    size = _CHUNK if n_workers == 1 else chunk_size(total, n_workers, _CHUNK)
    jobs = [
        CheckJob(str(root), how, report.num_classes, tuple(pairs[i : i + size]))
        for how, pairs in work
        for i in range(0, len(pairs), size)
    ]

    def sink(found: list[Finding]) -> None:
        for level, message in found:
            (report.error if level == "error" else report.warning)(message)

    _run_checks(jobs, total, n_workers, progress, sink)
    return report


def require_usable_dataset(
    root: str | os.PathLike[str],
    splits: Sequence[str],
    stage: str,
    say: Callable[[str], None] = print,
    masks: bool = True,
) -> ValidationReport:
    """The cheap part of ``luss validate-data`` that every stage runs before it starts: the layout, the
    image/mask pairing, broken symlinks and missing or empty files of ``splits`` (no decoding; a
    listing and one ``stat`` per file, about a second for ImageNet-S50's 64k train images).
    Raises :class:`DatasetError` listing every error; warnings are only counted. ``masks``: False
    for stages that read only images (predict, refine: scoring reads the masks and names its own)."""
    report = validate_dataset(
        root, splits, "stat", workers=1, progress=False, check_other_images="stat", masks=masks
    )
    if not report.ok:
        first = report.errors[0]
        first = first if first.startswith(str(root)) else f"{Path(root) / first}"
        more = (
            f" (and {report.error_count - 1} more, listed below relative to it)"
            if report.error_count > 1
            else ""
        )
        raise DatasetError(
            f"{stage}: {first}{more}. Then run `luss validate-data {root}` (decodes every file) before "
            "starting again.",
            problems=report.errors if report.error_count > 1 else [],
        )
    if report.warning_count:
        say(
            f"{stage}: {root}: {report.warning_count} data warning(s); `luss validate-data {root}` "
            "lists them."
        )
    return report

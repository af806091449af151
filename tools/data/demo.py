"""The built-in demo dataset: a small procedural ImageNet-S tree that exercises the whole pipeline.

```
OUT/train/<wnid>/<wnid>_<n>.JPEG
OUT/validation/<wnid>/ILSVRC2012_val_<8 digits>.JPEG   OUT/validation-segmentation/<wnid>/<same>.png
OUT/test/<wnid>/ILSVRC2012_val_<8 digits>.JPEG         OUT/test-segmentation/<wnid>/<same>.png
OUT/train-segmentation/<wnid>/<wnid>_<n>.png   (masks of train images: only to measure, never trained on)
OUT/train-semi/<wnid>/<wnid>_<n>.JPEG  OUT/train-semi-segmentation/<wnid>/<wnid>_<n>.png   copies of the
    first ``semi_per_class`` train images of each class and their masks, as ImageNet-S's train-semi
    (the pixel labels the distance-matching and semi-supervised protocols may use)
OUT/demo.json   (spec, class descriptions)             OUT/.complete  (written last)
```
Wnids are ``n90000001, n90000002, ...`` so sorted order is class order (class id = rank). Images
have varied sizes (shorter side around ``size``, aspect 3/4..4/3). Each image is a pure function of
``(seed, split, class, index)``, so a re-run, with any number of workers, writes identical bytes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image

from tools.atomic_io import atomic_write_json, atomic_write_text
from tools.data.demo_shapes import MAX_CLASSES, SceneObject, class_looks, render_scene
from tools.data.imagenet_s import SEGMENTATION_DIRS, TRAIN_GROUND_TRUTH_DIR
from tools.data.label_codec import label_png_bytes
from tools.errors import DatasetError
from tools.progress import progress_bar
from tools.workers import chunk_size, worker_count

COMPLETE_MARKER = ".complete"
DEMO_JSON = "demo.json"
DEMO_VERSION = 4  # 4: hue families 45 degrees apart, larger objects, greyer clutter (the demo recipe's data)
JPEG_QUALITY = 90
SPLIT_CODES = {"train": 0, "validation": 1, "test": 2}  # part of every image's seed
SECOND_OBJECT_P = 0.25
IGNORE_BAND_P = 0.5
_PARALLEL_MIN_IMAGES = 1500  # below this a process pool costs more than it saves


@dataclass(frozen=True)
class DemoSpec:
    """Size of the demo dataset. ``size`` is the nominal shorter image side in pixels."""

    classes: int = 8
    train_per_class: int = 48
    val_per_class: int = 8
    test_per_class: int = 6
    size: int = 112
    seed: int = 0
    semi_per_class: int = 4  # train-semi: labelled copies of the first train images of each class

    def __post_init__(self) -> None:
        if not 1 <= self.classes <= MAX_CLASSES:
            raise ValueError(f"classes must be in 1..{MAX_CLASSES}, got {self.classes}")
        if min(self.train_per_class, self.val_per_class, self.test_per_class, self.semi_per_class) < 0:
            raise ValueError("images per class must be >= 0")
        if self.size < 16:
            raise ValueError(f"size must be >= 16 pixels, got {self.size}")

    def per_class(self, split: str) -> int:
        return {"train": self.train_per_class, "validation": self.val_per_class, "test": self.test_per_class}[
            split
        ]

    @property
    def semi_count(self) -> int:
        """train-semi images per class (never more than there are train images)."""
        return min(self.semi_per_class, self.train_per_class)

    @property
    def num_images(self) -> int:
        return self.classes * (self.train_per_class + self.val_per_class + self.test_per_class)


def wnid_for(class_index: int) -> str:
    """0-based class index -> a wnid-like folder name; fixed width, so sorting keeps class order."""
    return f"n{90000001 + class_index:08d}"


@dataclass(frozen=True)
class SampleJob:
    """One image (and mask, for validation/test) to write under ``root``."""

    root: str
    split: str
    class_index: int
    index: int
    stem: str
    spec: DemoSpec

    @property
    def wnid(self) -> str:
        return wnid_for(self.class_index)


def plan_samples(root: Path, spec: DemoSpec) -> list[SampleJob]:
    """Every image of the dataset. Val/test stems share one ``ILSVRC2012_val_`` numbering, shuffled
    (seeded) so file order within a class says nothing about the class."""
    jobs: list[SampleJob] = []
    n_eval = spec.classes * (spec.val_per_class + spec.test_per_class)
    numbers = np.random.default_rng([spec.seed, 7919]).permutation(n_eval) + 1
    next_eval = 0
    for split in ("train", "validation", "test"):
        for c in range(spec.classes):
            for n in range(spec.per_class(split)):
                if split == "train":
                    stem = f"{wnid_for(c)}_{n + 1}"
                else:
                    stem = f"ILSVRC2012_val_{int(numbers[next_eval]):08d}"
                    next_eval += 1
                jobs.append(SampleJob(str(root), split, c, n, stem, spec))
    return jobs


@dataclass(frozen=True)
class RenderedSample:
    """``image`` ``[H, W, 3]`` uint8 and ``labels`` ``[H, W]`` int32 (0, 1..C, 1000)."""

    image: np.ndarray
    labels: np.ndarray
    class_ids: tuple[int, ...] = field(default=())


def render_sample(job: SampleJob) -> RenderedSample:
    """Draw one image; the generator is seeded by ``(seed, split, class, index)`` only."""
    spec = job.spec
    rng = np.random.default_rng([spec.seed, SPLIT_CODES[job.split], job.class_index, job.index])
    short = int(round(spec.size * rng.uniform(0.875, 1.125)))
    aspect = float(np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))))
    if aspect >= 1:
        height, width = short, int(round(short * aspect))
    else:
        height, width = int(round(short / aspect)), short
    looks = class_looks(spec.classes)
    ids = [job.class_index + 1]
    if spec.classes > 1 and rng.random() < SECOND_OBJECT_P:
        ids.append((job.class_index + int(rng.integers(1, spec.classes))) % spec.classes + 1)
    band = int(rng.integers(1, 3)) if rng.random() < IGNORE_BAND_P else 0
    objects = [SceneObject(i, looks[i - 1]) for i in ids]
    image, labels = render_scene(height, width, objects, rng, ignore_band=band)
    return RenderedSample(image, labels, tuple(ids))


def write_sample(job: SampleJob) -> None:
    """Render and write one image (JPEG) and, for validation/test, its label PNG."""
    sample = render_sample(job)
    root = Path(job.root)
    img_path = root / job.split / job.wnid / f"{job.stem}.JPEG"
    img_path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    # Explicit encoder settings: the same bytes on every run.
    Image.fromarray(sample.image).save(
        buf, format="JPEG", quality=JPEG_QUALITY, subsampling=2, optimize=False
    )
    img_path.write_bytes(buf.getvalue())
    mask_dir = TRAIN_GROUND_TRUTH_DIR if job.split == "train" else SEGMENTATION_DIRS.get(job.split)
    if mask_dir is not None:
        png_path = root / mask_dir / job.wnid / f"{job.stem}.png"
        png_path.parent.mkdir(parents=True, exist_ok=True)
        png_path.write_bytes(label_png_bytes(sample.labels))


def _write_chunk(jobs: list[SampleJob]) -> int:
    import cv2

    cv2.setNumThreads(1)  # one process per core already
    for job in jobs:
        write_sample(job)
    return len(jobs)


def describe(spec: DemoSpec) -> dict:
    """The content of ``demo.json``: spec, per-class look and counts."""
    looks = class_looks(spec.classes)
    return {
        "format": "luss-demo-dataset",
        "version": DEMO_VERSION,
        "spec": asdict(spec),
        "classes": {wnid_for(i): look.description for i, look in enumerate(looks)},
        "looks": {wnid_for(i): asdict(look) for i, look in enumerate(looks)},
        "counts": {
            **{s: spec.classes * spec.per_class(s) for s in ("train", "validation", "test")},
            "train-semi": spec.classes * spec.semi_count,
        },
    }


def copy_train_semi(root: Path, spec: DemoSpec) -> None:
    """``train-semi/`` and its masks: copies of the first ``semi_count`` train images of each class (the
    real train-semi images are train images too), so no other file of the dataset changes."""
    for c in range(spec.classes):
        wnid = wnid_for(c)
        for n in range(spec.semi_count):
            stem = f"{wnid}_{n + 1}"
            for src_dir, dst_dir, ext in (
                ("train", "train-semi", "JPEG"),
                (TRAIN_GROUND_TRUTH_DIR, SEGMENTATION_DIRS["train-semi"], "png"),
            ):
                target = root / dst_dir / wnid / f"{stem}.{ext}"
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(root / src_dir / wnid / f"{stem}.{ext}", target)


def is_current_demo(out_dir: str | os.PathLike[str]) -> bool:
    """Whether ``out_dir`` holds a complete demo dataset of this generator's :data:`DEMO_VERSION`
    (`make demo-data` regenerates an older one: the demo recipe is tuned on the current data)."""
    out = Path(out_dir)
    try:
        meta = json.loads((out / DEMO_JSON).read_text())
    except (OSError, ValueError):
        return False
    return (out / COMPLETE_MARKER).is_file() and meta.get("version") == DEMO_VERSION


def _check_target(out_dir: Path, overwrite: bool) -> bool:
    """True when ``out_dir`` exists and must be replaced. Refuses anything that may be user data."""
    if not out_dir.exists():
        return False
    if not out_dir.is_dir():
        raise DatasetError(f"{out_dir}: exists and is not a folder. Fix: pick another output path.")
    if not any(out_dir.iterdir()):
        return True
    if not overwrite:
        raise DatasetError(
            f"{out_dir}: folder exists and is not empty. Fix: pass --overwrite (overwrite=True) to "
            "replace an earlier demo dataset, or pick another output path."
        )
    if not (out_dir / DEMO_JSON).is_file():
        # --overwrite deletes the folder: only ever one this generator made.
        raise DatasetError(
            f"{out_dir}: not a luss demo dataset (no {DEMO_JSON}), so --overwrite will not delete it. "
            "Fix: pick another output path, or remove the folder yourself."
        )
    return True


def _run_jobs(jobs: list[SampleJob], workers: int, progress: bool) -> None:
    workers = worker_count(workers, len(jobs), _PARALLEL_MIN_IMAGES)
    size = chunk_size(len(jobs), workers, 64)
    chunks = [jobs[i : i + size] for i in range(0, len(jobs), size)]
    with contextlib.ExitStack() as stack:
        # "spawn" before the bar starts its refresh thread; a fork would copy it.
        pool = (
            stack.enter_context(ProcessPoolExecutor(workers, mp_context=get_context("spawn")))
            if workers > 1
            else None
        )
        advance = stack.enter_context(progress_bar("Drawing demo images", len(jobs), progress))
        results = pool.map(_write_chunk, chunks) if pool is not None else map(_write_chunk, chunks)
        for done in results:
            advance(done)


def generate_demo_dataset(
    out_dir: str | os.PathLike[str],
    spec: DemoSpec | None = None,
    progress: bool = True,
    overwrite: bool = False,
    workers: int = 0,
) -> Path:
    """Write the demo dataset to ``out_dir`` and return its path.

    Drawn into a hidden sibling folder and renamed into place at the end, so ``out_dir`` is either
    absent/old or complete; ``out_dir/.complete`` is written last. ``workers``: processes, 0 = one
    per CPU for large specs and in-process for small ones (same bytes either way).
    """
    spec = spec or DemoSpec()
    out_dir = Path(out_dir)
    replace = _check_target(out_dir, overwrite)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        _run_jobs(plan_samples(tmp, spec), workers, progress)
        copy_train_semi(tmp, spec)
        atomic_write_json(tmp / DEMO_JSON, describe(spec))
        if replace:
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".old", dir=out_dir.parent))
            os.replace(out_dir, old / "data")
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_text(out_dir / COMPLETE_MARKER, f"luss demo dataset, {spec.num_images} images\n")
    return out_dir


def timed_generate(out_dir: str | os.PathLike[str], spec: DemoSpec, **kwargs) -> tuple[Path, float]:
    """:func:`generate_demo_dataset` plus its wall time in seconds (for the CLI summary)."""
    start = time.perf_counter()
    path = generate_demo_dataset(out_dir, spec, **kwargs)
    return path, time.perf_counter() - start

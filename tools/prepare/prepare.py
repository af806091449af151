"""``prepare_imagenet_s``: ILSVRC2012 + the annotation zip -> ``OUT/ImageNetS<C>/``, resumable.

Order: read the lists, check the zip, look up every source (all problems at once), check the disk,
write what is not there yet (atomically, with a progress bar), then run ``validate-data`` on the
result. ``OUT/ImageNetS<C>/.luss-prepare.json`` records the options and, last, ``"complete": true``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from tools.atomic_io import atomic_write_json
from tools.data.split_lists import SplitLists, load_split_lists
from tools.data.validate import ValidationReport, validate_dataset
from tools.errors import DatasetError, PrepareError
from tools.prepare.annotations import index_annotation_zip
from tools.prepare.execute import check_space, is_done, remove_stale_temporaries, run_tasks
from tools.prepare.plan import plan_tasks
from tools.prepare.sources import find_imagenet
from tools.progress import progress_bar

STATE_FILE = ".luss-prepare.json"
SPLITS = ("train", "validation", "test", "train-semi")


@dataclass(frozen=True)
class PrepareResult:
    root: Path
    entries: int  # files and links in the tree
    written: int  # of them, written by this run
    bytes_written: int
    seconds: float
    report: ValidationReport | None


def dataset_root(out: str | os.PathLike[str], benchmark: int) -> Path:
    """``OUT/ImageNetS<C>``, or ``OUT`` itself when it is already named so."""
    out = Path(out)
    name = f"ImageNetS{benchmark}"
    return out if out.name == name else out / name


def _start_state(root: Path, lists: SplitLists, copy: bool, imagenet: Path, annotations: Path) -> None:
    state_path = root / STATE_FILE
    if state_path.is_file():
        state = json.loads(state_path.read_text())
        if state.get("copy") != copy:
            was = "with --copy" if state.get("copy") else "with symlinks (no --copy)"
            raise PrepareError(
                f"{root}: an earlier `luss prepare` built it {was}. Fix: rerun it the same way, or delete "
                f"{root} to start over in the other mode."
            )
    elif root.is_dir() and any(root.iterdir()):
        raise PrepareError(
            f"{root}: exists and holds files, but not from `luss prepare` (no {STATE_FILE}). Fix: choose an "
            "empty --out, or delete that folder."
        )
    root.mkdir(parents=True, exist_ok=True)
    state = {"benchmark": lists.benchmark, "copy": copy, "imagenet": str(imagenet)}
    atomic_write_json(state_path, {**state, "annotations": str(annotations), "complete": False})


def prepare_imagenet_s(
    imagenet: str | os.PathLike[str],
    annotations: str | os.PathLike[str],
    out: str | os.PathLike[str],
    benchmark: int = 50,
    copy: bool = False,
    *,
    lists: SplitLists | None = None,
    workers: int = 4,
    validate: bool = True,
    train_images: str = "header",
    progress: bool = True,
) -> PrepareResult:
    """Build (or finish building) the ImageNet-S tree; ``lists`` defaults to the packaged official ones."""
    started = time.perf_counter()
    lists = lists or load_split_lists(benchmark)
    root = dataset_root(out, lists.benchmark)
    if root.exists() and not root.is_dir():
        raise PrepareError(f"{root}: is a file. Fix: pass --out a folder.")
    source = find_imagenet(imagenet)
    masks = index_annotation_zip(annotations, lists)
    tasks = plan_tasks(lists, source, masks, copy)
    try:
        _start_state(root, lists, copy, source.root, Path(annotations).resolve())
    except OSError as exc:
        raise PrepareError(
            f"{root}: cannot be created or written ({exc.strerror or exc}). Fix: pass an --out you may "
            "write to, on a disk with free space."
        ) from None
    remove_stale_temporaries(root)
    todo = [t for t in tasks if not is_done(root, t)]
    needed = sum(t.size for t in todo)
    check_space(root, needed, copy)
    label = f"Preparing {lists.name} ({'copies' if copy else 'train as symlinks'})"
    with progress_bar(label, len(todo), enabled=progress) as advance:
        run_tasks(root, todo, annotations, advance, workers)
    report = None
    if validate:
        report = validate_dataset(root, splits=SPLITS, check_train_images=train_images, progress=progress)  # type: ignore[arg-type]
        if not report.ok:
            raise DatasetError(
                f"{root}: prepared, but validate-data found {report.error_count} error(s), e.g. "
                f"{report.errors[:3]}. Fix: replace the source files named there and rerun `luss prepare`.",
            )
    state = json.loads((root / STATE_FILE).read_text())
    atomic_write_json(root / STATE_FILE, {**state, "complete": True})
    return PrepareResult(
        root=root,
        entries=len(tasks),
        written=len(todo),
        bytes_written=needed,
        seconds=time.perf_counter() - started,
        report=report,
    )

"""What ``luss prepare`` writes, file by file, before anything is written.

```
train/<wnid>            symlink to ILSVRC2012 train/<wnid> (or, with --copy, a folder of copies)
train/<merged wnid>/    S919's five merged classes: a folder of per-file links (or copies) from both
                        ImageNet classes, as the official script does
train-full              S919 only, symlink mode: a symlink to the whole ILSVRC2012 train/
validation/ test/       copies of ILSVRC2012 val images, in the folders the mapping lists say
train-semi/             copies of the listed train images
validation-segmentation/ train-semi-segmentation/   the listed masks, from the annotation zip
```
Every source is looked up here, so a missing one is reported, all of them at once, before a byte is
written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tools.data.split_lists import SplitLists, semi_source_wnid
from tools.errors import MissingSourceError
from tools.prepare.annotations import MaskEntry
from tools.prepare.sources import ImageNetSource

TaskKind = Literal["copy", "link", "extract"]
SHOWN_MISSING = 20


@dataclass(frozen=True)
class FileTask:
    """One entry of the tree. ``dest`` is relative to the ImageNet-S root; ``source`` is a file or
    folder (copy, link), or a zip member (extract); ``size`` is the bytes it writes (0 for a link)."""

    kind: TaskKind
    dest: str
    source: str
    size: int


def _file_size(path: Path) -> int | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size if os.path.isfile(path) else None


def _class_files(folder: Path) -> list[str]:
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if not e.name.startswith(".") and e.is_file())


def _train_tasks(lists: SplitLists, source: ImageNetSource, copy: bool, missing: list[str]) -> list[FileTask]:
    tasks: list[FileTask] = []
    for wnid in lists.categories:
        folders = lists.train_sources(wnid)
        absent = [w for w in folders if not source.train_class_dir(w).is_dir()]
        if absent:
            missing.extend(f"{source.train_class_dir(w)}/ (ImageNet-S train/{wnid})" for w in absent)
            continue
        if not copy and len(folders) == 1:
            tasks.append(FileTask("link", f"train/{wnid}", str(source.train_class_dir(wnid)), 0))
            continue
        for folder in folders:
            names = _class_files(source.train_class_dir(folder))
            if not names:
                missing.append(f"{source.train_class_dir(folder)}/: no images (ImageNet-S train/{wnid})")
            for name in names:
                path = source.train_image(folder, name)
                kind: TaskKind = "copy" if copy else "link"
                size = (_file_size(path) or 0) if copy else 0
                tasks.append(FileTask(kind, f"train/{wnid}/{name}", str(path), size))
    if lists.merges and not copy:
        tasks.append(FileTask("link", "train-full", str(source.train_dir), 0))
    return tasks


def _copy(dest: str, path: Path, missing: list[str]) -> FileTask | None:
    size = _file_size(path)
    if size is None:
        missing.append(f"{path} (for {dest})")
        return None
    return FileTask("copy", dest, str(path), size)


def plan_tasks(
    lists: SplitLists, source: ImageNetSource, masks: list[MaskEntry], copy: bool
) -> list[FileTask]:
    """Every file and link of the tree; raises :class:`MissingSourceError` listing absent sources."""
    missing: list[str] = []
    tasks = _train_tasks(lists, source, copy, missing)
    for split, pairs in (("validation", lists.validation), ("test", lists.test)):
        for src, dst in pairs:
            task = _copy(f"{split}/{dst}", source.val_image(src), missing)
            if task:
                tasks.append(task)
    for image, _ in lists.train_semi:
        path = source.train_image(semi_source_wnid(image), image.split("/")[-1])
        task = _copy(f"train-semi/{image}", path, missing)
        if task:
            tasks.append(task)
    tasks.extend(FileTask("extract", m.dest, m.member, m.size) for m in masks)
    if missing:
        layout = "sorted into wnid folders" if source.val_sorted else "flat"
        raise MissingSourceError(
            f"{source.root}: {len(missing)} source images or folders that {lists.name} needs are missing "
            f"(val/ read as {layout}). Fix: use a complete ILSVRC2012 copy (train/ with 1,000 class folders, "
            "val/ with all 50,000 images), or copy the files below back from the original archives.",
            missing,
        )
    return tasks

"""Writing the planned tree: each entry atomically (a temporary name, then a rename), so a kill
leaves only whole files and at most a few hidden temporaries, which the next run removes. A rerun
skips every entry that is already right (same size, or a link to the same target)."""

from __future__ import annotations

import errno
import os
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tools.atomic_io import DiskFullError, atomic_path
from tools.errors import NoSpaceError, PrepareError
from tools.prepare.annotations import AnnotationReader
from tools.prepare.plan import FileTask

_FULL_DISK = {errno.ENOSPC, errno.EDQUOT}
SPACE_MARGIN_BYTES = 64 * 1024 * 1024
_BATCH = 1024  # tasks handed to the threads at a time, so the first error stops the run soon


def is_done(root: Path, task: FileTask) -> bool:
    dest = root / task.dest
    if task.kind == "link":
        return dest.is_symlink() and os.readlink(dest) == task.source
    try:
        st = dest.lstat()
    except FileNotFoundError:
        return False
    return not dest.is_symlink() and st.st_size == task.size


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB"


def check_space(root: Path, needed: int, copy: bool) -> None:
    """Refuse to start when the disk holding ``root`` cannot take ``needed`` more bytes."""
    free = shutil.disk_usage(root).free
    if needed + SPACE_MARGIN_BYTES > free:
        hint = " or drop --copy (train/ as symlinks takes no space)" if copy else ""
        raise NoSpaceError(
            f"{root}: needs {_gb(needed)} more but its disk has {_gb(free)} free. Fix: free space, choose "
            f"another --out{hint}; what is already there is kept, rerun to continue."
        )


def remove_stale_temporaries(root: Path) -> int:
    """Delete ``.<name>.*.tmp`` files a killed run left (symlinked folders are not entered)."""
    removed = 0
    for folder, _, files in os.walk(root):
        for name in files:
            if name.startswith(".") and name.endswith(".tmp"):
                os.unlink(os.path.join(folder, name))
                removed += 1
    return removed


def _copy_file(source: str, tmp: Path) -> None:
    shutil.copyfile(source, tmp)


def _write(root: Path, task: FileTask, reader: AnnotationReader | None) -> None:
    dest = root / task.dest
    if dest.is_symlink() or (task.kind == "link" and dest.is_dir()):
        # A link from an earlier run with other sources, or a folder where a link belongs: replace it.
        if dest.is_symlink():
            dest.unlink()
        else:
            shutil.rmtree(dest)
    if task.kind == "link":
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.link.tmp")
        if tmp.is_symlink():
            tmp.unlink()
        os.symlink(task.source, tmp, target_is_directory=Path(task.source).is_dir())
        os.replace(tmp, dest)
        return
    with atomic_path(dest, suffix=".tmp") as tmp:
        if task.kind == "copy":
            _copy_file(task.source, tmp)
        else:
            assert reader is not None
            tmp.write_bytes(reader.read(task.source))


def _no_space(path: Path, reason: str) -> NoSpaceError:
    return NoSpaceError(
        f"{path}: the disk is full ({reason}). Fix: free space or choose another --out, then rerun the "
        "same command: finished files are kept."
    )


def run_tasks(
    root: Path,
    tasks: list[FileTask],
    annotations: str | os.PathLike[str],
    advance: Callable[[int], None],
    workers: int = 4,
) -> None:
    """Write every task not yet done; ``advance(1)`` after each. Raises :class:`NoSpaceError` on a full
    disk and :class:`PrepareError` on any other write error, naming the file."""
    local = threading.local()
    readers: list[AnnotationReader] = []
    lock = threading.Lock()

    def reader() -> AnnotationReader:
        if not hasattr(local, "reader"):
            local.reader = AnnotationReader(annotations)
            with lock:
                readers.append(local.reader)
        return local.reader

    def one(task: FileTask) -> None:
        if not is_done(root, task):
            try:
                _write(root, task, reader() if task.kind == "extract" else None)
            except DiskFullError:  # atomic_io's own wording of a full disk: prepare's, with its fix
                raise _no_space(root / task.dest, "No space left on device") from None
            except OSError as exc:
                if exc.errno in _FULL_DISK:
                    raise _no_space(root / task.dest, exc.strerror) from None
                raise PrepareError(
                    f"{root / task.dest}: cannot be written from {task.source} ({exc.strerror or exc}). Fix: "
                    "check the permissions of both, then rerun the same command."
                ) from None
        advance(1)

    try:
        if workers <= 1:
            for task in tasks:
                one(task)
        else:
            with ThreadPoolExecutor(workers) as pool:
                try:
                    for start in range(0, len(tasks), _BATCH):
                        for _ in pool.map(one, tasks[start : start + _BATCH]):
                            pass
                except BaseException:
                    pool.shutdown(wait=True, cancel_futures=True)  # stop at the first error
                    raise
    finally:
        for r in readers:
            r.close()

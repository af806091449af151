"""Atomic file writes: a reader never sees a half-written file, a crash never leaves one behind."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tools.errors import LussError

_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class DiskFullError(LussError):
    """The disk (or quota) filled up while a file was written; the file's previous version is intact."""


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to `target`; on success it is renamed over `target`.

    The temporary file lives in the same directory so the final `os.replace` is atomic. On any
    exception the temporary file is removed and `target` is left untouched. A full disk (``ENOSPC``,
    ``EDQUOT``) becomes one :class:`DiskFullError` that names `target` and says it is intact.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.",
        suffix=suffix if suffix is not None else target.suffix + ".tmp",
        dir=target.parent,
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
            kept = "its previous version is intact" if target.exists() else "nothing was left behind"
            raise DiskFullError(
                f"{target}: the disk filled up while writing it ({exc.strerror}); {kept}. Fix: free space "
                f"on the disk of {target.parent} (df -h), then rerun the same command (training stages "
                "with --resume continue from the last checkpoint)."
            ) from exc
        raise


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(target, text.encode("utf-8"))


def atomic_write_json(target: str | os.PathLike[str], obj: Any, indent: int | None = 2) -> None:
    atomic_write_text(target, json.dumps(obj, indent=indent, sort_keys=False) + "\n")

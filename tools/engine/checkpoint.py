"""Checkpoints: a plain dict pickled atomically. ``latest.pkl`` every epoch, ``ckp-<epoch>.pkl`` every
``checkpoint_freq`` epochs and at the end, only on rank 0."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.atomic_io import atomic_path
from tools.errors import LussError

FORMAT_VERSION = 1


@dataclass(frozen=True)
class CheckpointPaths:
    directory: Path

    @property
    def latest(self) -> Path:
        return self.directory / "latest.pkl"

    def snapshot(self, epoch: int) -> Path:
        return self.directory / f"ckp-{epoch:04d}.pkl"

    @property
    def final(self) -> Path:
        return self.directory / "final.pkl"


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    payload = {"format_version": FORMAT_VERSION, **payload}
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        pickle.dump(payload, fh, protocol=pickle.HIGHEST_PROTOCOL)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`. Errors name the file."""
    if not path.is_file():
        raise LussError(f"{path}: checkpoint not found. Run the stage that writes it first.")
    try:
        with open(path, "rb") as fh:
            payload = pickle.load(fh)
    except (pickle.UnpicklingError, EOFError, OSError, AttributeError, ImportError) as exc:
        raise LussError(f"{path}: not a readable luss checkpoint ({exc}). Delete it to start over.") from exc
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        raise LussError(f"{path}: not a luss checkpoint (format {payload.get('format_version')!r}).")
    return payload

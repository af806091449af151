"""Checkpoints: a plain dict pickled atomically. ``latest.pkl`` every epoch, ``ckp-<epoch>.pkl`` every
``checkpoint_freq`` epochs and at the end (the newest ``keep_checkpoints`` kept), only on rank 0.

Frozen weights (a frozen SAM encoder, ~360 MB for ViT-B) are not copied into every file: they are
written once to ``frozen-<sha256 prefix>.pkl`` next to the checkpoints, and each checkpoint names that
file and its digest under ``"frozen"``. :func:`load_checkpoint` puts them back into ``"model"``
(checking the digest), so a reader sees the whole state and resume is exact.
"""

from __future__ import annotations

import hashlib
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tools.atomic_io import atomic_path
from tools.errors import LussError

FORMAT_VERSION = 1
SNAPSHOT = re.compile(r"ckp-(\d+)\.pkl$")


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

    def rank_state(self, checkpoint: Path, rank: int) -> Path:
        """Rank ``rank``'s own task state (its SwAV queue) beside a resumable checkpoint of rank 0."""
        if checkpoint == self.latest:
            return self.directory / f"latest-rank{rank}.pkl"
        return checkpoint.with_name(f"{checkpoint.stem}-rank{rank}.pkl")

    def snapshots(self) -> list[Path]:
        """The ``ckp-<epoch>.pkl`` files, oldest first."""
        found = [p for p in self.directory.glob("ckp-*.pkl") if SNAPSHOT.match(p.name)]
        return sorted(found, key=lambda p: int(SNAPSHOT.match(p.name).group(1)))

    def prune_snapshots(self, keep: int) -> list[Path]:
        """Delete all but the newest ``keep`` snapshots (``keep`` 0 keeps all); returns the deleted."""
        if keep < 0:
            raise LussError(f"loop.keep_checkpoints={keep}: use a count >= 1, or 0 to keep every snapshot.")
        old = self.snapshots()[:-keep] if keep > 0 else []
        for path in old:
            path.unlink(missing_ok=True)
            for rank_file in self.directory.glob(f"{path.stem}-rank*.pkl"):
                rank_file.unlink(missing_ok=True)
        return old


def state_digest(state: dict[str, np.ndarray]) -> str:
    """sha256 over names, dtypes, shapes and bytes of a state dict (order-independent)."""
    h = hashlib.sha256()
    for key in sorted(state):
        value = np.ascontiguousarray(state[key])
        h.update(f"{key}|{value.dtype.str}|{value.shape}|".encode())
        h.update(value.tobytes())
    return h.hexdigest()


class FrozenWeights:
    """The frozen part of a model's state, written once per checkpoint folder and named by digest."""

    def __init__(self, state: dict[str, np.ndarray]):
        self.state = state
        self.digest = state_digest(state)

    def file_name(self) -> str:
        return f"frozen-{self.digest[:16]}.pkl"

    def split(self, model: dict[str, np.ndarray], directory: Path) -> tuple[dict[str, np.ndarray], dict]:
        """``model`` without the frozen keys, and the reference to store instead (file written once)."""
        target = directory / self.file_name()
        if not target.is_file():
            save_checkpoint(target, {"frozen_state": self.state, "sha256": self.digest})
        rest = {k: v for k, v in model.items() if k not in self.state}
        return rest, {"file": self.file_name(), "sha256": self.digest, "keys": len(self.state)}


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    payload = {"format_version": FORMAT_VERSION, **payload}
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        pickle.dump(payload, fh, protocol=pickle.HIGHEST_PROTOCOL)


class UnreadableCheckpointError(LussError):
    """A checkpoint file that is truncated, damaged or not a luss checkpoint at all."""


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`. Errors name the file."""
    if not path.is_file():
        raise LussError(f"{path}: checkpoint not found. Run the stage that writes it first.")
    try:
        with open(path, "rb") as fh:
            payload = pickle.load(fh)
    except Exception as exc:  # noqa: BLE001 - a damaged pickle raises almost anything
        raise UnreadableCheckpointError(
            f"{path}: not a readable luss checkpoint, truncated or damaged ({type(exc).__name__}: {exc}). "
            "Fix: training stages with --resume fall back to the newest ckp-*.pkl that loads; otherwise "
            "delete it and rerun the stage that writes it."
        ) from exc
    version = payload.get("format_version") if isinstance(payload, dict) else None
    if version != FORMAT_VERSION:
        raise UnreadableCheckpointError(
            f"{path}: not a luss checkpoint (a pickled {type(payload).__name__}, format {version!r}; "
            f"luss writes format {FORMAT_VERSION}). Was another program's file put here? Fix: move it away "
            "and rerun the stage that writes it."
        )
    ref = payload.get("frozen")
    if ref:
        payload["model"] = {**_frozen_state(path, ref), **payload["model"]}
    return payload


def _frozen_state(path: Path, ref: dict[str, Any]) -> dict[str, np.ndarray]:
    frozen = path.parent / ref["file"]
    if not frozen.is_file():
        raise LussError(
            f"{path} keeps its frozen weights in {frozen}, which is missing: copy the whole checkpoints "
            "folder (frozen-*.pkl included), or rerun the stage."
        )
    stored = load_checkpoint(frozen)
    state = stored.get("frozen_state", {})
    if stored.get("sha256") != ref["sha256"] or state_digest(state) != ref["sha256"]:
        raise LussError(f"{frozen} does not hold the frozen weights {path} was saved with (sha256 differs).")
    return state

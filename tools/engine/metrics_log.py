"""JSON-lines metrics log (one object per line), appended so a resumed run continues the same file."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from tools.atomic_io import atomic_write_text


class MetricsLog:
    def __init__(self, path: Path, enabled: bool = True):
        self.path = path
        self.enabled = enabled

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(clean) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def truncate_after(self, iteration: int) -> None:
        """Drop records past ``iteration`` (written after the checkpoint a resume starts from)."""
        if not self.enabled or not self.path.is_file():
            return
        kept = [json.dumps(r) for r in read_metrics(self.path) if r.get("iteration", -1) < iteration]
        atomic_write_text(self.path, "".join(line + "\n" for line in kept))

    def last_step_metrics(self) -> dict[str, float]:
        """The metrics of the last logged step (what a resume that trains nothing more reports)."""
        steps = [r for r in read_metrics(self.path) if "epoch_end" not in r and "lr" in r]
        skip = {"iteration", "epoch", "lr", "img_s"}
        return {k: v for k, v in steps[-1].items() if k not in skip} if steps else {}


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Every record; a line cut by a kill in the middle of a write is left out."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records

"""Damaged images a training stage met and skipped: each logged once, with its path, in
``<stage>/skipped.jsonl`` (``skipped-rank<r>.jsonl`` for the other ranks); over the config's limit the stage
stops with one error. ``luss report`` lists them, so nothing is dropped silently."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tools.engine.metrics_log import read_metrics
from tools.errors import DatasetError


def skipped_log_path(out_dir: Path, rank: int) -> Path:
    return out_dir / ("skipped.jsonl" if rank == 0 else f"skipped-rank{rank}.jsonl")


def read_skipped(out_dir: Path) -> list[dict]:
    """Every record of every rank's log (a line cut by a kill is left out)."""
    return [r for path in sorted(out_dir.glob("skipped*.jsonl")) for r in read_metrics(path)]


class SkippedImages:
    """Counts distinct skipped files across reruns of a stage (a resume meets the same file again)."""

    def __init__(self, out_dir: Path, rank: int, stage: str, limit: int, say: Callable[[str], None]):
        self.path = skipped_log_path(out_dir, rank)
        self.stage, self.limit, self.say = stage, limit, say
        self.seen = {r["path"] for r in read_skipped(out_dir) if "path" in r}

    def record(self, skipped: list[dict], epoch: int, iteration: int) -> None:
        for item in skipped:
            if item["path"] in self.seen:
                continue
            self.seen.add(item["path"])
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"epoch": epoch, "iteration": iteration, **item}) + "\n")
            self.say(
                f"{self.stage}: skipped damaged image {item['path']} ({len(self.seen)} of at most "
                f"{self.limit}; listed in {self.path})"
            )
        if len(self.seen) > self.limit:
            raise DatasetError(
                f"{self.stage}: {len(self.seen)} damaged images met while training, more than "
                f"{self.stage}.loop.max_skipped_images={self.limit}; the data changed under the run or was "
                f"never checked. They are listed in {self.path}. Fix: repair or remove them (`luss "
                f"validate-data DATA` finds them all), then rerun with --resume (or raise --set "
                f"{self.stage}.loop.max_skipped_images)."
            )

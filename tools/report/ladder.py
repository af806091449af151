"""The stage ladder: validation mIoU after each stage, from all background to SAM refinement.

The demo's version of SAMPASS's ablation. ``make bench-pipeline`` measures the full ladder (sibling
runs without saliency and with the other head) and saves it as ``RUN/ladder.json``; ``luss report``
shows that file, or the single-run ladder it can compute from the run itself.

``RUN/ladder.json``::

    {"source": "...", "seed": 31,
     "steps": [{"name": "all background", "miou": 9.25, "acc": 0.0, "detail": ""}, ...],
     "clusters": {"with saliency": {"cluster_accuracy": ..., "nmi": ..., "no_attention": {...}, ...}}}
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tools.atomic_io import atomic_write_json
from tools.run_layout import RunLayout

# The keys of RUN/cluster/report.json a ladder keeps per cluster run (older runs lack the last five).
CLUSTER_KEYS = (
    "cluster_accuracy",
    "nmi",
    "threshold",
    "validation_miou",
    "no_attention",
    "saliency",
    "train_pseudo_labels",
    "ground_truth_object",
)
ALL_BACKGROUND = "all background"
PSEUDO_LABELS = "pseudo-labels with saliency"
PSEUDO_LABELS_PLAIN = "pseudo-labels without saliency"
REFINE = "+ refine (SAM voting)"


def nested(raw: Any, *path: str) -> Any:
    """``raw[a][b]...``, or ``None`` where a key is missing (older runs lack the newer keys)."""
    for key in path:
        raw = raw.get(key) if isinstance(raw, dict) else None
    return raw


def finetune_step_name(head: str) -> str:
    return f"+ finetune ({head} head)"


@dataclass
class LadderStep:
    name: str  # the same across seeds and runs: "pseudo-labels with saliency"
    miou: float | None
    acc: float | None = None
    detail: str = ""  # what differs per run: "t = 0.72", "the preset's head"


@dataclass
class Ladder:
    source: str  # "make bench-pipeline" or "this run"
    steps: list[LadderStep]
    clusters: dict[str, dict[str, Any]] = field(default_factory=dict)  # cluster run -> its summary
    seed: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Ladder:
        steps = [LadderStep(**step) for step in raw["steps"]]
        return cls(str(raw["source"]), steps, dict(raw.get("clusters") or {}), raw.get("seed"))

    def miou(self, name: str) -> float | None:
        return next((s.miou for s in self.steps if s.name == name), None)


def read_cluster_report(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """``RUN/cluster/report.json``, or ``{}`` before the cluster stage wrote it."""
    path = RunLayout.at(run_dir).cluster_file("report.json")
    return json.loads(path.read_text()) if path.is_file() else {}


def cluster_summary(report: dict[str, Any]) -> dict[str, Any]:
    """The ladder's view of a cluster report: accuracy, NMI and the diagnostics that exist."""
    return {key: report[key] for key in CLUSTER_KEYS if key in report}


def pseudo_label_step(name: str, report: dict[str, Any]) -> LadderStep:
    """The cluster stage's validation labels at its chosen threshold (mIoU only: no Acc is scored)."""
    t = report.get("threshold")
    return LadderStep(name, report.get("validation_miou"), None, "" if t is None else f"t = {t:.2f}")


def score_step(name: str, result: Any, detail: str = "") -> LadderStep:
    """A step from a ``ScoreResult`` (``None``: not predicted yet)."""
    if result is None:
        return LadderStep(name, None, None, detail or "not predicted yet")
    return LadderStep(name, result.miou, result.acc, detail)


def write_ladder(run_dir: str | os.PathLike[str], ladder: Ladder) -> Path:
    path = RunLayout.at(run_dir).ladder_file
    atomic_write_json(path, ladder.to_json())
    return path


def read_ladder(run_dir: str | os.PathLike[str]) -> Ladder | None:
    """``RUN/ladder.json``, or ``None`` when absent or unreadable (the report then computes its own)."""
    path = RunLayout.at(run_dir).ladder_file
    if not path.is_file():
        return None
    try:
        return Ladder.from_json(json.loads(path.read_text()))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        return None

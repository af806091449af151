"""Where every stage of a run reads and writes. One place, so no module string-joins run paths.

```
RUN/config.yaml                    the run's resolved config (written by its first command)
RUN/config-history.jsonl           who created it and every later --set change (luss report shows it)
RUN/pretrain/  RUN/cluster/  RUN/finetune/          training stages (checkpoints, metrics.jsonl)
RUN/predict/<split>/<wnid>/<stem>.png              raw network predictions (+ match.json on validation)
RUN/refine/<split>/<wnid>/<stem>.png               SAM-voted predictions (+ match.json on validation)
RUN/distance/<split>/<wnid>/<stem>.png             distance-matching predictions (class ids; luss distance)
RUN/distance/embeddings.npz                        train-semi instance embeddings they are matched to
RUN/refine/sam-masks/<split>/<wnid>/<stem>.npz     cached SAM masks (re-voting never re-runs SAM)
RUN/cluster/pseudo-labels/train/<wnid>/<stem>.png  Stage-2 pseudo-labels (finetune trains on them)
RUN/cluster/pixel_attention/  centroids.npy  assignments-<split>.txt  report.json   Stage-2 outputs
RUN/cluster/validation/<wnid>/<stem>.png|.npy      raw cluster labels + attention maps (threshold sweep)
RUN/cluster/saliency/<wnid>/<stem>.png             MaskCut saliency of train images (optional)
RUN/cluster/.<step>.done                           end of a cluster sub-step (attention, kmeans, ...)
RUN/<stage>/.done                                  written last; a rerun skips a finished stage
RUN/ladder.json  RUN/report.html                   stage ladder (make bench-pipeline), run report
```
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

STAGES = ("pretrain", "cluster", "finetune", "predict", "refine", "pack", "distance")


@dataclass(frozen=True)
class RunLayout:
    root: Path

    @classmethod
    def at(cls, root: str | os.PathLike[str]) -> RunLayout:
        return cls(Path(root))

    @property
    def config_file(self) -> Path:
        return self.root / "config.yaml"

    @property
    def config_history_file(self) -> Path:
        return self.root / "config-history.jsonl"

    @property
    def ladder_file(self) -> Path:
        """The stage ladder that ``make bench-pipeline`` measured for this run (``luss report`` shows it)."""
        return self.root / "ladder.json"

    @property
    def report_file(self) -> Path:
        return self.root / "report.html"

    def stage_dir(self, stage: str) -> Path:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
        return self.root / stage

    def done_marker(self, stage: str) -> Path:
        return self.stage_dir(stage) / ".done"

    def is_done(self, stage: str) -> bool:
        return self.done_marker(stage).is_file()

    def predict_dir(self, split: str) -> Path:
        return self.root / "predict" / split

    def distance_dir(self, split: str) -> Path:
        return self.root / "distance" / split

    def refine_dir(self, split: str) -> Path:
        return self.root / "refine" / split

    def sam_cache_dir(self, split: str) -> Path:
        return self.root / "refine" / "sam-masks" / split

    def pseudo_label_dir(self, split: str = "train") -> Path:
        """Stage-2 pseudo-labels ``<wnid>/<stem>.png`` (written by cluster, read by finetune)."""
        return self.root / "cluster" / "pseudo-labels" / split

    def cluster_file(self, name: str) -> Path:
        """``RUN/cluster/<name>``: ``centroids.npy``, ``assignments-<split>.txt``, ``report.json``."""
        return self.root / "cluster" / name

    def pixel_attention_dir(self) -> Path:
        """Engine output (checkpoints, metrics) of Stage-2.1 pixel-attention training."""
        return self.root / "cluster" / "pixel_attention"

    def cluster_labels_dir(self, split: str = "validation") -> Path:
        """Raw cosine-argmax labels ``<wnid>/<stem>.png`` (no threshold) + attention ``<stem>.npy``."""
        return self.root / "cluster" / split

    def saliency_dir(self) -> Path:
        return self.root / "cluster" / "saliency"

    def cluster_step_marker(self, step: str) -> Path:
        return self.root / "cluster" / f".{step}.done"

    def final_checkpoint(self, stage: str) -> Path:
        """``RUN/<stage>/checkpoints/final.pkl``, written when a training stage completes."""
        return self.stage_dir(stage) / "checkpoints" / "final.pkl"

    def match_file(self, stage: str, split: str = "validation") -> Path:
        """``match.json`` written next to a split's PNGs by predict or refine."""
        base = self.predict_dir(split) if stage == "predict" else self.refine_dir(split)
        return base / "match.json"

"""Stage 2, ``luss cluster``: pixel attention, k-means, pseudo-labels (spec 4, 5, 6).

Sub-steps, in order, each ending with ``RUN/cluster/.<step>.done`` (a rerun skips finished ones):

* ``saliency`` (only when ``cluster.saliency.enabled`` or asked for): MaskCut maps of train images;
* ``attention``: train ``fbg`` + prototypes on the Stage-1 network (``RUN/cluster/pixel_attention/``);
* ``kmeans``: attention-pooled embeddings of train + validation, faiss k-means on train, NMI and
  Hungarian cluster accuracy against the folder classes (``centroids.npy``, ``assignments-*.txt``,
  ``report.json``); where the data has train ground truth (the demo), also of the same features pooled
  over each image's true object, as a measurement (``ground_truth_object``);
* ``labels``: raw cosine-argmax labels + attention maps of validation, the threshold sweep (same code
  as ``luss score --curve``), then train pseudo-labels with the chosen ``t``.

``RUN/cluster/.done`` is written when every default sub-step has finished.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tools.atomic_io import atomic_path, atomic_write_json, atomic_write_text
from tools.clustering.embed import dense_labels, embed_samples, unit_rows
from tools.config.schema import LussConfig
from tools.data.imagenet_s import ImageNetS, Sample
from tools.data.images import load_rgb_image
from tools.data.label_codec import write_label_png
from tools.engine.distributed import (
    World,
    jittor_world,
    shard,
    shard_slice,
    sum_over_ranks,
)
from tools.errors import DatasetError, LussError
from tools.progress import progress_bar
from tools.run_layout import RunLayout
from tools.stages.frame import StageStep, run_steps

STAGE = "cluster"
STEPS = ("saliency", "attention", "kmeans", "labels")


def default_steps(config: LussConfig) -> tuple[str, ...]:
    return STEPS if config.cluster.saliency.enabled else STEPS[1:]


def describe_quality(quality: dict[str, float]) -> str:
    """``foreground 23.1 % of pixels (ground truth 25.0 %), IoU with it 0.71`` (IoU: with ground truth)."""
    text = f"foreground {100 * quality['coverage']:.1f} % of pixels"
    if "fg_iou" in quality:
        text += f" (ground truth {100 * quality['gt_coverage']:.1f} %), IoU with it {quality['fg_iou']:.2f}"
    return text


def foreground_fraction(attention_dir: Path, threshold: float) -> float | None:
    """Mean over images of the fraction of pixels whose attention ``<stem>.npy`` reaches ``threshold``."""
    fractions = [float((np.load(f) >= threshold).mean()) for f in sorted(attention_dir.glob("*/*.npy"))]
    return float(np.mean(fractions)) if fractions else None


class ClusterStage:
    def __init__(
        self, config: LussConfig, data_root: str | Path, run_dir: str | Path, say: Callable[[str], None]
    ):
        self.config = config
        self.cfg = config.cluster
        self.data = ImageNetS(data_root)
        self.layout = RunLayout.at(run_dir)
        self.say = say
        self.world = jittor_world()

    # -- helpers ---------------------------------------------------------------------------------------
    def samples(self, split: str) -> list[Sample]:
        if not self.data.has_split(split):
            if split == "train":
                raise DatasetError(f"{self.data.split_dir(split)}: Stage 2 needs DATA/train/<wnid>/*.JPEG.")
            return []
        return self.data.samples(split)

    def attention_checkpoint(self) -> Path:
        return self.layout.pixel_attention_dir() / "checkpoints" / "final.pkl"

    def cluster_net(self):
        """Backbone + ``fbg`` of the trained pixel-attention checkpoint (spec 5.1), in eval mode."""
        from tools.networks import build_network, load_network_weights

        net = build_network(self.config, "attention_features")
        load_network_weights(net, "attention->attention_features", self.attention_checkpoint())
        net.eval()
        return net

    def num_clusters(self) -> int:
        return self.cfg.num_clusters or self.data.num_classes

    def read_report(self) -> dict[str, Any]:
        path = self.layout.cluster_file("report.json")
        return json.loads(path.read_text()) if path.is_file() else {}

    # -- sub-steps -------------------------------------------------------------------------------------
    def _run_parts(self, parts: list[StageStep], resume: bool) -> None:
        """A step's parts in the stage frame: who runs each, and the barrier after it."""
        run_steps(STAGE, parts, resume, self.say, self.world)

    def step_saliency(self, resume: bool) -> dict[str, Any]:
        """Every rank writes the maps of its shard; once every train image has one, rank 0 measures them."""
        from tools.clustering.maskcut_stage import write_saliency_maps
        from tools.clustering.quality import saliency_quality

        train = self.samples("train")
        info: dict[str, Any] = {}

        def maps(resume: bool) -> dict:
            info.update(write_saliency_maps(self.config, shard(train, self.world), self.layout, self.say))
            return {}

        def check(resume: bool) -> dict:
            self.require_saliency(train)
            info.update(images=len(train), written=sum_over_ranks(info["written"]))
            return {}

        def quality(resume: bool) -> dict:
            info["quality"] = saliency_quality(self.data.root, train, self.layout.saliency_dir())
            self.say(f"cluster: saliency {describe_quality(info['quality'])}")
            self.update_report({"saliency": info["quality"]})
            return {}

        parts = [StageStep("maps", maps), StageStep("check", check), StageStep("quality", quality, "main")]
        self._run_parts(parts, resume)
        return info

    def update_report(self, values: dict[str, Any]) -> dict[str, Any]:
        """Rank 0: ``RUN/cluster/report.json`` with ``values`` merged in (atomically)."""
        report = {**self.read_report(), **values}
        atomic_write_json(self.layout.cluster_file("report.json"), report)
        return report

    def require_saliency(self, train: Sequence[Sample]) -> None:
        """Refuse a missing or half-written saliency folder (a killed or still running saliency step)."""
        saliency = self.layout.saliency_dir()
        missing = [s for s in train if not (saliency / s.wnid / f"{s.stem}.png").is_file()]
        if missing:
            raise LussError(
                f"pixel_attention.saliency_weight > 0 but {len(missing)} of {len(train)} train images have "
                f"no saliency map in {saliency} (first: {missing[0].wnid}/{missing[0].stem}.png): run "
                "`luss cluster --step saliency` to finish it (or --set pixel_attention.saliency_weight=0)."
            )

    def step_attention(self, resume: bool) -> dict[str, Any]:
        from tools.stages.common import FitStep
        from tools.stages.pixel_attention import PixelAttentionTask

        stage_one = self.layout.final_checkpoint("pretrain")
        if not stage_one.is_file():
            raise LussError(f"{stage_one}: no Stage-1 checkpoint; run `luss pretrain` with this --run first.")
        saliency = self.layout.saliency_dir()
        use_saliency = self.config.pixel_attention.saliency_weight > 0
        if use_saliency:
            self.require_saliency(self.samples("train"))
        train = self.samples("train")

        def make_task():
            return PixelAttentionTask(self.config, train, stage_one, saliency if use_saliency else None)

        loop = self.config.pixel_attention.loop
        body = FitStep(
            "pixel_attention", self.layout.pixel_attention_dir(), make_task, self.config, loop, say=self.say
        )
        info = body(resume)
        if info is None:
            raise LussError("pixel attention training stopped before the end; rerun with --resume.")
        return {"final_checkpoint": info["final_checkpoint"], "last_metrics": info["last_metrics"]}

    def step_kmeans(self, resume: bool) -> dict[str, Any]:
        """Every rank embeds its shard of train and validation; rank 0 gathers the rows and clusters."""
        net = self.cluster_net()
        train, val = self.samples("train"), self.samples("validation")
        splits = [("train", train)] + ([("validation", val)] if val else [])
        mine: dict[str, np.ndarray] = {}
        report: dict[str, Any] = {}

        def embed(resume: bool) -> dict:
            for split, samples in splits:
                mine[split] = self.embed_shard(net, samples, split)
            return {}

        def fit(resume: bool) -> dict:
            rows = {split: self.gather_rows(mine[split], samples, split) for split, samples in splits}
            report.update(self.fit_kmeans(train, val, rows["train"], rows.get("validation")))
            return {}

        self._run_parts([StageStep("embed", embed), StageStep("fit", fit, "main")], resume)
        return report

    def fit_kmeans(self, train, val, both: np.ndarray, val_rows: np.ndarray | None) -> dict[str, Any]:
        """Rank 0: faiss k-means on the train rows, centroids, assignments, NMI and cluster accuracy."""
        from tools.clustering.kmeans import cluster_accuracy, kmeans, normalized_mutual_info

        # Columns: attention-pooled embedding, the same features pooled uniformly (the ablation), and
        # where the data has train ground truth, pooled over the true object (a measurement only).
        width = both.shape[1] // self.train_blocks()
        train_emb, train_uniform = both[:, :width], both[:, width : 2 * width]
        val_emb = val_rows[:, :width] if val_rows is not None else None
        k = self.num_clusters()
        cfg = self.cfg
        result = kmeans(train_emb, k, cfg.niter, cfg.nredo, cfg.seed, val_emb)
        classes = np.array([self.data.class_id(s.wnid) for s in train])
        nmi = normalized_mutual_info(classes, result.train_labels)
        acc = cluster_accuracy(classes, result.train_labels)
        # Ablation for the report: the same features pooled without the attention.
        plain = kmeans(train_uniform, k, cfg.niter, cfg.nredo, cfg.seed).train_labels
        with atomic_path(self.layout.cluster_file("centroids.npy"), suffix=".npy") as tmp:
            np.save(tmp, result.centroids)
        for split, samples, labels in (
            ("train", train, result.train_labels),
            ("validation", val, result.other_labels),
        ):
            lines = "".join(
                f"{s.wnid}/{s.image_path.name} {int(c)}\n" for s, c in zip(samples, labels, strict=True)
            )
            atomic_write_text(self.layout.cluster_file(f"assignments-{split}.txt"), lines)
        report = {
            "num_clusters": k,
            "num_train": len(train),
            "nmi": nmi,
            "cluster_accuracy": acc,
            "no_attention": {
                "nmi": normalized_mutual_info(classes, plain),
                "cluster_accuracy": cluster_accuracy(classes, plain),
            },
        }
        on_object = both[:, 2 * width :]
        if on_object.shape[1] and np.isfinite(on_object).all():
            truth = kmeans(on_object, k, cfg.niter, cfg.nredo, cfg.seed).train_labels
            report["ground_truth_object"] = {
                "nmi": normalized_mutual_info(classes, truth),
                "cluster_accuracy": cluster_accuracy(classes, truth),
            }
        self.update_report(report)
        self.say(
            f"cluster: k-means K={k} on {len(train)} train images: NMI {nmi:.4f}, cluster acc {acc:.4f} "
            f"(without attention: acc {report['no_attention']['cluster_accuracy']:.4f})"
        )
        if "ground_truth_object" in report:
            self.say(
                "cluster: the same features pooled over the ground-truth object (measured, never trained "
                f"on): cluster acc {report['ground_truth_object']['cluster_accuracy']:.4f}"
            )
        return report

    def train_blocks(self) -> int:
        """Blocks of ``D`` columns in a train row: 3 where the data has train ground truth (the demo)."""
        from tools.clustering.quality import has_train_ground_truth

        return 3 if has_train_ground_truth(self.data.root) else 2

    def embed_shard(self, net, samples: Sequence[Sample], split: str) -> np.ndarray:
        """This rank's rows ``[attention-pooled | uniformly pooled]`` (:func:`embed_samples`, ``2 D``
        columns; train rows add ``| pooled over the ground-truth object]`` where the data has it);
        under several ranks also saved as ``embed-<split>-rank<r>.npy`` for rank 0."""
        from tools.clustering.quality import train_foreground

        cfg = self.cfg
        measure = split == "train" and self.train_blocks() == 3
        foreground = functools.partial(train_foreground, self.data.root) if measure else None
        parts = embed_samples(
            net, shard(samples, self.world), cfg.short_side, cfg.crop, f"embed {split}", foreground
        )
        mine = np.concatenate(parts, axis=1)
        if self.world.size > 1:
            with atomic_path(
                self.layout.cluster_file(f"embed-{split}-rank{self.world.rank}.npy"), suffix=".npy"
            ) as tmp:
                np.save(tmp, mine)
        return mine

    def gather_rows(self, mine: np.ndarray, samples: Sequence[Sample], split: str) -> np.ndarray:
        """Rank 0, after every rank's :meth:`embed_shard`: all rows of ``samples`` in order."""
        size = self.world.size
        if size == 1:
            return mine
        parts = [self.layout.cluster_file(f"embed-{split}-rank{r}.npy") for r in range(size)]
        shards = [np.load(p) for p in parts]
        rows = np.zeros((len(samples), max(s.shape[1] for s in shards)), np.float32)
        for r, rows_r in enumerate(shards):
            if len(rows_r):  # a rank with an empty shard saved a [0, 0] array
                rows[shard_slice(World(r, size))] = rows_r
        for p in parts:
            p.unlink()
        return rows

    def _write_split_labels(self, net, centroids, samples, out_dir: Path, threshold: float | None) -> None:
        """Labels (and, without a threshold, attention maps) of this rank's shard of ``samples``."""
        samples = shard(samples, self.world)
        with progress_bar(f"labels {out_dir.name}", len(samples)) as advance:
            for s in samples:
                labels, attention = dense_labels(
                    net, load_rgb_image(s.image_path), centroids, self.cfg.short_side
                )
                target = out_dir / s.wnid / f"{s.stem}.png"
                if threshold is None:
                    with atomic_path(target.with_suffix(".npy"), suffix=".npy") as tmp:
                        np.save(tmp, attention)
                else:
                    labels = np.where(attention < threshold, 0, labels)
                write_label_png(target, labels)
                advance(1)

    def choose_threshold(self, val_dir: Path, k: int) -> tuple[float, dict[str, Any]]:
        from tools.evaluation.curve import threshold_curve, threshold_range

        cfg = self.cfg
        if not self.data.segmentation_dir("validation").is_dir() or not self.samples("validation"):
            return cfg.t_min, {"threshold_source": "t_min (no validation ground truth to sweep on)"}
        if k != self.data.num_classes:
            return cfg.t_min, {"threshold_source": f"t_min (K={k} != {self.data.num_classes} classes)"}
        ts = threshold_range(cfg.t_min, cfg.t_max, cfg.t_step)
        curve = threshold_curve(val_dir, self.data, "validation", ts, workers=1, progress=False)
        best = curve.best_index
        extra = {
            "threshold_source": "validation sweep (best mIoU)",
            "validation_miou": curve.miou[best],
            "curve": [{"t": t, "miou": m} for t, m in zip(curve.thresholds, curve.miou, strict=True)],
        }
        return curve.best_threshold, extra

    def step_labels(self, resume: bool) -> dict[str, Any]:
        """Every rank labels its shard of validation; rank 0 sweeps the threshold on all of them and
        records it; every rank writes its train pseudo-labels with it; rank 0 measures them."""
        from tools.clustering.quality import pseudo_label_quality

        net = self.cluster_net()
        centroids = unit_rows(np.load(self.layout.cluster_file("centroids.npy")))
        val_dir = self.layout.cluster_labels_dir("validation")
        train_dir = self.layout.pseudo_label_dir("train")

        def validation_maps(resume: bool) -> dict:
            self._write_split_labels(net, centroids, self.samples("validation"), val_dir, None)
            return {}

        def threshold(resume: bool) -> dict:
            t, extra = self.choose_threshold(val_dir, len(centroids))
            self.say(f"cluster: threshold t = {t:.2f} ({extra['threshold_source']})")
            kept = foreground_fraction(val_dir, t)
            if kept is not None:
                extra["validation_foreground_fraction"] = kept
                if kept < 0.01:
                    self.say(
                        f"cluster: WARNING t = {t:.2f} keeps {100 * kept:.2f} % of validation pixels as "
                        "foreground: the attention is not trained enough (more pixel_attention epochs?); "
                        "the train pseudo-labels will be almost all background."
                    )
            self.update_report({"threshold": t, **extra})
            return {}

        def train_labels(resume: bool) -> dict:  # t: what rank 0 recorded before the barrier
            self._write_split_labels(net, centroids, self.samples("train"), train_dir, self.threshold())
            return {}

        def quality(resume: bool) -> dict:
            q = pseudo_label_quality(self.data.root, self.samples("train"), train_dir)
            self.say(f"cluster: train pseudo-labels {describe_quality(q)}")
            self.update_report({"train_pseudo_labels": q})
            return {}

        parts = [
            StageStep("validation maps", validation_maps),
            StageStep("threshold", threshold, "main"),
            StageStep("train pseudo-labels", train_labels),
            StageStep("quality", quality, "main"),
        ]
        self._run_parts(parts, resume)
        return {"threshold": self.threshold()}

    def threshold(self) -> float:
        """The attention threshold ``t`` rank 0 chose (``report.json``)."""
        return float(self.read_report()["threshold"])


def run_cluster(
    config: LussConfig,
    data_root: str | Path,
    run_dir: str | Path,
    steps: Sequence[str] | None = None,
    resume: bool = False,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the cluster sub-steps in the stage frame, skipping finished ones; ``.done`` once all defaults
    are done. Every rank runs every step on its shard (k-means and the threshold sweep once, on rank 0)."""
    from tools.config.run_config import record_run_config
    from tools.data.validate import require_usable_dataset
    from tools.engine.precision import stage_precision
    from tools.runtime import status_line
    from tools.stages.frame import mark_stage_done

    stage = ClusterStage(config, data_root, run_dir, say)
    layout = stage.layout
    marker = layout.done_marker(STAGE)
    if steps is None and marker.is_file():
        say(f"cluster: already done ({marker}); skipping. Use a new --run to cluster again.")
        return stage.read_report()
    wanted = default_steps(config) if steps is None else tuple(steps)
    unknown = [s for s in wanted if s not in STEPS]
    if unknown:
        raise LussError(f"unknown cluster step(s) {unknown}; choose from {', '.join(STEPS)}")
    scored = {"kmeans", "labels"} & set(wanted)  # these read validation (k-means accuracy, the t sweep)
    require_usable_dataset(data_root, ["train", "validation"] if scored else ["train"], STAGE, say)
    record_run_config(layout, config, STAGE)
    loop = config.pixel_attention.loop
    say(f"{status_line(STAGE, loop.batch_size)}, {stage_precision(loop).note}")
    bodies = {
        "saliency": stage.step_saliency,
        "attention": stage.step_attention,
        "kmeans": stage.step_kmeans,
        "labels": stage.step_labels,
    }
    declared = [StageStep(n, bodies[n], "all", layout.cluster_step_marker(n)) for n in STEPS if n in wanted]
    run_steps(STAGE, declared, resume, say, stage.world)
    if all(layout.cluster_step_marker(s).is_file() for s in default_steps(config)):
        mark_stage_done(marker, {"stage": STAGE, **stage.read_report()}, stage.world)
    return stage.read_report()

"""The distance-matching protocol (``luss distance``; PASS ``distance_matching/``).

Only the Stage-1 backbone (self-supervised) is used. From every train-semi image and its ground-truth
mask: the backbone features (shorter side ``predict.short_side``, stride upsampled x4, as PASS) and,
per label in the mask (background 0 included, 1000 ignored), the mean feature inside it: one instance
embedding. A class's embedding is the mean of its L2-normalised instance embeddings. Each pixel of a
validation/test image then takes the class whose embedding is nearest by cosine similarity (or, with
``k > 0``, PASS's weighted k-NN over the instances). Predictions are class ids, so ``match.json`` is the
identity.

```
RUN/distance/embeddings.npz                 instances [N, F], labels [N] (cached; --overwrite redoes)
RUN/distance/settings.json                  k, t, short side: a rerun with others is refused
RUN/distance/<split>/<wnid>/<stem>.png      predictions (+ protocol.json, and match.json on validation)
```
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tools.config.schema import LussConfig
from tools.data.imagenet_s import ImageNetS
from tools.data.images import load_rgb_image
from tools.data.label_codec import IGNORE_ID, read_label_png
from tools.data.train_semi import labelled_train_semi
from tools.errors import LussError
from tools.packing.protocols import Provenance, write_provenance
from tools.predict.labels import nearest_resize_labels
from tools.predict.preprocess import resize_shorter_side, to_normalized_chw
from tools.predict.runner import PredictOptions, PredictSummary
from tools.progress import progress_bar
from tools.run_layout import RunLayout

STAGE = "distance"
EMBEDDINGS_FILE = "embeddings.npz"
SETTINGS_FILE = "settings.json"  # the rule the predictions were made with


@dataclass(frozen=True)
class DistanceOptions:
    k: int = 0  # 0: nearest class embedding; > 0: PASS weighted k-NN over instances (PASS: 10)
    t: float = 0.07  # k-NN temperature (PASS)


@dataclass(frozen=True)
class DistanceOutcome:
    summary: PredictSummary
    out_dir: Path
    match_file: Path | None
    score: object | None  # ScoreResult on validation


def instance_embeddings(
    feature_net: Callable, dataset: ImageNetS, short_side: int, progress: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``(instances [N, F] float32, labels [N] int64)``: mean feature inside each train-semi mask label."""
    import jittor as jt

    samples, mask_dir = labelled_train_semi(dataset, "Distance matching (its class embeddings)")
    instances, labels = [], []
    with progress_bar("Class embeddings (train-semi)", len(samples), progress) as advance:
        for sample in samples:
            mask_path = mask_dir / sample.png_name()
            chw = to_normalized_chw(resize_shorter_side(load_rgb_image(sample.image_path), short_side))
            with jt.no_grad():
                feats = feature_net(jt.array(chw[None])).numpy()[0]  # [F, h, w]
            mask = nearest_resize_labels(read_label_png(mask_path), *feats.shape[1:])
            for value in np.unique(mask):
                if value == IGNORE_ID:
                    continue
                instances.append(feats[:, mask == value].mean(axis=1))
                labels.append(int(value))
            advance(1)
    return np.stack(instances).astype(np.float32), np.asarray(labels, np.int64)


def class_embeddings(instances: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """``[C+1, F]``: per class 0..C, the normalised mean of its normalised instance embeddings."""
    from models.cosine_head import normalize_rows

    unit = normalize_rows(instances)
    missing = [c for c in range(num_classes + 1) if not (labels == c).any()]
    if missing:
        raise LussError(
            f"no train-semi mask holds class id(s) {missing}; every class (and background 0) needs at least "
            "one labelled region to get an embedding. Check DATA/train-semi-segmentation/."
        )
    return normalize_rows(np.stack([unit[labels == c].mean(axis=0) for c in range(num_classes + 1)]))


def _embeddings(
    layout: RunLayout, feature_net, dataset: ImageNetS, short_side: int, overwrite: bool, progress
):
    path = layout.stage_dir(STAGE) / EMBEDDINGS_FILE
    if path.is_file() and not overwrite:
        with np.load(path) as saved:
            return saved["instances"], saved["labels"]
    from tools.atomic_io import atomic_path

    instances, labels = instance_embeddings(feature_net, dataset, short_side, progress)
    with atomic_path(path, suffix=".tmp.npz") as tmp:
        np.savez(tmp, instances=instances, labels=labels)
    return instances, labels


def _check_settings(layout: RunLayout, settings: dict, overwrite: bool) -> None:
    """Predictions of one run folder come from one rule: a rerun with other settings would mix them."""
    import json

    from tools.atomic_io import atomic_write_json

    path = layout.stage_dir(STAGE) / SETTINGS_FILE
    if path.is_file() and not overwrite:
        before = json.loads(path.read_text())
        if before != settings:
            raise LussError(
                f"{path}: this run's distance predictions were made with {before}, not {settings}. Fix: "
                "pass --overwrite to redo them, or use another --run."
            )
    atomic_write_json(path, settings)


def run_distance(
    config: LussConfig,
    data_root: str | Path,
    run_dir: str | Path,
    split: str,
    options: DistanceOptions | None = None,
    pretrain_run: str | Path | None = None,
    overwrite: bool = False,
    workers: int = 0,
    progress: bool = True,
    say: Callable[[str], None] = print,
) -> DistanceOutcome:
    """Class embeddings from train-semi, then distance-matching predictions of ``split``.

    Under ``mpirun`` every rank builds the (small) embeddings and predicts its shard of the images;
    rank 0 then writes ``protocol.json`` and, on validation, ``match.json`` and the scores."""
    from models.cosine_head import CosineHead, UpsampledFeatures
    from models.segmenter import Segmenter
    from tools.engine.distributed import barrier, env_world
    from tools.evaluation import save_match_file, score_predictions
    from tools.networks import build_network, load_network_weights
    from tools.predict.runner import predict_split

    options = options or DistanceOptions()
    if split not in ("validation", "test"):
        raise LussError(f"unknown split {split!r}; luss distance predicts validation or test.")
    world = env_world()
    layout = RunLayout.at(run_dir)
    source = RunLayout.at(pretrain_run) if pretrain_run is not None else layout
    dataset = ImageNetS(data_root)
    num_classes = dataset.num_classes
    p = config.predict
    _check_settings(layout, {"k": options.k, "t": options.t, "short_side": p.short_side}, overwrite)
    feature_net = build_network(
        config, "segmenter", num_classes, freeze_backbone=True, head_module=UpsampledFeatures()
    )
    load_network_weights(feature_net, "pretrain->segmenter", source.final_checkpoint("pretrain"))
    feature_net.eval()
    instances, labels = _embeddings(layout, feature_net, dataset, p.short_side, overwrite, progress)
    if options.k == 0:
        head = CosineHead(
            class_embeddings(instances, labels, num_classes), np.arange(num_classes + 1), num_classes
        )
    else:
        head = CosineHead(instances, labels, num_classes, k=options.k, t=options.t)
    rule = "nearest class mean" if options.k == 0 else f"{options.k}-NN"
    say(f"distance: {len(instances)} train-semi instances, {rule} by cosine similarity")
    net = Segmenter(feature_net.backbone, num_classes, head=head, freeze_backbone=True)
    net.eval()
    out_dir = layout.distance_dir(split)
    predict_options = PredictOptions(p.short_side, p.max_res, False, overwrite)
    summary = predict_split(net, dataset, split, out_dir, predict_options, world, progress)
    say(f"distance {split}: {summary.written} written, {summary.skipped} already done -> {out_dir}")
    barrier()  # every shard's PNGs exist before rank 0 scores
    match_file = out_dir / "match.json" if split == "validation" else None
    result = None
    if world.is_main:
        write_provenance(out_dir, Provenance(protocol="distance", labels="train-semi"))
        if match_file is not None:
            identity = {i: i for i in range(num_classes + 1)}
            save_match_file(match_file, identity)
            result = score_predictions(
                out_dir, dataset, split, match=identity, workers=workers, progress=progress
            )
    barrier()
    return DistanceOutcome(summary, out_dir, match_file, result)

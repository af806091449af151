"""Stage 4 (``luss predict``): the fine-tuned segmenter on a split, one PNG per image (spec section 8.1).

Reads ``RUN/finetune/checkpoints/final.pkl`` (network *and* the config that built it), writes
``RUN/predict/<split>/<wnid>/<stem>.png`` at each image's own size (``max_res`` respected), skipping
images already written, so a killed run resumes. On validation it then matches cluster ids to classes
with the image-level Hungarian on the validation GT (the fully unsupervised protocol, spec 10.2),
writes ``match.json`` (``{pred: gt, "0": 0}``) and returns the scores. A run fine-tuned on the
train-semi labels (the semi-supervised protocol) predicts class ids: its match.json is the identity.
``PRED/protocol.json`` records which protocol the predictions belong to (``luss pack --protocol``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tools.config.schema import PredictConfig
from tools.data.imagenet_s import ImageNetS
from tools.data.validate import require_usable_dataset
from tools.errors import LussError
from tools.packing.protocols import Provenance, write_provenance
from tools.predict.runner import PredictOptions, PredictSummary
from tools.run_layout import RunLayout

STAGE = "predict"
SPLITS = ("validation", "test")


class FolderLabelsRefusedError(LussError):
    """``predict.use_folder_labels`` would read image-level classes from folder names."""


@dataclass(frozen=True)
class PredictOutcome:
    summary: PredictSummary
    out_dir: Path
    match_file: Path | None  # written on validation once every PNG exists
    score: object | None  # tools.evaluation.scorer.ScoreResult on validation


def check_unsupervised(config: PredictConfig) -> None:
    if config.use_folder_labels:
        raise FolderLabelsRefusedError(
            "predict.use_folder_labels=true is not implemented: it would relabel each image with the class "
            "of its folder name, i.e. use image-level ground truth at test time, which the ImageNet-S "
            "'fully unsupervised' protocol forbids. Remove --set predict.use_folder_labels=true."
        )


def load_segmenter(run_dir: str | Path):
    """The Stage-3 network from ``RUN/finetune/checkpoints/final.pkl``, built from the config saved in it."""
    from models.segmenter import num_classes_from_state
    from tools.config.loader import _build
    from tools.config.schema import LussConfig
    from tools.engine.checkpoint import load_checkpoint
    from tools.networks import build_network, load_network_weights

    checkpoint = RunLayout.at(run_dir).final_checkpoint("finetune")
    if not checkpoint.is_file():
        raise LussError(
            f"{checkpoint}: no fine-tuned network in this run. Run `luss finetune --run {run_dir} --data D` "
            "first (it writes this file when it finishes)."
        )
    payload = load_checkpoint(checkpoint)
    config = _build(LussConfig, dict(payload.get("config") or {}), str(checkpoint))
    state = payload["model"]
    try:
        num_classes = num_classes_from_state(state, config.finetune.head)
    except KeyError as exc:
        raise LussError(
            f"{checkpoint}: no classifier weights {exc} for head {config.finetune.head!r}."
        ) from None
    segmenter = build_network(config, "segmenter", num_classes, freeze_backbone=True)
    load_network_weights(segmenter, "finetune->segmenter", checkpoint, payload)
    segmenter.eval()
    return segmenter


def run_predict(
    config: PredictConfig,
    data_root: str | Path,
    run_dir: str | Path,
    split: str,
    overwrite: bool = False,
    score: bool = True,
    workers: int = 0,
    world=None,
    progress: bool = True,
    segmenter: Callable | None = None,
    limit: int | None = None,
    say: Callable[[str], None] = print,
) -> PredictOutcome:
    """Predict ``split`` into ``RUN/predict/<split>/``; on validation also write match.json and score.

    ``segmenter`` replaces the network loaded from the run (tests, benchmarks); ``limit`` stops after
    that many new images, as if the run were killed (tests).
    """
    from tools.engine.distributed import env_world
    from tools.predict.runner import predict_split
    from tools.runtime import status_line
    from tools.stages.frame import StageStep, run_steps

    if split not in SPLITS:
        raise LussError(f"unknown split {split!r}; luss predict runs on {' or '.join(SPLITS)}.")
    check_unsupervised(config)
    require_usable_dataset(data_root, [split], f"predict {split}", say, masks=False)
    layout = RunLayout.at(run_dir)
    dataset = ImageNetS(data_root)
    world = world or env_world()
    say(status_line(f"predict {split}", "1 image"))
    net = segmenter if segmenter is not None else load_segmenter(run_dir)
    options = PredictOptions(config.short_side, config.max_res, config.flip_tta, overwrite)
    out_dir = layout.predict_dir(split)
    if limit is not None:
        dataset = _Limited(dataset, split, out_dir, limit, overwrite)
    provenance = run_provenance(layout, config)
    done: dict[str, object] = {}

    def predict_images(resume: bool) -> dict:
        done["summary"] = summary = predict_split(net, dataset, split, out_dir, options, world, progress)
        say(
            f"predict {split}: {summary.written} written, {summary.skipped} already done, "
            f"{summary.images_per_second:.2f} img/s -> {out_dir}"
        )
        return {}

    def record_provenance(resume: bool) -> dict:
        write_provenance(out_dir, provenance)
        return {}

    def match(resume: bool) -> dict:
        missing = [s for s in ImageNetS(data_root).samples(split) if not (out_dir / s.png_name()).is_file()]
        if missing:  # only when shards were launched by hand (--rank), not under one mpirun
            say(f"{len(missing)} PNGs are still missing (other shards?); run again to write match.json.")
        else:
            identity = provenance.protocol == "semi"  # trained on class ids: nothing to match
            done["score"], done["match"] = match_and_score(
                layout, data_root, split, workers, progress, identity
            )
        return {}

    # Every rank predicts its shard; rank 0 then records the protocol and, on validation, matches and
    # scores once every shard's PNGs exist (the frame's barrier after each step).
    matching = split == "validation" and score and limit is None
    steps = [StageStep("images", predict_images), StageStep("provenance", record_provenance, "main")]
    steps += [StageStep("match", match, "main")] if matching else []
    run_steps(f"predict {split}", steps, resume=True, say=say, world=world)
    match_path = done.get("match")
    if matching and not world.is_main and layout.match_file(STAGE, split).is_file():
        match_path = layout.match_file(STAGE, split)  # rank 0 wrote it before the barrier
    return PredictOutcome(done["summary"], out_dir, match_path, done.get("score"))


def run_provenance(layout: RunLayout, config: PredictConfig) -> Provenance:
    """How this run's predictions are made: ``semi`` when Stage 3 trained on the train-semi labels
    (``RUN/finetune/.done`` says so), else ``fully-unsupervised``."""
    marker = layout.done_marker("finetune")
    labels = json.loads(marker.read_text() or "{}").get("labels", "pseudo") if marker.is_file() else "pseudo"
    semi = labels == "train-semi"
    return Provenance(
        protocol="semi" if semi else "fully-unsupervised",
        labels="train-semi" if semi else "none",
        folder_labels=config.use_folder_labels,
    )


def match_and_score(
    layout: RunLayout, data_root, split: str, workers: int, progress: bool, identity: bool = False
):
    """Image-level Hungarian of the predictions against the split's GT -> match.json + scores; with
    ``identity`` the ids are classes already and match.json is the identity."""
    from tools.evaluation import save_match_file, score_predictions

    dataset = ImageNetS(data_root)
    match = {i: i for i in range(dataset.num_classes + 1)} if identity else None
    result = score_predictions(
        layout.predict_dir(split), dataset, split, match=match, workers=workers, progress=progress
    )
    path = layout.match_file(STAGE, split)
    save_match_file(path, result.match)
    return result, path


class _Limited:
    """The first ``limit`` not-yet-written images of a split: a run stopped partway (tests)."""

    def __init__(self, dataset: ImageNetS, split: str, out_dir: Path, limit: int, overwrite: bool):
        self._samples = {
            split: [s for s in dataset.samples(split) if overwrite or not (out_dir / s.png_name()).is_file()][
                :limit
            ]
        }

    def samples(self, split: str):
        return self._samples[split]

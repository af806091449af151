"""Refine a split: SAM masks (cached) + semantic vote for every raw prediction, sharded and resumable.

Reads ``RUN/predict/<split>/<wnid>/<stem>.png``, writes ``RUN/refine/<split>/<wnid>/<stem>.png`` and
caches masks in ``RUN/refine/sam-masks/<split>/<wnid>/<stem>.npz``.

Resuming: a refined PNG is up to date when it is newer than its raw prediction, its mask cache and
the split's vote-settings stamp ``RUN/refine/vote-<split>.json`` (mode, background policy, mask
fingerprint). The stamp is rewritten only when those settings change, so changing the vote mode or
policy re-votes the whole split from the cache (SAM is not run), while a killed run with the same
settings resumes where it stopped. Every rank checks and, if needed, rewrites the stamp before it
votes, so ranks agree without talking to each other.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from rich.console import Console

from tools.atomic_io import atomic_write_json
from tools.data.imagenet_s import ImageNetS, Sample
from tools.data.label_codec import read_label_png, write_label_png
from tools.engine.distributed import World, shard
from tools.errors import LussError
from tools.packing.protocols import read_provenance, write_provenance
from tools.progress import progress_bar
from tools.refine.mask_cache import cache_path, load_mask_cache, save_mask_cache
from tools.refine.sam_model import MaskSource
from tools.refine.voting import BackgroundPolicy, VoteMode, vote_by_masks
from tools.run_layout import RunLayout


class RefineError(LussError):
    """Inputs of the refine stage are missing or inconsistent; ``problems`` lists each file."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or []


@dataclass(frozen=True)
class RefineOptions:
    mode: VoteMode = "original"
    background_policy: BackgroundPolicy = "erase"
    revote: bool = False  # re-vote every image (from the cache) even when its PNG is up to date
    recompute_masks: bool = False  # ignore the cache and run SAM again


@dataclass(frozen=True)
class RefineSummary:
    total: int  # images of this rank's shard
    voted: int
    skipped: int  # up to date
    generated: int  # SAM runs (cache misses)
    sam_seconds: float
    vote_seconds: float
    seconds: float

    @property
    def cache_hits(self) -> int:
        return self.voted - self.generated

    @property
    def sam_seconds_per_image(self) -> float:
        return self.sam_seconds / self.generated if self.generated else 0.0

    @property
    def vote_ms_per_image(self) -> float:
        return 1000.0 * self.vote_seconds / self.voted if self.voted else 0.0


def vote_settings_path(layout: RunLayout, split: str) -> Path:
    # Outside RUN/refine/<split>/ so a test-split folder holds only PNGs (what `luss pack` zips).
    return layout.stage_dir("refine") / f"vote-{split}.json"


def ensure_vote_settings(path: Path, settings: dict) -> int:
    """Write ``settings`` if the stamp holds others (or none); return the stamp's mtime in ns."""
    try:
        current = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        current = None
    if current != settings:
        atomic_write_json(path, settings)
    return path.stat().st_mtime_ns


def _mtime_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return 0


def is_up_to_date(out_png: Path, inputs: list[Path], stamp_ns: int) -> bool:
    """The refined PNG exists and is not older than any input or the settings stamp."""
    out_ns = _mtime_ns(out_png)
    return out_ns > 0 and out_ns >= max([stamp_ns, *(_mtime_ns(p) for p in inputs)])


def load_rgb(path: Path) -> np.ndarray:
    """``[H, W, 3]`` uint8, as SAM wants it (greyscale/CMYK/palette images converted)."""
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def check_inputs(samples: list[Sample], pred_dir: Path, split: str) -> None:
    missing = [str(pred_dir / s.png_name()) for s in samples if not (pred_dir / s.png_name()).is_file()]
    if missing:
        raise RefineError(
            f"{len(missing)} of {len(samples)} raw predictions are missing under {pred_dir}; "
            f"run `luss predict --split {split}` first.",
            missing,
        )


def missing_outputs(data: ImageNetS, split: str, layout: RunLayout) -> list[str]:
    """Refined PNGs of the whole split (all ranks) that do not exist yet."""
    out_dir = layout.refine_dir(split)
    return [
        str(out_dir / s.png_name()) for s in data.samples(split) if not (out_dir / s.png_name()).is_file()
    ]


def refine_split(
    data: ImageNetS,
    split: str,
    layout: RunLayout,
    options: RefineOptions,
    mask_source_factory: Callable[[], MaskSource],
    fingerprint: str,
    params: str = "",
    world: World | None = None,
    progress: bool = True,
    console: Console | None = None,
) -> RefineSummary:
    """Refine this rank's shard of ``split``.

    ``mask_source_factory`` builds the SAM mask source; it is called once, on the first cache miss,
    so a re-vote of a cached split never loads SAM (nor needs its checkpoint). ``fingerprint``
    identifies the masks a source produces (``generator_config.cache_fingerprint``).
    """
    from tools.data.validate import require_usable_dataset

    say = console.print if console else print
    require_usable_dataset(data.root, [split], f"refine {split}", say, masks=False)
    world = world or World(0, 1)
    samples = shard(data.samples(split), world)
    pred_dir, out_dir, mask_dir = (
        layout.predict_dir(split),
        layout.refine_dir(split),
        layout.sam_cache_dir(split),
    )
    check_inputs(samples, pred_dir, split)
    provenance = read_provenance(pred_dir)
    if provenance is not None and world.is_main:  # voting keeps the protocol of what it votes on
        write_provenance(out_dir, provenance)
    settings = {
        "mode": options.mode,
        "background_policy": options.background_policy,
        "fingerprint": fingerprint,
    }
    stamp_ns = ensure_vote_settings(vote_settings_path(layout, split), settings)

    def needs_vote(s: Sample) -> bool:
        if options.revote or options.recompute_masks:
            return True
        inputs = [pred_dir / s.png_name(), cache_path(mask_dir, s.key)]
        return not is_up_to_date(out_dir / s.png_name(), inputs, stamp_ns)

    todo = [s for s in samples if needs_vote(s)]
    source: MaskSource | None = None
    generated = 0
    sam_seconds = vote_seconds = 0.0
    start = time.perf_counter()
    enabled = progress and world.is_main
    bar = progress_bar(f"refine {split}", len(todo), enabled, console=console, status=True, transient=False)
    with bar as advance:
        for done, sample in enumerate(todo, start=1):
            pred_path = pred_dir / sample.png_name()
            pred = read_label_png(pred_path)
            mask_file = cache_path(mask_dir, sample.key)
            masks = None if options.recompute_masks else load_mask_cache(mask_file, fingerprint, pred.shape)
            if masks is None:
                image = load_rgb(sample.image_path)
                if image.shape[:2] != pred.shape:
                    raise RefineError(
                        f"{pred_path} is {pred.shape[1]}x{pred.shape[0]} but its image {sample.image_path} "
                        f"is {image.shape[1]}x{image.shape[0]}; predictions must be at the image's size."
                    )
                source = source or mask_source_factory()
                t0 = time.perf_counter()
                masks = source(image)
                sam_seconds += time.perf_counter() - t0
                generated += 1
                save_mask_cache(mask_file, masks, fingerprint, params)
            t0 = time.perf_counter()
            refined = vote_by_masks(pred, masks, options.mode, options.background_policy)
            vote_seconds += time.perf_counter() - t0
            write_label_png(out_dir / sample.png_name(), refined)
            per_image = (time.perf_counter() - start) / done
            sam_rate = f", SAM {sam_seconds / generated:.2f} s" if generated else ""
            vote_rate = f"vote {1000 * vote_seconds / done:.1f} ms"
            advance(1, status=f"{per_image:.2f} s/img ({vote_rate}{sam_rate})")
    return RefineSummary(
        total=len(samples),
        voted=len(todo),
        skipped=len(samples) - len(todo),
        generated=generated,
        sam_seconds=sam_seconds,
        vote_seconds=vote_seconds,
        seconds=time.perf_counter() - start,
    )


@dataclass(frozen=True)
class RefineScore:
    match_file: Path | None  # validation, once every rank's PNGs exist
    score: object | None  # tools.evaluation.scorer.ScoreResult (rank 0)


def score_refined_split(
    data: ImageNetS,
    split: str,
    layout: RunLayout,
    world: World | None = None,
    workers: int = 0,
    console: Console | None = None,
) -> RefineScore:
    """After :func:`refine_split` on every rank: wait for all (under mpirun), then rank 0 alone matches
    and scores the whole validation split; ``match.json`` exists on every rank when this returns."""
    from tools.engine.distributed import barrier
    from tools.stages.frame import StageStep, run_steps

    world = world or World(0, 1)
    barrier()  # every rank's votes are written
    scored: dict[str, object] = {}

    def score(resume: bool) -> dict:
        scored["result"] = match_and_score_refined(data, split, layout, workers, console)
        return {}

    steps = [StageStep("score", score, "main")] if split == "validation" else []
    run_steps(f"refine {split}", steps, resume=True, say=lambda m: None, world=world)
    result = scored.get("result")
    match = layout.match_file("refine", split)
    written = split == "validation" and match.is_file() and (result is not None or not world.is_main)
    return RefineScore(match if written else None, result)


def match_and_score_refined(data: ImageNetS, split: str, layout: RunLayout, workers: int, console):
    """Rank 0: Hungarian match + scores of the whole refined split, ``match.json`` written; ``None``
    (said) while shards launched by hand still miss PNGs."""
    missing = missing_outputs(data, split, layout)
    if missing:  # shards launched by hand (--rank/--world-size), not under one mpirun
        (console or Console()).print(
            f"[yellow]{len(missing)} refined PNGs are still missing (other shards?); scoring skipped. "
            "Run this command again once every shard is done: up-to-date images are skipped.[/]"
        )
        return None
    from tools.evaluation import save_match_file, score_predictions

    result = score_predictions(layout.refine_dir(split), data, split, match=None, workers=workers)
    save_match_file(layout.match_file("refine", split), result.match)
    return result


def summary_dict(summary: RefineSummary) -> dict:
    """JSON-ready summary (with the derived rates)."""
    out = asdict(summary)
    out["sam_seconds_per_image"] = summary.sam_seconds_per_image
    out["vote_ms_per_image"] = summary.vote_ms_per_image
    return out

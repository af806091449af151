"""Predict a split: one PNG per image at ``OUT/<wnid>/<stem>.png``, sharded over ranks, resumable.

An image whose PNG exists is skipped (PNGs are written atomically, so an existing file is complete);
a killed run therefore resumes where it stopped and produces the same files.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tools.data.imagenet_s import ImageNetS
from tools.data.images import load_rgb_image
from tools.data.label_codec import write_label_png
from tools.engine.distributed import World, shard
from tools.predict.labels import logits_to_labels
from tools.predict.preprocess import resize_shorter_side, to_normalized_chw
from tools.progress import progress_bar

# [1, 3, h, w] Jittor Var -> [1, C+1, h', w'] logits (0 = background, 1..C = clusters)
Segmenter = Callable[[object], object]


@dataclass(frozen=True)
class PredictOptions:
    short_side: int = 256
    max_res: int = 1000
    flip_tta: bool = False
    overwrite: bool = False


@dataclass(frozen=True)
class PredictSummary:
    total: int  # images of this rank's shard
    written: int
    skipped: int
    seconds: float

    @property
    def images_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0


def predict_logits(segmenter: Segmenter, chw: np.ndarray, flip_tta: bool):
    """Logits of one normalised image; with ``flip_tta`` the mean with the mirrored prediction."""
    import jittor as jt

    with jt.no_grad():
        x = jt.array(chw[None])
        logits = segmenter(x)
        if flip_tta:
            logits = (logits + segmenter(x.flip(3)).flip(3)) * 0.5
    return logits


def predict_image(segmenter: Segmenter, image_path: Path, options: PredictOptions) -> np.ndarray:
    """Full-resolution int32 labels ``[H, W]`` of one image."""
    image = load_rgb_image(image_path)
    width, height = image.size
    chw = to_normalized_chw(resize_shorter_side(image, options.short_side))
    logits = predict_logits(segmenter, chw, options.flip_tta)
    return logits_to_labels(logits, height, width, options.max_res)


def predict_split(
    segmenter: Segmenter,
    data: ImageNetS,
    split: str,
    out_dir: Path,
    options: PredictOptions,
    world: World | None = None,
    progress: bool = True,
) -> PredictSummary:
    world = world or World(0, 1)
    samples = shard(data.samples(split), world)
    todo = [s for s in samples if options.overwrite or not (out_dir / s.png_name()).is_file()]
    start = time.perf_counter()
    enabled = progress and world.is_main
    with progress_bar(f"predict {split}", len(todo), enabled, status=True, transient=False) as advance:
        for done, sample in enumerate(todo, start=1):
            labels = predict_image(segmenter, sample.image_path, options)
            write_label_png(out_dir / sample.png_name(), labels)
            rate = done / max(time.perf_counter() - start, 1e-9)
            advance(1, status=f"{rate:.1f} img/s")
    return PredictSummary(len(samples), len(todo), len(samples) - len(todo), time.perf_counter() - start)

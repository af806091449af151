"""The ``saliency`` sub-step of ``luss cluster``: MaskCut on Stage-1 backbone, SAM encoder or DINO features.

Each train image is resized to a square ``cluster.saliency.image_size`` (rounded to the backbone
stride), its feature grid is cut ``num_masks`` times (:mod:`tools.clustering.ncut`), and the union of the
masks is nearest-resized to the image's size and saved losslessly as an L-mode PNG (0 / 255) at
``RUN/cluster/saliency/<wnid>/<stem>.png``. Images already written are skipped, so the step resumes.

With ``features: dino`` the features are the keys of the last block of the user's DINO ViT
(``cluster.saliency.dino_checkpoint``), as MaskCut uses them: the stride is the patch size, the input is
normalised with the ImageNet mean/std DINO was trained with, and the Stage-1 checkpoint is not read.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from tools.atomic_io import atomic_write_bytes
from tools.clustering.ncut import maskcut, saliency_map
from tools.config.schema import LussConfig
from tools.data.imagenet_s import Sample
from tools.data.images import load_rgb_image
from tools.errors import LussError
from tools.predict.preprocess import IMAGENET_MEAN, IMAGENET_STD, to_normalized_chw
from tools.progress import progress_bar
from tools.run_layout import RunLayout


def saliency_png_bytes(mask: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray((np.asarray(mask) > 0.5).astype(np.uint8) * 255).save(buf, format="PNG")
    return buf.getvalue()


def crf_saliency(image: np.ndarray, feats: np.ndarray, cfg) -> np.ndarray:
    """MaskCut masks nearest-upsampled to the ``[S, S]`` input, each cleaned by the dense CRF
    (dropped when it changes too much), minus earlier masks; their union as ``[S, S]`` {0, 1}."""
    from tools.clustering.crf import crf_or_drop

    size = image.shape[0]
    union = np.zeros(image.shape[:2], bool)
    for mask in maskcut(feats, cfg.num_masks, cfg.tau, cfg.corner_guard):
        up = np.asarray(Image.fromarray(mask.astype(np.uint8)).resize((size, size), Image.NEAREST)) > 0
        union |= crf_or_drop(image, up & ~union)
    return union.astype(np.float32)


def dino_extractor(cfg) -> tuple[Callable, int, dict[str, Any]]:
    """MaskCut features from the user's DINO ViT: the keys of its last block (``[B, C, H/p, W/p]``)."""
    from tools.checkpoints.dino_weights import DINO_WEIGHTS, EXPECTED_FILE, load_dino_vit

    if not cfg.dino_checkpoint:
        raise LussError(
            "cluster.saliency.features='dino' needs a DINO ViT checkpoint: pass `luss cluster "
            "--dino-checkpoint FILE` (or --set cluster.saliency.dino_checkpoint=FILE) with "
            f"{EXPECTED_FILE} (with make: DINO_CKPT=FILE). Nothing is downloaded. Without one, "
            "--set cluster.saliency.features=backbone (Stage-1 features) or =sam (SAM tokens; tau 0.6 was "
            "tuned on DINO keys, not measured on SAM)."
        )
    if cfg.dino_weights not in DINO_WEIGHTS:
        raise LussError(
            f"cluster.saliency.dino_weights={cfg.dino_weights!r}: choose 'teacher' (the default, what the "
            "DINO authors evaluate) or 'student'."
        )
    vit, report = load_dino_vit(cfg.dino_checkpoint, cfg.dino_weights)
    info = {"dino_checkpoint": report.path, "dino_source": report.source, "dino_arch": report.arch.describe()}
    return vit.last_keys, vit.patch_size, info


def centred(backbone: Callable) -> Callable:
    """``backbone`` whose feature map has its per-image mean feature subtracted.

    A ResNet's features come after a ReLU, so every cosine similarity between two of them is positive
    (typically 0.5-0.9) and MaskCut's ``A = cos > tau`` links nearly every pair: the cut then splits the
    image anywhere (measured on the demo: saliency IoU with the ground truth 0.26 raw, 0.37 centred, at
    448 px). Centred, the cosine is signed like the ViT keys MaskCut was designed for, and ``tau = 0``
    means "more alike than the average patch". ViT keys and SAM tokens are signed already.
    """

    def extract(x):
        f = backbone(x)
        return f - f.mean(dims=(2, 3), keepdims=True)

    return extract


def stage_one_extractor(config: LussConfig, layout: RunLayout) -> tuple[Callable, int, dict[str, Any]]:
    """MaskCut features from the Stage-1 backbone (``features: backbone``) or its SAM encoder (``sam``)."""
    from models.build import arch_spec
    from tools.networks import build_network, load_network_weights

    stage_one = layout.final_checkpoint("pretrain")
    if not stage_one.is_file():
        raise LussError(f"{stage_one}: no Stage-1 checkpoint; run `luss pretrain` with this --run first.")
    net = build_network(config, "attention_features")
    load_network_weights(net, "pretrain->attention_features", stage_one)
    net.eval()
    stride = arch_spec(config.model.arch).output_stride
    if config.cluster.saliency.stage == 4:
        extract = centred(net.backbone)
    else:  # a ResNet stage: each stage before the last halves the stride
        stage = config.cluster.saliency.stage
        extract = centred(lambda x: net.backbone(x, return_stages=True)[1][stage])
        stride //= 2 ** (4 - stage)
    if config.cluster.saliency.features == "sam":
        if not hasattr(net.backbone, "encoder"):
            raise LussError(
                f"cluster.saliency.features='sam' needs a sam_* model.arch, not {config.model.arch}."
            )
        extract = net.backbone.encoder
    return extract, stride, {"stage_one": str(stage_one), "stage": config.cluster.saliency.stage}


def write_saliency_maps(
    config: LussConfig, samples: list[Sample], layout: RunLayout, say: Callable[[str], None]
) -> dict[str, Any]:
    import jittor as jt

    cfg = config.cluster.saliency
    if cfg.features not in ("backbone", "sam", "dino"):
        raise LussError(
            f"cluster.saliency.features={cfg.features!r}: choose 'backbone' (Stage-1 features), 'sam' (the "
            "frozen SAM encoder of a sam_* model.arch) or 'dino' (a DINO ViT checkpoint of yours)."
        )
    if cfg.crf:
        from tools.clustering.crf import _densecrf

        _densecrf()  # fail now, naming the package, rather than after the first image
    if cfg.features == "dino":
        extract, stride, info = dino_extractor(cfg)
        say(f"cluster: saliency on the last-block keys of {info['dino_arch']} from {info['dino_source']}")
    else:
        extract, stride, info = stage_one_extractor(config, layout)
    size = max(stride, round(cfg.image_size / stride) * stride)
    out_dir = layout.saliency_dir()
    written = 0
    with jt.no_grad(), progress_bar("saliency", len(samples)) as advance:
        for s in samples:
            target = out_dir / s.wnid / f"{s.stem}.png"
            if not target.is_file():
                image = load_rgb_image(s.image_path)
                x = to_normalized_chw(
                    image.resize((size, size), Image.BILINEAR), IMAGENET_MEAN, IMAGENET_STD
                )[None]
                feats = extract(jt.array(x)).numpy()[0]
                if cfg.crf:
                    grid = crf_saliency(np.asarray(image.resize((size, size), Image.BILINEAR)), feats, cfg)
                else:
                    grid = saliency_map(feats, cfg.num_masks, cfg.tau, cfg.corner_guard)
                full = Image.fromarray(grid.astype(np.uint8)).resize(image.size, Image.NEAREST)
                atomic_write_bytes(target, saliency_png_bytes(np.asarray(full)))
                written += 1
            advance(1)
    say(f"cluster: saliency maps for {len(samples)} train images in {out_dir} ({written} new)")
    return {"images": len(samples), "written": written, "features": cfg.features, "size": size, **info}

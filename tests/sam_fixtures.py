"""A tiny random SAM with the real ``segment_anything`` classes and a 2-image validation tree with
raw predictions: what the refine tests (one process and under mpirun) run SAM voting on."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from tools.data.imagenet_s import ImageNetS
from tools.data.label_codec import write_label_png
from tools.refine.generator_config import GeneratorConfig
from tools.run_layout import RunLayout

# Thresholds lowered so a random SAM's masks pass the filters; NMS at 1.0 keeps every mask.
TINY_GENERATOR = GeneratorConfig(
    points_per_side=4,
    points_per_batch=8,
    pred_iou_thresh=-100.0,
    stability_score_thresh=0.0,
    box_nms_thresh=1.0,
)
SIZES = {"n0001/a": (36, 48), "n0002/b": (40, 30)}


def tiny_sam():
    """A randomly initialised SAM with the real module classes, a few thousand parameters."""
    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    torch.manual_seed(0)
    size, dim = 128, 32
    encoder = ImageEncoderViT(
        img_size=size,
        patch_size=16,
        embed_dim=dim,
        depth=1,
        num_heads=2,
        mlp_ratio=2.0,
        out_chans=dim,
        qkv_bias=True,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
        use_rel_pos=True,
        window_size=4,
    )
    prompt = PromptEncoder(
        embed_dim=dim,
        image_embedding_size=(size // 16, size // 16),
        input_image_size=(size, size),
        mask_in_chans=4,
    )
    decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=1, embedding_dim=dim, mlp_dim=64, num_heads=2),
        transformer_dim=dim,
        iou_head_depth=2,
        iou_head_hidden_dim=32,
    )
    return Sam(image_encoder=encoder, prompt_encoder=prompt, mask_decoder=decoder).eval()


def make_tree(tmp_path: Path) -> tuple[ImageNetS, RunLayout]:
    """Images, GT and raw predictions of a 2-class, 2-image ImageNet-S-like validation split."""
    data_root, layout = tmp_path / "data", RunLayout.at(tmp_path / "run")
    rng = np.random.default_rng(3)
    for n, (key, (h, w)) in enumerate(SIZES.items(), start=1):
        wnid = key.split("/")[0]
        (data_root / "train" / wnid).mkdir(parents=True, exist_ok=True)
        image = data_root / "validation" / f"{key}.JPEG"
        image.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(image)
        gt = np.zeros((h, w), np.int32)
        gt[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = n
        write_label_png(data_root / "validation-segmentation" / f"{key}.png", gt)
        pred = np.where(rng.random((h, w)) < 0.8, (gt > 0) * (3 - n), 0)  # noisy, permuted ids
        write_label_png(layout.predict_dir("validation") / f"{key}.png", pred)
    return ImageNetS(data_root), layout

"""A randomly initialised tiny SAM with the real ``segment_anything`` classes (a few thousand parameters,
seeded): what the refine tests and the fault matrix (``bench/faults.py``) run SAM voting with, where no
real checkpoint may be downloaded."""

from __future__ import annotations

from functools import partial

from tools.refine.generator_config import GeneratorConfig

# Thresholds lowered so a random SAM's masks pass the filters; NMS at 1.0 keeps every mask.
TINY_GENERATOR = GeneratorConfig(
    points_per_side=4,
    points_per_batch=8,
    pred_iou_thresh=-100.0,
    stability_score_thresh=0.0,
    box_nms_thresh=1.0,
)


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

"""What the rehearsal changes in a preset: schedules, resolutions and data sizes only, never the method.

Architectures (``model.*``), loss weights, heads, saliency features, optimiser kinds and the stage
order are the preset's own; epochs, batch sizes, crop sides, queue lengths, k-means restarts and the
threshold grid are cut so a stage takes seconds on two CPU ranks.
"""

from __future__ import annotations

from tools.config.loader import load_config

REHEARSED_PRESETS = ("luss50-pass", "luss50-sampass", "luss300")
BATCH = 4  # global: 2 per rank under mpirun -np 2
QUEUE = 8  # rows per rank: a multiple of the per-rank batch


def _loop(section: str) -> list[str]:
    return [
        f"{section}.loop.epochs=1",
        f"{section}.loop.batch_size={BATCH}",
        f"{section}.loop.workers=1",
        f"{section}.loop.checkpoint_freq=1",
        f"{section}.loop.log_every=1",
        f"{section}.loop.optim.warmup_epochs=0",
    ]


def shrink_overrides(preset: str) -> list[str]:
    """``--set`` values that shrink ``preset`` for the rehearsal (crop sides follow its backbone)."""
    from models.build import arch_spec

    config = load_config(preset)
    vit = arch_spec(config.model.arch).sam
    big, small = (64, 32) if vit else (96, 48)  # ViT: 4 x 4 patches; ResNet: 3 x 3 at stride 32
    sizes = [big, small][: len(config.pretrain.crops.sizes)]
    out = [
        *_loop("pretrain"),
        f"pretrain.crops.sizes=[{','.join(map(str, sizes))}]",
        f"pretrain.queue_length={QUEUE * 2}",
        "pretrain.epoch_queue_starts=0",
        f"pretrain.freeze_prototypes_niters={min(config.pretrain.freeze_prototypes_niters, 1)}",
        *_loop("pixel_attention"),
        f"pixel_attention.crops.sizes=[{big}]",
        f"pixel_attention.queue_length={QUEUE * 2}",
        "pixel_attention.epoch_queue_starts=0",
        f"pixel_attention.saliency_image_size={big}",
        "cluster.nredo=1",
        "cluster.niter=5",
        f"cluster.short_side={big}",
        f"cluster.crop={big}",
        "cluster.t_step=0.1",
        f"cluster.saliency.image_size={big}",
        *_loop("finetune"),
        f"finetune.crop_size={big}",
        f"predict.short_side={big}",
        f"predict.max_res={2 * big}",
    ]
    return out

"""Every value of a config checked before any work: ranges, lengths, names, paths.

The loader already checks types and choices (``Literal`` fields); this adds what a type cannot say
(``epochs >= 1``, ``0 < min_scale <= max_scale <= 1``, a known ``model.arch``, an existing checkpoint file).
:func:`validate_config` lists every problem at once, each with the ``--set`` key that fixes it, so a bad
value fails in a second instead of after the network (maybe SAM ViT-B) is built or Stage 1 has run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tools.config.loader import ConfigError
from tools.config.schema import CropConfig, LoopConfig, LussConfig, ModelConfig
from tools.data.augment import ColorJitterSpec


class InvalidConfigError(ConfigError):
    """One or more config values are out of range; the message lists them all."""


def _loop(section: str, loop: LoopConfig, bad: Callable[[str, str], None]) -> None:
    key = f"{section}.loop"
    for name in ("epochs", "batch_size", "checkpoint_freq", "log_every"):
        if getattr(loop, name) < 1:
            bad(f"{key}.{name}", "must be >= 1")
    for name in ("workers", "keep_checkpoints", "max_skipped_images"):
        if getattr(loop, name) < 0:
            bad(f"{key}.{name}", "must be >= 0")
    o = loop.optim
    for name in ("base_lr", "final_lr", "start_warmup_lr", "weight_decay", "larc_trust"):
        if getattr(o, name) < 0:
            bad(f"{key}.optim.{name}", "must be >= 0")
    if not 0 <= o.momentum < 1:
        bad(f"{key}.optim.momentum", "must be in [0, 1)")
    if o.warmup_epochs < 0:
        bad(f"{key}.optim.warmup_epochs", "must be >= 0")


def _crops(key: str, crops: CropConfig, min_crops: int, bad: Callable[[str, str], None]) -> None:
    n = len(crops.sizes)
    if not n or not (len(crops.counts) == len(crops.min_scales) == len(crops.max_scales) == n):
        bad(f"{key}.crops", "sizes, counts, min_scales and max_scales need the same (non-zero) length")
        return
    if any(s < 8 for s in crops.sizes):
        bad(f"{key}.crops.sizes", "every crop side must be >= 8 pixels")
    if any(c < 0 for c in crops.counts) or sum(crops.counts) < min_crops:
        bad(f"{key}.crops.counts", f"must give at least {min_crops} crops in all")
    if crops.counts[0] < 2:  # MultiCropSpec's rule, for every multi-crop section
        bad(f"{key}.crops.counts", "the first crop group needs at least 2 crops (the P2P pair)")
    for lo, hi in zip(crops.min_scales, crops.max_scales, strict=True):
        if not 0 < lo <= hi <= 1:
            bad(f"{key}.crops.min_scales/max_scales", f"need 0 < min <= max <= 1, got {lo} and {hi}")
    if crops.color_strength < 0:
        bad(f"{key}.crops.color_strength", "must be >= 0")
    else:
        try:  # the hue and saturation rules live with the jitter they build
            ColorJitterSpec.swav(crops.color_strength, hue=crops.hue)
        except ValueError as exc:
            bad(f"{key}.crops.hue", str(exc))
        try:
            ColorJitterSpec.swav(crops.color_strength, hue=0.0, saturation=crops.saturation)
        except ValueError as exc:
            bad(f"{key}.crops.saturation", str(exc))
    for name in ("grayscale_p", "blur_p"):
        if not 0 <= getattr(crops, name) <= 1:
            bad(f"{key}.crops.{name}", "is a probability in [0, 1]")


def _swav(key: str, cfg, bad: Callable[[str, str], None]) -> None:
    for name in ("temperature", "epsilon"):
        if getattr(cfg, name) <= 0:
            bad(f"{key}.{name}", "must be > 0")
    if cfg.sinkhorn_iters < 1:
        bad(f"{key}.sinkhorn_iters", "must be >= 1")
    if cfg.queue_length < 0 or cfg.epoch_queue_starts < 0:
        bad(f"{key}.queue_length/epoch_queue_starts", "must be >= 0")
    if cfg.swav_weight < 0:
        bad(f"{key}.swav_weight", "must be >= 0")


def _file(key: str, path: str | None, bad: Callable[[str, str], None]) -> None:
    if path and not Path(path).is_file():
        bad(key, f"{path}: no such file")


def needs_sam_weights(model: ModelConfig, sam_checkpoint: str | None) -> bool:
    """Whether ``model`` keeps a SAM encoder frozen that must be given official weights and is given
    none (``sam_checkpoint``: the weights a flag or the config names)."""
    from models.build import arch_spec

    spec = arch_spec(model.arch)
    return spec.needs_weights_when_frozen and model.freeze_encoder and not sam_checkpoint


def problems_of(config: LussConfig, command: str | None = None) -> list[str]:
    """One line per invalid value (``key: what is wrong``); empty when the config is sound.

    ``command`` adds what only that command needs (``pretrain``: a frozen SAM ViT-B needs its weights).
    """
    from models.build import arch_spec

    problems: list[str] = []

    def bad(key: str, why: str) -> None:
        problems.append(f"{key}: {why}")

    m = config.model
    try:
        spec = arch_spec(m.arch)
    except ValueError as exc:
        bad("model.arch", str(exc))
        spec = None
    for name in ("width", "hidden_mlp", "feat_dim", "num_prototypes", "adapter_width"):
        if getattr(m, name) < 1:
            bad(f"model.{name}", "must be >= 1")
    _file("model.sam_checkpoint", m.sam_checkpoint, bad)
    if spec is not None and m.sam_checkpoint and not spec.sam:
        bad("model.sam_checkpoint", f"SAM weights need a SAM architecture, model.arch is {m.arch!r}")
    if command == "pretrain" and spec is not None and needs_sam_weights(m, m.sam_checkpoint):
        bad(
            "model.sam_checkpoint",
            f"model.arch {m.arch} keeps the SAM encoder frozen, so it needs its weights: pass "
            "--sam-checkpoint sam_vit_b_01ec64.pth (or --set model.freeze_encoder=false)",
        )

    p = config.pretrain
    _loop("pretrain", p.loop, bad)
    _crops("pretrain", p.crops, 2, bad)
    _swav("pretrain", p, bad)
    total = sum(p.crops.counts)
    if any(not 0 <= c < total for c in p.crops_for_assign) or not p.crops_for_assign:
        bad("pretrain.crops_for_assign", f"{p.crops_for_assign} must name crops among the {total}")
    if p.shallow_stages:
        if any(s not in (1, 2, 3) for s in p.shallow_stages):
            bad("pretrain.shallow_stages", f"{p.shallow_stages}: stages are 1, 2 or 3")
        if any(c not in (0, 1) for c in p.crops_for_assign):
            bad("pretrain.crops_for_assign", "deep-to-shallow pairs crops 0 and 1: use crops among [0, 1]")
        if spec is not None and not spec.stages:
            bad("pretrain.shallow_stages", f"deep-to-shallow needs a ResNet backbone, not {m.arch}")
    for name in ("p2p_weight", "d2s_weight", "freeze_prototypes_niters"):
        if getattr(p, name) < 0:
            bad(f"pretrain.{name}", "must be >= 0")
    if p.grid_size < 1:
        bad("pretrain.grid_size", "must be >= 1")

    a = config.pixel_attention
    _loop("pixel_attention", a.loop, bad)
    _crops("pixel_attention", a.crops, 2, bad)
    _swav("pixel_attention", a, bad)
    if a.saliency_weight < 0:
        bad("pixel_attention.saliency_weight", "must be >= 0")
    if a.saliency_image_size < 8:
        bad("pixel_attention.saliency_image_size", "must be >= 8")
    if a.feature_cache_mb < 0:
        bad("pixel_attention.feature_cache_mb", "must be >= 0 (MiB; 0 keeps nothing)")

    c = config.cluster
    s = c.saliency
    if c.num_clusters < 0:
        bad("cluster.num_clusters", "must be >= 0 (0: the number of train classes)")
    for name in ("nredo", "niter"):
        if getattr(c, name) < 1:
            bad(f"cluster.{name}", "must be >= 1")
    if not 8 <= c.crop <= c.short_side:
        bad("cluster.crop", f"must be in [8, cluster.short_side = {c.short_side}]")
    if not 0 <= c.t_min <= c.t_max <= 1:
        bad("cluster.t_min/t_max", f"need 0 <= t_min <= t_max <= 1, got {c.t_min} and {c.t_max}")
    if c.t_step <= 0:
        bad("cluster.t_step", "must be > 0")
    if s.image_size < 16 or s.num_masks < 1:
        bad("cluster.saliency.image_size/num_masks", "need image_size >= 16 and num_masks >= 1")
    _file("cluster.saliency.dino_checkpoint", s.dino_checkpoint, bad)
    if s.enabled and s.features == "sam" and spec is not None and not spec.sam:
        bad("cluster.saliency.features", f"'sam' needs a sam_* model.arch, not {m.arch}")
    if s.stage not in (3, 4):
        bad("cluster.saliency.stage", f"must be 3 or 4 (the ResNet stage MaskCut cuts), got {s.stage}")
    elif s.stage != 4 and s.enabled and s.features == "backbone" and spec is not None and not spec.stages:
        # Read only with features 'backbone' (DINO / SAM saliency ignores it, so a preset's stage 3
        # does not stand in the way of --dino-checkpoint); there it must name a ResNet stage.
        bad(
            "cluster.saliency.stage",
            f"stage {s.stage} taps a ResNet stage of the backbone features: {m.arch} has none "
            "(leave it at 4)",
        )

    f = config.finetune
    _loop("finetune", f.loop, bad)
    if f.crop_size < 8:
        bad("finetune.crop_size", "must be >= 8")
    for name in ("min_scale", "label_scale"):
        if not 0 < getattr(f, name) <= 1:
            bad(f"finetune.{name}", "must be in (0, 1]")
    if not 0 <= f.class_balance <= 1:
        bad("finetune.class_balance", "must be in [0, 1] (0: plain cross-entropy, 1: inverse frequency)")

    pr = config.predict
    if pr.short_side < 16:
        bad("predict.short_side", "must be >= 16")
    if pr.max_res < 1:
        bad("predict.max_res", "must be >= 1")
    return problems


def validate_config(config: LussConfig, command: str | None = None) -> LussConfig:
    """``config`` when every value is sound, else :class:`InvalidConfigError` listing every problem."""
    problems = problems_of(config, command)
    if problems:
        lines = "\n  ".join(problems)
        raise InvalidConfigError(
            f"preset {config.preset}: {len(problems)} invalid config value(s):\n  {lines}\n"
            "Fix them with --set KEY=VALUE (or in the preset file)."
        )
    return config

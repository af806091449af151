"""The typed configuration of a `luss` run. Defaults are the demo-safe values; presets override them.

Batch sizes are **global** (Jittor semantics): under ``mpirun -np N`` each rank takes ``batch_size / N``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class OptimConfig:
    """SGD with momentum, warm-up then cosine decay, optional LARC (PASS used trust 0.001, no clip)."""

    base_lr: float = 0.6
    final_lr: float = 0.0006
    warmup_epochs: int = 0
    start_warmup_lr: float = 0.0
    momentum: float = 0.9
    weight_decay: float = 1e-6
    larc: bool = False
    larc_trust: float = 0.001
    larc_clip: bool = False


@dataclass
class LoopConfig:
    """What every training stage shares: schedule length, batch, checkpoints, logging, seed."""

    epochs: int = 2
    batch_size: int = 16
    workers: int = 2
    seed: int = 31
    checkpoint_freq: int = 5  # a ckp-<epoch>.pkl snapshot every this many epochs (and at the end)
    keep_checkpoints: int = 3  # the newest this many snapshots are kept (0 = all), plus final.pkl
    log_every: int = 10
    # fp32, or amp: Jittor's automatic mixed precision on CUDA (fp16 activations and gradients, fp32
    # weights, optimiser and Sinkhorn, dynamic loss scaling). On the CPU amp falls back to fp32.
    precision: Literal["fp32", "amp"] = "fp32"
    tf32: bool = True  # CUDA, fp32 only: matrix products on TF32 tensor cores (Jittor's use_tensorcore=1)
    # Damaged images met while training (a file changed under the job) are skipped, each logged with
    # its path in <stage>/skipped.jsonl, up to this many distinct files; one more stops the stage.
    max_skipped_images: int = 10
    optim: OptimConfig = field(default_factory=OptimConfig)


@dataclass
class ModelConfig:
    """Backbone and head sizes. Head input widths are derived from the backbone, never set here."""

    arch: str = "resnet18"
    width: int = 64  # ResNet stem width (stage s has width * 2**(s-1) channels); 64 is the standard ResNet
    sam_checkpoint: str | None = None
    freeze_encoder: bool = True
    adapter_width: int = 512
    hidden_mlp: int = 512
    feat_dim: int = 128
    num_prototypes: int = 500


@dataclass
class CropConfig:
    """Multi-crop groups and the SwAV photometric augmentations applied to every crop.

    ``color_strength`` is SwAV's colour-distortion strength ``s`` (jitter 0.8 s, hue 0.2 s, applied with
    probability 0.8); 1.0 is the reference recipe. Tiny datasets trained for a few hundred steps may need
    less: on the demo, full-strength jitter leaves swapped prediction unable to match two views.
    """

    sizes: list[int] = field(default_factory=lambda: [224, 96])
    counts: list[int] = field(default_factory=lambda: [2, 6])
    min_scales: list[float] = field(default_factory=lambda: [0.14, 0.05])
    max_scales: list[float] = field(default_factory=lambda: [1.0, 0.14])
    color_strength: float = 1.0
    hue: float | None = None  # hue jitter amplitude (0..0.5 of a turn); None: SwAV's 0.2 * color_strength
    saturation: float | None = None  # saturation jitter amplitude (>= 0); None: SwAV's 0.8 * color_strength
    grayscale_p: float = 0.2
    blur_p: float = 0.5


@dataclass
class PretrainConfig:
    loop: LoopConfig = field(default_factory=LoopConfig)
    crops: CropConfig = field(default_factory=CropConfig)
    crops_for_assign: list[int] = field(default_factory=lambda: [0, 1])
    temperature: float = 0.1
    epsilon: float = 0.05
    sinkhorn_iters: int = 3
    queue_length: int = 0
    epoch_queue_starts: int = 15
    freeze_prototypes_niters: int = 0
    swav_weight: float = 1.0
    p2p_weight: float = 1.0
    d2s_weight: float = 1.0
    shallow_stages: list[int] = field(default_factory=list)
    grid_size: int = 7


@dataclass
class PixelAttentionConfig:
    loop: LoopConfig = field(default_factory=LoopConfig)
    crops: CropConfig = field(
        default_factory=lambda: CropConfig(sizes=[224], counts=[2], min_scales=[0.08], max_scales=[1.0])
    )
    temperature: float = 0.1
    epsilon: float = 0.05
    sinkhorn_iters: int = 3
    queue_length: int = 0
    epoch_queue_starts: int = 0
    swav_weight: float = 1.0
    saliency_weight: float = 0.0
    saliency_image_size: int = 224
    # MiB per rank of frozen backbone features of the saliency BCE's whole images, computed in the first
    # epoch and reused (the same image every epoch); images past the budget are recomputed. 0: never kept.
    feature_cache_mb: float = 1024.0


@dataclass
class SaliencyConfig:
    enabled: bool = False
    features: Literal["backbone", "sam", "dino"] = "backbone"
    dino_checkpoint: str | None = None  # DINO *_pretrain.pth or training checkpoint.pth (features: dino)
    dino_weights: Literal["teacher", "student"] = "teacher"  # which network of a DINO training checkpoint
    # features: backbone on a ResNet: the stage whose output MaskCut cuts (4: the last, stride 32;
    # 3: stride 16, twice as many patches per side for the same image size); unused by sam / dino
    stage: int = 4
    image_size: int = 480
    num_masks: int = 3
    tau: float = 0.6
    # MaskCut's orientation: the reference picks the side holding the eigenvector's peak unless the other
    # rule (>= 3 corner patches are background) applies first; True also refuses a peak side holding >= 3
    # corners (tools/clustering/ncut.py:bipartition). False: the reference's rule exactly.
    corner_guard: bool = True
    crf: bool = False


@dataclass
class ClusterConfig:
    saliency: SaliencyConfig = field(default_factory=SaliencyConfig)
    num_clusters: int = 0  # 0: the number of train classes
    nredo: int = 30
    niter: int = 20
    seed: int = 31
    short_side: int = 256
    crop: int = 224
    t_min: float = 0.0
    t_max: float = 0.8
    t_step: float = 0.01


@dataclass
class FinetuneConfig:
    loop: LoopConfig = field(default_factory=LoopConfig)
    head: Literal["progressive", "last_layer"] = "progressive"  # SAMPASS up1/up2 | PASS 1x1 conv
    freeze_backbone: bool = True
    crop_size: int = 224
    min_scale: float = 0.08
    label_scale: float = 0.5
    # pseudo: the Stage-2 pseudo-labels (fully unsupervised); train-semi: the 1 % ground-truth masks of
    # DATA/train-semi (the semi-supervised protocol; `luss finetune --labels train-semi`)
    labels: Literal["pseudo", "train-semi"] = "pseudo"
    # Re-weight the foreground classes of the cross-entropy by (mean frequency / frequency) ** alpha,
    # background kept at 1 (tools/data/class_balance.py); 0: PASS's plain cross-entropy.
    class_balance: float = 0.0


@dataclass
class PredictConfig:
    short_side: int = 256
    max_res: int = 1000
    flip_tta: bool = False
    use_folder_labels: bool = False  # NOT fully unsupervised: see README


@dataclass
class RefineConfig:
    """``luss refine`` defaults (its CLI flags override them): the SAM variant of ``--sam-checkpoint``, the
    vote (``original``: every mask votes on the raw prediction; ``sampass``: in place, by predicted IoU)
    and the background policy (``erase``: a mask whose majority is background becomes background, as the
    references; ``protect``: it never erases foreground)."""

    model_type: Literal["vit_b", "vit_l", "vit_h"] = "vit_b"
    vote_mode: Literal["original", "sampass"] = "original"
    background: Literal["erase", "protect"] = "erase"


@dataclass
class LussConfig:
    """One run's whole configuration; saved resolved as ``RUN/config.yaml``."""

    preset: str = "demo"
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    pixel_attention: PixelAttentionConfig = field(default_factory=PixelAttentionConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)
    refine: RefineConfig = field(default_factory=RefineConfig)

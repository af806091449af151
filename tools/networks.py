"""The one place that builds a stage's network and loads its weights.

Every stage gets its network from ``build_network(config, role)`` and its weights from
``load_network_weights(net, source, path)``. The backbone comes from the registry entry of ``model.arch``
(:mod:`models.build`), so adding a backbone never touches a stage.

Roles (what is built):

* ``pretrain``: the Stage-1 :class:`~models.pretrain_net.PretrainNet` (backbone + heads + prototypes);
* ``attention``: the Stage-2 :class:`~models.pixel_attention_net.PixelAttentionNet` with projection head
  and prototypes (pixel-attention training; the SAM encoder is always frozen there);
* ``attention_features``: the same without heads (backbone + ``fbg``: MaskCut features, clustering);
* ``segmenter``: the Stage-3/4 :class:`~models.segmenter.Segmenter` (``num_classes`` needed).

Weight sources (what is loaded into what): ``sam`` (official SAM weights into a SAM backbone's encoder) and
the rules of :data:`WEIGHT_RULES` (run checkpoints into a network).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tools.config.schema import LussConfig, ModelConfig
from tools.errors import LussError

Role = Literal["pretrain", "attention", "attention_features", "segmenter"]
ROLES: tuple[Role, ...] = ("pretrain", "attention", "attention_features", "segmenter")

STAGE_ONE_ONLY = ("projection_head_pixel.", "predictor_head_pixel.", "shallow.")
ATTENTION_HEADS = ("prototypes.", "projection_head.")


@dataclass(frozen=True)
class WeightRule:
    """Which keys of a checkpoint's ``model`` go into which part of a network.

    ``prefix``: take only keys under it, stripped, into the submodule ``into`` (strictly: every key of it
    must be there). Otherwise the whole network: keys under ``drop`` are left out on purpose, keys under
    ``may_miss`` may be absent (they keep their initialisation); any other mismatch is an error.
    """

    prefix: str = ""
    into: str = ""
    drop: tuple[str, ...] = ()
    may_miss: tuple[str, ...] = ()


WEIGHT_RULES: dict[str, WeightRule] = {
    # Stage 1 has no fbg (spec 4.1: it starts from its initialisation).
    "pretrain->attention": WeightRule(drop=STAGE_ONE_ONLY, may_miss=("fbg.",)),
    "pretrain->attention_features": WeightRule(drop=(*STAGE_ONE_ONLY, *ATTENTION_HEADS), may_miss=("fbg.",)),
    "attention->attention_features": WeightRule(drop=ATTENTION_HEADS),
    "pretrain->segmenter": WeightRule(prefix="backbone.", into="backbone"),
    "finetune->segmenter": WeightRule(),
    "pretrain->pretrain": WeightRule(),  # a Stage-1 network read back whole (diagnostics)
}

# The command that writes each source checkpoint (named in the error when it is missing).
WRITTEN_BY = {
    "pretrain": "luss pretrain",
    "attention": "luss cluster --step attention",
    "finetune": "luss finetune",
}


def build_backbone(model: ModelConfig, freeze_encoder: bool | None = None):
    """The backbone of ``model.arch`` with the settings its registry entry takes (weights random)."""
    from models.build import backbone_from_settings

    freeze = model.freeze_encoder if freeze_encoder is None else freeze_encoder
    try:
        return backbone_from_settings(
            model.arch, width=model.width, adapter_width=model.adapter_width, freeze_encoder=freeze
        )
    except ValueError as exc:
        raise LussError(f"model: {exc}") from None


def build_network(
    config: LussConfig,
    role: Role,
    num_classes: int | None = None,
    freeze_backbone: bool | None = None,
    head_module=None,
):
    """The network of ``role`` for ``config`` (weights random: load them with :func:`load_network_weights`).

    ``segmenter`` only: ``num_classes`` (C, background excluded), ``freeze_backbone`` (default
    ``finetune.freeze_backbone``) and ``head_module``, a head that replaces ``finetune.head`` (the
    distance-matching features)."""
    m = config.model
    try:
        if role == "pretrain":
            from models.pretrain_net import PretrainNet

            stages = config.pretrain.shallow_stages
            return PretrainNet(build_backbone(m), m.hidden_mlp, m.feat_dim, m.num_prototypes, stages)
        if role in ("attention", "attention_features"):
            from models.pixel_attention_net import PixelAttentionNet

            sizes = (m.hidden_mlp, m.feat_dim, m.num_prototypes) if role == "attention" else (0, 0, 0)
            return PixelAttentionNet(build_backbone(m, freeze_encoder=True), *sizes)
        if role == "segmenter":
            from models.segmenter import Segmenter

            if num_classes is None:
                raise LussError("build_network('segmenter') needs num_classes.")
            f = config.finetune
            freeze = f.freeze_backbone if freeze_backbone is None else freeze_backbone
            head = f.head if head_module is None else head_module
            return Segmenter(build_backbone(m), num_classes, head=head, freeze_backbone=freeze)
    except ValueError as exc:
        raise LussError(f"model: {exc}") from None
    raise LussError(f"unknown network role {role!r}; choose one of {', '.join(ROLES)}")


def load_network_weights(net, source: str, path: str | Path, payload: dict | None = None) -> None:
    """Load ``path`` into ``net``: ``source`` is ``sam`` (official SAM weights, e.g. sam_vit_b_01ec64.pth,
    into the encoder of a SAM backbone) or a :data:`WEIGHT_RULES` key such as ``pretrain->segmenter``.
    ``payload``: the checkpoint already read from ``path`` (not read again)."""
    path = Path(path)
    if source == "sam":
        _load_sam_encoder(net, path)
        return
    try:
        rule = WEIGHT_RULES[source]
    except KeyError:
        known = ", ".join(["sam", *WEIGHT_RULES])
        raise LussError(f"unknown weight source {source!r}; choose one of {known}") from None
    _load_by_rule(net, path, rule, WRITTEN_BY[source.split("->")[0]], payload)


def _load_sam_encoder(net, path: Path) -> None:
    from tools.checkpoints.sam_weights import load_sam_encoder_weights

    backbone = getattr(net, "backbone", net)
    if not hasattr(backbone, "encoder"):
        raise LussError(f"{path}: SAM weights need a SAM architecture (model.arch sam_*), not this network.")
    load_sam_encoder_weights(backbone.encoder, path)


def _load_by_rule(net, path: Path, rule: WeightRule, written_by: str, payload: dict | None) -> None:
    from tools.engine.checkpoint import load_checkpoint
    from tools.engine.state import load_model_state

    if payload is None and not path.is_file():
        raise LussError(f"{path}: checkpoint not found. Run `{written_by} --run RUN --data D` first.")
    state = (payload if payload is not None else load_checkpoint(path))["model"]
    if rule.prefix:
        part = {k[len(rule.prefix) :]: v for k, v in state.items() if k.startswith(rule.prefix)}
        if not part:
            raise LussError(f"{path}: holds no '{rule.prefix}*' parameters; is it the right checkpoint?")
        load_model_state(getattr(net, rule.into) if rule.into else net, part, str(path))
        return
    state = {k: v for k, v in state.items() if not k.startswith(rule.drop)} if rule.drop else state
    unexpected = sorted(set(state) - set(net.state_dict()))
    missing = load_model_state(net, state, str(path), strict=False)
    missing = [k for k in missing if not k.startswith(rule.may_miss)] if rule.may_miss else missing
    if missing or unexpected:
        raise LussError(
            f"{path} does not fit this model: missing {missing[:5]}, unexpected {unexpected[:5]}. "
            "Was it trained with another --preset?"
        )

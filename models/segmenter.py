"""The Stage-3/4 network: a backbone plus a per-pixel classification head (spec sections 7, 8.1).

``Segmenter(x)``: ``[B, 3, H, W]`` -> logits ``[B, C+1, h, w]`` (class 0 = background, 1..C = clusters),
with ``h = H / stride`` for the PASS ``last_layer`` head and ``4 H / stride`` for the SAMPASS
``progressive`` head. Parameter names are ``backbone.*`` and ``head.*``, so the backbone half of a
Stage-1 checkpoint (whose backbone keys also start with ``backbone.``) loads as it is.
"""

from __future__ import annotations

import jittor as jt
from jittor import nn

from models.feature_aggregator import input_multiple
from models.heads import LastLayer, ProgressiveUpsamplingHead

HEADS = ("progressive", "last_layer")


def _set_eval(module: nn.Module) -> None:
    """Eval mode without Jittor's ``eval()`` stop_grad bookkeeping (which ``train()`` would undo)."""
    for m in module.modules():
        m.is_train = False


class Segmenter(nn.Module):
    """``backbone`` (any module with ``num_features``) + ``head`` (``"progressive"`` or ``"last_layer"``).

    ``freeze_backbone``: the backbone's parameters leave :meth:`trainable_parameters`, are ``stop_grad``
    and the backbone stays in eval mode (BatchNorm statistics do not drift) even under ``train()``;
    that is SAMPASS Stage 3. ``freeze_backbone=False`` fine-tunes everything, as PASS does.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        head: str | nn.Module = "progressive",
        freeze_backbone: bool = True,
    ):
        if not isinstance(head, nn.Module) and head not in HEADS:
            raise ValueError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.backbone = backbone
        self.num_classes = num_classes
        self.head_name = "module" if isinstance(head, nn.Module) else head
        self.freeze_backbone = freeze_backbone
        width = backbone.num_features
        if isinstance(head, nn.Module):  # a ready head with an ``upsample`` factor (CosineHead)
            self.head = head
        elif head == "progressive":
            self.head = ProgressiveUpsamplingHead(width, num_classes)
        else:
            self.head = LastLayer(width, num_classes)
        if freeze_backbone:
            for p in backbone.parameters():
                p.stop_grad()
            _set_eval(backbone)

    @property
    def output_stride(self) -> int:
        """Input pixels per logit pixel."""
        stride = self.backbone.output_stride
        if self.head_name == "module":
            return stride // self.head.upsample
        return stride // 4 if self.head_name == "progressive" else stride

    def train(self):
        super().train()
        if self.freeze_backbone:
            _set_eval(self.backbone)
        return self

    def trainable_parameters(self) -> list[jt.Var]:
        """What the optimiser updates: the head alone when the backbone is frozen."""
        if self.freeze_backbone:
            return list(self.head.parameters())
        inner = getattr(self.backbone, "trainable_parameters", None)
        backbone_params = inner() if inner is not None else list(self.backbone.parameters())
        return [*backbone_params, *self.head.parameters()]

    @property
    def input_multiple(self) -> int:
        """Input sides must be multiples of this (ViT patches); ResNets take any size."""
        return input_multiple(self.backbone)

    def execute(self, x: jt.Var) -> jt.Var:
        """``x [B, 3, H, W]`` -> ``[B, C+1, ceil(H / s), ceil(W / s)]`` with ``s = output_stride``.

        Sides that are not a multiple of :attr:`input_multiple` are zero-padded at the bottom/right
        (after normalisation, as SAM pads) and the logits of the padding are cropped off.
        """
        height, width = x.shape[2:]
        m = self.input_multiple
        if height % m == 0 and width % m == 0:
            return self._logits(x)
        logits = self._logits(jt.nn.pad(x, (0, -width % m, 0, -height % m)))
        s = self.output_stride
        return logits[:, :, : -(-height // s), : -(-width // s)]

    def _logits(self, x: jt.Var) -> jt.Var:
        if self.freeze_backbone:
            if self.backbone.is_training():
                _set_eval(self.backbone)
            with jt.no_grad():
                features = self.backbone(x)
            features = features.stop_grad()
        else:
            features = self.backbone(x)
        return self.head(features)


def num_classes_from_state(state: dict, head: str) -> int:
    """``C`` of a saved Segmenter, read from the classifier bias (``C + 1`` entries)."""
    key = "head.up2.bias" if head == "progressive" else "head.conv.bias"
    if key not in state:
        raise KeyError(key)
    return int(state[key].shape[0]) - 1

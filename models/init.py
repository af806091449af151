"""Weight initialisation shared by the networks (PASS: Kaiming-normal convs, BatchNorm weight 1 bias 0)."""

from __future__ import annotations

from jittor import init, nn


def kaiming_init_(module: nn.Module) -> nn.Module:
    """In place: every ``Conv2d`` weight ~ N(0, 2 / fan_out); affine BatchNorm weight 1 and bias 0.

    Conv biases keep their default (uniform) initialisation, as in PASS. Returns ``module``.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            m.weight.assign(init.relu_invariant_gauss(tuple(m.weight.shape), "float32", mode="fan_out"))
        elif isinstance(m, nn.BatchNorm) and m.affine:
            m.weight.assign(init.constant(tuple(m.weight.shape), "float32", 1.0))
            m.bias.assign(init.constant(tuple(m.bias.shape), "float32", 0.0))
    return module


def classifier_init_(conv: nn.Conv2d, std: float = 0.01) -> nn.Conv2d:
    """In place: the per-pixel classifier starts near uniform, weight ~ N(0, std^2), bias 0.

    The references Kaiming-initialise it (std sqrt(2 / fan_out) = 0.2 for 51 classes). On unnormalised
    backbone features of a few units that gives logits of tens and a first cross-entropy of ~40-120
    (ln 9 = 2.2 on the demo), and the first steps go into undoing it. ``std = 0.01`` starts every class
    close to 1 / (C + 1), as segmentation heads usually do.
    """
    conv.weight.assign(init.gauss(tuple(conv.weight.shape), "float32", 0.0, std))
    if conv.bias is not None:
        conv.bias.assign(init.constant(tuple(conv.bias.shape), "float32", 0.0))
    return conv

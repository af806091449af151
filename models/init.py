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

"""Random DINO ViT state dicts with the official key names (``tools.rehearsal.weights.dino_state``, spelled
out there, not read off our model), plus DINO's head keys the loader must drop."""

from __future__ import annotations

import torch

from tools.rehearsal.weights import dino_state

__all__ = ["dino_head_state", "dino_state", "prefixed"]


def dino_head_state(embed: int, prefix: str) -> dict[str, torch.Tensor]:
    """A few keys of DINO's projection head (``DINOHead``), which the loader must drop."""
    return {
        f"{prefix}head.mlp.0.weight": torch.zeros(32, embed),
        f"{prefix}head.mlp.0.bias": torch.zeros(32),
        f"{prefix}head.last_layer.weight_g": torch.ones(100, 1),
        f"{prefix}head.last_layer.weight_v": torch.zeros(100, 16),
    }


def prefixed(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {prefix + k: v for k, v in state.items()}

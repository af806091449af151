"""Random DINO ViT state dicts with the official key names, spelled out here (not read off our model),
so a test that loads them checks the key names too. Tensors are torch's: the files are written with
``torch.save`` exactly like DINO's own checkpoints."""

from __future__ import annotations

import torch


def dino_state(
    embed: int = 64, depth: int = 2, patch: int = 16, grid: int = 14, seed: int = 0
) -> dict[str, torch.Tensor]:
    """A DINO ViT backbone state dict (``pos_embed`` for a ``grid x grid`` patch grid) of random weights."""
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape: int, mean: float = 0.0, std: float = 0.2) -> torch.Tensor:
        return torch.randn(*shape, generator=gen) * std + mean

    state = {
        "cls_token": rand(1, 1, embed, std=1.0),
        "pos_embed": rand(1, 1 + grid * grid, embed, std=1.0),
        "patch_embed.proj.weight": rand(embed, 3, patch, patch, std=0.05),
        "patch_embed.proj.bias": rand(embed),
    }
    for i in range(depth):
        b = f"blocks.{i}."
        for norm in ("norm1", "norm2"):
            state[f"{b}{norm}.weight"] = rand(embed, mean=1.0, std=0.1)
            state[f"{b}{norm}.bias"] = rand(embed, std=0.1)
        for name, (out_dim, in_dim) in {
            "attn.qkv": (3 * embed, embed),
            "attn.proj": (embed, embed),
            "mlp.fc1": (4 * embed, embed),
            "mlp.fc2": (embed, 4 * embed),
        }.items():
            state[f"{b}{name}.weight"] = rand(out_dim, in_dim, std=in_dim**-0.5)
            state[f"{b}{name}.bias"] = rand(out_dim, std=0.1)
    state["norm.weight"] = rand(embed, mean=1.0, std=0.1)
    state["norm.bias"] = rand(embed, std=0.1)
    return state


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

"""Random weights in the official checkpoint layouts (SAM ViT-B, DINO ViT), for the rehearsal and tests.

The files are written with ``torch.save`` of a plain state dict, exactly like the released
``sam_vit_b_01ec64.pth`` and DINO's ``*_pretrain.pth``, so they go through the same strict loaders as
the real checkpoints. The SAM one is built by ``segment_anything``'s own ``build_sam_vit_b``, so its
keys and shapes are the official ones by construction; the DINO key names are spelled out here (not
read off our model), so a loader test checks them too.
"""

from __future__ import annotations

import os
from pathlib import Path


def _save_atomic(state: dict, path: Path) -> Path:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(state, partial)
    os.replace(partial, path)
    return path


def dino_state(embed: int = 64, depth: int = 2, patch: int = 16, grid: int = 14, seed: int = 0) -> dict:
    """A DINO ViT backbone state dict (``pos_embed`` for a ``grid x grid`` patch grid) of random weights."""
    import torch

    gen = torch.Generator().manual_seed(seed)

    def rand(*shape: int, mean: float = 0.0, std: float = 0.2):
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


def write_dino_vit_tiny(path: Path, seed: int = 0) -> Path:
    """SAMPASS's saliency network: a ViT-Tiny/16 (192-d, 12 blocks) at DINO's 224 px grid."""
    if not path.is_file():
        _save_atomic(dino_state(embed=192, depth=12, patch=16, grid=14, seed=seed), path)
    return path


def write_sam_vit_b(path: Path, seed: int = 0) -> Path:
    """A randomly initialised SAM ViT-B (about 375 MB) in ``sam_vit_b_01ec64.pth``'s layout."""
    import torch
    from segment_anything import build_sam_vit_b

    if not path.is_file():
        torch.manual_seed(seed)
        _save_atomic(build_sam_vit_b(checkpoint=None).state_dict(), path)
    return path

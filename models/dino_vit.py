"""The DINO VisionTransformer (facebookresearch/dino ``vision_transformer.py``) in Jittor, for MaskCut.

Parameter names are the official checkpoint keys (``cls_token``, ``pos_embed``, ``patch_embed.proj``,
``blocks.{i}.norm1|attn.qkv|attn.proj|norm2|mlp.fc1|mlp.fc2``, ``norm``), so a DINO backbone file loads
key by key (:mod:`tools.checkpoints.dino_weights`). Blocks are pre-norm (LayerNorm eps 1e-6), attention
has a biased ``qkv`` and scale ``head_dim ** -0.5``, the MLP uses the exact (erf) GELU of ``nn.GELU()``.

MaskCut and TokenCut cut the graph of the **keys of the last block** (the ``k`` third of
``blocks[-1].attn.qkv``, heads concatenated, CLS token dropped): :meth:`DinoVisionTransformer.last_keys`.
Any input whose sides are multiples of the patch size works: the position embedding is resized the way
DINO's ``interpolate_pos_encoding`` does it (see :meth:`DinoVisionTransformer.pos_embed_for`).
"""

from __future__ import annotations

import math

import jittor as jt
from jittor import nn

from models.sam_attention import resize_pos_embed
from models.sam_encoder import LayerNorm, PatchEmbed

# DINO adds this to the target grid before computing the ``scale_factor`` of its bicubic resize, so that
# ``floor(grid * scale)`` cannot fall one short (facebookresearch/dino issue #8). It shifts the sampling
# points, so it is part of the model: without it the features differ from DINO's.
DINO_INTERPOLATE_OFFSET = 0.1


class Mlp(nn.Module):
    """``fc1 -> GELU (erf) -> fc2`` on ``[..., dim]``."""

    def __init__(self, dim: int, hidden: int):
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def execute(self, x: jt.Var) -> jt.Var:
        return self.fc2(nn.gelu(self.fc1(x)))


class Attention(nn.Module):
    """Multi-head self-attention over a token sequence ``[B, N, dim]`` -> ``[B, N, dim]``."""

    def __init__(self, dim: int, num_heads: int):
        if dim % num_heads:
            raise ValueError(f"embed dim {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def keys(self, x: jt.Var) -> jt.Var:
        """The keys of every head, concatenated: ``[B, N, dim]`` (the middle third of ``qkv(x)``)."""
        dim = x.shape[-1]
        return self.qkv(x)[:, :, dim : 2 * dim]

    def execute(self, x: jt.Var) -> jt.Var:
        b, n, dim = x.shape
        h = self.num_heads
        qkv = self.qkv(x).reshape(b, n, 3, h, dim // h).transpose(2, 0, 3, 1, 4)  # [3, B, h, N, hd]
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = nn.softmax(jt.matmul(q * self.scale, k.transpose(0, 1, 3, 2)), dim=-1)
        out = jt.matmul(attn, v).transpose(0, 2, 1, 3).reshape(b, n, dim)
        return self.proj(out)


class Block(nn.Module):
    """Pre-norm transformer block: ``x + Attn(LN(x))`` then ``x + MLP(LN(x))``."""

    def __init__(self, dim: int, num_heads: int, mlp_hidden: int, norm_eps: float = 1e-6):
        self.norm1 = LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads)
        self.norm2 = LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, mlp_hidden)

    def execute(self, x: jt.Var) -> jt.Var:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class DinoVisionTransformer(nn.Module):
    """DINO ViT backbone without a head.

    ``img_size`` is the training resolution: it sizes ``pos_embed`` as ``[1, 1 + (img_size/p)^2, C]``.
    DINO's sizes: tiny 192 / 3 heads, small 384 / 6, base 768 / 12; 12 blocks; patch 16 or 8.
    """

    def __init__(
        self,
        img_size: int = 224,
        patch_size: int = 16,
        embed_dim: int = 384,
        depth: int = 12,
        num_heads: int = 6,
        mlp_hidden: int | None = None,
        in_chans: int = 3,
    ):
        self.patch_size = patch_size
        self.embed_dim = self.num_features = embed_dim
        self.output_stride = patch_size
        grid = img_size // patch_size
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.cls_token = jt.zeros((1, 1, embed_dim))
        self.pos_embed = jt.zeros((1, 1 + grid * grid, embed_dim))
        hidden = mlp_hidden if mlp_hidden is not None else 4 * embed_dim
        self.blocks = nn.ModuleList([Block(embed_dim, num_heads, hidden) for _ in range(depth)])
        self.norm = LayerNorm(embed_dim, eps=1e-6)

    def pos_embed_for(self, h: int, w: int) -> jt.Var:
        """Position embedding ``[1, 1 + h*w, C]`` for an ``h x w`` token grid, as DINO computes it.

        The stored one is used as is for a square grid of the training size; otherwise the CLS entry is
        kept and the ``G x G`` patch part is resized bicubically with torch's ``scale_factor`` semantics,
        ``scale = (h + 0.1) / G`` (sampling step ``G / (h + 0.1)``), not ``size=(h, w)``.
        """
        n = self.pos_embed.shape[1] - 1
        if h * w == n and h == w:
            return self.pos_embed
        grid = math.isqrt(n)
        if grid * grid != n:
            raise ValueError(f"pos_embed holds {n} patch positions, not a square grid")
        c = self.pos_embed.shape[2]
        patch = self.pos_embed[:, 1:].reshape(1, grid, grid, c)
        steps = (grid / (h + DINO_INTERPOLATE_OFFSET), grid / (w + DINO_INTERPOLATE_OFFSET))
        patch = resize_pos_embed(patch, (h, w), src_steps=steps).reshape(1, h * w, c)
        return jt.concat([self.pos_embed[:, :1], patch], dim=1)

    def prepare_tokens(self, x: jt.Var) -> tuple[jt.Var, tuple[int, int]]:
        """``[B, 3, H, W]`` -> (tokens ``[B, 1 + h*w, C]`` with CLS first and positions added, ``(h, w)``)."""
        p = self.patch_size
        if x.shape[2] % p or x.shape[3] % p:
            raise ValueError(f"input size {tuple(x.shape[2:])} is not a multiple of the patch size {p}")
        patches = self.patch_embed(x)  # [B, h, w, C]
        b, h, w, c = patches.shape
        cls = self.cls_token.broadcast((b, 1, c))
        tokens = jt.concat([cls, patches.reshape(b, h * w, c)], dim=1)
        return tokens + self.pos_embed_for(h, w), (h, w)

    def execute(self, x: jt.Var) -> jt.Var:
        """All tokens after the final ``norm``: ``[B, 1 + h*w, C]`` (DINO's CLS output is ``[:, 0]``)."""
        tokens, _ = self.prepare_tokens(x)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)

    def last_keys(self, x: jt.Var) -> jt.Var:
        """MaskCut's features: keys of the last block's attention as a map ``[B, C, H/p, W/p]``.

        The same tensor a forward hook on ``blocks[-1].attn.qkv`` gives (middle third, CLS dropped).
        """
        tokens, (h, w) = self.prepare_tokens(x)
        for block in self.blocks[:-1]:
            tokens = block(tokens)
        last = self.blocks[-1]
        keys = last.attn.keys(last.norm1(tokens))[:, 1:]  # [B, h*w, C]
        b, _, c = keys.shape
        return keys.transpose(0, 2, 1).reshape(b, c, h, w)

"""SAM's ViT image encoder (ViTDet style) in Jittor, without the neck.

Parameter names follow ``segment_anything.modeling.image_encoder.ImageEncoderViT`` (``patch_embed.proj``,
``pos_embed``, ``blocks.{i}.norm1``, ``.attn.qkv``, ``.attn.proj``, ``.attn.rel_pos_h|w``, ``.norm2``,
``.mlp.lin1|lin2``) so the official ``image_encoder.*`` weights load key by key. Unlike SAM, any input whose
sides are multiples of the patch size works: the absolute position embedding (defined on the
``img_size / patch_size`` grid, 64x64 for SAM) is bicubically resized to the token grid
(``align_corners=False``, as detectron2's ViTDet ``get_abs_pos``); at the reference size it is used as is.
"""

from __future__ import annotations

import jittor as jt
from jittor import nn

from models.sam_attention import (
    add_decomposed_rel_pos,
    resize_pos_embed,
    window_partition,
    window_unpartition,
)


class LayerNorm(nn.Module):
    """LayerNorm over the last dimension, variance of the centred input (more exact than E[x^2]-E[x]^2).

    x: ``[..., dim]`` -> ``[..., dim]``.
    """

    def __init__(self, dim: int, eps: float = 1e-6):
        self.eps = eps
        self.weight = jt.ones(dim)
        self.bias = jt.zeros(dim)

    def execute(self, x: jt.Var) -> jt.Var:
        centred = x - x.mean(dim=-1, keepdims=True)
        var = (centred * centred).mean(dim=-1, keepdims=True)
        return centred / jt.sqrt(var + self.eps) * self.weight + self.bias


class PatchEmbed(nn.Module):
    """Non-overlapping patches: ``[B, in_chans, H, W]`` -> ``[B, H/p, W/p, embed_dim]`` (channels last)."""

    def __init__(self, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 768):
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size, bias=True)

    def execute(self, x: jt.Var) -> jt.Var:
        return self.proj(x).transpose(0, 2, 3, 1)


class MLPBlock(nn.Module):
    """``Linear(dim -> mlp_dim), GELU (erf), Linear(mlp_dim -> dim)`` on ``[..., dim]``."""

    def __init__(self, dim: int, mlp_dim: int):
        self.lin1 = nn.Linear(dim, mlp_dim)
        self.lin2 = nn.Linear(mlp_dim, dim)

    def execute(self, x: jt.Var) -> jt.Var:
        return self.lin2(nn.gelu(self.lin1(x)))


class Attention(nn.Module):
    """Multi-head self-attention on a token grid with optional decomposed relative positions.

    x: ``[B, H, W, dim]`` -> ``[B, H, W, dim]``. ``input_size`` sizes the relative-position tables
    (``2*size-1`` rows); other grids use a linearly resized table.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        use_rel_pos: bool = True,
        input_size: tuple[int, int] | None = None,
    ):
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.use_rel_pos = use_rel_pos
        if use_rel_pos:
            if input_size is None:
                raise ValueError("input_size is required with use_rel_pos=True")
            self.rel_pos_h = jt.zeros((2 * input_size[0] - 1, head_dim))
            self.rel_pos_w = jt.zeros((2 * input_size[1] - 1, head_dim))

    def execute(self, x: jt.Var) -> jt.Var:
        b, h, w, _ = x.shape
        n = self.num_heads
        qkv = self.qkv(x).reshape(b, h * w, 3, n, -1).transpose(2, 0, 3, 1, 4).reshape(3, b * n, h * w, -1)
        q, k, v = qkv[0], qkv[1], qkv[2]  # [B*nH, HW, hd]
        attn = jt.matmul(q * self.scale, k.transpose(0, 2, 1))
        if self.use_rel_pos:
            attn = add_decomposed_rel_pos(attn, q, self.rel_pos_h, self.rel_pos_w, (h, w), (h, w))
        attn = nn.softmax(attn, dim=-1)
        x = jt.matmul(attn, v).reshape(b, n, h, w, -1).transpose(0, 2, 3, 1, 4).reshape(b, h, w, -1)
        return self.proj(x)


class Block(nn.Module):
    """Pre-norm transformer block: ``x + Attn(LN(x))`` then ``x + MLP(LN(x))`` on ``[B, H, W, dim]``.

    ``window_size > 0``: attention inside non-overlapping windows (grid zero-padded to a multiple of it);
    ``window_size == 0``: global attention.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        norm_eps: float = 1e-6,
        use_rel_pos: bool = True,
        window_size: int = 0,
        input_size: tuple[int, int] | None = None,
    ):
        self.norm1 = LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(
            dim,
            num_heads,
            qkv_bias=qkv_bias,
            use_rel_pos=use_rel_pos,
            input_size=input_size if window_size == 0 else (window_size, window_size),
        )
        self.norm2 = LayerNorm(dim, eps=norm_eps)
        self.mlp = MLPBlock(dim, int(dim * mlp_ratio))
        self.window_size = window_size

    def execute(self, x: jt.Var) -> jt.Var:
        shortcut = x
        x = self.norm1(x)
        if self.window_size > 0:
            h, w = x.shape[1], x.shape[2]
            x, pad_hw = window_partition(x, self.window_size)
            x = window_unpartition(self.attn(x), self.window_size, pad_hw, (h, w))
        else:
            x = self.attn(x)
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class SamImageEncoder(nn.Module):
    """SAM ViT image encoder without its neck.

    Input ``[B, 3, H, W]`` with ``H, W`` multiples of ``patch_size``; output ``[B, embed_dim, H/p, W/p]``.
    ``img_size`` is the reference size that sizes the absolute position embedding
    (``[1, img_size/p, img_size/p, embed_dim]``) and the global blocks' relative-position tables.
    """

    def __init__(
        self,
        img_size: int = 1024,
        patch_size: int = 16,
        in_chans: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        norm_eps: float = 1e-6,
        use_abs_pos: bool = True,
        use_rel_pos: bool = True,
        window_size: int = 14,
        global_attn_indexes: tuple[int, ...] = (2, 5, 8, 11),
    ):
        self.img_size = img_size
        self.patch_size = patch_size
        self.embed_dim = embed_dim
        self.num_features = embed_dim
        self.output_stride = patch_size
        grid = img_size // patch_size
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.pos_embed = jt.zeros((1, grid, grid, embed_dim)) if use_abs_pos else None
        self.blocks = nn.ModuleList(
            [
                Block(
                    embed_dim,
                    num_heads,
                    mlp_ratio=mlp_ratio,
                    qkv_bias=qkv_bias,
                    norm_eps=norm_eps,
                    use_rel_pos=use_rel_pos,
                    window_size=0 if i in global_attn_indexes else window_size,
                    input_size=(grid, grid),
                )
                for i in range(depth)
            ]
        )

    def embed(self, x: jt.Var) -> jt.Var:
        """Patch embedding plus (resized) absolute positions: ``[B, 3, H, W]`` -> ``[B, H/p, W/p, C]``."""
        if x.shape[2] % self.patch_size or x.shape[3] % self.patch_size:
            raise ValueError(f"input size {tuple(x.shape[2:])} is not a multiple of {self.patch_size}")
        x = self.patch_embed(x)
        if self.pos_embed is not None:
            x = x + resize_pos_embed(self.pos_embed, (x.shape[1], x.shape[2]))
        return x

    def execute(self, x: jt.Var) -> jt.Var:
        x = self.embed(x)
        for blk in self.blocks:
            x = blk(x)
        return x.transpose(0, 3, 1, 2)


def sam_vit_b(img_size: int = 1024) -> SamImageEncoder:
    """The ViT-B/16 encoder of ``sam_vit_b_01ec64.pth``: 768 wide, 12 blocks, 12 heads, window 14."""
    return SamImageEncoder(
        img_size=img_size,
        embed_dim=768,
        depth=12,
        num_heads=12,
        window_size=14,
        global_attn_indexes=(2, 5, 8, 11),
    )


def sam_tiny(img_size: int = 128) -> SamImageEncoder:
    """A small encoder of the same class for tests and the demo: 64 wide, 4 blocks, 2 heads, window 4."""
    return SamImageEncoder(
        img_size=img_size,
        embed_dim=64,
        depth=4,
        num_heads=2,
        window_size=4,
        global_attn_indexes=(1, 3),
    )

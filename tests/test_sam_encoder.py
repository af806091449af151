"""The Jittor SAM encoder computes what segment_anything's PyTorch ImageEncoderViT computes."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

torch = pytest.importorskip("torch")
image_encoder = pytest.importorskip("segment_anything.modeling.image_encoder")

import jittor as jt  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from models.sam_attention import bicubic_resize_matrix, linear_resize_matrix  # noqa: E402
from models.sam_encoder import SamImageEncoder, sam_tiny, sam_vit_b  # noqa: E402
from tools.checkpoints.strict_load import assign_state_dict  # noqa: E402

pytestmark = [pytest.mark.jittor, pytest.mark.torch]

TINY = dict(img_size=128, embed_dim=64, depth=4, num_heads=2, window_size=4, global_attn_indexes=(1, 3))


def torch_encoder(
    img_size=128, embed_dim=64, depth=4, num_heads=2, window_size=4, global_attn_indexes=(1, 3)
):
    return image_encoder.ImageEncoderViT(
        img_size=img_size,
        patch_size=16,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=num_heads,
        mlp_ratio=4.0,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
        use_rel_pos=True,
        window_size=window_size,
        global_attn_indexes=global_attn_indexes,
        out_chans=32,
    )


def randomized_tiny_pair(seed: int = 0):
    """A torch encoder with random weights (positions and norms too) and ours with the same weights."""
    torch.manual_seed(seed)
    ref = torch_encoder(**TINY).eval()
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if "pos" in name:
                p.normal_(0.0, 0.5)
            elif "norm" in name:
                p.add_(0.1 * torch.randn_like(p))
    ours = SamImageEncoder(**TINY)
    state = {k: v.numpy() for k, v in ref.state_dict().items() if not k.startswith("neck.")}
    assign_state_dict(ours, state, "torch ImageEncoderViT")
    return ref, ours


def torch_tokens(ref, x, pos_embed=None):
    """segment_anything's forward up to (not including) the neck, as [B, C, h, w]."""
    with torch.no_grad():
        t = ref.patch_embed(x)
        t = t + (ref.pos_embed if pos_embed is None else pos_embed)
        for blk in ref.blocks:
            t = blk(t)
        return t.permute(0, 3, 1, 2).numpy()


def test_parity_with_segment_anything_at_the_reference_grid():
    ref, ours = randomized_tiny_pair()
    x = np.random.default_rng(0).standard_normal((2, 3, 128, 128)).astype(np.float32)
    expected = torch_tokens(ref, torch.from_numpy(x))
    got = ours(jt.array(x)).numpy()
    assert got.shape == (2, 64, 8, 8)
    diff = np.abs(got - expected).max()
    print(f"SAM tiny parity 128x128: max abs diff {diff:.2e}")
    assert diff <= 1e-4


@pytest.mark.parametrize("size", [(96, 160), (176, 144)])
def test_parity_at_other_sizes_with_bicubic_position_resize(size):
    """Windows padded, rel-pos tables linearly resized, pos_embed resized like F.interpolate(bicubic)."""
    ref, ours = randomized_tiny_pair(seed=1)
    h, w = size[0] // 16, size[1] // 16
    pos = F.interpolate(
        ref.pos_embed.detach().permute(0, 3, 1, 2), size=(h, w), mode="bicubic", align_corners=False
    )
    x = np.random.default_rng(1).standard_normal((1, 3, *size)).astype(np.float32)
    expected = torch_tokens(ref, torch.from_numpy(x), pos.permute(0, 2, 3, 1))
    got = ours(jt.array(x)).numpy()
    assert got.shape == (1, 64, h, w)
    diff = np.abs(got - expected).max()
    print(f"SAM tiny parity {size}: max abs diff {diff:.2e}")
    assert diff <= 1e-4


@pytest.mark.parametrize(("n_in", "n_out"), [(64, 14), (64, 40), (8, 13), (5, 5), (127, 27)])
def test_resize_matrices_equal_torch_interpolate(n_in, n_out):
    v = torch.randn(1, 3, n_in, dtype=torch.float64)
    lin = F.interpolate(v, size=n_out, mode="linear", align_corners=False)[0].numpy()
    np.testing.assert_allclose(v[0].numpy() @ linear_resize_matrix(n_in, n_out).T, lin, atol=1e-6)
    img = torch.randn(1, 2, n_in, n_in, dtype=torch.float64)
    cub = F.interpolate(img, size=(n_out, n_out), mode="bicubic", align_corners=False)[0].numpy()
    m = bicubic_resize_matrix(n_in, n_out).astype(np.float64)
    np.testing.assert_allclose(np.einsum("ia,cab,jb->cij", m, img[0].numpy(), m), cub, atol=1e-6)


def test_sam_vit_b_has_the_official_encoder_keys_and_shapes():
    with torch.device("meta"):
        ref = torch_encoder(1024, 768, 12, 12, 14, (2, 5, 8, 11))
    expected = {k: tuple(v.shape) for k, v in ref.state_dict().items() if not k.startswith("neck.")}
    got = {k: tuple(v.shape) for k, v in sam_vit_b().state_dict().items()}
    assert got == expected
    assert expected["pos_embed"] == (1, 64, 64, 768)
    assert expected["blocks.2.attn.rel_pos_h"] == (127, 64)
    assert expected["blocks.0.attn.rel_pos_h"] == (27, 64)


def test_tiny_builder_matches_its_documented_configuration():
    enc = sam_tiny()
    assert (enc.embed_dim, len(enc.blocks), enc.num_features, enc.output_stride) == (64, 4, 64, 16)
    assert [b.window_size for b in enc.blocks] == [4, 0, 4, 0]
    assert all(b.norm1.eps == 1e-6 for b in enc.blocks)


def test_input_not_a_multiple_of_the_patch_size_is_refused():
    with pytest.raises(ValueError, match="multiple of 16"):
        sam_tiny()(jt.zeros((1, 3, 100, 128)))

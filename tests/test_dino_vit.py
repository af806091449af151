"""Our Jittor DINO ViT against an independent PyTorch one (timm's VisionTransformer, same key names).

The reference gets DINO's position-embedding resize written out from DINO's ``interpolate_pos_encoding``
(bicubic, ``scale_factor = (grid + 0.1) / G``), so the comparison covers the resize as DINO does it.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jt = pytest.importorskip("jittor")

from dino_fixtures import dino_state  # noqa: E402

from models.sam_attention import resize_pos_embed  # noqa: E402
from tools.checkpoints.dino_weights import load_dino_vit  # noqa: E402

pytestmark = [pytest.mark.jittor, pytest.mark.torch]
F = torch.nn.functional
TOL = 1e-4


def dino_interpolate_pos_encoding(pos_embed: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """DINO's ``VisionTransformer.interpolate_pos_encoding`` for an ``h x w`` token grid, in torch."""
    n = pos_embed.shape[1] - 1
    if n == h * w and h == w:
        return pos_embed
    g = math.sqrt(n)
    dim = pos_embed.shape[-1]
    patch = pos_embed[:, 1:].reshape(1, int(g), int(g), dim).permute(0, 3, 1, 2)
    patch = F.interpolate(patch, scale_factor=((h + 0.1) / g, (w + 0.1) / g), mode="bicubic")
    assert patch.shape[-2:] == (h, w)
    return torch.cat([pos_embed[:, :1], patch.permute(0, 2, 3, 1).reshape(1, h * w, dim)], dim=1)


@pytest.mark.parametrize(("g", "h", "w"), [(14, 4, 6), (14, 14, 10), (7, 30, 3), (14, 60, 60)])
def test_pos_embed_resize_matches_torch_scale_factor_bicubic(g, h, w):
    pos = torch.randn(1, 1 + g * g, 8, generator=torch.Generator().manual_seed(g + h + w))
    expected = dino_interpolate_pos_encoding(pos, h, w)[:, 1:].reshape(1, h, w, 8).numpy()
    patch = jt.array(pos[:, 1:].reshape(1, g, g, 8).numpy())
    ours = resize_pos_embed(patch, (h, w), src_steps=(g / (h + 0.1), g / (w + 0.1))).numpy()
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def timm_reference(state: dict, image_hw: tuple[int, int], patch: int, heads: int):
    """timm's ViT for inputs of exactly ``image_hw``, holding ``state`` with DINO's resized pos_embed."""
    vision_transformer = pytest.importorskip("timm.models.vision_transformer")
    embed = state["cls_token"].shape[-1]
    depth = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
    ref = vision_transformer.VisionTransformer(
        img_size=image_hw,
        patch_size=patch,
        num_classes=0,
        embed_dim=embed,
        depth=depth,
        num_heads=heads,
        qkv_bias=True,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
    )
    grid = (image_hw[0] // patch, image_hw[1] // patch)
    resized = {**state, "pos_embed": dino_interpolate_pos_encoding(state["pos_embed"], *grid)}
    ref.load_state_dict(resized, strict=True)
    return ref.eval()


def reference_outputs(ref, x: torch.Tensor, patch: int) -> tuple[np.ndarray, np.ndarray]:
    """(final tokens, last-block keys as ``[B, C, h, w]``) via a hook on ``blocks[-1].attn.qkv``."""
    seen = {}
    hook = ref.blocks[-1].attn.qkv.register_forward_hook(lambda m, i, o: seen.update(qkv=o))
    with torch.no_grad():
        tokens = ref.forward_features(x)
    hook.remove()
    b, _, h, w = x.shape
    c = tokens.shape[-1]
    keys = seen["qkv"].reshape(b, -1, 3, c)[:, 1:, 1]  # heads are contiguous inside the k third
    keys = keys.transpose(1, 2).reshape(b, c, h // patch, w // patch)
    return tokens.numpy(), keys.numpy()


@pytest.mark.parametrize("image_hw", [(64, 96), (224, 160), (224, 224)], ids=["64x96", "224x160", "224"])
def test_last_keys_and_tokens_match_timm(tmp_path, image_hw):
    """Random weights of a 2-head ViT trained at 224 (14x14 positions), fed through our file loader."""
    state = dino_state(embed=128, depth=2, patch=16, grid=14, seed=3)
    path = tmp_path / "dino_random_pretrain.pth"
    torch.save(state, path)
    vit, report = load_dino_vit(path)
    assert report.arch.num_heads == 2
    ref = timm_reference(state, image_hw, 16, report.arch.num_heads)
    x = torch.randn(2, 3, *image_hw, generator=torch.Generator().manual_seed(7))
    ref_tokens, ref_keys = reference_outputs(ref, x, 16)
    with jt.no_grad():
        tokens = vit(jt.array(x.numpy())).numpy()
        keys = vit.last_keys(jt.array(x.numpy())).numpy()
    assert keys.shape == (2, 128, image_hw[0] // 16, image_hw[1] // 16)
    key_err, token_err = np.abs(keys - ref_keys).max(), np.abs(tokens - ref_tokens).max()
    print(f"{image_hw}: max abs diff keys {key_err:.2e}, tokens {token_err:.2e}")
    assert key_err <= TOL and token_err <= TOL


def test_an_input_off_the_patch_grid_is_refused():
    from models.dino_vit import DinoVisionTransformer

    vit = DinoVisionTransformer(img_size=32, patch_size=16, embed_dim=64, depth=1, num_heads=1)
    with pytest.raises(ValueError, match="not a multiple of the patch size 16"):
        vit.last_keys(jt.zeros((1, 3, 40, 32)))

"""Loading SAM's image_encoder.* weights is strict: every problem is an error naming the key and file."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

torch = pytest.importorskip("torch")
image_encoder = pytest.importorskip("segment_anything.modeling.image_encoder")

from models.sam_encoder import sam_tiny, sam_vit_b  # noqa: E402
from tools.checkpoints.sam_weights import load_sam_encoder_weights, split_sam_state  # noqa: E402
from tools.checkpoints.strict_load import StateDictMismatchError, check_state_dict  # noqa: E402
from tools.checkpoints.torch_zip import CheckpointFormatError  # noqa: E402
from tools.errors import LussError  # noqa: E402

pytestmark = [pytest.mark.jittor, pytest.mark.torch]


def torch_encoder(img_size, embed_dim, depth, num_heads, window_size, global_attn_indexes):
    return image_encoder.ImageEncoderViT(
        img_size=img_size,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=num_heads,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
        use_rel_pos=True,
        window_size=window_size,
        global_attn_indexes=global_attn_indexes,
    )


TINY = (128, 64, 4, 2, 4, (1, 3))


def sam_like_state(encoder) -> dict:
    """What sam_vit_b_01ec64.pth holds: the whole Sam model, the encoder under image_encoder.*."""
    state = {f"image_encoder.{k}": v for k, v in encoder.state_dict().items()}
    state["prompt_encoder.point_embeddings.0.weight"] = torch.randn(1, 256)
    state["mask_decoder.iou_token.weight"] = torch.randn(1, 256)
    state["pixel_mean"] = torch.tensor([123.675, 116.28, 103.53]).reshape(3, 1, 1)
    return state


@pytest.fixture(scope="module")
def tiny_ref():
    torch.manual_seed(0)
    ref = torch_encoder(*TINY)
    with torch.no_grad():
        ref.pos_embed.normal_()
    return ref


def test_loads_the_encoder_and_ignores_the_rest(tmp_path, tiny_ref):
    path = tmp_path / "sam_tiny.pth"
    torch.save(sam_like_state(tiny_ref), path)
    enc = sam_tiny()
    report = load_sam_encoder_weights(enc, path)
    ours = enc.state_dict()
    for key, value in tiny_ref.state_dict().items():
        if not key.startswith("neck."):
            np.testing.assert_array_equal(ours[key].numpy(), value.numpy(), err_msg=key)
    assert len(report.loaded) == len(ours)
    assert "pixel_mean" in report.ignored and "image_encoder.neck.0.weight" in report.ignored
    assert "mask_decoder.iou_token.weight" in report.ignored


def test_loading_keeps_a_frozen_parameter_frozen(tmp_path, tiny_ref):
    path = tmp_path / "sam_tiny.pth"
    torch.save(sam_like_state(tiny_ref), path)
    enc = sam_tiny()
    for p in enc.parameters():
        p.stop_grad()
    load_sam_encoder_weights(enc, path)
    assert all(p.is_stop_grad() for p in enc.parameters())


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda s: s.pop("image_encoder.blocks.1.attn.rel_pos_h"),
            "missing key 'image_encoder.blocks.1.attn.rel_pos_h'",
        ),
        (
            lambda s: s.update({"image_encoder.blocks.9.norm1.weight": torch.ones(64)}),
            "unexpected key 'image_encoder.blocks.9.norm1.weight'",
        ),
        (
            lambda s: s.update({"image_encoder.blocks.0.mlp.lin1.weight": torch.ones(128, 64)}),
            r"shape mismatch for 'image_encoder.blocks.0.mlp.lin1.weight': "
            r"expected \(256, 64\), found \(128, 64\)",
        ),
    ],
    ids=["missing", "unexpected", "shape"],
)
def test_a_wrong_checkpoint_fails_naming_the_key_and_the_file(tmp_path, tiny_ref, edit, message):
    state = sam_like_state(tiny_ref)
    edit(state)
    path = tmp_path / "wrong.pth"
    torch.save(state, path)
    enc = sam_tiny()
    before = enc.blocks[0].mlp.lin1.weight.numpy().copy()
    with pytest.raises(StateDictMismatchError, match=message) as err:
        load_sam_encoder_weights(enc, path)
    assert "wrong.pth" in str(err.value) and isinstance(err.value, LussError)
    np.testing.assert_array_equal(enc.blocks[0].mlp.lin1.weight.numpy(), before)  # nothing half-loaded


def test_a_checkpoint_without_an_image_encoder_is_refused(tmp_path):
    torch.save({"conv.weight": torch.ones(1)}, tmp_path / "resnet.pth")
    with pytest.raises(StateDictMismatchError, match="no 'image_encoder.\\*' keys"):
        load_sam_encoder_weights(sam_tiny(), tmp_path / "resnet.pth")


def test_a_truncated_checkpoint_is_refused(tmp_path, tiny_ref):
    torch.save(sam_like_state(tiny_ref), tmp_path / "full.pth")
    data = (tmp_path / "full.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) - 4096])
    with pytest.raises(CheckpointFormatError, match="cut.pth"):
        load_sam_encoder_weights(sam_tiny(), tmp_path / "cut.pth")


def test_a_vit_l_key_set_does_not_fit_vit_b():
    """Full-size shapes without allocating them: broadcast views stand in for the ViT-L weights."""
    with torch.device("meta"):
        vit_l = torch_encoder(1024, 1024, 24, 16, 14, (5, 11, 17, 23))
    state = {
        f"image_encoder.{k}": np.broadcast_to(np.float32(0), v.shape) for k, v in vit_l.state_dict().items()
    }
    encoder_state, _ = split_sam_state(state, "sam_vit_l_0b3195.pth")
    with pytest.raises(StateDictMismatchError) as err:
        check_state_dict(sam_vit_b(), encoder_state, "sam_vit_l_0b3195.pth", key_prefix="image_encoder.")
    text = str(err.value)
    assert "sam_vit_l_0b3195.pth" in text
    assert "unexpected key 'image_encoder.blocks.12.norm1.weight'" in " ".join(err.value.problems)
    assert (
        "shape mismatch for 'image_encoder.patch_embed.proj.weight': "
        "expected (768, 3, 16, 16), found (1024, 3, 16, 16)" in text
    )


@pytest.mark.slow
def test_full_size_vit_b_checkpoint_loads_strictly(tmp_path):
    """A random ViT-B SAM encoder saved like the official file (~360 MB) loads into sam_vit_b()."""
    torch.manual_seed(0)
    ref = torch_encoder(1024, 768, 12, 12, 14, (2, 5, 8, 11))
    path = tmp_path / "sam_vit_b_random.pth"
    torch.save(sam_like_state(ref), path)
    enc = sam_vit_b()
    report = load_sam_encoder_weights(enc, path)
    path.unlink()  # pytest keeps old tmp dirs; do not leave ~360 MB behind
    assert len(report.loaded) == len(enc.state_dict())
    ours = enc.state_dict()
    for key in ["patch_embed.proj.weight", "blocks.11.attn.rel_pos_w", "blocks.5.mlp.lin2.weight"]:
        np.testing.assert_array_equal(ours[key].numpy(), ref.state_dict()[key].numpy())

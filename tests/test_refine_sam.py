"""SAM side of ``luss refine``: the real ``SamAutomaticMaskGenerator`` on a tiny random SAM, end to end
through the cache and the vote, the CLI re-vote, and the checkpoint errors."""

from __future__ import annotations

import inspect
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tools.data.imagenet_s import ImageNetS
from tools.data.label_codec import read_label_png, write_label_png
from tools.refine.generator_config import GeneratorConfig, cache_fingerprint
from tools.refine.mask_cache import cache_path, load_mask_cache
from tools.refine.refiner import RefineOptions, refine_split
from tools.refine.voting import vote_by_masks
from tools.run_layout import RunLayout

torch = pytest.importorskip("torch")
segment_anything = pytest.importorskip("segment_anything")
pytestmark = pytest.mark.torch

# Thresholds lowered so a random SAM's masks pass the filters; NMS at 1.0 keeps every mask.
TINY_GENERATOR = GeneratorConfig(
    points_per_side=4,
    points_per_batch=8,
    pred_iou_thresh=-100.0,
    stability_score_thresh=0.0,
    box_nms_thresh=1.0,
)
CLI_GENERATOR_ARGS = [
    "--points-per-side", "4", "--points-per-batch", "8", "--pred-iou-thresh", "-100",
    "--stability-score-thresh", "0", "--box-nms-thresh", "1.0",
]  # fmt: skip
CKPT_NAME = "sam_vit_b_01ec64.pth"
SIZES = {"n0001/a": (36, 48), "n0002/b": (40, 30)}


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tiny_sam():
    """A randomly initialised SAM with the real module classes, a few thousand parameters."""
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    torch.manual_seed(0)
    size, dim = 128, 32
    encoder = ImageEncoderViT(
        img_size=size,
        patch_size=16,
        embed_dim=dim,
        depth=1,
        num_heads=2,
        mlp_ratio=2.0,
        out_chans=dim,
        qkv_bias=True,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
        use_rel_pos=True,
        window_size=4,
    )
    prompt = PromptEncoder(
        embed_dim=dim,
        image_embedding_size=(size // 16, size // 16),
        input_image_size=(size, size),
        mask_in_chans=4,
    )
    decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=1, embedding_dim=dim, mlp_dim=64, num_heads=2),
        transformer_dim=dim,
        iou_head_depth=2,
        iou_head_hidden_dim=32,
    )
    return Sam(image_encoder=encoder, prompt_encoder=prompt, mask_decoder=decoder).eval()


def make_tree(tmp_path: Path) -> tuple[ImageNetS, RunLayout]:
    """Images, GT and raw predictions of a 2-class, 2-image ImageNet-S-like validation split."""
    data_root, layout = tmp_path / "data", RunLayout.at(tmp_path / "run")
    rng = np.random.default_rng(3)
    for n, (key, (h, w)) in enumerate(SIZES.items(), start=1):
        wnid = key.split("/")[0]
        (data_root / "train" / wnid).mkdir(parents=True, exist_ok=True)
        image = data_root / "validation" / f"{key}.JPEG"
        image.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(image)
        gt = np.zeros((h, w), np.int32)
        gt[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = n
        write_label_png(data_root / "validation-segmentation" / f"{key}.png", gt)
        pred = np.where(rng.random((h, w)) < 0.8, (gt > 0) * (3 - n), 0)  # noisy, permuted ids
        write_label_png(layout.predict_dir("validation") / f"{key}.png", pred)
    return ImageNetS(data_root), layout


def test_generator_config_defaults_are_sams():
    from segment_anything import SamAutomaticMaskGenerator

    params = inspect.signature(SamAutomaticMaskGenerator.__init__).parameters
    sam_defaults = {name: p.default for name, p in params.items() if name not in ("self", "model")}
    ours = {name: getattr(GeneratorConfig(), name) for name in GeneratorConfig.field_names()}
    assert ours == sam_defaults


@pytest.mark.slow
def test_tiny_sam_end_to_end_through_cache_vote_and_cli(tmp_path):
    from click.testing import CliRunner

    from luss_cli.main import cli
    from tools.refine.sam_model import make_mask_source

    data, layout = make_tree(tmp_path)
    fingerprint, params = cache_fingerprint(TINY_GENERATOR, "vit_b", CKPT_NAME)
    sources = []

    def factory():
        sources.append(make_mask_source(tiny_sam(), TINY_GENERATOR))
        return sources[-1]

    summary = refine_split(
        data, "validation", layout, RefineOptions(), factory, fingerprint, params, progress=False
    )
    assert (summary.voted, summary.generated, len(sources)) == (2, 2, 1)
    for key, (h, w) in SIZES.items():
        masks = load_mask_cache(cache_path(layout.sam_cache_dir("validation"), key), fingerprint, (h, w))
        assert masks is not None and len(masks) > 0, "lowered thresholds must let masks through"
        pred = read_label_png(layout.predict_dir("validation") / f"{key}.png")
        refined = read_label_png(layout.refine_dir("validation") / f"{key}.png")
        np.testing.assert_array_equal(refined, vote_by_masks(pred, masks, "original", "erase"))
        assert not np.array_equal(refined, pred)

    # The CLI re-votes in another mode from the cache: the checkpoint does not even exist.
    pytest.importorskip("tools.evaluation")
    args = ["refine", "--run", str(layout.root), "--data", str(data.root), "--split", "validation",
            "--sam-checkpoint", str(tmp_path / CKPT_NAME), "--mode", "sampass", "--workers", "1",
            *CLI_GENERATOR_ARGS]  # fmt: skip
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "2 voted (0 SAM runs, 2 from cache)" in result.output
    assert layout.match_file("refine", "validation").is_file()
    assert "mIoU" in result.output
    for key in SIZES:
        masks = load_mask_cache(cache_path(layout.sam_cache_dir("validation"), key), fingerprint)
        pred = read_label_png(layout.predict_dir("validation") / f"{key}.png")
        refined = read_label_png(layout.refine_dir("validation") / f"{key}.png")
        np.testing.assert_array_equal(refined, vote_by_masks(pred, masks, "sampass", "erase"))

    # Other generator parameters invalidate the cache: SAM is needed, and the missing file is named.
    from tools.refine.sam_model import SamCheckpointError

    changed = [*args, "--pred-iou-thresh", "-50"]
    with pytest.raises(SamCheckpointError, match=f"{CKPT_NAME}.*segment-anything#model-checkpoints"):
        CliRunner().invoke(cli, changed, catch_exceptions=False)


def test_missing_checkpoint_names_the_expected_file(tmp_path):
    from tools.refine.sam_model import SamCheckpointError, build_sam

    for model_type, name in [("vit_b", "sam_vit_b_01ec64.pth"), ("vit_h", "sam_vit_h_4b8939.pth")]:
        with pytest.raises(SamCheckpointError) as err:
            build_sam(tmp_path / "nope.pth", model_type)
        message = str(err.value)
        assert "not found" in message and name in message
        assert "https://github.com/facebookresearch/segment-anything#model-checkpoints" in message


def test_garbage_and_truncated_checkpoints_are_clear_errors(tmp_path):
    from tools.refine.sam_model import SamCheckpointError, build_sam

    garbage = tmp_path / "sam_vit_b_01ec64.pth"
    garbage.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(SamCheckpointError, match="cannot be read as a PyTorch checkpoint.*re-download"):
        build_sam(garbage, "vit_b")
    other = tmp_path / "weights.pth"
    torch.save({"something": torch.zeros(3)}, other)
    with pytest.raises(SamCheckpointError, match="not a SAM checkpoint"):
        build_sam(other, "vit_l")


def test_checkpoint_of_another_architecture_is_a_clear_error(tmp_path):
    from tools.refine.sam_model import SamCheckpointError, build_sam

    tiny = tmp_path / "tiny.pth"
    torch.save(tiny_sam().state_dict(), tiny)
    with pytest.raises(SamCheckpointError, match="unrecognised SAM variant.*expected shape") as err:
        build_sam(tiny, "vit_b")
    assert "sam_vit_b_01ec64.pth" in str(err.value)

    # A ViT-L checkpoint (recognised by its encoder width) given with --model-type vit_b.
    vit_l = tmp_path / "sam_vit_l_0b3195.pth"
    torch.save({"image_encoder.pos_embed": torch.zeros(1, 64, 64, 1024)}, vit_l)
    with pytest.raises(SamCheckpointError, match="holds a SAM vit_l checkpoint.*--model-type vit_l"):
        build_sam(vit_l, "vit_b")


def test_matching_checkpoint_loads_strictly(tmp_path):
    """A state dict with vit_b's exact keys and shapes loads (built on the meta device: no big write)."""
    from segment_anything import sam_model_registry

    from tools.refine.sam_model import build_sam

    # Zero-strided tensors keep the file tiny while the shapes are ViT-B's.
    with torch.device("meta"):
        skeleton = sam_model_registry["vit_b"](checkpoint=None)
    state = {k: torch.zeros(1, dtype=v.dtype).expand(v.shape) for k, v in skeleton.state_dict().items()}
    path = tmp_path / "sam_vit_b_01ec64.pth"
    torch.save(state, path)
    sam = build_sam(path, "vit_b", "cpu")
    assert float(sam.image_encoder.pos_embed.detach().abs().sum()) == 0.0
    assert not sam.training


def test_device_selection_cpu_when_forced():
    from tools.refine.sam_model import select_device

    assert select_device("cpu") == "cpu"
    assert select_device("auto") in ("cpu", *(f"cuda:{i}" for i in range(torch.cuda.device_count())))

"""SAM side of ``luss refine``: the real ``SamAutomaticMaskGenerator`` on a tiny random SAM, end to end
through the cache and the vote, the CLI re-vote, and the checkpoint errors."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from tools.data.label_codec import read_label_png
from tools.refine.generator_config import GeneratorConfig, cache_fingerprint
from tools.refine.mask_cache import cache_path, load_mask_cache
from tools.refine.refiner import RefineOptions, refine_split
from tools.refine.voting import vote_by_masks

torch = pytest.importorskip("torch")
segment_anything = pytest.importorskip("segment_anything")
pytestmark = pytest.mark.torch

from sam_fixtures import SIZES, TINY_GENERATOR, make_tree, tiny_sam  # noqa: E402

CLI_GENERATOR_ARGS = [
    "--points-per-side", "4", "--points-per-batch", "8", "--pred-iou-thresh", "-100",
    "--stability-score-thresh", "0", "--box-nms-thresh", "1.0",
]  # fmt: skip
CKPT_NAME = "sam_vit_b_01ec64.pth"


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


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

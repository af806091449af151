"""Typed config: presets load, overrides are type-checked, typos are caught with a suggestion."""

from __future__ import annotations

import pytest
import yaml

from tools.config import apply_overrides, load_config, preset_names, save_config
from tools.config.loader import ConfigError


def test_every_documented_preset_loads():
    assert {"demo", "luss50-pass", "luss50-sampass", "luss300", "luss919"} <= set(preset_names())
    for name in preset_names():
        config = load_config(name)
        assert config.preset == name


def test_presets_carry_the_reference_numbers():
    pass_cfg = load_config("luss50-pass")
    assert pass_cfg.pretrain.loop.optim.larc is True
    assert pass_cfg.pretrain.freeze_prototypes_niters == 1001
    assert pass_cfg.pretrain.crops.counts == [2, 6]
    sampass = load_config("luss50-sampass")
    assert sampass.model.arch == "sam_vit_b_adapter"
    assert sampass.pretrain.loop.batch_size == 64
    assert sampass.pretrain.loop.optim.base_lr == 6.0
    assert sampass.pixel_attention.saliency_weight == pytest.approx(0.9)
    assert load_config("luss919").predict.max_res == 600


@pytest.mark.parametrize("preset", ["luss50-pass", "luss300", "luss919"])
def test_pass_presets_weight_the_losses_as_pass_did(preset):
    """PASS trained (SwAV + D2S) / sum(--weights 1 1) + P2P: 0.5 / 0.5 / 1, not 1 / 1 / 1."""
    p = load_config(preset).pretrain
    assert p.shallow_stages == [3]
    assert (p.swav_weight, p.d2s_weight, p.p2p_weight) == (0.5, 0.5, 1.0)


def test_sampass_preset_weights_and_saliency_follow_the_reference():
    sampass = load_config("luss50-sampass")
    p = sampass.pretrain
    assert (p.swav_weight, p.p2p_weight, p.shallow_stages) == (0.5, 1.0, [])
    saliency = sampass.cluster.saliency
    # MaskCut on DINO ViT keys with tau 0.6, N = 3, 480^2, CRF (SAMPASS cutler/maskcut.py).
    assert (saliency.features, saliency.tau, saliency.num_masks, saliency.image_size, saliency.crf) == (
        "dino",
        0.6,
        3,
        480,
        True,
    )


def test_overrides_parse_and_check_types():
    config = load_config(
        "demo", ["pretrain.loop.epochs=3", "pretrain.crops.sizes=[64, 32]", "model.sam_checkpoint=x.pth"]
    )
    assert config.pretrain.loop.epochs == 3
    assert config.pretrain.crops.sizes == [64, 32]
    assert config.model.sam_checkpoint == "x.pth"
    apply_overrides(config, ["pretrain.loop.optim.base_lr=1"])
    assert isinstance(config.pretrain.loop.optim.base_lr, float)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("pretrain.loop.epoch=3", "Did you mean 'epochs'"),
        ("pretrain.loop.epochs=abc", "expected int"),
        ("predict.flip_tta=3", "true/false"),
        ("pretrain.crops.sizes=5", "expected a list"),
        ("noequals", "key=value"),
    ],
)
def test_bad_overrides_are_clear_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("demo", [override])


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ConfigError, match="luss50-pass"):
        load_config("nope")


def test_saved_config_round_trips(tmp_path):
    config = load_config("luss50-sampass", ["finetune.loop.epochs=7"])
    save_config(config, tmp_path / "config.yaml")
    reloaded = load_config(str(tmp_path / "config.yaml"))
    assert reloaded == config
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["finetune"]["loop"]["epochs"] == 7


def test_preflight_names_the_checkpoints_a_preset_needs(tmp_path):
    from tools.config.preflight import main, missing_inputs

    assert missing_inputs(load_config("demo"), None, None) == []
    assert missing_inputs(load_config("luss50-pass"), None, None) == []
    problems = missing_inputs(load_config("luss50-sampass"), None, None)
    assert len(problems) == 2 and "SAM_CKPT" in problems[0] and "DINO_CKPT" in problems[1]
    sam, dino = tmp_path / "sam.pth", tmp_path / "dino.pth"
    sam.write_bytes(b"x")
    dino.write_bytes(b"x")
    assert missing_inputs(load_config("luss50-sampass"), str(sam), str(dino)) == []
    assert "no such file" in missing_inputs(load_config("luss50-sampass"), str(sam), str(tmp_path / "no"))[0]
    assert main(["--preset", "luss50-sampass"]) == 2
    assert main(["--preset", "demo"]) == 0

"""Loading a DINO ViT checkpoint without torch: all DINO layouts, strictly; errors name key and file."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dino_fixtures import dino_head_state, dino_state, prefixed  # noqa: E402

from tools.checkpoints.dino_weights import load_dino_vit  # noqa: E402
from tools.checkpoints.strict_load import StateDictMismatchError  # noqa: E402
from tools.checkpoints.torch_zip import CheckpointFormatError, Namespace, load_torch_checkpoint  # noqa: E402
from tools.errors import LussError  # noqa: E402

pytestmark = [pytest.mark.jittor, pytest.mark.torch]

SMALL = {"embed": 64, "depth": 2, "patch": 16, "grid": 4}


def training_checkpoint(teacher: dict, student: dict) -> dict:
    """What DINO's main_dino.py saves: both networks (student under DDP), optimiser, args, loss center."""
    param = torch.nn.Parameter(torch.zeros(3))
    optimizer = torch.optim.AdamW([param])
    param.grad = torch.ones(3)
    optimizer.step()
    embed = teacher["cls_token"].shape[-1]
    return {
        "student": {**prefixed(student, "module.backbone."), **dino_head_state(embed, "module.")},
        "teacher": {**prefixed(teacher, "backbone."), **dino_head_state(embed, "")},
        "optimizer": optimizer.state_dict(),
        "epoch": 100,
        "args": argparse.Namespace(arch="vit_small", patch_size=16, lr=0.0005, local_crops_scale=(0.05, 0.4)),
        "dino_loss": {"center": torch.zeros(1, 100)},
        "fp16_scaler": None,
    }


def assert_same_weights(vit, state: dict) -> None:
    ours = vit.state_dict()
    assert set(ours) == set(state)
    for key, value in state.items():
        np.testing.assert_array_equal(ours[key].numpy(), value.numpy(), err_msg=key)


def test_official_backbone_file_loads_exactly(tmp_path):
    state = dino_state(**SMALL)
    path = tmp_path / "dino_tiny_pretrain.pth"
    torch.save(state, path)
    vit, report = load_dino_vit(path)
    assert_same_weights(vit, state)
    arch = report.arch
    assert (arch.embed_dim, arch.depth, arch.num_heads, arch.patch_size, arch.img_size) == (64, 2, 1, 16, 64)
    assert report.ignored == [] and len(report.loaded) == len(state)


@pytest.mark.parametrize("which", ["teacher", "student"])
def test_training_checkpoint_loads_the_chosen_network(tmp_path, which):
    teacher, student = dino_state(**SMALL, seed=1), dino_state(**SMALL, seed=2)
    path = tmp_path / "checkpoint.pth"
    torch.save(training_checkpoint(teacher, student), path)
    vit, report = load_dino_vit(path, which)
    assert_same_weights(vit, teacher if which == "teacher" else student)
    assert which in report.source
    assert any(k.endswith("head.last_layer.weight_g") for k in report.ignored)
    assert not any("backbone" in k for k in report.ignored)


def test_training_checkpoint_args_are_read_without_running_code(tmp_path):
    path = tmp_path / "checkpoint.pth"
    torch.save(training_checkpoint(dino_state(**SMALL), dino_state(**SMALL)), path)
    args = load_torch_checkpoint(path)["args"]
    assert isinstance(args, Namespace) and args.arch == "vit_small" and args.local_crops_scale == (0.05, 0.4)


def test_model_layout_with_student_backbone_prefix(tmp_path):
    teacher, student = dino_state(**SMALL, seed=1), dino_state(**SMALL, seed=2)
    model = {**prefixed(student, "student.backbone."), **prefixed(teacher, "teacher.backbone.")}
    model.update(dino_head_state(64, "student."))
    path = tmp_path / "model.pth"
    torch.save({"model": model, "epoch": 3}, path)
    vit, _ = load_dino_vit(path, "student")
    assert_same_weights(vit, student)
    vit, _ = load_dino_vit(path, "teacher")
    assert_same_weights(vit, teacher)


def test_heads_follow_dino_not_the_reference_bug(tmp_path):
    """A 192-d (ViT-Tiny) checkpoint gets DINO's 3 heads of 64, not the 6 the reference used."""
    torch.save(dino_state(embed=192, depth=1, patch=8, grid=2), tmp_path / "tiny8.pth")
    vit, report = load_dino_vit(tmp_path / "tiny8.pth")
    assert report.arch.num_heads == 3 and vit.blocks[0].attn.num_heads == 3
    assert report.arch.patch_size == 8 and vit.patch_size == 8


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.pop("backbone.blocks.1.attn.qkv.bias"), "missing key 'backbone.blocks.1.attn.qkv.bias'"),
        (
            lambda s: s.update({"backbone.blocks.0.attn.q_norm.weight": torch.ones(64)}),
            "unexpected key 'backbone.blocks.0.attn.q_norm.weight'",
        ),
        (
            lambda s: s.update({"backbone.blocks.0.mlp.fc2.weight": torch.ones(64, 128)}),
            r"shape mismatch for 'backbone.blocks.0.mlp.fc2.weight': expected \(64, 256\), found \(64, 128\)",
        ),
    ],
    ids=["missing", "unexpected", "shape"],
)
def test_a_wrong_checkpoint_fails_naming_the_key_and_the_file(tmp_path, edit, message):
    ckpt = training_checkpoint(dino_state(**SMALL), dino_state(**SMALL))
    edit(ckpt["teacher"])
    path = tmp_path / "wrong.pth"
    torch.save(ckpt, path)
    with pytest.raises(StateDictMismatchError, match=message) as err:
        load_dino_vit(path)
    assert "wrong.pth" in str(err.value) and "'teacher'" in str(err.value)
    assert isinstance(err.value, LussError)


def test_a_plain_file_with_a_wrong_key_names_it(tmp_path):
    state = dino_state(**SMALL)
    state.pop("norm.bias")
    torch.save(state, tmp_path / "cut_pretrain.pth")
    with pytest.raises(StateDictMismatchError, match="cut_pretrain.pth.*\n.*missing key 'norm.bias'"):
        load_dino_vit(tmp_path / "cut_pretrain.pth")


def test_a_missing_file_names_the_path_and_what_is_expected(tmp_path):
    expected = r"nowhere\.pth: DINO checkpoint not found.*_pretrain\.pth.*downloads nothing"
    with pytest.raises(CheckpointFormatError, match=expected):
        load_dino_vit(tmp_path / "nowhere.pth")


def test_a_file_that_is_not_a_dino_vit_is_refused(tmp_path):
    torch.save({"conv1.weight": torch.ones(4, 3, 7, 7)}, tmp_path / "resnet.pth")
    with pytest.raises(StateDictMismatchError, match="resnet.pth: no 'cls_token' key.*conv1.weight"):
        load_dino_vit(tmp_path / "resnet.pth")


def test_the_missing_network_is_named(tmp_path):
    torch.save({"teacher": prefixed(dino_state(**SMALL), "backbone."), "epoch": 1}, tmp_path / "t.pth")
    with pytest.raises(CheckpointFormatError, match="without a 'student' state dict.*dino_weights"):
        load_dino_vit(tmp_path / "t.pth", "student")
    with pytest.raises(LussError, match="choose 'teacher'"):
        load_dino_vit(tmp_path / "t.pth", "ema")

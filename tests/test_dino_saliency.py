"""`luss cluster --step saliency` on a user's DINO checkpoint: no Stage-1 run needed, 0/255 PNGs written."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
pytest.importorskip("jittor")

from dino_fixtures import dino_head_state, dino_state, prefixed  # noqa: E402

from tools.config.loader import load_config  # noqa: E402
from tools.errors import LussError  # noqa: E402
from tools.run_layout import RunLayout  # noqa: E402

pytestmark = [pytest.mark.jittor, pytest.mark.torch]


def demo_data(tmp_path):
    from tools.data.demo import DemoSpec, generate_demo_dataset

    spec = DemoSpec(classes=2, train_per_class=2, val_per_class=0, test_per_class=0, size=40)
    return generate_demo_dataset(tmp_path / "data", spec, progress=False)


def dino_config(checkpoint=None):
    config = load_config("demo")
    sal = config.cluster.saliency
    sal.features, sal.dino_checkpoint, sal.image_size, sal.crf = "dino", checkpoint, 70, False
    return config


def test_dino_saliency_maps_without_a_stage_one_checkpoint(tmp_path):
    from tools.clustering.maskcut_stage import write_saliency_maps
    from tools.data.imagenet_s import ImageNetS

    data = demo_data(tmp_path)
    ckpt = tmp_path / "checkpoint.pth"
    teacher = dino_state(embed=64, depth=2, patch=16, grid=14, seed=4)
    torch.save({"teacher": {**prefixed(teacher, "backbone."), **dino_head_state(64, "")}}, ckpt)
    layout = RunLayout.at(tmp_path / "run")  # empty: no RUN/pretrain at all
    samples = ImageNetS(data).samples("train")
    messages = []
    info = write_saliency_maps(dino_config(str(ckpt)), samples, layout, messages.append)
    assert info["written"] == len(samples) == 4 and info["size"] == 64  # 70 rounded to the patch size
    assert "ViT 64-d, 2 blocks, 1 heads, patch 16" in info["dino_arch"] and "'teacher'" in info["dino_source"]
    assert any("last-block keys" in m for m in messages)
    for s in samples:
        with Image.open(layout.saliency_dir() / s.wnid / f"{s.stem}.png") as sal:
            assert sal.format == "PNG" and sal.mode == "L"
            assert sal.size == Image.open(s.image_path).size
            assert set(np.unique(np.asarray(sal))) <= {0, 255}
    assert not layout.final_checkpoint("pretrain").exists()


def test_cli_dino_checkpoint_runs_the_saliency_step(tmp_path):
    from click.testing import CliRunner

    from luss_cli.main import cli

    data = demo_data(tmp_path)
    torch.save(dino_state(embed=64, depth=1, patch=16, grid=4), tmp_path / "dino_tiny_pretrain.pth")
    run = tmp_path / "run"
    args = ["cluster", "--preset", "demo", "--data", str(data), "--run", str(run), "--step", "saliency",
            "--dino-checkpoint", str(tmp_path / "dino_tiny_pretrain.pth"),
            "--set", "cluster.saliency.image_size=48", "--set", "cluster.saliency.crf=false"]  # fmt: skip
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    layout = RunLayout.at(run)
    assert len(list(layout.saliency_dir().glob("*/*.png"))) == 4
    marker = json.loads(layout.cluster_step_marker("saliency").read_text())
    assert marker["features"] == "dino" and marker["dino_checkpoint"].endswith("dino_tiny_pretrain.pth")


def test_dino_features_without_a_checkpoint_say_how_to_set_one(tmp_path):
    from tools.clustering.maskcut_stage import write_saliency_maps

    with pytest.raises(LussError, match=r"--dino-checkpoint FILE.*cluster\.saliency\.dino_checkpoint"):
        write_saliency_maps(dino_config(), [], RunLayout.at(tmp_path / "run"), print)
    config = dino_config(str(tmp_path / "x.pth"))
    config.cluster.saliency.dino_weights = "ema"
    with pytest.raises(LussError, match="cluster.saliency.dino_weights='ema'"):
        write_saliency_maps(config, [], RunLayout.at(tmp_path / "run"), print)

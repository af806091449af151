"""`luss distance` under `mpirun -np 2`: the ranks split the images, rank 0 scores once every shard is
there, and the predictions equal one process's."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from mpi_launch import run_mpi

from tools.config.loader import save_config
from tools.data.demo import DemoSpec, generate_demo_dataset
from tools.data.imagenet_s import ImageNetS
from tools.data.label_codec import read_label_png
from tools.run_layout import RunLayout

pytestmark = [pytest.mark.slow, pytest.mark.jittor]
jt = pytest.importorskip("jittor")

from test_cluster_stage import fake_stage_one, tiny_config  # noqa: E402

LUSS = [sys.executable, "-m", "luss_cli"]


def test_two_rank_distance_equals_one_process(tmp_path):
    spec = DemoSpec(
        classes=2, train_per_class=2, val_per_class=3, test_per_class=0, size=40, semi_per_class=2
    )
    data = generate_demo_dataset(tmp_path / "data", spec, progress=False)
    config = tiny_config()
    config.predict.short_side = 40
    save_config(config, tmp_path / "tiny.yaml")
    stage_one = RunLayout.at(tmp_path / "stage1")
    fake_stage_one(config, stage_one.final_checkpoint("pretrain"))
    args = ["distance", "--preset", str(tmp_path / "tiny.yaml"), "--data", str(data), "--workers", "1"]
    args += ["--pretrain-from", str(stage_one.root), "--run"]
    for run, ranks in (("single", 1), ("double", 2)):
        result = run_mpi([*LUSS, *args, str(tmp_path / run)], timeout=300, ranks=ranks)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    layouts = [RunLayout.at(tmp_path / run) for run in ("single", "double")]
    for layout in layouts:
        match = json.loads((layout.distance_dir("validation") / "match.json").read_text())
        assert match == {"0": 0, "1": 1, "2": 2}
    for s in ImageNetS(data).samples("validation"):
        a, b = (read_label_png(lay.distance_dir("validation") / s.png_name()) for lay in layouts)
        np.testing.assert_array_equal(a, b, err_msg=s.key)

"""Every stage under ``mpirun -np 2`` on the CPU: cluster (with saliency) completes every step on every
rank, predict and refine write ``match.json`` once every shard is done (equal to one process), and an
error on one rank ends the whole job at once."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from mpi_launch import run_mpi

from tools.config.loader import config_to_dict, load_config, save_config
from tools.data.demo import DemoSpec, generate_demo_dataset
from tools.data.imagenet_s import ImageNetS
from tools.data.label_codec import read_label_png
from tools.run_layout import RunLayout

pytestmark = [pytest.mark.slow, pytest.mark.jittor]
jt = pytest.importorskip("jittor")

from test_cluster_stage import fake_stage_one, tiny_config  # noqa: E402

SCRIPTS = Path(__file__).parent / "mpi"
LUSS = [sys.executable, "-m", "luss_cli"]


def _output(result) -> str:
    return result.stdout[-4000:] + result.stderr[-4000:]


def test_two_rank_cluster_with_saliency_runs_every_step_on_every_rank(tmp_path):
    spec = DemoSpec(classes=2, train_per_class=3, val_per_class=2, test_per_class=0, size=40)
    data = generate_demo_dataset(tmp_path / "data", spec, progress=False)
    config = tiny_config()
    config.cluster.saliency.enabled = True
    config.cluster.saliency.image_size = 64
    config.pixel_attention.saliency_weight = 0.9
    config.pixel_attention.saliency_image_size = 32
    save_config(config, tmp_path / "tiny.yaml")
    layout = RunLayout.at(tmp_path / "run")
    fake_stage_one(config, layout.final_checkpoint("pretrain"))

    start = time.perf_counter()
    args = ["cluster", "--preset", str(tmp_path / "tiny.yaml"), "--data", str(data), "--run"]
    result = run_mpi([*LUSS, *args, str(layout.root)], timeout=400)
    seconds = time.perf_counter() - start
    assert result.returncode == 0, _output(result)
    assert "cluster: device cpu, rank 0/2, batch 2 per rank" in result.stderr
    dataset = ImageNetS(data)
    for s in dataset.samples("train"):
        assert (layout.saliency_dir() / s.wnid / f"{s.stem}.png").is_file(), s.key
        assert read_label_png(layout.pseudo_label_dir() / s.wnid / f"{s.stem}.png").max() <= 2
    for s in dataset.samples("validation"):
        assert (layout.cluster_labels_dir("validation") / s.wnid / f"{s.stem}.npy").is_file()
    for step in ("saliency", "attention", "kmeans", "labels"):
        assert layout.cluster_step_marker(step).is_file(), step
    assert json.loads(layout.cluster_step_marker("saliency").read_text())["images"] == 6
    assert len(layout.cluster_file("assignments-train.txt").read_text().splitlines()) == 6
    assert not list(layout.stage_dir("cluster").glob("embed-*")), "per-rank embedding parts are removed"
    report = json.loads(layout.cluster_file("report.json").read_text())
    assert {"nmi", "cluster_accuracy", "threshold"} <= set(report)
    assert layout.is_done("cluster")
    print(f"2-rank cluster with saliency: {seconds:.1f} s")


@pytest.fixture(scope="module")
def predict_run(tmp_path_factory):
    """A demo validation split and a run holding an untrained fine-tuned segmenter."""
    from tools.config.loader import save_config
    from tools.engine.checkpoint import save_checkpoint
    from tools.engine.state import model_state
    from tools.networks import build_network

    root = tmp_path_factory.mktemp("predict")
    spec = DemoSpec(classes=2, train_per_class=1, val_per_class=3, test_per_class=0, size=40)
    data = generate_demo_dataset(root / "data", spec, progress=False)
    config = load_config("demo", ["finetune.head=progressive"])
    jt.set_global_seed(0)
    payload = {"model": model_state(build_network(config, "segmenter", 2)), "config": config_to_dict(config)}
    save_checkpoint(RunLayout.at(root / "run").final_checkpoint("finetune"), payload)
    save_config(config, RunLayout.at(root / "run").config_file)  # as its first command would have
    return data, root / "run"


def test_two_rank_predict_writes_match_json_before_returning_and_equals_one_process(predict_run, tmp_path):
    from tools.config.schema import PredictConfig
    from tools.evaluation.match_file import load_match_file
    from tools.stages.predict import run_predict

    data, run = predict_run
    single, double = tmp_path / "single", tmp_path / "double"
    for copy in (single, double):
        shutil.copytree(run, copy)
    config = PredictConfig(short_side=32)
    outcome = run_predict(config, data, single, "validation", workers=1, progress=False, say=lambda m: None)
    assert outcome.match_file is not None

    script = str(SCRIPTS / "predict_ranks.py")
    result = run_mpi([sys.executable, script, str(double), str(data), str(tmp_path)], 600)
    assert result.returncode == 0, _output(result)
    records = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [(r["rank"], r["world"], r["exists"]) for r in records] == [(0, 2, True), (1, 2, True)]
    layouts = RunLayout.at(single), RunLayout.at(double)
    matches = [load_match_file(lay.match_file("predict")) for lay in layouts]
    assert matches[0] == matches[1]
    for s in ImageNetS(data).samples("validation"):
        a, b = (read_label_png(lay.predict_dir("validation") / s.png_name()) for lay in layouts)
        np.testing.assert_array_equal(a, b, err_msg=s.key)


def test_an_error_on_one_rank_ends_the_whole_job_at_once(predict_run, tmp_path):
    data, run = predict_run
    shutil.copytree(run, tmp_path / "run")
    args = ["--run", str(tmp_path / "run"), "--data", str(data), "--split", "validation", "--workers", "1"]
    start = time.perf_counter()
    result = run_mpi([sys.executable, str(SCRIPTS / "fail_rank.py"), *args], timeout=60)
    seconds = time.perf_counter() - start
    assert result.returncode != 0, _output(result)
    assert "Error (rank 1/2): rank 1 broke on purpose" in result.stderr, _output(result)
    assert seconds < 50, f"the job took {seconds:.0f} s to end"


def test_two_rank_refine_equals_one_process(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("segment_anything")
    from sam_fixtures import SIZES, TINY_GENERATOR, make_tree, tiny_sam

    from tools.evaluation.match_file import load_match_file
    from tools.refine.generator_config import cache_fingerprint
    from tools.refine.refiner import RefineOptions, refine_split, score_refined_split
    from tools.refine.sam_model import make_mask_source

    data, layout = make_tree(tmp_path / "single")
    double = RunLayout.at(tmp_path / "double" / "run")
    shutil.copytree(layout.root, double.root)
    fingerprint, params = cache_fingerprint(TINY_GENERATOR, "vit_b", "sam_vit_b_01ec64.pth")
    summary = refine_split(
        data, "validation", layout, RefineOptions(), lambda: make_mask_source(tiny_sam(), TINY_GENERATOR),
        fingerprint, params, progress=False,
    )  # fmt: skip
    assert summary.voted == 2 and score_refined_split(data, "validation", layout, workers=1).match_file

    script = str(SCRIPTS / "refine_ranks.py")
    result = run_mpi([sys.executable, script, str(data.root), str(double.root), str(tmp_path)], 600)
    assert result.returncode == 0, _output(result)
    records = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [(r["rank"], r["voted"], r["exists"]) for r in records] == [(0, 1, True), (1, 1, True)]
    assert load_match_file(double.match_file("refine")) == load_match_file(layout.match_file("refine"))
    for key in SIZES:
        a, b = (read_label_png(lay.refine_dir("validation") / f"{key}.png") for lay in (layout, double))
        np.testing.assert_array_equal(a, b, err_msg=key)

"""The distance-matching protocol: cosine head rules, class embeddings from train-semi masks, and the
whole path (Stage-1 backbone -> predictions -> identity match -> a zip `pack --protocol distance` takes)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tools.config.loader import load_config
from tools.data.demo import DemoSpec, generate_demo_dataset
from tools.data.imagenet_s import ImageNetS
from tools.data.label_codec import IGNORE_ID, read_label_png
from tools.errors import LussError, SubmissionError
from tools.packing.pack import check_submission_zip, pack_submission
from tools.run_layout import RunLayout
from tools.stages.distance import class_embeddings

jt = pytest.importorskip("jittor")

from models.build import create_backbone  # noqa: E402
from models.cosine_head import CosineHead  # noqa: E402
from tools.engine.checkpoint import save_checkpoint  # noqa: E402
from tools.engine.state import model_state  # noqa: E402
from tools.stages.distance import DistanceOptions, run_distance  # noqa: E402

SPEC = DemoSpec(classes=3, train_per_class=2, val_per_class=2, test_per_class=2, size=64, semi_per_class=2)


def test_nearest_class_by_cosine():
    # two feature pixels, [1, 0] and [0, 1]; class 2's embedding points the other way from class 0's
    head = CosineHead(np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]), np.arange(3), num_classes=2)
    x = jt.array(np.array([[[[3.0, 0.0]], [[0.0, 2.0]]]], np.float32))  # [1, F=2, 1, 2]
    scores = head(x).numpy()
    assert scores.shape == (1, 3, 4, 8)  # x4 upsampled
    assert scores[0, :, 0, 0].argmax() == 0 and scores[0, :, 0, -1].argmax() == 1
    np.testing.assert_allclose(scores[0, :, 0, 0], [1.0, 0.0, -1.0], atol=1e-6)  # pure cosines


def test_knn_votes_weight_neighbours_by_exp_cosine():
    instances = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    head = CosineHead(instances, np.array([2, 2, 1]), num_classes=2, k=2, t=0.5)
    x = jt.array(np.array([[[[1.0]], [[0.0]]]], np.float32))  # one pixel [1, 0]
    votes = head(x).numpy()[0, :, 0, 0]
    cos = instances[:2, 0] / np.linalg.norm(instances[:2], axis=1)  # the 2 nearest: both class 2
    np.testing.assert_allclose(votes, [0.0, 0.0, np.exp(cos / 0.5).sum()], rtol=1e-5)


def test_class_embedding_is_the_normalised_mean_of_unit_instances():
    instances = np.array([[2.0, 0.0], [0.0, 5.0], [0.0, 1.0], [3.0, 3.0]])
    emb = class_embeddings(instances, np.array([0, 0, 1, 2]), num_classes=2)
    np.testing.assert_allclose(emb, [[2**-0.5, 2**-0.5], [0.0, 1.0], [2**-0.5, 2**-0.5]], atol=1e-6)
    with pytest.raises(LussError, match=r"class id\(s\) \[2\]"):
        class_embeddings(instances[:3], np.array([0, 0, 1]), num_classes=2)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return generate_demo_dataset(tmp_path_factory.mktemp("demo") / "d", SPEC, progress=False)


@pytest.fixture()
def pretrained_run(tmp_path):
    """A run whose Stage-1 checkpoint is a freshly built narrow ResNet-18 (backbone.* keys)."""
    jt.set_global_seed(0)
    state = {f"backbone.{k}": v for k, v in model_state(create_backbone("resnet18", width=16)).items()}
    save_checkpoint(RunLayout.at(tmp_path / "run").final_checkpoint("pretrain"), {"model": state})
    return tmp_path / "run"


@pytest.mark.slow
def test_distance_predictions_pack_under_the_distance_protocol_only(data, pretrained_run, tmp_path):
    config = load_config("demo", ["predict.short_side=64", "model.width=16"])
    quiet = {"progress": False, "say": lambda s: None}
    val = run_distance(config, data, pretrained_run, "validation", workers=1, **quiet)
    dataset = ImageNetS(data)
    with np.load(pretrained_run / "distance" / "embeddings.npz") as saved:
        n_instances = len(saved["labels"])
    masks = [
        read_label_png(data / "train-semi-segmentation" / s.png_name()) for s in dataset.samples("train-semi")
    ]
    assert n_instances == sum(len(set(np.unique(m).tolist()) - {IGNORE_ID}) for m in masks)
    assert val.summary.written == len(dataset.samples("validation")) and val.score is not None
    assert json.loads(val.match_file.read_text()) == {str(i): i for i in range(4)}
    assert json.loads((val.out_dir / "protocol.json").read_text())["protocol"] == "distance"
    for s in dataset.samples("validation"):
        labels = read_label_png(val.out_dir / s.png_name())
        assert labels.shape == read_label_png(dataset.mask_path(s)).shape and labels.max() <= 3
    test = run_distance(config, data, pretrained_run, "test", **quiet)
    again = run_distance(config, data, pretrained_run, "test", **quiet)
    assert again.summary.written == 0 and again.summary.skipped == test.summary.written
    with pytest.raises(LussError, match="--overwrite"):  # another rule would mix with these PNGs
        run_distance(config, data, pretrained_run, "test", DistanceOptions(k=3), **quiet)
    out = tmp_path / "distance.zip"
    pack_submission(test.out_dir, data, None, out, protocol="distance")
    assert check_submission_zip(out, data, protocol="distance") == []
    with pytest.raises(SubmissionError, match="protocol"):
        pack_submission(test.out_dir, data, val.match_file, tmp_path / "u.zip", protocol="fully-unsupervised")


def test_missing_train_semi_says_where_it_comes_from(tmp_path, pretrained_run):
    flat = generate_demo_dataset(
        tmp_path / "d",
        DemoSpec(classes=2, train_per_class=1, val_per_class=1, test_per_class=0, size=32, semi_per_class=0),
        progress=False,
    )
    with pytest.raises(LussError, match="luss prepare"):
        run_distance(
            load_config("demo", ["model.width=16"]),
            flat,
            pretrained_run,
            "validation",
            progress=False,
            say=lambda s: None,
        )

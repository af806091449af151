"""Stage 2 (`luss cluster`): frozen BN stays put, seeded k-means, cluster accuracy, a tiny end-to-end run."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from tools.clustering.kmeans import cluster_accuracy, kmeans, normalized_mutual_info
from tools.config.loader import load_config
from tools.run_layout import RunLayout

jt = pytest.importorskip("jittor")


def tiny_config():
    config = load_config("demo")
    config.model.hidden_mlp, config.model.feat_dim, config.model.num_prototypes = 16, 8, 6
    loop = config.pixel_attention.loop
    loop.epochs, loop.batch_size, loop.workers, loop.log_every, loop.checkpoint_freq = 1, 4, 0, 1, 1
    crops = config.pixel_attention.crops
    crops.sizes, crops.counts, crops.min_scales, crops.max_scales = [32], [2], [0.5], [1.0]
    c = config.cluster
    c.nredo, c.niter, c.short_side, c.crop, c.t_min, c.t_max, c.t_step = 2, 5, 48, 32, 0.0, 0.8, 0.2
    return config


def fake_stage_one(config, path):
    """A Stage-1 checkpoint from fresh modules with the keys `luss pretrain` writes (no fbg, pixel heads)."""
    from tools.engine.checkpoint import save_checkpoint
    from tools.engine.state import model_state
    from tools.networks import build_network

    state = {
        k: v for k, v in model_state(build_network(config, "attention")).items() if not k.startswith("fbg.")
    }
    state["projection_head_pixel.net.0.weight"] = np.zeros((4, 512, 1, 1), np.float32)
    save_checkpoint(path, {"stage": "pretrain", "model": state})


def test_pixel_attention_modes_follow_the_references(tmp_path):
    """Backbone BatchNorm statistics stay put (eval mode); the frozen projection head normalises with
    batch statistics (train mode, PASS/SAMPASS ``model.train()``) but none of its weights move."""
    from tools.data.imagenet_s import Sample
    from tools.engine.trainer import StepInfo
    from tools.stages.pixel_attention import PixelAttentionTask

    config = tiny_config()
    ckpt = tmp_path / "final.pkl"
    fake_stage_one(config, ckpt)
    task = PixelAttentionTask(config, [Sample("train", "n0", "a", tmp_path / "a.JPEG")], ckpt, None)
    before = {k: v.numpy().copy() for k, v in task.model.state_dict().items()}
    backbone_stats = [k for k in before if k.startswith("backbone.") and "running_" in k]
    head_weights = [k for k in before if k.startswith("projection_head.") and "running_" not in k]
    head_stats = [k for k in before if k.startswith("projection_head.") and "running_mean" in k]
    assert backbone_stats and head_weights and head_stats
    task.world = type("W", (), {"size": 1})()
    task.batch_local = 4
    task.set_train_mode()
    assert task.model.fbg.is_training() and task.model.projection_head.is_training()
    assert not task.model.backbone.is_training()
    rng = np.random.default_rng(0)
    crops = [rng.standard_normal((4, 3, 32, 32)).astype(np.float32) for _ in range(2)]
    loss, _ = task.train_step((crops,), StepInfo(0, 0, 0, 0.1))
    jt.optim.SGD(task.trainable_parameters(), lr=0.1).step(loss)
    after = {k: v.numpy() for k, v in task.model.state_dict().items()}
    for key in backbone_stats + head_weights:
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)
    assert any(not np.array_equal(after[k], before[k]) for k in head_stats)  # batch statistics used


def separated_embeddings(n_per=10, k=4, d=8, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.eye(k, d) * 10
    x = np.concatenate([centres[i] + rng.standard_normal((n_per, d)) * 0.1 for i in range(k)])
    return x.astype(np.float32), np.repeat(np.arange(k), n_per)


def test_kmeans_is_deterministic_for_a_seed():
    x, _ = separated_embeddings()
    a = kmeans(x, 4, niter=10, nredo=3, seed=5)
    b = kmeans(x, 4, niter=10, nredo=3, seed=5)
    np.testing.assert_array_equal(a.centroids, b.centroids)
    np.testing.assert_array_equal(a.train_labels, b.train_labels)


def test_cluster_accuracy_and_nmi_are_one_on_separated_clusters():
    x, classes = separated_embeddings()
    result = kmeans(x, 4, niter=20, nredo=5, seed=1)
    assert cluster_accuracy(classes, result.train_labels) == 1.0
    assert normalized_mutual_info(classes, result.train_labels) == pytest.approx(1.0)
    assert cluster_accuracy(np.array([0, 0, 1, 1]), np.array([1, 1, 0, 0])) == 1.0
    assert cluster_accuracy(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])) == 0.75


def test_tiny_end_to_end_cluster_run(tmp_path):
    from tools.data.demo import DemoSpec, generate_demo_dataset
    from tools.data.imagenet_s import ImageNetS
    from tools.data.label_codec import read_label_png
    from tools.stages.cluster import run_cluster

    data = generate_demo_dataset(
        tmp_path / "data",
        DemoSpec(classes=3, train_per_class=4, val_per_class=2, test_per_class=0, size=48),
        progress=False,
    )
    config = tiny_config()
    layout = RunLayout.at(tmp_path / "run")
    fake_stage_one(config, layout.final_checkpoint("pretrain"))
    messages: list[str] = []
    report = run_cluster(config, data, layout.root, say=messages.append)

    assert (layout.pixel_attention_dir() / "checkpoints" / "final.pkl").is_file()
    width = 8 * config.model.width  # the ResNet-18's stage-4 channels
    assert np.load(layout.cluster_file("centroids.npy")).shape == (3, width)
    assert len(layout.cluster_file("assignments-train.txt").read_text().splitlines()) == 12
    assert len(layout.cluster_file("assignments-validation.txt").read_text().splitlines()) == 6
    saved = json.loads(layout.cluster_file("report.json").read_text())
    assert saved == report
    assert 0.0 <= report["nmi"] <= 1.0 and 1 / 3 <= report["cluster_accuracy"] <= 1.0
    assert report["threshold"] in [0.0, 0.2, 0.4, 0.6, 0.8]
    assert 0.0 <= report["validation_foreground_fraction"] <= 1.0
    dataset = ImageNetS(data)
    for split, out in (
        ("validation", layout.cluster_labels_dir("validation")),
        ("train", layout.pseudo_label_dir()),
    ):
        for s in dataset.samples(split):
            labels = read_label_png(out / s.wnid / f"{s.stem}.png")
            w, h = Image.open(s.image_path).size
            assert labels.shape == (h, w)
            assert labels.max() <= 3
            if split == "validation":
                assert labels.min() >= 1
                assert np.load(out / s.wnid / f"{s.stem}.npy").shape == (h, w)
    assert layout.is_done("cluster")

    # The demo has train ground truth: the features pooled over the true object are measured too.
    truth = report["ground_truth_object"]
    assert 1 / 3 <= truth["cluster_accuracy"] <= 1.0 and 0.0 <= truth["nmi"] <= 1.0
    assert any("ground-truth object" in m for m in messages)

    messages.clear()
    run_cluster(config, data, layout.root, say=messages.append)
    assert any("already done" in m for m in messages)

    # Without train ground truth (every real dataset) the same step clusters and leaves the key out.
    shutil.rmtree(data / "train-segmentation")
    layout.cluster_step_marker("kmeans").unlink()
    layout.cluster_file("report.json").unlink()
    again = run_cluster(config, data, layout.root, steps=["kmeans"], say=messages.append)
    assert "ground_truth_object" not in again
    assert again["cluster_accuracy"] == report["cluster_accuracy"]
    assert np.load(layout.cluster_file("centroids.npy")).shape == (3, width)


def test_ncut_recovers_the_object_of_a_two_group_feature_map():
    from tools.clustering.ncut import maskcut

    rng = np.random.default_rng(0)
    obj = np.zeros((10, 12), bool)
    obj[3:7, 4:9] = True
    feats = np.where(obj[None], np.eye(6)[0][:, None, None], np.eye(6)[1][:, None, None])
    feats = feats + rng.standard_normal((6, 10, 12)) * 0.05
    masks = maskcut(feats, num_masks=2, tau=0.6)
    np.testing.assert_array_equal(masks[0], obj)
    assert not (masks[1] & masks[0]).any()


def test_saliency_step_feeds_the_attention_loss(tmp_path):
    from tools.data.demo import DemoSpec, generate_demo_dataset
    from tools.data.imagenet_s import ImageNetS
    from tools.stages.cluster import run_cluster

    spec = DemoSpec(classes=2, train_per_class=2, val_per_class=0, test_per_class=0, size=40)
    data = generate_demo_dataset(tmp_path / "data", spec, progress=False)
    config = tiny_config()
    config.cluster.saliency.image_size = 96
    config.pixel_attention.saliency_weight = 0.9
    config.pixel_attention.saliency_image_size = 32
    layout = RunLayout.at(tmp_path / "run")
    fake_stage_one(config, layout.final_checkpoint("pretrain"))
    run_cluster(config, data, layout.root, steps=["saliency", "attention"], say=lambda m: None)
    for s in ImageNetS(data).samples("train"):
        with Image.open(layout.saliency_dir() / s.wnid / f"{s.stem}.png") as sal:
            assert sal.mode == "L" and sal.size == Image.open(s.image_path).size
            assert set(np.unique(np.asarray(sal))) <= {0, 255}
    metrics = (layout.pixel_attention_dir() / "metrics.jsonl").read_text()
    assert '"saliency"' in metrics
    assert not layout.is_done("cluster")


@pytest.mark.parametrize(
    ("arch", "size"),
    [
        ("sam_tiny_adapter", (500, 375)),
        ("sam_tiny_adapter", (333, 500)),
        ("sam_tiny_adapter", (17, 29)),
        ("resnet18", (375, 500)),
    ],
)
def test_dense_labels_take_odd_image_sizes_with_any_backbone(arch, size):
    """ImageNet-like sizes give sides that are no multiple of the ViT patch (500x375 at a shorter side of
    40 -> 53x40; 29x17 -> 40x68): the input is padded to the patch and the features cropped back."""
    from tools.clustering.embed import dense_labels, unit_rows
    from tools.networks import build_network

    config = tiny_config()
    config.model.arch, config.model.adapter_width = arch, 16
    net = build_network(config, "attention_features")
    net.eval()
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    centroids = unit_rows(rng.standard_normal((3, net.backbone.num_features)).astype(np.float32))
    labels, attention = dense_labels(net, image, centroids, 40)
    assert labels.shape == attention.shape == (size[1], size[0])
    assert labels.min() >= 1 and labels.max() <= 3
    assert np.isfinite(attention).all()

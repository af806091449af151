"""Stage 3: the segmenter learns the pseudo-labels, the joint crop keeps image and labels aligned,
a frozen backbone does not move, and missing inputs are errors that name the file and the fix."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tools.config.loader import load_config
from tools.data.demo import DemoSpec, generate_demo_dataset, plan_samples, render_sample
from tools.data.imagenet_s import ImageNetS
from tools.data.label_codec import IGNORE_ID, write_label_png
from tools.data.pseudo_labels import MissingPseudoLabelsError, PseudoLabelDataset, crop_pair
from tools.errors import DatasetError, LussError
from tools.run_layout import RunLayout

jt = pytest.importorskip("jittor")

from models.build import create_backbone  # noqa: E402
from models.segmenter import Segmenter  # noqa: E402
from tools.config.schema import OptimConfig  # noqa: E402
from tools.engine.checkpoint import save_checkpoint  # noqa: E402
from tools.engine.optimizer import SGDLarc  # noqa: E402
from tools.engine.state import model_state  # noqa: E402
from tools.stages.finetune import downscale_labels, run_finetune, segmentation_loss  # noqa: E402
from tools.stages.predict import load_segmenter  # noqa: E402

NUM_CLASSES = 2
SPEC = DemoSpec(classes=NUM_CLASSES, train_per_class=4, val_per_class=0, test_per_class=0, size=96)
OVERFIT = [
    "finetune.loop.epochs=150",
    "finetune.loop.checkpoint_freq=150",
    "finetune.loop.batch_size=8",
    "finetune.loop.workers=0",
    "finetune.loop.log_every=1",
    "finetune.loop.optim.base_lr=0.1",
    "finetune.loop.optim.final_lr=0.1",
    "finetune.loop.optim.larc=false",  # plain SGD: this test is about fitting, not the demo recipe
    "finetune.crop_size=96",
    "finetune.min_scale=1.0",
    "finetune.freeze_backbone=false",
    "finetune.head=progressive",
    "model.arch=resnet18",
    "model.width=16",  # a ResNet-18 of stem width 16
]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return generate_demo_dataset(tmp_path_factory.mktemp("demo") / "d", SPEC, progress=False)


def _fake_stages_1_and_2(data, run, pseudo_labels=True):
    """Stage 1: a freshly built backbone saved under ``backbone.*``; Stage 2: the demo train masks."""
    layout = RunLayout.at(run)
    jt.set_global_seed(0)
    backbone = create_backbone("resnet18", width=16)
    state = {f"backbone.{k}": v for k, v in model_state(backbone).items()}
    state["prototypes.weight"] = np.zeros((4, 8), np.float32)  # other Stage-1 heads are ignored
    save_checkpoint(layout.final_checkpoint("pretrain"), {"model": state})
    if pseudo_labels:
        for job in plan_samples(data, SPEC):
            if job.split == "train":
                write_label_png(
                    layout.pseudo_label_dir() / f"{job.wnid}/{job.stem}.png", render_sample(job).labels
                )
    return layout


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    layout = _fake_stages_1_and_2(data, run)
    result = run_finetune(load_config("demo", OVERFIT), data, run, say=lambda s: None)
    net = load_segmenter(run)
    return layout, result, net


def test_overfits_the_pseudo_labels(data, trained):
    layout, result, net = trained
    assert result.completed and layout.is_done("finetune")
    assert result.last_metrics["pixel_acc"] > 0.8  # the training log's metric (augmented crops)
    # the whole train set, un-flipped, as the network saw it (crop_size square), in eval mode
    samples = ImageNetS(data).samples("train")
    views = PseudoLabelDataset(samples, layout.pseudo_label_dir(), NUM_CLASSES, 96, min_scale=1.0, flip_p=0.0)
    images, labels = zip(*(views[i] for i in range(len(views))), strict=True)
    labels = downscale_labels(np.stack(labels), 0.5)
    with jt.no_grad():
        _, accuracy = segmentation_loss(net(jt.array(np.stack(images))), labels)
    valid = labels != IGNORE_ID
    background = float((labels[valid] == 0).mean())
    print(f"overfit pixel accuracy {accuracy:.3f} (all-background {background:.3f})")
    assert accuracy > 0.88
    assert accuracy > background + 0.1


def test_finished_stage_is_skipped(data, trained):
    layout, result, _ = trained
    messages = []
    again = run_finetune(load_config("demo", OVERFIT), data, layout.root, say=messages.append)
    assert again.completed and again.final_checkpoint == result.final_checkpoint
    assert "already done" in messages[0]


def test_class_balance_weights_the_loss_by_the_pseudo_label_frequencies(data, tmp_path):
    import json

    layout = _fake_stages_1_and_2(data, tmp_path / "run")
    said: list[str] = []
    short = [*OVERFIT, "finetune.loop.epochs=1", "finetune.loop.checkpoint_freq=1"]
    short.append("finetune.class_balance=0.5")
    run_finetune(load_config("demo", short), data, tmp_path / "run", say=said.append)
    weights = json.loads(layout.done_marker("finetune").read_text())["class_weights"]
    assert len(weights) == NUM_CLASSES + 1 and weights[0] == 1.0
    assert any("class-balanced cross-entropy (finetune.class_balance=0.5)" in line for line in said)


def test_missing_pseudo_labels_name_the_file_and_the_fix(data, tmp_path):
    _fake_stages_1_and_2(data, tmp_path, pseudo_labels=False)
    with pytest.raises(MissingPseudoLabelsError, match=r"luss cluster") as info:
        run_finetune(load_config("demo", OVERFIT), data, tmp_path, say=lambda s: None)
    assert "pseudo-labels/train/n9" in str(info.value)


def test_missing_stage_1_checkpoint_says_run_pretrain(data, tmp_path):
    _fake_stages_1_and_2(data, tmp_path)
    RunLayout.at(tmp_path).final_checkpoint("pretrain").unlink()
    with pytest.raises(LussError, match="luss pretrain"):
        run_finetune(load_config("demo", OVERFIT), data, tmp_path, say=lambda s: None)


def test_frozen_backbone_stays_in_eval_and_only_the_head_moves():
    jt.set_global_seed(0)
    net = Segmenter(
        create_backbone("resnet18", width=8), NUM_CLASSES, head="progressive", freeze_backbone=True
    )
    before = model_state(net)
    net.train()
    assert not net.backbone.is_training() and net.head.is_training()
    opt = SGDLarc(net.trainable_parameters(), OptimConfig(momentum=0.9, weight_decay=1e-4))
    labels = np.random.default_rng(0).integers(0, NUM_CLASSES + 1, size=(2, 32, 32)).astype(np.int32)
    loss, _ = segmentation_loss(net(jt.randn(2, 3, 64, 64)), labels)
    opt.step(loss, 0.1)
    after = model_state(net)
    moved = {k for k in before if not np.array_equal(before[k], after[k])}
    assert moved and all(k.startswith("head.") for k in moved)  # BN running stats of the backbone too


def test_joint_crop_keeps_labels_on_their_pixels():
    # left half red = class 1, right half blue = class 2: after any crop/flip, colour predicts label
    image = np.zeros((60, 80, 3), np.uint8)
    image[:, :40, 0] = 255
    image[:, 40:, 2] = 255
    labels = np.where(np.arange(80)[None, :] < 40, 1, 2).repeat(60, axis=0).astype(np.int32)
    for seed in range(6):
        pixels, crop = crop_pair(Image.fromarray(image), labels, 32, 0.2, np.random.default_rng(seed))
        assert crop.shape == (32, 32) and set(np.unique(crop)) <= {1, 2}  # nearest: no blended ids
        sure = np.abs(pixels[..., 0].astype(int) - pixels[..., 2].astype(int)) > 200  # away from the seam
        np.testing.assert_array_equal(crop[sure & (pixels[..., 0] > 128)], 1)
        np.testing.assert_array_equal(crop[sure & (pixels[..., 2] > 128)], 2)


def test_labels_downscale_by_nearest():
    labels = np.arange(16, dtype=np.int32).reshape(1, 4, 4)
    np.testing.assert_array_equal(downscale_labels(labels, 0.5)[0], [[0, 2], [8, 10]])


def test_dataset_keeps_ignore_and_refuses_ids_beyond_the_clusters(data, tmp_path):
    sample = ImageNetS(data).samples("train")[0]
    width, height = Image.open(sample.image_path).size
    labels = np.full((height, width), IGNORE_ID, np.int32)
    labels[: height // 2] = 1
    write_label_png(tmp_path / sample.png_name(), labels)
    pairs = PseudoLabelDataset([sample], tmp_path, NUM_CLASSES, crop_size=24, min_scale=1.0)
    image, crop = pairs[0]
    assert image.shape == (3, 24, 24) and image.dtype == np.float32
    assert set(np.unique(crop)) <= {1, IGNORE_ID}
    write_label_png(tmp_path / sample.png_name(), labels * 0 + NUM_CLASSES + 1)
    with pytest.raises(DatasetError, match="outside 0..2"):
        pairs[0]

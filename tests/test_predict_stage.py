"""`luss predict` as a stage: the network from RUN/finetune, PNGs at the image size (both max_res paths),
flip TTA symmetry, resume without redoing images, match.json on validation, folder labels refused."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tools.config.loader import config_to_dict, load_config
from tools.config.schema import PredictConfig
from tools.data.demo import DemoSpec, generate_demo_dataset
from tools.data.imagenet_s import ImageNetS
from tools.data.images import image_size
from tools.data.label_codec import read_label_png
from tools.engine.distributed import World
from tools.evaluation.match_file import load_match_file
from tools.run_layout import RunLayout

jt = pytest.importorskip("jittor")

from tools.engine.checkpoint import save_checkpoint  # noqa: E402
from tools.engine.state import model_state  # noqa: E402
from tools.networks import build_network  # noqa: E402
from tools.predict.runner import PredictOptions, predict_image  # noqa: E402
from tools.stages.predict import FolderLabelsRefusedError, load_segmenter, run_predict  # noqa: E402

NUM_CLASSES = 2
ONE = World(0, 1)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    spec = DemoSpec(classes=NUM_CLASSES, train_per_class=1, val_per_class=3, test_per_class=1, size=40)
    return generate_demo_dataset(tmp_path_factory.mktemp("demo") / "d", spec, progress=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run whose RUN/finetune/checkpoints/final.pkl holds a freshly built (untrained) segmenter."""
    config = load_config("demo", ["finetune.head=progressive"])
    jt.set_global_seed(0)
    net = build_network(config, "segmenter", NUM_CLASSES)
    root = tmp_path_factory.mktemp("run")
    payload = {"model": model_state(net), "config": config_to_dict(config)}
    save_checkpoint(RunLayout.at(root).final_checkpoint("finetune"), payload)
    return root


@pytest.fixture(scope="module")
def net(run):
    return load_segmenter(run)


def _predict(net, data, run, split="test", **kw):
    options = {k: kw.pop(k) for k in ("short_side", "max_res", "flip_tta") if k in kw}
    config = PredictConfig(**{"short_side": 32, **options})
    return run_predict(
        config, data, run, split, world=ONE, progress=False, segmenter=net, say=lambda s: None, **kw
    )


def test_loads_the_finetuned_network_from_the_run(net):
    assert net.num_classes == NUM_CLASSES and net.head_name == "progressive"
    assert not net.is_training()


@pytest.mark.parametrize("max_res", [1000, 20])  # 20: every demo image has H*W > 20**2
def test_pngs_are_at_exactly_the_image_size(net, data, tmp_path, max_res):
    outcome = _predict(net, data, tmp_path, max_res=max_res)
    samples = ImageNetS(data).samples("test")
    assert outcome.summary.written == len(samples)
    for s in samples:
        labels = read_label_png(tmp_path / "predict" / "test" / s.png_name())
        width, height = image_size(s.image_path)
        assert labels.shape == (height, width)
        assert labels.min() >= 0 and labels.max() <= NUM_CLASSES


def test_flip_tta_mirrored_input_gives_mirrored_labels(net, data, tmp_path):
    sample = ImageNetS(data).samples("test")[0]
    mirrored = tmp_path / "mirrored.png"
    Image.open(sample.image_path).convert("RGB").transpose(Image.FLIP_LEFT_RIGHT).save(mirrored)
    original = tmp_path / "original.png"
    Image.open(sample.image_path).convert("RGB").save(original)
    options = PredictOptions(short_side=32, flip_tta=True)
    a = predict_image(net, original, options)
    b = predict_image(net, mirrored, options)
    np.testing.assert_array_equal(a[:, ::-1], b)


def test_stopped_run_resumes_without_redoing_images_and_gives_identical_pngs(net, data, tmp_path):
    first = _predict(net, data, tmp_path / "a", split="validation", limit=2)
    assert first.summary.written == 2
    done = sorted((tmp_path / "a" / "predict" / "validation").rglob("*.png"))
    stamps = {p: p.stat().st_mtime_ns for p in done}
    second = _predict(net, data, tmp_path / "a", split="validation", score=False)
    assert (second.summary.written, second.summary.skipped) == (
        len(ImageNetS(data).samples("validation")) - 2,
        2,
    )
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())  # not rewritten
    _predict(net, data, tmp_path / "b", split="validation", score=False)
    for s in ImageNetS(data).samples("validation"):
        a = (tmp_path / "a" / "predict" / "validation" / s.png_name()).read_bytes()
        b = (tmp_path / "b" / "predict" / "validation" / s.png_name()).read_bytes()
        assert a == b, s.key


def test_validation_writes_match_json_a_bijection_with_background_fixed(net, data, tmp_path):
    outcome = _predict(net, data, tmp_path, split="validation", workers=1)
    assert outcome.match_file == RunLayout.at(tmp_path).match_file("predict", "validation")
    match = load_match_file(outcome.match_file)
    assert match[0] == 0
    assert sorted(match) == list(range(NUM_CLASSES + 1))
    assert sorted(match.values()) == list(range(NUM_CLASSES + 1))
    assert outcome.score is not None


def test_test_split_writes_no_match_file(net, data, tmp_path):
    assert _predict(net, data, tmp_path, split="test").match_file is None
    assert not RunLayout.at(tmp_path).match_file("predict", "test").exists()


def test_a_vit_backbone_takes_images_that_are_not_multiples_of_its_patch():
    from models.build import create_backbone
    from models.segmenter import Segmenter

    net = Segmenter(create_backbone("sam_tiny_adapter"), NUM_CLASSES)
    net.eval()
    with jt.no_grad():
        assert net(jt.randn(1, 3, 40, 56)).shape == (1, NUM_CLASSES + 1, 10, 14)  # stride 4, ceil


def test_folder_labels_are_refused(net, data, tmp_path):
    config = PredictConfig(use_folder_labels=True)
    with pytest.raises(FolderLabelsRefusedError, match="not fully unsupervised|fully unsupervised"):
        run_predict(config, data, tmp_path, "test", world=ONE, progress=False, segmenter=net)


def test_missing_finetune_checkpoint_says_what_to_run(tmp_path):
    with pytest.raises(Exception, match="luss finetune"):
        load_segmenter(tmp_path)

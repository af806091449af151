"""Predict: shorter-side resize, max_res path, full-size PNGs, flip TTA symmetry, resumable runs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tools.data.imagenet_s import ImageNetS
from tools.data.label_codec import read_label_png
from tools.predict.labels import intermediate_size, nearest_resize_labels
from tools.predict.preprocess import resize_shorter_side

jt = pytest.importorskip("jittor")

from tools.predict.labels import logits_to_labels  # noqa: E402
from tools.predict.runner import PredictOptions, predict_image, predict_logits, predict_split  # noqa: E402


def test_resize_keeps_aspect_on_the_shorter_side():
    assert resize_shorter_side(Image.new("RGB", (500, 375)), 256).size == (341, 256)
    assert resize_shorter_side(Image.new("RGB", (300, 600)), 256).size == (256, 512)


def test_intermediate_size_only_caps_large_images():
    assert intermediate_size(375, 500, 1000) == (375, 500)
    assert intermediate_size(1500, 2000, 1000) == (750, 1000)
    assert intermediate_size(2000, 1500, 1000) == (1000, 750)


def test_nearest_resize_uses_floor_index_rule():
    labels = np.array([[1, 2], [3, 4]], dtype=np.int32)
    np.testing.assert_array_equal(
        nearest_resize_labels(labels, 4, 4),
        np.array([[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]),
    )


@pytest.mark.parametrize(("height", "width", "max_res"), [(37, 51, 1000), (120, 90, 50)])
def test_labels_come_out_at_exactly_the_image_size(height, width, max_res):
    logits = jt.array(np.random.default_rng(0).normal(size=(1, 4, 5, 7)).astype(np.float32))
    labels = logits_to_labels(logits, height, width, max_res)
    assert labels.shape == (height, width)
    assert labels.dtype == np.int32
    assert set(np.unique(labels)) <= {0, 1, 2, 3}


def test_max_res_path_agrees_with_direct_path_on_a_smooth_field():
    # class = which half of the image: both paths must give the same split up to a pixel of border
    ramp = np.linspace(-1, 1, 8, dtype=np.float32)
    logits = jt.array(np.stack([ramp[None, :].repeat(6, 0), -ramp[None, :].repeat(6, 0)])[None])
    direct = logits_to_labels(logits, 60, 80, max_res=1000)
    capped = logits_to_labels(logits, 60, 80, max_res=30)
    assert (direct != capped).mean() < 0.05


class TinySegmenter(jt.nn.Module):
    """A deliberately non-symmetric conv net: flip TTA must make it mirror-consistent."""

    def __init__(self):
        super().__init__()
        jt.set_global_seed(0)
        self.conv = jt.nn.Conv2d(3, 5, 3, stride=2, padding=1)

    def execute(self, x):
        return self.conv(x)


def test_flip_tta_is_symmetric():
    net = TinySegmenter()
    chw = np.random.default_rng(1).normal(size=(3, 16, 24)).astype(np.float32)
    plain = predict_logits(net, chw, flip_tta=True).numpy()
    mirrored = predict_logits(net, np.ascontiguousarray(chw[:, :, ::-1]), flip_tta=True).numpy()
    np.testing.assert_allclose(mirrored, plain[..., ::-1], rtol=1e-5, atol=1e-6)
    without = predict_logits(net, chw, flip_tta=False).numpy()
    assert not np.allclose(without, predict_logits(net, chw[:, :, ::-1].copy(), False).numpy()[..., ::-1])


def _tiny_dataset(root, sizes):
    for i, (w, h) in enumerate(sizes):
        folder = root / "validation" / f"n0{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = np.random.default_rng(i).integers(0, 255, size=(h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i}.JPEG", quality=90)
    (root / "train" / "n00").mkdir(parents=True)
    (root / "train" / "n01").mkdir(parents=True)
    return ImageNetS(root)


def test_predict_image_writes_original_size(tmp_path):
    data = _tiny_dataset(tmp_path / "d", [(50, 40)])
    labels = predict_image(
        TinySegmenter(), data.samples("validation")[0].image_path, PredictOptions(short_side=32)
    )
    assert labels.shape == (40, 50)


def test_killed_predict_resumes_without_redoing_and_gives_identical_pngs(tmp_path):
    data = _tiny_dataset(tmp_path / "d", [(50, 40), (30, 45), (64, 48), (40, 40)])
    options = PredictOptions(short_side=32, max_res=40)
    net = TinySegmenter()
    full = predict_split(net, data, "validation", tmp_path / "full", options, progress=False)
    assert full.written == 4

    out = tmp_path / "resumed"
    first = data.samples("validation")[:2]
    for sample in first:  # what a run killed after two images left behind
        predict_split(net, _subset(data, sample), "validation", out, options, progress=False)
    stamps = {s.key: (out / s.png_name()).stat().st_mtime_ns for s in first}
    resumed = predict_split(net, data, "validation", out, options, progress=False)
    assert (resumed.written, resumed.skipped) == (2, 2)
    for sample in data.samples("validation"):
        a, b = read_label_png(tmp_path / "full" / sample.png_name()), read_label_png(out / sample.png_name())
        np.testing.assert_array_equal(a, b)
        assert a.shape == Image.open(sample.image_path).size[::-1]
    assert {s.key: (out / s.png_name()).stat().st_mtime_ns for s in first} == stamps


def _subset(data, sample):
    class One:
        def samples(self, split):
            return [sample]

    return One()

"""bench/probe_clusters.py (issue 13's diagnosis): its 10-NN accuracy, masked pooling and mask cropping."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image

from tools.data.label_codec import write_label_png

PROBE = Path(__file__).resolve().parents[1] / "bench" / "probe_clusters.py"


def probe_module():
    spec = importlib.util.spec_from_file_location("probe_clusters", PROBE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_knn_accuracy_is_one_on_separated_classes_and_low_on_shuffled_ones():
    probe = probe_module()
    rng = np.random.default_rng(0)
    classes = np.repeat(np.arange(1, 5), 15)
    centres = np.eye(4, 16) * 5
    x = (centres[classes - 1] + rng.normal(0, 0.1, (60, 16))).astype(np.float32)
    assert probe.knn_accuracy(x, classes) == 1.0
    assert probe.knn_accuracy(x, rng.permutation(classes)) < 0.6  # chance is 0.25


def test_masked_pool_weights_cells_by_their_share_of_the_mask():
    probe = probe_module()
    mask = np.zeros((8, 8), bool)
    mask[:4, :4] = True  # the top-left cell of a 2 x 2 grid, fully
    mask[4:6, 4:8] = True  # half of the bottom-right cell
    weights = probe.cell_weights(mask, 2)
    np.testing.assert_allclose(weights, [[1.0, 0.0], [0.0, 0.5]])
    features = np.arange(2 * 2 * 2, dtype=np.float32).reshape(2, 2, 2)  # [D=2, 2, 2]
    expected = (features[:, 0, 0] * 1.0 + features[:, 1, 1] * 0.5) / 1.5
    np.testing.assert_allclose(probe.masked_pool(features, weights), expected)
    np.testing.assert_allclose(probe.masked_pool(features, np.zeros((2, 2))), features.mean(axis=(1, 2)))


def test_crop_labels_resize_nearest_and_centre_crop_like_the_image(tmp_path):
    probe = probe_module()
    labels = np.zeros((40, 60), np.int32)  # landscape: the shorter side (40) goes to 20, width to 30
    labels[:, 30:] = 3
    labels[0, 0] = 1000
    path = tmp_path / "a.png"
    write_label_png(path, labels)
    out = probe.crop_labels(path, 20, 20)
    assert out.shape == (20, 20)
    assert set(np.unique(out)) <= {0, 3, 1000}  # nearest: no blended label ids
    # Width 30 cropped to 20 keeps columns 5..24 of the resized map: class 3 from column 15 on -> 10.
    assert (out[:, 10:] == 3).all() and (out[:, :10] != 3).all()
    assert Image.open(path).size == (60, 40)

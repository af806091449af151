"""The finetune's class-balanced cross-entropy: the weights re-balance the foreground classes among
themselves (background and the foreground's total weight untouched), the counts come from the label
PNGs (ignore not counted), and the weighted loss is the PyTorch ``weight=`` mean."""

from __future__ import annotations

import numpy as np
import pytest

from tools.data.class_balance import foreground_balance_weights, label_pixel_counts
from tools.data.label_codec import IGNORE_ID, write_label_png


def test_rarer_foreground_classes_weigh_more_and_the_foreground_keeps_its_total():
    counts = np.array([700, 200, 50, 0, 10])
    weights = foreground_balance_weights(counts, 0.5)
    assert weights[0] == 1.0  # background untouched
    assert weights[3] == 1.0  # absent class: never occurs
    assert weights[4] > weights[2] > weights[1]
    present = counts[1:] > 0
    fg, w = counts[1:][present], weights[1:][present]
    assert (fg * w).sum() == pytest.approx(fg.sum(), rel=1e-5)
    # alpha 0.5: the ratio of two weights is the square root of the inverse ratio of their counts
    assert weights[2] / weights[1] == pytest.approx(2.0, rel=1e-5)


def test_alpha_one_gives_every_present_class_the_same_total_weight():
    counts = np.array([500, 300, 90, 10])
    weights = foreground_balance_weights(counts, 1.0)
    totals = counts[1:] * weights[1:]
    np.testing.assert_allclose(totals, totals[0], rtol=1e-5)


@pytest.mark.parametrize(("counts", "alpha"), [([5, 3, 1], 0.0), ([9, 0, 0], 0.5)])
def test_alpha_zero_or_no_foreground_is_the_plain_loss(counts, alpha):
    assert foreground_balance_weights(np.array(counts), alpha).tolist() == [1.0, 1.0, 1.0]


def test_counts_read_the_label_pngs_without_the_ignored_pixels(tmp_path):
    a = np.array([[0, 1, 1], [2, IGNORE_ID, 0]])
    b = np.array([[2, 2], [2, 0]])
    write_label_png(tmp_path / "a.png", a)
    write_label_png(tmp_path / "b.png", b)
    done: list[int] = []
    counts = label_pixel_counts([tmp_path / "a.png", tmp_path / "b.png"], 3, lambda: done.append(1))
    assert counts.tolist() == [3, 2, 4, 0]
    assert len(done) == 2  # one progress step per file


def test_weighted_segmentation_loss_is_the_weighted_mean_over_valid_pixels():
    jt = pytest.importorskip("jittor")
    from tools.stages.finetune import segmentation_loss

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 4, 4)).astype(np.float32)
    labels = rng.integers(0, 3, size=(2, 4, 4)).astype(np.int32)
    labels[0, 0, :2] = IGNORE_ID
    weights = np.array([1.0, 0.5, 3.0], np.float32)
    loss, _ = segmentation_loss(jt.array(logits), labels, weights)

    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    valid = labels != IGNORE_ID
    safe = np.where(valid, labels, 0)
    nll = -np.take_along_axis(log_p, safe[:, None], axis=1)[:, 0]
    w = weights[safe] * valid
    assert float(loss.item()) == pytest.approx(float((nll * w).sum() / w.sum()), rel=1e-4)

    plain, _ = segmentation_loss(jt.array(logits), labels)
    ones, _ = segmentation_loss(jt.array(logits), labels, np.ones(3, np.float32))
    assert float(ones.item()) == pytest.approx(float(plain.item()), rel=1e-4)
    assert float(plain.item()) == pytest.approx(float(nll[valid].mean()), rel=1e-4)

"""Dense-CRF clean-up of MaskCut masks: snaps to image edges, fills holes, drops masks it rejects."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pydensecrf")

from tools.clustering.crf import crf_or_drop, crf_refine  # noqa: E402


def _scene() -> tuple[np.ndarray, np.ndarray]:
    """A red square on a grey background (with a little noise), and its true mask."""
    rng = np.random.default_rng(0)
    image = np.full((64, 64, 3), 128.0) + rng.normal(0, 3, (64, 64, 3))
    truth = np.zeros((64, 64), bool)
    truth[16:48, 20:52] = True
    image[truth] = (220, 30, 30)
    return image.clip(0, 255).astype(np.uint8), truth


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return np.logical_and(a, b).sum() / np.logical_or(a, b).sum()


def test_a_coarse_mask_snaps_to_the_object_edges():
    image, truth = _scene()
    coarse = np.zeros_like(truth)
    coarse[12:52, 16:56] = True  # 4 pixels too large on every side, as a 16-px patch grid gives
    refined = crf_refine(image, coarse)
    assert _iou(refined, truth) > 0.95 > _iou(coarse, truth)


def test_read_only_inputs_are_accepted():
    image, truth = _scene()
    image.setflags(write=False)  # as np.asarray(PIL image) gives
    truth.setflags(write=False)
    assert _iou(crf_refine(image, truth), truth) > 0.95


def test_holes_inside_the_mask_are_filled():
    image, truth = _scene()
    image[28:36, 30:40] = 128  # a grey hole inside the square: the CRF alone would cut it out
    refined = crf_refine(image, truth)
    assert refined[28:36, 30:40].all()


def test_a_mask_the_crf_rejects_is_dropped_and_an_empty_mask_stays_empty():
    image, truth = _scene()
    line = np.zeros_like(truth)
    line[np.arange(2, 14), np.arange(2, 14)] = True  # a 1-px diagonal in flat background
    assert _iou(crf_refine(image, line), line) < 0.5  # the CRF wipes it out...
    assert not crf_or_drop(image, line).any()  # ...so MaskCut drops the mask
    assert _iou(crf_or_drop(image, truth), truth) > 0.95  # a good mask is kept
    assert not crf_or_drop(image, np.zeros_like(truth)).any()

"""SAM semantic voting on hand-made masks: both vote modes, both background policies."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tools.refine.voting import (
    MaskSet,
    decode_uncompressed_rle,
    majority_label,
    paint_order,
    tight_box,
    vote_by_masks,
)


def box_mask(shape: tuple[int, int], y0: int, x0: int, y1: int, x1: int) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def permuted(masks: MaskSet, order: list[int]) -> MaskSet:
    return MaskSet(
        masks.height,
        masks.width,
        masks.boxes[order],
        [masks.patches[i] for i in order],
        masks.predicted_iou[order],
        masks.stability_score[order],
        masks.area[order],
        masks.bbox_xywh[order],
    )


def test_majority_and_ties_go_to_smallest_label():
    assert majority_label(np.array([3, 3, 1])) == 3
    assert majority_label(np.array([5, 2, 5, 2])) == 2  # tie -> smallest, as np.unique + argmax
    assert majority_label(np.array([0, 0, 7])) == 0


def test_single_mask_relabels_and_fills_background_hole():
    pred = np.array(
        [
            [1, 1, 0, 0],
            [1, 0, 0, 0],
            [2, 1, 0, 0],
            [0, 0, 0, 0],
        ],
        dtype=np.int32,
    )
    mask = box_mask(pred.shape, 0, 0, 3, 2)  # 1,1,1,0,2,1 -> majority 1
    for mode in ("original", "sampass"):
        out = vote_by_masks(pred, mask[None], mode=mode)
        expected = pred.copy()
        expected[0:3, 0:2] = 1
        np.testing.assert_array_equal(out, expected)
    assert pred[1, 1] == 0, "the input must not be modified"


def test_uncovered_pixels_and_no_masks_keep_the_prediction():
    pred = np.arange(12, dtype=np.int32).reshape(3, 4)
    np.testing.assert_array_equal(vote_by_masks(pred, np.zeros((0, 3, 4), bool)), pred)
    empty = np.zeros((1, 3, 4), bool)  # zero-area mask: skipped
    np.testing.assert_array_equal(vote_by_masks(pred, empty, mode="sampass"), pred)


@pytest.mark.parametrize("mode", ["original", "sampass"])
def test_background_majority_erase_vs_protect(mode):
    # Mask covers 6 pixels: four background, two of class 3.
    pred = np.zeros((4, 4), np.int32)
    pred[1, 1] = pred[1, 2] = 3
    pred[3, 3] = 5  # outside the mask
    mask = box_mask(pred.shape, 0, 0, 2, 3)
    erased = vote_by_masks(pred, mask[None], mode=mode, background_policy="erase")
    expected = pred.copy()
    expected[1, 1] = expected[1, 2] = 0
    np.testing.assert_array_equal(erased, expected)
    protected = vote_by_masks(pred, mask[None], mode=mode, background_policy="protect")
    np.testing.assert_array_equal(protected, pred)


@pytest.mark.parametrize("policy", ["erase", "protect"])
def test_foreground_majority_fills_background_under_both_policies(policy):
    pred = np.zeros((3, 3), np.int32)
    pred[:2, :] = 4
    mask = np.ones((3, 3), bool)  # 6 x class 4, 3 x background
    out = vote_by_masks(pred, mask[None], background_policy=policy)
    np.testing.assert_array_equal(out, np.full((3, 3), 4))


def nested_scene() -> tuple[np.ndarray, MaskSet]:
    """A 6x6 image: a big mask (mostly class 1) holding a small one (originally mostly class 2)."""
    pred = np.ones((6, 6), np.int32)
    pred[0:2, 0:2] = 2
    pred[0, 1] = 1  # small mask: 2,1,2,2 -> 2 in the original
    pred[5, :] = 0
    big = box_mask(pred.shape, 0, 0, 5, 6)
    small = box_mask(pred.shape, 0, 0, 2, 2)
    # The small mask has the *higher* predicted IoU, so SAMPASS visits it first.
    masks = MaskSet.from_dense(
        np.stack([big, small]), predicted_iou=[0.90, 0.95], stability_score=[0.96, 0.97]
    )
    return pred, masks


def test_original_mode_small_mask_wins_and_is_order_independent():
    pred, masks = nested_scene()
    expected = pred.copy()
    expected[0:5, :] = 1
    expected[0:2, 0:2] = 2
    for order in ([0, 1], [1, 0]):
        out = vote_by_masks(pred, permuted(masks, order), mode="original")
        np.testing.assert_array_equal(out, expected)


def test_sampass_mode_is_in_place_by_predicted_iou():
    pred, masks = nested_scene()
    # SAMPASS: small (IoU 0.95) first -> 2 there; then big (0.90) votes on the modified map, where
    # class 1 still dominates, and overwrites the small mask: everything in the big box becomes 1.
    expected = pred.copy()
    expected[0:5, :] = 1
    for order in ([0, 1], [1, 0]):  # the order is by score, not by position in the list
        out = vote_by_masks(pred, permuted(masks, order), mode="sampass")
        np.testing.assert_array_equal(out, expected)


def test_sampass_reads_the_modified_map():
    # Mask A (first by IoU) turns a background strip into class 7; mask B then sees a 7-majority
    # that did not exist in the original, where B's majority was background.
    pred = np.zeros((4, 6), np.int32)
    pred[0:2, 0:4] = 7
    pred[0:2, 1] = 0  # A (rows 0-2, cols 0-4): 6 x 7 vs 2 x 0 -> 7
    a = box_mask(pred.shape, 0, 0, 2, 4)
    b = box_mask(pred.shape, 1, 1, 3, 3)  # original: 7,0 / 0,0 -> 0 ; after A: 7,7 / 0,0 -> tie -> 0
    b[2, 1:3] = False
    b[0, 1] = True  # b = (0,1), (1,1), (1,2): original 0,0,7 -> 0 ; after A: 7,7,7 -> 7
    masks = MaskSet.from_dense(np.stack([a, b]), predicted_iou=[0.99, 0.5])
    sampass = vote_by_masks(pred, masks, mode="sampass")
    assert sampass[b].tolist() == [7, 7, 7]
    original = vote_by_masks(pred, masks, mode="original", background_policy="erase")
    # original: A (area 8) painted first with 7, then B (area 3, original majority 0) erases its pixels.
    assert original[b].tolist() == [0, 0, 0]
    assert (original[a & ~b] == 7).all()
    protected = vote_by_masks(pred, masks, mode="original", background_policy="protect")
    # protect: B's background vote only restores pixels that were background originally.
    assert protected[0, 1] == 0 and protected[1, 1] == 0 and protected[1, 2] == 7


@pytest.mark.parametrize("mode", ["original", "sampass"])
def test_protect_restores_only_original_background(mode):
    # A large class-5 mask fills a background hole; a smaller background-majority mask covering the hole
    # and one foreground pixel restores the hole but (protect) keeps the foreground pixel.
    pred = np.full((5, 5), 5, np.int32)
    pred[1:4, 1:4] = 0
    pred[2, 2] = 9
    big = np.ones((5, 5), bool)
    hole = box_mask(pred.shape, 1, 1, 4, 4)
    masks = MaskSet.from_dense(np.stack([big, hole]), predicted_iou=[0.9, 0.8])
    out = vote_by_masks(pred, masks, mode=mode, background_policy="protect")
    assert out[2, 2] == 5  # foreground in the original: filled by the big mask, never erased
    assert (out[1:4, 1:4][pred[1:4, 1:4] == 0] == (0 if mode == "original" else 5)).all()
    # sampass: the hole mask votes on the already-filled map (all 5, incl. the 9 turned 5) -> 5.


def test_erase_in_original_mode_scene_mask_then_object_repaints():
    # A whole-image mask with a background majority, and the object's own smaller mask: the object
    # survives under erase because the larger mask is painted first.
    pred = np.zeros((8, 8), np.int32)
    pred[2:5, 2:5] = 3
    scene = np.ones((8, 8), bool)
    obj = box_mask(pred.shape, 2, 2, 6, 6)  # 9 x class 3, 7 x background -> 3
    masks = MaskSet.from_dense(np.stack([obj, scene]), predicted_iou=[0.8, 0.99])
    out = vote_by_masks(pred, masks, mode="original", background_policy="erase")
    assert (out[obj] == 3).all() and (out[~obj] == 0).all()
    # SAMPASS order (scene first by IoU) erases the object, then the object mask votes on zeros.
    assert (vote_by_masks(pred, masks, mode="sampass", background_policy="erase") == 0).all()
    kept = vote_by_masks(pred, masks, mode="sampass", background_policy="protect")
    assert (kept[2:5, 2:5] == 3).all()


def test_original_mode_ties_on_every_score_are_broken_by_mask_bits():
    pred = np.array([[1, 2], [2, 1]], np.int32)
    d1 = np.array([[1, 0], [0, 1]], bool)  # votes 1
    d2 = np.array([[0, 1], [1, 0]], bool)  # votes 2
    d3 = np.array([[1, 1], [0, 0]], bool)  # 1,2 tie -> 1
    masks = MaskSet.from_dense(np.stack([d1, d2, d3]))
    results = {
        vote_by_masks(pred, permuted(masks, list(order)), mode="original").tobytes()
        for order in itertools.permutations(range(3))
    }
    assert len(results) == 1
    assert sorted(paint_order(masks).tolist()) == [0, 1, 2]


def test_random_masks_original_mode_is_permutation_invariant():
    rng = np.random.default_rng(0)
    pred = rng.integers(0, 4, size=(20, 30)).astype(np.int32)
    dense = []
    for _ in range(12):
        y0, x0 = rng.integers(0, 15), rng.integers(0, 25)
        dense.append(box_mask(pred.shape, y0, x0, y0 + rng.integers(1, 8), x0 + rng.integers(1, 8)))
    masks = MaskSet.from_dense(np.stack(dense), predicted_iou=rng.random(12), stability_score=rng.random(12))
    for mode, policy in itertools.product(("original", "sampass"), ("erase", "protect")):
        ref = vote_by_masks(pred, masks, mode=mode, background_policy=policy)
        for _ in range(3):
            order = list(rng.permutation(12))
            out = vote_by_masks(pred, permuted(masks, order), mode=mode, background_policy=policy)
            np.testing.assert_array_equal(out, ref)  # sampass too: scores are distinct


def test_maskset_crops_round_trip_and_tight_box():
    m = np.zeros((5, 7), bool)
    m[1:3, 2:6] = True
    m[4, 3] = True
    assert tight_box(m) == (1, 2, 5, 6)
    assert tight_box(np.zeros((3, 3), bool)) == (0, 0, 0, 0)
    masks = MaskSet.from_dense(m[None], predicted_iou=[0.5])
    assert masks.area.tolist() == [9]
    np.testing.assert_array_equal(masks.dense(0), m)


def test_from_records_accepts_binary_masks_and_uncompressed_rle():
    m = np.array([[0, 1, 1], [0, 0, 1]], bool)
    rle = {"size": [2, 3], "counts": [2, 1, 1, 2]}  # column-major runs, starting with zeros
    np.testing.assert_array_equal(decode_uncompressed_rle(rle), m)
    rec = {"predicted_iou": 0.9, "stability_score": 0.97, "bbox": [1, 0, 1, 1]}
    a = MaskSet.from_records([{**rec, "segmentation": m}], (2, 3))
    b = MaskSet.from_records([{**rec, "segmentation": rle}], (2, 3))
    np.testing.assert_array_equal(a.dense(0), b.dense(0))
    assert a.predicted_iou[0] == pytest.approx(0.9) and b.stability_score[0] == pytest.approx(0.97)
    with pytest.raises(ValueError, match="coco_rle"):
        MaskSet.from_records([{**rec, "segmentation": {"size": [2, 3], "counts": "abc"}}], (2, 3))


def test_bad_arguments():
    pred = np.zeros((3, 3), np.int32)
    with pytest.raises(ValueError, match="vote mode"):
        vote_by_masks(pred, np.zeros((0, 3, 3), bool), mode="nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="background policy"):
        vote_by_masks(pred, np.zeros((0, 3, 3), bool), background_policy="nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="masks are"):
        vote_by_masks(pred, MaskSet.empty(4, 4))
    with pytest.raises(ValueError, match="integer"):
        vote_by_masks(pred.astype(float), np.zeros((0, 3, 3), bool))

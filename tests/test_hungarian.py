"""Image-level Hungarian matching (official ImageNet-S / PASS scheme) on hand-built co-occurrences."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from tools.evaluation.hungarian import cooccurrence_matrix, hungarian_match, match_from_cooccurrence


def test_cooccurrence_counts_images_not_pixels():
    # image 0: pred {1, 2}, gt {1}; image 1: pred {2}, gt {1, 3}; image 2: pred {3}, gt {3}
    matrix = cooccurrence_matrix([{1, 2}, {2}, {3}], [{1}, {1, 3}, {3}], num_classes=3)
    expected = np.array(
        [
            [1, 0, 0],  # pred 1 with gt 1 in image 0
            [2, 0, 1],  # pred 2 with gt 1 in images 0 and 1, with gt 3 in image 1
            [0, 0, 1],  # pred 3 with gt 3 in image 2
        ]
    )
    np.testing.assert_array_equal(matrix, expected)


def test_background_is_dropped_from_both_sides():
    with_bg = cooccurrence_matrix([{0, 1}], [{0, 2}], num_classes=2)
    without = cooccurrence_matrix([{1}], [{2}], num_classes=2)
    np.testing.assert_array_equal(with_bg, without)


def test_recovers_a_permutation():
    perm = {1: 3, 2: 1, 3: 4, 4: 2}  # predicted id -> true class
    gt_sets = [{1}, {2}, {3}, {4}, {1, 2}, {3, 4}]
    inverse = {c: p for p, c in perm.items()}
    pred_sets = [{inverse[c] for c in s} for s in gt_sets]
    assert hungarian_match(pred_sets, gt_sets, num_classes=4) == {0: 0, **perm}


def test_output_is_a_one_based_bijection_plus_background():
    match = hungarian_match([{2}], [{1}], num_classes=5)
    assert match[0] == 0 and match[2] == 1
    assert sorted(match) == list(range(6))
    assert sorted(match.values()) == list(range(6))


def test_maximises_the_total_count_not_greedily():
    # M = [[3, 2], [2, 0]]: greedy takes 1->1 (3) then 2->2 (0) = 3; the optimum crosses: 2 + 2 = 4.
    pred_sets = [{1}, {1}, {1}, {1}, {1}, {2}, {2}]
    gt_sets = [{1}, {1}, {1}, {2}, {2}, {1}, {1}]
    matrix = cooccurrence_matrix(pred_sets, gt_sets, 2)
    np.testing.assert_array_equal(matrix, [[3, 2], [2, 0]])
    assert hungarian_match(pred_sets, gt_sets, 2) == {0: 0, 1: 2, 2: 1}


def test_both_official_costs_give_the_same_total():
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 30, size=(7, 7))
    match = match_from_cooccurrence(counts)
    ours = sum(counts[p - 1, g - 1] for p, g in match.items() if p)
    for cost in (1 - counts / 40.0, -counts):  # ImageNet-S match.py, PASS utils.hungarian
        rows, cols = linear_sum_assignment(cost)
        assert counts[rows, cols].sum() == ours


def test_ties_prefer_identity_and_are_deterministic():
    assert match_from_cooccurrence(np.zeros((4, 4), int)) == {i: i for i in range(5)}
    tied = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 2]])
    first = match_from_cooccurrence(tied)
    assert first == {0: 0, 1: 1, 2: 2, 3: 3}
    assert all(match_from_cooccurrence(tied) == first for _ in range(3))


def test_ids_outside_one_to_c_raise():
    with pytest.raises(ValueError, match="predicted id 4 in image #1 is outside 1..3"):
        hungarian_match([{1}, {4}], [{1}, {2}], num_classes=3)
    with pytest.raises(ValueError, match="ground-truth id 1000"):
        hungarian_match([{1}], [{1000}], num_classes=3)


def test_length_mismatch_raises():
    with pytest.raises(ValueError, match="2 prediction sets but 1"):
        hungarian_match([{1}, {2}], [{1}], num_classes=2)

"""MaskCut's orientation: which side of the normalised cut is the object (tools/clustering/ncut.py)."""

import numpy as np

from tools.clustering.ncut import bipartition, corner_foreground_count

SHAPE = (8, 10)


def centred_object() -> np.ndarray:
    obj = np.zeros(SHAPE, bool)
    obj[2:6, 3:7] = True
    return obj


def eigenvector(obj: np.ndarray, peak_at: tuple[int, int] | None, peak: float = -6.0) -> np.ndarray:
    """``+1`` on the object, ``-1`` elsewhere; one patch at ``peak_at`` carries the largest ``|v|``."""
    v = np.where(obj, 1.0, -1.0)
    if peak_at is not None:
        v[peak_at] = peak
    return v.reshape(-1)


def test_peak_in_the_clutter_flips_the_reference_onto_every_corner():
    """The split ``v > mean`` is the object (no corner), but the peak lies in the clutter: the
    reference's rule takes the peak's side, which holds all four corners; the guard keeps the object."""
    obj = centred_object()
    v = eigenvector(obj, peak_at=(0, 5))
    assert corner_foreground_count(v.reshape(SHAPE) > v.mean()) == 0
    reference = bipartition(v, SHAPE, corner_guard=False)
    assert corner_foreground_count(reference) == 4
    assert not (reference & obj).any()
    np.testing.assert_array_equal(bipartition(v, SHAPE, corner_guard=True), obj)


def test_guard_keeps_the_reference_where_its_rules_agree():
    obj = centred_object()
    # the peak on the object: both rules keep the object
    v = eigenvector(obj, peak_at=(3, 4), peak=6.0)
    for guard in (False, True):
        np.testing.assert_array_equal(bipartition(v, SHAPE, corner_guard=guard), obj)
    # the sign of the eigenvector is arbitrary: the split is the clutter, which holds the corners, so
    # both reverse it (the reference's first rule)
    for guard in (False, True):
        np.testing.assert_array_equal(bipartition(-eigenvector(obj, None), SHAPE, corner_guard=guard), obj)


def test_peak_side_with_two_corners_is_still_the_reference_choice():
    """Only a side holding >= 3 corners is refused: a split into left and right halves (two corners
    each) follows the peak as in the reference."""
    left = np.zeros(SHAPE, bool)
    left[:, :5] = True
    v = np.where(left, 1.0, -1.0)
    v[4, 8] = -6.0  # the peak in the right half
    v = v.reshape(-1)
    for guard in (False, True):
        np.testing.assert_array_equal(bipartition(v, SHAPE, corner_guard=guard), ~left)

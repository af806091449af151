"""Overlap grids of crop pairs (spec 3.1 ``get_grid``)."""

from __future__ import annotations

import numpy as np
import pytest

from tools.data.overlap_grid import overlap_grid

STEPS = np.arange(7) / 6


def test_quarter_overlap_gives_hand_computed_coordinates():
    # q covers [0, 100)^2, k covers [50, 150)^2: the overlap is q's lower-right and k's upper-left quarter.
    grid_q, grid_k, overlaps = overlap_grid((0, 0, 100, 100), (50, 50, 100, 100), False, False)
    assert overlaps and grid_q.shape == (7, 7, 2) and grid_q.dtype == np.float32
    # q: x_i = 50/100 + i * 50 / (100 * 6), in [0.5, 1] -> [0, 1] after 2x - 1.
    np.testing.assert_allclose(grid_q[0, :, 0], 2 * (0.5 + STEPS * 0.5) - 1, atol=1e-6)
    np.testing.assert_allclose(grid_q[:, 0, 1], 2 * (0.5 + STEPS * 0.5) - 1, atol=1e-6)
    # k: x_i = 0 + i * 50 / (100 * 6), in [0, 0.5] -> [-1, 0].
    np.testing.assert_allclose(grid_k[0, :, 0], 2 * (STEPS * 0.5) - 1, atol=1e-6)
    # x varies along columns only and y along rows only (grid_sample layout).
    assert np.ptp(grid_q[..., 0], axis=0).max() == 0 and np.ptp(grid_q[..., 1], axis=1).max() == 0


def test_different_crop_sizes():
    # k inside q: q = [0, 200) x [0, 100), k = [50, 50) + 100 x 50.
    grid_q, grid_k, _ = overlap_grid((0, 0, 200, 100), (50, 50, 100, 50), False, False)
    np.testing.assert_allclose(grid_q[0, [0, -1], 0], [2 * 0.25 - 1, 2 * 0.75 - 1], atol=1e-6)
    np.testing.assert_allclose(grid_q[[0, -1], 0, 1], [0.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(grid_k[0, [0, -1], 0], [-1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(grid_k[[0, -1], 0, 1], [-1.0, 1.0], atol=1e-6)


def test_flip_mirrors_x_only():
    plain_q, plain_k, _ = overlap_grid((0, 0, 100, 100), (50, 50, 100, 100), False, False)
    flip_q, flip_k, _ = overlap_grid((0, 0, 100, 100), (50, 50, 100, 100), True, False)
    np.testing.assert_allclose(flip_q[..., 0], -plain_q[..., 0], atol=1e-6)  # 1 - x  ->  -(2x - 1)
    np.testing.assert_array_equal(flip_q[..., 1], plain_q[..., 1])
    np.testing.assert_array_equal(flip_k, plain_k)


@pytest.mark.parametrize(
    "rect_k",
    [(200, 0, 50, 50), (0, 100, 100, 100), (100, 0, 10, 10)],  # apart, touching bottom, touching right
)
def test_no_overlap_fills_minus_two(rect_k):
    grid_q, grid_k, overlaps = overlap_grid((0, 0, 100, 100), rect_k, False, True)
    assert overlaps is False
    assert (grid_q == -2).all() and (grid_k == -2).all()

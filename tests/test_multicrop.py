"""SwAV multi-crop samples (spec 3.1): shapes, reproducibility, and grids that match the crop content."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tools.data.augment import ColorJitterSpec
from tools.data.multicrop import MultiCropDataset, MultiCropSpec, random_resized_crop_rect

W, H = 240, 180


@pytest.fixture(scope="module")
def gradient_image(tmp_path_factory) -> str:
    """R = x and G = y of each pixel, so a crop's pixels tell where they came from."""
    ys, xs = np.mgrid[0:H, 0:W]
    rgb = np.stack([xs, ys, np.zeros_like(xs)], axis=-1).astype(np.uint8)
    path = tmp_path_factory.mktemp("img") / "grad.png"
    Image.fromarray(rgb).save(path)
    return str(path)


SMALL = MultiCropSpec(sizes=(32, 16), counts=(2, 2), min_scales=(0.3, 0.05), max_scales=(1.0, 0.3))
# Geometry only: no photometric change, identity normalisation, so a crop's values are pixels / 255.
GEOMETRY = MultiCropSpec(
    sizes=(48,),
    counts=(2,),
    min_scales=(0.3,),
    max_scales=(0.9,),
    jitter=ColorJitterSpec(p=0.0),
    grayscale_p=0.0,
    blur_p=0.0,
    mean=(0.0, 0.0, 0.0),
    std=(1.0, 1.0, 1.0),
)


def test_shapes_and_dtypes(gradient_image):
    crops, grid_q, grid_k, overlaps = MultiCropDataset([gradient_image], SMALL, seed=1)[0]
    assert [c.shape for c in crops] == [(3, 32, 32)] * 2 + [(3, 16, 16)] * 2
    assert all(c.dtype == np.float32 and c.flags.c_contiguous for c in crops)
    assert grid_q.shape == grid_k.shape == (7, 7, 2) and grid_q.dtype == np.float32
    assert overlaps.dtype == bool and overlaps.shape == ()


def test_same_seed_epoch_index_reproduces_and_epochs_differ(gradient_image):
    a = MultiCropDataset([gradient_image] * 2, SMALL, seed=3)
    b = MultiCropDataset([gradient_image] * 2, SMALL, seed=3)
    for x, y in zip(a[1][0], b[1][0], strict=True):
        np.testing.assert_array_equal(x, y)
    b.set_epoch(1)
    assert not np.array_equal(a[1][0][0], b[1][0][0])
    assert not np.array_equal(a[0][0][0], a[1][0][0])  # indices differ too


def test_random_resized_crop_stays_inside_with_requested_scale():
    rng = np.random.default_rng(0)
    for _ in range(200):
        left, top, w, h = random_resized_crop_rect(W, H, (0.2, 0.5), (3 / 4, 4 / 3), rng)
        assert left >= 0 and left + w <= W and top >= 0 and top + h <= H
        assert 0.19 <= w * h / (W * H) <= 0.51 and 0.7 <= w / h <= 1.4


def _sample(crop: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Bilinear ``grid_sample`` (align_corners=False, border padding) of ``[C, S, S]`` at ``[7, 7, 2]``."""
    size = crop.shape[-1]
    px = np.clip((grid[..., 0] + 1) / 2 * size - 0.5, 0, size - 1)
    py = np.clip((grid[..., 1] + 1) / 2 * size - 0.5, 0, size - 1)
    x0, y0 = np.floor(px).astype(int), np.floor(py).astype(int)
    x1, y1 = np.minimum(x0 + 1, size - 1), np.minimum(y0 + 1, size - 1)
    fx, fy = px - x0, py - y0
    top = crop[:, y0, x0] * (1 - fx) + crop[:, y0, x1] * fx
    bottom = crop[:, y1, x0] * (1 - fx) + crop[:, y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def test_grids_point_at_the_same_image_pixels(gradient_image):
    ds = MultiCropDataset([gradient_image], GEOMETRY, seed=0)
    flips_seen = set()
    checked = 0
    for epoch in range(12):
        ds.set_epoch(epoch)
        crops, rects = ds.crops_with_rects(0)
        _, grid_q, grid_k, overlaps = ds[0]
        if not overlaps:
            continue
        checked += 1
        flips_seen.update(r.flipped for r in rects[:2])
        for crop, grid, rect in ((crops[0], grid_q, rects[0]), (crops[1], grid_k, rects[1])):
            x, y = _sample(crop, grid)[:2] * 255  # original pixel coordinates read from the crop
            gx = 1 - grid[..., 0] if rect.flipped else grid[..., 0] + 1
            expected_x = rect.left + gx / 2 * rect.width - 0.5
            expected_y = rect.top + (grid[..., 1] + 1) / 2 * rect.height - 0.5
            # Within ~1 crop pixel (in original pixels): border clamping and resampling at the edges.
            tol = 1.5 + max(rect.width, rect.height) / 48
            np.testing.assert_allclose(x, expected_x, atol=tol)
            np.testing.assert_allclose(y, expected_y, atol=tol)
        q_xy = _sample(crops[0], grid_q)[:2] * 255
        k_xy = _sample(crops[1], grid_k)[:2] * 255
        np.testing.assert_allclose(q_xy, k_xy, atol=2 * tol)
    assert checked >= 6 and flips_seen == {True, False}


def test_batches_through_the_loader(gradient_image):
    from tools.data.loader import BatchLoader

    ds = MultiCropDataset([gradient_image] * 4, SMALL, seed=2)
    crops, grid_q, grid_k, overlaps = next(iter(BatchLoader(ds, 2, num_workers=1)))
    assert [c.shape for c in crops] == [(2, 3, 32, 32)] * 2 + [(2, 3, 16, 16)] * 2
    assert grid_q.shape == grid_k.shape == (2, 7, 7, 2) and overlaps.shape == (2,)


def test_colour_strength_scales_the_swav_jitter_and_reaches_the_crop_spec():
    from tools.config.loader import load_config
    from tools.errors import LussError
    from tools.stages.common import multicrop_spec

    assert ColorJitterSpec.swav(1.0) == ColorJitterSpec()
    assert ColorJitterSpec.swav(0.5) == ColorJitterSpec(0.4, 0.4, 0.4, 0.1)
    # The demo preset: half SwAV's strength, hue amplitude 0, grayscale off.
    spec = multicrop_spec(load_config("demo").pretrain.crops)
    assert spec.jitter == ColorJitterSpec(0.4, 0.4, 0.4, 0.0)
    assert spec.grayscale_p == 0.0
    spec = multicrop_spec(load_config("demo", ["pretrain.crops.color_strength=0.8"]).pretrain.crops)
    assert spec.jitter == ColorJitterSpec.swav(0.8, hue=0.0)
    # With SwAV's hue (null: 0.2 x strength) a strength of 3 would turn the hue by more than half a turn.
    with pytest.raises(LussError, match="colour strength"):
        sets = ["pretrain.crops.color_strength=3", "pretrain.crops.hue=null"]
        multicrop_spec(load_config("demo", sets).pretrain.crops)


def test_hue_amplitude_replaces_swavs_when_given():
    from tools.data.augment import ColorJitterSpec

    assert ColorJitterSpec.swav(1.0).hue == pytest.approx(0.2)
    spec = ColorJitterSpec.swav(0.5, hue=0.0)
    assert (spec.brightness, spec.contrast, spec.saturation, spec.hue) == pytest.approx((0.4, 0.4, 0.4, 0.0))
    with pytest.raises(ValueError, match="hue"):
        ColorJitterSpec.swav(1.0, hue=0.6)


def test_saturation_amplitude_replaces_swavs_when_given():
    from tools.data.augment import color_jitter

    spec = ColorJitterSpec.swav(0.5, hue=0.0, saturation=0.0)
    assert (spec.brightness, spec.contrast, spec.saturation, spec.hue) == pytest.approx((0.4, 0.4, 0.0, 0.0))
    assert ColorJitterSpec.swav(0.5).saturation == pytest.approx(0.4)
    with pytest.raises(ValueError, match="saturation"):
        ColorJitterSpec.swav(1.0, saturation=-0.1)
    # The jitter reads the amplitude: with every other amplitude 0, saturation 0 leaves a pure colour's
    # HSV saturation as it is and SwAV's 0.8 moves it.
    img = Image.new("RGB", (8, 8), (200, 60, 20))
    always = ColorJitterSpec(0.0, 0.0, 0.0, 0.0, p=1.0)

    def hsv_saturation(i):
        return np.asarray(i.convert("HSV"))[..., 1].astype(int)

    kept = [color_jitter(img, always, np.random.default_rng(k)) for k in range(4)]
    assert all((hsv_saturation(k) == hsv_saturation(img)).all() for k in kept)
    swav_saturation = ColorJitterSpec(0.0, 0.0, 0.8, 0.0, p=1.0)
    moved = [color_jitter(img, swav_saturation, np.random.default_rng(k)) for k in range(4)]
    assert any(abs(hsv_saturation(m) - hsv_saturation(img)).max() > 20 for m in moved)

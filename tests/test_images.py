"""Robust image loading: odd modes become RGB, damaged files raise DatasetError naming the file."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tools.data.images import image_info, image_size, load_rgb_image
from tools.errors import DatasetError


@pytest.mark.parametrize(
    ("mode", "fmt", "colour"),
    [
        ("CMYK", "JPEG", (0, 0, 0, 0)),
        ("L", "JPEG", 128),
        ("L", "PNG", 7),
        ("P", "PNG", 3),
        ("RGBA", "PNG", (10, 20, 30, 0)),
        ("LA", "PNG", (90, 0)),
    ],
)
def test_odd_modes_load_as_rgb_of_the_stored_size(tmp_path, mode, fmt, colour):
    path = tmp_path / f"x.{fmt.lower()}"
    Image.new(mode, (5, 3), colour).save(path, format=fmt)
    img = load_rgb_image(path)
    assert img.mode == "RGB" and img.size == (5, 3)
    assert image_size(path) == (5, 3)
    assert image_info(path).mode == mode


def test_alpha_is_dropped_not_composited(tmp_path):
    path = tmp_path / "a.png"
    Image.new("RGBA", (2, 2), (10, 20, 30, 0)).save(path)
    assert np.asarray(load_rgb_image(path))[0, 0].tolist() == [10, 20, 30]


def test_palette_with_transparency_converts(tmp_path):
    path = tmp_path / "p.png"
    img = Image.new("P", (2, 2), 1)
    img.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    img.save(path, transparency=0)
    assert np.asarray(load_rgb_image(path))[0, 0].tolist() == [200, 100, 50]


def test_truncated_jpeg_raises_dataset_error_naming_the_file(tmp_path):
    path = tmp_path / "cut.JPEG"
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(path, quality=95)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert image_size(path) == (64, 64)  # the header alone still reads
    with pytest.raises(DatasetError, match="cut.JPEG") as info:
        load_rgb_image(path)
    assert "Fix" in str(info.value)


def test_not_an_image_raises_dataset_error(tmp_path):
    path = tmp_path / "text.JPEG"
    path.write_text("hello")
    with pytest.raises(DatasetError, match="text.JPEG"):
        image_size(path)
    with pytest.raises(DatasetError, match="text.JPEG"):
        load_rgb_image(path)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_rgb_image(tmp_path / "nope.JPEG")


def test_16bit_greyscale_is_scaled_not_clipped(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.array([[0, 1000], [2000, 4000]], dtype=np.uint16)).save(path)
    arr = np.asarray(load_rgb_image(path))
    assert arr[:, :, 0].tolist() == [[0, 63], [127, 255]]

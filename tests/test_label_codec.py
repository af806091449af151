"""The ImageNet-S label PNG codec: id = R + 256*G, B = 0, read back exactly."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tools.data.label_codec import (
    IGNORE_ID,
    decode_label_rgb,
    encode_label_rgb,
    read_label_png,
    write_label_png,
)
from tools.errors import LabelFormatError


def test_round_trip_keeps_background_ignore_and_ids_above_255(tmp_path):
    labels = np.array([[0, 1, 50], [255, 256, 300], [919, IGNORE_ID, 0]], dtype=np.int64)
    path = tmp_path / "n1" / "x.png"  # parent folder is created
    write_label_png(path, labels)
    back = read_label_png(path)
    assert back.dtype == np.int32
    np.testing.assert_array_equal(back, labels)


def test_encoding_matches_the_documented_examples():
    rgb = encode_label_rgb(np.array([[50, 300, 919, IGNORE_ID]]))
    assert rgb[0].tolist() == [[50, 0, 0], [44, 1, 0], [151, 3, 0], [232, 3, 0]]


def test_stored_png_is_8bit_rgb_with_zero_blue(tmp_path):
    path = tmp_path / "x.png"
    write_label_png(path, np.full((2, 3), 919))
    with Image.open(path) as img:
        assert img.mode == "RGB" and img.size == (3, 2)
        arr = np.asarray(img)
    assert (arr[:, :, 2] == 0).all()


def test_decode_casts_before_multiplying_so_uint8_cannot_overflow():
    rgb = np.array([[[255, 255, 0]]], dtype=np.uint8)  # the largest id, 255 + 256 * 255
    assert decode_label_rgb(rgb)[0, 0] == 65535


def test_encode_rejects_out_of_range_ids():
    with pytest.raises(ValueError):
        encode_label_rgb(np.array([[-1]]))
    with pytest.raises(ValueError):
        encode_label_rgb(np.array([[65536]]))


def test_mode_l_png_raises_label_format_error_naming_the_file(tmp_path):
    path = tmp_path / "grey.png"
    Image.new("L", (4, 4), 3).save(path)
    with pytest.raises(LabelFormatError, match="grey.png") as info:
        read_label_png(path)
    assert "'L'" in str(info.value)


def test_non_zero_blue_channel_is_refused(tmp_path):
    path = tmp_path / "colour.png"
    Image.new("RGB", (2, 2), (1, 0, 9)).save(path)
    with pytest.raises(LabelFormatError, match="colour.png"):
        read_label_png(path)


def test_garbage_file_raises_label_format_error(tmp_path):
    path = tmp_path / "bad.png"
    path.write_bytes(b"not a png")
    with pytest.raises(LabelFormatError, match="bad.png"):
        read_label_png(path)

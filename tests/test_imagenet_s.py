"""The ImageNet-S tree reader: class ids are sorted ranks, samples are sorted, masks are found."""

from __future__ import annotations

import pytest
from PIL import Image

from tools.data.imagenet_s import ImageNetS
from tools.errors import DatasetError


def _touch_image(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 3)).save(path, format="JPEG")


@pytest.fixture()
def tree(tmp_path):
    for wnid in ("n03", "n01", "n02"):  # created out of order on purpose
        _touch_image(tmp_path / "train" / wnid / f"{wnid}_1.JPEG")
    _touch_image(tmp_path / "validation" / "n02" / "ILSVRC2012_val_00000009.JPEG")
    _touch_image(tmp_path / "validation" / "n02" / "ILSVRC2012_val_00000002.JPEG")
    _touch_image(tmp_path / "validation" / "n01" / "ILSVRC2012_val_00000005.JPEG")
    (tmp_path / "validation" / "n01" / "notes.txt").write_text("not an image")
    (tmp_path / "train" / ".hidden").mkdir()
    return tmp_path


def test_class_ids_are_one_based_sorted_ranks(tree):
    ds = ImageNetS(tree)
    assert ds.classes == ["n01", "n02", "n03"]
    assert ds.class_ids == {"n01": 1, "n02": 2, "n03": 3}
    assert ds.num_classes == 3
    with pytest.raises(DatasetError, match="n99"):
        ds.class_id("n99")


def test_samples_are_sorted_by_key_and_skip_non_images(tree):
    keys = [s.key for s in ImageNetS(tree).samples("validation")]
    assert keys == [
        "n01/ILSVRC2012_val_00000005",
        "n02/ILSVRC2012_val_00000002",
        "n02/ILSVRC2012_val_00000009",
    ]


def test_mask_path_mirrors_the_image_path(tree):
    ds = ImageNetS(tree)
    sample = ds.samples("validation")[0]
    assert sample.png_name() == "n01/ILSVRC2012_val_00000005.png"
    assert ds.mask_path(sample) == tree / "validation-segmentation" / "n01" / "ILSVRC2012_val_00000005.png"


def test_missing_root_and_split_raise_dataset_error(tmp_path, tree):
    with pytest.raises(DatasetError, match="not found"):
        ImageNetS(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="test"):
        ImageNetS(tree).samples("test")

"""Dataset validation: a clean demo passes; each kind of damage is reported naming the file."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from luss_cli.main import cli
from tools.data.demo import DemoSpec, generate_demo_dataset
from tools.data.label_codec import read_label_png, write_label_png
from tools.data.validate import MAX_LISTED, validate_dataset
from tools.errors import DatasetError

SPEC = DemoSpec(classes=3, train_per_class=2, val_per_class=2, test_per_class=1, size=24)
VAL = "validation/n90000001"
SEG = "validation-segmentation/n90000001"


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    return generate_demo_dataset(tmp_path_factory.mktemp("clean") / "data", SPEC, progress=False)


@pytest.fixture()
def data(clean, tmp_path) -> Path:
    """A private copy to damage."""
    return Path(shutil.copytree(clean, tmp_path / "data"))


def _first(folder: Path, pattern: str) -> Path:
    return sorted(folder.glob(pattern))[0]


def _check(root: Path, **kwargs):
    return validate_dataset(root, progress=False, workers=1, **kwargs)


def _only_error_names(report, name: str) -> str:
    """The report holds exactly one error, it names ``name`` and says how to fix it."""
    assert not report.ok and report.error_count == 1, report.errors
    message = report.errors[0]
    assert name in message and ("Fix" in message or "Re-encode" in message), message
    return message


def test_clean_demo_passes_with_counts(clean):
    report = _check(clean, check_train_images="full")
    assert report.ok and report.errors == [] and report.warnings == []
    assert report.num_classes == 3
    assert {s: (c.classes, c.images, c.masks) for s, c in report.counts.items()} == {
        "train": (3, 6, None),
        "validation": (3, 6, 6),
        "test": (3, 3, 3),
        "train-semi": (3, 6, 6),  # the demo's labelled copies of its first train images
    }


def test_process_pool_gives_the_same_report(clean):
    one = _check(clean)
    two = validate_dataset(clean, progress=False, workers=2)
    assert (two.ok, two.counts, two.errors) == (one.ok, one.counts, one.errors)


def test_missing_required_split(data):
    shutil.rmtree(data / "validation-segmentation")
    _only_error_names(_check(data), "validation-segmentation/")


def test_missing_train_split(data):
    shutil.rmtree(data / "train")
    report = _check(data)
    assert any(e.startswith("train/: split folder is missing") for e in report.errors)


def test_empty_split(data):
    for p in (data / "test").rglob("*.JPEG"):
        p.unlink()
    report = _check(data, splits=["train", "test"])
    assert any("test/: split holds no images" in e for e in report.errors)


def test_missing_mask(data):
    mask = _first(data / SEG, "*.png")
    mask.unlink()
    _only_error_names(_check(data), f"{VAL}/{mask.stem}.JPEG")


def test_mask_without_image(data):
    image = _first(data / VAL, "*.JPEG")
    image.unlink()
    _only_error_names(_check(data), f"{SEG}/{image.stem}.png")


def test_resized_mask(data):
    mask = _first(data / SEG, "*.png")
    labels = read_label_png(mask)
    write_label_png(mask, labels[:-1, :])
    message = _only_error_names(_check(data), f"{SEG}/{mask.name}")
    assert f"{labels.shape[1]}x{labels.shape[0] - 1}" in message


def test_mask_with_bad_id(data):
    mask = _first(data / SEG, "*.png")
    labels = read_label_png(mask)
    labels[0, 0] = 4  # 3 classes: 4 is out of range, 1000 is fine
    labels[0, 1] = 1000
    write_label_png(mask, labels)
    message = _only_error_names(_check(data), f"{SEG}/{mask.name}")
    assert "ids 4 " in message


def test_mask_in_wrong_encoding(data):
    mask = _first(data / SEG, "*.png")
    Image.fromarray(read_label_png(mask).astype(np.uint8)).save(mask)  # mode L
    _only_error_names(_check(data), f"{SEG}/{mask.name}")


def test_greyscale_and_cmyk_images_are_warnings_only(data):
    grey = _first(data / VAL, "*.JPEG")
    Image.open(grey).convert("L").save(grey, format="JPEG")
    cmyk = _first(data / "train/n90000002", "*.JPEG")
    Image.open(cmyk).convert("CMYK").save(cmyk, format="JPEG")
    report = _check(data)
    assert report.ok and report.warning_count == 2
    assert any(grey.name in w and "L image" in w for w in report.warnings)
    assert any(cmyk.name in w and "CMYK" in w for w in report.warnings)


def test_truncated_validation_image(data):
    image = _first(data / VAL, "*.JPEG")
    image.write_bytes(image.read_bytes()[:-200])
    _only_error_names(_check(data), f"{VAL}/{image.name}")


def test_truncated_train_image_needs_full_check(data):
    image = _first(data / "train/n90000003", "*.JPEG")
    image.write_bytes(image.read_bytes()[:-200])
    assert _check(data, check_train_images="header").ok
    _only_error_names(_check(data, check_train_images="full"), f"train/n90000003/{image.name}")
    image.write_bytes(b"garbage")
    _only_error_names(_check(data, check_train_images="header"), f"train/n90000003/{image.name}")
    assert _check(data, check_train_images="none").ok


def test_validation_class_that_is_not_a_train_class(data):
    extra = data / "validation" / "n99999999"
    extra.mkdir()
    shutil.copy(_first(data / VAL, "*.JPEG"), extra / "ILSVRC2012_val_09999999.JPEG")
    report = _check(data)
    assert any(
        e.startswith("validation/n99999999/: class folder is not a train class") for e in report.errors
    )


def test_listed_problems_are_capped_but_counted(data):
    for i in range(MAX_LISTED + 5):
        write_label_png(data / SEG / f"orphan_{i:04d}.png", np.zeros((2, 2), dtype=np.int32))
    report = _check(data, splits=["validation"])
    assert report.error_count == MAX_LISTED + 5 and len(report.errors) == MAX_LISTED


def test_cli_ok_and_failure(data):
    ok = CliRunner().invoke(cli, ["validate-data", str(data), "--train-images", "full"])
    assert ok.exit_code == 0, ok.output
    assert "OK" in ok.output and "validation" in ok.output
    mask = _first(data / SEG, "*.png")
    mask.unlink()
    bad = CliRunner().invoke(cli, ["validate-data", str(data), "--split", "validation", "--workers", "1"])
    assert bad.exit_code != 0 and isinstance(bad.exception, DatasetError)
    assert f"{VAL}/{mask.stem}.JPEG" in bad.output and "Errors (1)" in bad.output

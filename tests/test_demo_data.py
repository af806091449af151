"""The procedural demo dataset: exact ImageNet-S layout, valid masks, same bytes on every run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from luss_cli.main import cli
from tools.data.demo import DemoSpec, generate_demo_dataset, wnid_for
from tools.data.demo_shapes import MAX_CLASSES, class_looks
from tools.data.imagenet_s import TRAIN_GROUND_TRUTH_DIR, ImageNetS
from tools.data.images import image_size
from tools.data.label_codec import IGNORE_ID, read_label_png
from tools.errors import DatasetError

# 4 classes x (3 + 6 + 6): 48 masks, enough that ~25 % second objects and ~50 % bands both occur.
SPEC = DemoSpec(classes=4, train_per_class=3, val_per_class=6, test_per_class=6, size=32, seed=3)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return generate_demo_dataset(tmp_path_factory.mktemp("demo") / "data", SPEC, progress=False)


def test_layout_and_counts(demo):
    ds = ImageNetS(demo)
    assert (
        ds.classes == [wnid_for(i) for i in range(4)] == ["n90000001", "n90000002", "n90000003", "n90000004"]
    )
    assert len(ds.samples("train")) == 12
    assert len(ds.samples("validation")) == 24
    assert len(ds.samples("test")) == 24
    assert (demo / "train" / "n90000002" / "n90000002_3.JPEG").is_file()
    stems = [s.stem for split in ("validation", "test") for s in ds.samples(split)]
    assert len(set(stems)) == 48 and all(s.startswith("ILSVRC2012_val_") and len(s) == 23 for s in stems)
    for split in ("validation", "test"):
        for s in ds.samples(split):
            assert ds.mask_path(s).is_file()
    for s in ds.samples("train"):  # train masks, for measuring only (run report)
        labels = read_label_png(demo / TRAIN_GROUND_TRUTH_DIR / s.wnid / f"{s.stem}.png")
        assert labels.shape == image_size(s.image_path)[::-1]
        assert ds.class_id(s.wnid) in set(np.unique(labels).tolist())
    assert (demo / ".complete").is_file()
    assert not list(demo.parent.glob(".*tmp"))  # the temporary folder was renamed away


def test_demo_json_describes_spec_and_classes(demo):
    meta = json.loads((demo / "demo.json").read_text())
    assert meta["spec"]["classes"] == 4 and meta["spec"]["seed"] == 3
    assert meta["classes"]["n90000001"] == "red solid circle"
    assert meta["counts"] == {"train": 12, "validation": 24, "test": 24, "train-semi": 12}
    assert meta["version"] == 4


def test_train_semi_are_labelled_copies_of_train_images(demo):
    ds = ImageNetS(demo)
    semi = ds.samples("train-semi")
    assert [s.key for s in semi] == [s.key for s in ds.samples("train")]  # 3 per class: min(4, 3)
    for s in semi:
        assert s.image_path.read_bytes() == (demo / "train" / s.wnid / f"{s.stem}.JPEG").read_bytes()
        mask = demo / "train-semi-segmentation" / s.png_name()
        assert mask.read_bytes() == (demo / TRAIN_GROUND_TRUTH_DIR / s.png_name()).read_bytes()


def test_masks_match_images_and_hold_only_valid_ids(demo):
    ds = ImageNetS(demo)
    sizes, seen, second, banded = set(), set(), 0, 0
    for split in ("validation", "test"):
        for s in ds.samples(split):
            labels = read_label_png(ds.mask_path(s))
            w, h = image_size(s.image_path)
            assert labels.shape == (h, w)
            sizes.add((w, h))
            ids = set(np.unique(labels).tolist())
            assert ids <= {0, 1, 2, 3, 4, IGNORE_ID}
            assert ds.class_id(s.wnid) in ids  # the image's own class is drawn
            seen |= ids
            second += len(ids - {0, IGNORE_ID, ds.class_id(s.wnid)}) > 0
            banded += IGNORE_ID in ids
    assert len(sizes) > 10  # sizes vary, so resizing code is exercised
    assert all(26 <= min(s) <= 38 and max(s) / min(s) <= 4 / 3 + 0.05 for s in sizes)
    assert 0 < second < 24 and 0 < banded < 48


def test_two_runs_write_identical_bytes_whatever_the_workers(demo, tmp_path):
    again = generate_demo_dataset(tmp_path / "again", SPEC, progress=False, workers=2)
    assert _files(again) == _files(demo)


def test_other_seed_gives_other_images(tmp_path):
    spec = DemoSpec(classes=1, train_per_class=1, val_per_class=0, test_per_class=0, size=16)
    a = generate_demo_dataset(tmp_path / "a", spec, progress=False)
    b = generate_demo_dataset(tmp_path / "b", DemoSpec(**{**spec.__dict__, "seed": 1}), progress=False)
    name = "train/n90000001/n90000001_1.JPEG"
    assert (a / name).read_bytes() != (b / name).read_bytes()


def test_refuses_non_empty_folder_unless_overwrite(tmp_path):
    spec = DemoSpec(classes=2, train_per_class=1, val_per_class=1, test_per_class=0, size=16)
    out = generate_demo_dataset(tmp_path / "d", spec, progress=False)
    with pytest.raises(DatasetError, match="overwrite"):
        generate_demo_dataset(out, spec, progress=False)
    (out / "stale.txt").write_text("x")
    generate_demo_dataset(out, spec, progress=False, overwrite=True)
    assert not (out / "stale.txt").exists() and (out / ".complete").is_file()
    user = tmp_path / "user"
    user.mkdir()
    (user / "thesis.tex").write_text("precious")
    with pytest.raises(DatasetError, match="not a luss demo dataset"):
        generate_demo_dataset(user, spec, progress=False, overwrite=True)
    assert (user / "thesis.tex").read_text() == "precious"


def test_class_looks_are_distinct():
    looks = class_looks(MAX_CLASSES)
    assert len(set(looks)) == MAX_CLASSES
    eight = class_looks(8)
    assert len({look.shape for look in eight}) == 8
    assert len({look.hue for look in eight}) == 8
    assert len({look.texture for look in eight}) == 4
    with pytest.raises(ValueError):
        DemoSpec(classes=MAX_CLASSES + 1)


def test_cli_writes_and_summarises(tmp_path):
    out = tmp_path / "cli"
    args = [
        "demo-data",
        str(out),
        "--classes",
        "2",
        "--train-per-class",
        "1",
        "--val-per-class",
        "1",
        "--test-per-class",
        "1",
        "--size",
        "16",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "6 in all" in result.output and "validate-data" in result.output
    assert (out / ".complete").is_file()
    again = CliRunner().invoke(cli, args)
    assert again.exit_code != 0 and isinstance(again.exception, DatasetError)
    assert CliRunner().invoke(cli, [*args, "--overwrite"]).exit_code == 0


def test_only_a_complete_dataset_of_the_current_version_is_current(demo, tmp_path):
    import json
    import shutil

    from tools.data.demo import DEMO_VERSION, is_current_demo

    assert is_current_demo(demo)
    old = tmp_path / "old"
    shutil.copytree(demo, old)
    meta = json.loads((old / "demo.json").read_text())
    (old / "demo.json").write_text(json.dumps({**meta, "version": DEMO_VERSION - 1}))
    assert not is_current_demo(old)
    assert not is_current_demo(tmp_path / "missing")

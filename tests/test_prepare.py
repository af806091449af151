"""`luss prepare` on a generated mini-ImageNet built from the real ImageNet-S lists (a few classes)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.mini_imagenet import expected_tree, make_annotation_zip, make_mini_imagenet, mini_lists, read_tree
from tools.data.split_lists import load_split_lists
from tools.errors import AnnotationZipError, MissingSourceError, NoSpaceError, PrepareError
from tools.prepare import execute
from tools.prepare.prepare import STATE_FILE, prepare_imagenet_s

S50_CLASSES = ["n01443537", "n01491361", "n01531178"]
# Two S919 classes that absorb a merged ImageNet class (train-semi images from both), and a plain one.
S919_CLASSES = ["n04355933", "n02808440", "n01440764"]
REPO = Path(__file__).resolve().parents[1]


def _inputs(tmp_path: Path, benchmark: int, wnids: list[str], val_sorted: bool, top_folder: str | None = ""):
    lists = mini_lists(benchmark, wnids)
    imagenet = make_mini_imagenet(tmp_path / "ILSVRC2012", lists, val_sorted)
    zip_path = make_annotation_zip(tmp_path / f"ImageNetS{benchmark}.zip", lists, top_folder)
    return lists, imagenet, zip_path


def _prepare(lists, imagenet, zip_path, out, copy=False, **kw):
    return prepare_imagenet_s(
        imagenet, zip_path, out, lists.benchmark, copy, lists=lists, progress=False, **kw
    )


@pytest.mark.parametrize(
    ("val_sorted", "copy", "top_folder"),
    [(True, False, ""), (False, True, None)],
    ids=["sorted-val-symlinks-zip-with-top-folder", "flat-val-copies-zip-without-top-folder"],
)
def test_tree_equals_the_lists_file_for_file(tmp_path, val_sorted, copy, top_folder):
    lists, imagenet, zip_path = _inputs(tmp_path, 50, S50_CLASSES, val_sorted, top_folder)
    result = _prepare(lists, imagenet, zip_path, tmp_path / "out", copy=copy)
    root = tmp_path / "out" / "ImageNetS50"
    assert result.root == root and result.report is not None and result.report.ok
    assert read_tree(root) == expected_tree(lists, imagenet)
    assert sorted(p.name for p in root.iterdir()) == sorted(
        [STATE_FILE, "test", "train", "train-semi", "train-semi-segmentation", "validation"]
        + ["validation-segmentation"]
    )
    for wnid in S50_CLASSES:
        link = root / "train" / wnid
        assert link.is_symlink() != copy
        if not copy:
            assert os.readlink(link) == str((imagenet / "train" / wnid).resolve())
    # ImageNet-S relabels some val images: at least one listed source sits in another wnid folder.
    assert any(src.split("/")[0] != dst.split("/")[0] for src, dst in lists.validation + lists.test)


def test_919_merges_get_per_file_links_from_both_classes(tmp_path):
    lists, imagenet, zip_path = _inputs(tmp_path, 919, S919_CLASSES, val_sorted=True)
    _prepare(lists, imagenet, zip_path, tmp_path / "out")
    root = tmp_path / "out" / "ImageNetS919"
    assert read_tree(root) == expected_tree(lists, imagenet)
    merged = root / "train" / "n04355933"
    assert merged.is_dir() and not merged.is_symlink()
    sources = {Path(os.readlink(p)).parent.name for p in merged.iterdir()}
    assert sources == {"n04355933", "n04356056"}
    assert (root / "train" / "n01440764").is_symlink()
    assert os.readlink(root / "train-full") == str((imagenet / "train").resolve())
    assert (root / "train-semi" / "n02808440" / "n04493381_27386.JPEG").is_file()


def test_rerun_skips_what_is_done(tmp_path):
    lists, imagenet, zip_path = _inputs(tmp_path, 50, S50_CLASSES[:1], val_sorted=True)
    first = _prepare(lists, imagenet, zip_path, tmp_path / "out", validate=False)
    again = _prepare(lists, imagenet, zip_path, tmp_path / "out", validate=False)
    assert first.written == first.entries > 0 and again.written == 0


_KILLER = """
import os, shutil, signal, sys
from tests.mini_imagenet import mini_lists
from tools.prepare import execute
from tools.prepare.prepare import prepare_imagenet_s

calls = 0
def copy_then_die(source, tmp):
    global calls
    calls += 1
    if calls == int(sys.argv[4]):  # half of this file is on disk when the process is killed
        data = open(source, "rb").read()
        open(tmp, "wb").write(data[: len(data) // 2])
        os.kill(os.getpid(), signal.SIGKILL)
    shutil.copyfile(source, tmp)

execute._copy_file = copy_then_die
lists = mini_lists(50, sys.argv[5].split(","))
prepare_imagenet_s(sys.argv[1], sys.argv[2], sys.argv[3], 50, True, lists=lists, workers=1, progress=False)
"""


def test_kill_during_prepare_then_rerun_gives_the_same_tree(tmp_path):
    lists, imagenet, zip_path = _inputs(tmp_path, 50, S50_CLASSES[:2], val_sorted=False)
    reference = _prepare(lists, imagenet, zip_path, tmp_path / "clean", copy=True, validate=False).root
    out = tmp_path / "killed"
    script = tmp_path / "killer.py"
    script.write_text(textwrap.dedent(_KILLER))
    argv = [str(imagenet), str(zip_path), str(out), "40", ",".join(S50_CLASSES[:2])]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # Through a shell that reports the status: Jittor (imported by other tests in this process) ends
    # the whole process when a direct child dies of a signal other than SIGTERM.
    shell = ['"$0" "$@"; echo "status=$?"', sys.executable, str(script), *argv]
    proc = subprocess.run(["sh", "-c", *shell], env=env, cwd=REPO, capture_output=True)
    assert proc.stdout.decode().strip() == "status=137", proc.stderr.decode()  # 128 + SIGKILL
    root = out / "ImageNetS50"
    partial = read_tree(root)
    assert any(name.split("/")[-1].startswith(".") for name in partial), "the kill left no temporary file"
    assert len(partial) < len(read_tree(reference))
    rerun = _prepare(lists, imagenet, zip_path, out, copy=True)
    assert 0 < rerun.written < rerun.entries
    assert read_tree(root) == read_tree(reference) == expected_tree(lists, imagenet)


def test_missing_source_image_is_named(tmp_path):
    lists, imagenet, zip_path = _inputs(tmp_path, 50, S50_CLASSES[:1], val_sorted=False)
    src = lists.test[0][0].split("/")[-1]
    (imagenet / "val" / src).unlink()
    with pytest.raises(MissingSourceError, match="1 source images") as info:
        _prepare(lists, imagenet, zip_path, tmp_path / "out")
    assert info.value.problems == [f"{(imagenet / 'val' / src).resolve()} (for test/{lists.test[0][1]})"]
    assert not (tmp_path / "out").exists()  # nothing written


def test_missing_train_class_is_named(tmp_path):
    lists, imagenet, zip_path = _inputs(tmp_path, 919, S919_CLASSES, val_sorted=True)
    for image in (imagenet / "train" / "n04356056").iterdir():
        image.unlink()
    (imagenet / "train" / "n04356056").rmdir()
    with pytest.raises(MissingSourceError) as info:
        _prepare(lists, imagenet, zip_path, tmp_path / "out")
    assert any("n04356056/ (ImageNet-S train/n04355933)" in p for p in info.value.problems)


def test_zip_of_another_benchmark_is_refused(tmp_path):
    lists, imagenet, _ = _inputs(tmp_path, 50, S50_CLASSES[:1], val_sorted=True)
    wrong = make_annotation_zip(tmp_path / "s300.zip", mini_lists(300, ["n01443537"]))
    with pytest.raises(AnnotationZipError, match="is the ImageNetS300 annotation zip, but --classes 50"):
        _prepare(lists, imagenet, wrong, tmp_path / "out")


def test_zip_under_another_single_folder_is_accepted(tmp_path):
    lists, imagenet, _ = _inputs(tmp_path, 50, S50_CLASSES[:1], val_sorted=True)
    zip_path = make_annotation_zip(tmp_path / "renamed.zip", lists, top_folder="ImageNetS50-a0fe9d82")
    result = _prepare(lists, imagenet, zip_path, tmp_path / "out", validate=False)
    assert read_tree(result.root) == expected_tree(lists, imagenet)


def test_zip_with_other_classes_is_refused(tmp_path):
    lists, imagenet, _ = _inputs(tmp_path, 50, S50_CLASSES[:1], val_sorted=True)
    other = mini_lists(50, S50_CLASSES[1:2])
    wrong = make_annotation_zip(tmp_path / "other.zip", other, top_folder=None)
    with pytest.raises(AnnotationZipError, match="belongs to another benchmark"):
        _prepare(lists, imagenet, wrong, tmp_path / "out")


def test_zip_missing_a_mask_names_it(tmp_path):
    lists, imagenet, _ = _inputs(tmp_path, 50, S50_CLASSES[:1], val_sorted=True)
    short = make_annotation_zip(tmp_path / "short.zip", lists, drop=1)
    with pytest.raises(AnnotationZipError, match="1 of the") as info:
        _prepare(lists, imagenet, short, tmp_path / "out")
    assert info.value.problems == [f"ImageNetS50/train-semi-segmentation/{lists.train_semi[-1][1]}: missing"]


def test_not_a_zip_is_refused(tmp_path):
    lists, imagenet, _ = _inputs(tmp_path, 50, S50_CLASSES[:1], val_sorted=True)
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(AnnotationZipError, match="ImageNetS50-a0fe9d82231f9bc4787ee76e304dfa51.zip"):
        _prepare(lists, imagenet, bad, tmp_path / "out")


def test_too_little_space_is_refused_before_writing(tmp_path, monkeypatch):
    lists, imagenet, zip_path = _inputs(tmp_path, 50, S50_CLASSES[:1], val_sorted=True)

    class Usage:
        free = 1000

    monkeypatch.setattr(execute.shutil, "disk_usage", lambda path: Usage)
    with pytest.raises(NoSpaceError, match="or drop --copy"):
        _prepare(lists, imagenet, zip_path, tmp_path / "out", copy=True)
    assert not (tmp_path / "out" / "ImageNetS50" / "validation").exists()


def test_full_disk_while_copying_names_the_file(tmp_path, monkeypatch):
    lists, imagenet, zip_path = _inputs(tmp_path, 50, S50_CLASSES[:1], val_sorted=True)

    def full(source, tmp):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(execute, "_copy_file", full)
    with pytest.raises(NoSpaceError, match=r"ImageNetS50/validation/n01443537/.*disk is full"):
        _prepare(lists, imagenet, zip_path, tmp_path / "out", workers=1)


def test_an_out_that_cannot_be_written_is_named(tmp_path):
    lists, imagenet, zip_path = _inputs(tmp_path, 50, S50_CLASSES[:1], val_sorted=True)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(PrepareError, match=r"file/ImageNetS50: cannot be created or written"):
        _prepare(lists, imagenet, zip_path, blocker)


def test_switching_copy_mode_midway_is_refused(tmp_path):
    lists, imagenet, zip_path = _inputs(tmp_path, 50, S50_CLASSES[:1], val_sorted=True)
    _prepare(lists, imagenet, zip_path, tmp_path / "out", validate=False)
    with pytest.raises(PrepareError, match="rerun it the same way"):
        _prepare(lists, imagenet, zip_path, tmp_path / "out", copy=True)


def test_val_with_both_layouts_is_refused(tmp_path):
    lists, imagenet, zip_path = _inputs(tmp_path, 50, S50_CLASSES[:1], val_sorted=True)
    (imagenet / "val" / "ILSVRC2012_val_00000001.JPEG").write_bytes(b"x")
    with pytest.raises(PrepareError, match="holds both"):
        _prepare(lists, imagenet, zip_path, tmp_path / "out")


def test_cli_reports_a_wrong_zip_without_traceback(tmp_path):
    lists, imagenet, _ = _inputs(tmp_path, 50, S50_CLASSES[:1], val_sorted=True)
    wrong = make_annotation_zip(tmp_path / "s300.zip", mini_lists(300, ["n01443537"]))
    cmd = [sys.executable, "-m", "luss_cli", "prepare", "--imagenet", str(imagenet), "--annotations"]
    cmd += [str(wrong), "--classes", "50", "--out", str(tmp_path / "out")]
    proc = subprocess.run(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True)
    assert proc.returncode == 2
    assert "is the ImageNetS300 annotation zip" in proc.stderr.decode()
    assert "Traceback" not in proc.stderr.decode()


@pytest.mark.slow
def test_cli_prepares_the_complete_s50_lists(tmp_path):
    """The packaged lists end to end through the CLI: every S50 file, then validate-data passes."""
    lists = load_split_lists(50)
    imagenet = make_mini_imagenet(tmp_path / "ILSVRC2012", lists, val_sorted=False)
    zip_path = make_annotation_zip(tmp_path / "ImageNetS50-a0fe9d82231f9bc4787ee76e304dfa51.zip", lists)
    out = tmp_path / "data"
    cmd = [sys.executable, "-m", "luss_cli", "prepare", "--imagenet", str(imagenet), "--annotations"]
    cmd += [str(zip_path), "--classes", "50", "--out", str(out), "--train-images", "none"]
    proc = subprocess.run(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert "validate-data: OK" in proc.stdout.decode()
    assert read_tree(out / "ImageNetS50") == expected_tree(lists, imagenet)
    counts = {
        split: sum(1 for _ in (out / "ImageNetS50" / split).rglob("*.JPEG"))
        for split in ("validation", "test")
    }
    assert counts == {"validation": 752, "test": 1682}

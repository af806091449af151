"""The SAM mask cache (compact .npz) and the refine loop around it, with a fake mask source (no torch)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tools.data.imagenet_s import ImageNetS
from tools.data.label_codec import read_label_png, write_label_png
from tools.engine.distributed import World
from tools.refine.generator_config import GeneratorConfig, cache_fingerprint
from tools.refine.mask_cache import cache_path, encode_mask_set, load_mask_cache, save_mask_cache
from tools.refine.refiner import RefineError, RefineOptions, refine_split, vote_settings_path
from tools.refine.voting import MaskSet, vote_by_masks
from tools.run_layout import RunLayout


def random_masks(h: int = 37, w: int = 53, n: int = 9, seed: int = 0) -> MaskSet:
    rng = np.random.default_rng(seed)
    dense = np.zeros((n, h, w), bool)
    for i in range(n):
        y0, x0 = rng.integers(0, h - 5), rng.integers(0, w - 5)
        dense[i, y0 : y0 + rng.integers(1, 20), x0 : x0 + rng.integers(1, 30)] = True
        dense[i] &= rng.random((h, w)) < 0.8  # ragged, not just boxes
    dense[3] = False  # an empty mask survives the round trip too
    return MaskSet.from_dense(dense, rng.random(n), rng.random(n), rng.random((n, 4)) * 10)


def assert_same(a: MaskSet, b: MaskSet) -> None:
    assert a.image_size == b.image_size and len(a) == len(b)
    for i in range(len(a)):
        np.testing.assert_array_equal(a.dense(i), b.dense(i))
    for name in ("boxes", "predicted_iou", "stability_score", "area", "bbox_xywh"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_round_trip_and_compact_size(tmp_path):
    masks = random_masks()
    path = tmp_path / "n01/x.npz"
    save_mask_cache(path, masks, "fp1", '{"a": 1}')
    assert_same(load_mask_cache(path, "fp1", (37, 53)), masks)
    assert load_mask_cache(path) is not None  # no checks asked
    arrays = encode_mask_set(masks, "fp1")
    box_pixels = sum(p.size for p in masks.patches)
    assert arrays["bits"].nbytes == -(-box_pixels // 8)  # one bit per box pixel
    assert [p.name for p in tmp_path.rglob("*")] == ["n01", "x.npz"], "no temporary file left behind"


def test_empty_mask_set_round_trip(tmp_path):
    save_mask_cache(tmp_path / "e.npz", MaskSet.empty(4, 6), "fp")
    loaded = load_mask_cache(tmp_path / "e.npz", "fp", (4, 6))
    assert loaded is not None and len(loaded) == 0 and loaded.image_size == (4, 6)


def test_stale_or_broken_cache_is_a_miss(tmp_path):
    path = tmp_path / "x.npz"
    assert load_mask_cache(path, "fp") is None  # missing
    save_mask_cache(path, random_masks(), "fp")
    assert load_mask_cache(path, "other") is None  # generator parameters changed
    assert load_mask_cache(path, "fp", (10, 10)) is None  # another image size
    path.write_bytes(path.read_bytes()[:50])  # truncated
    assert load_mask_cache(path, "fp") is None
    path.write_bytes(b"garbage")
    assert load_mask_cache(path, "fp") is None


def test_fingerprint_follows_mask_relevant_parameters_only():
    base, text = cache_fingerprint(GeneratorConfig(), "vit_b", "sam_vit_b_01ec64.pth")
    assert '"pred_iou_thresh":0.88' in text
    assert cache_fingerprint(GeneratorConfig(points_per_batch=16), "vit_b", "sam_vit_b_01ec64.pth")[0] == base
    assert (
        cache_fingerprint(GeneratorConfig(output_mode="uncompressed_rle"), "vit_b", "sam_vit_b_01ec64.pth")[0]
        == base
    )
    assert cache_fingerprint(GeneratorConfig(pred_iou_thresh=0.8), "vit_b", "sam_vit_b_01ec64.pth")[0] != base
    assert cache_fingerprint(GeneratorConfig(), "vit_h", "sam_vit_h_4b8939.pth")[0] != base
    grid = GeneratorConfig.grids_from_arrays([np.array([[0.5, 0.5]])])
    assert cache_fingerprint(GeneratorConfig(points_per_side=None, point_grids=grid), "vit_b", "x")[0] != base


def test_generator_config_checks():
    with pytest.raises(ValueError, match="exactly one"):
        GeneratorConfig(points_per_side=None)
    with pytest.raises(ValueError, match="output_mode"):
        GeneratorConfig(output_mode="png")
    with pytest.raises(ValueError, match="crop layer"):
        GeneratorConfig(points_per_side=None, point_grids=(((0.5, 0.5),),), crop_n_layers=1)
    kwargs = GeneratorConfig(points_per_side=None, point_grids=(((0.5, 0.5),),)).sam_kwargs()
    assert kwargs["point_grids"][0].shape == (1, 2)


# --- the refine loop -----------------------------------------------------------------------------

SIZES = {"n0001/a": (24, 32), "n0001/b": (20, 20), "n0002/c": (16, 28)}


def make_tree(tmp_path: Path) -> tuple[ImageNetS, RunLayout]:
    """A tiny ImageNet-S-like tree with raw predictions in a run folder."""
    data_root, run = tmp_path / "data", RunLayout.at(tmp_path / "run")
    rng = np.random.default_rng(1)
    for key, (h, w) in SIZES.items():
        img = data_root / "validation" / f"{key}.JPEG"
        img.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(img, format="JPEG")
        (data_root / "train" / key.split("/")[0]).mkdir(parents=True, exist_ok=True)
        write_label_png(run.predict_dir("validation") / f"{key}.png", rng.integers(0, 3, (h, w)))
    return ImageNetS(data_root), run


class FakeSource:
    """Deterministic masks from the image size only; counts calls to prove the cache is used."""

    def __init__(self):
        self.calls = 0

    def __call__(self, image: np.ndarray) -> MaskSet:
        self.calls += 1
        h, w = image.shape[:2]
        return random_masks(h, w, n=6, seed=h * 1000 + w)


def run(data, layout, source, world=None, **options):
    return refine_split(
        data,
        "validation",
        layout,
        RefineOptions(**options),
        lambda: source,
        "fp",
        world=world,
        progress=False,
    )


def test_refine_split_caches_resumes_and_revotes_without_sam(tmp_path):
    data, layout = make_tree(tmp_path)
    source = FakeSource()
    first = run(data, layout, source)
    assert (first.voted, first.generated, first.skipped) == (3, 3, 0) and source.calls == 3
    for key, (h, w) in SIZES.items():
        pred = read_label_png(layout.predict_dir("validation") / f"{key}.png")
        out = read_label_png(layout.refine_dir("validation") / f"{key}.png")
        expected = vote_by_masks(pred, random_masks(h, w, n=6, seed=h * 1000 + w))
        np.testing.assert_array_equal(out, expected)
        assert cache_path(layout.sam_cache_dir("validation"), key).is_file()

    again = run(data, layout, source)  # same settings: everything up to date
    assert (again.voted, again.skipped, source.calls) == (0, 3, 3)

    # Another vote mode: the whole split is re-voted from the cache, SAM is never called.
    def no_sam():
        raise AssertionError("SAM must not be loaded for a re-vote")

    revoted = refine_split(
        data,
        "validation",
        layout,
        RefineOptions(mode="sampass", background_policy="protect"),
        no_sam,
        "fp",
        progress=False,
    )
    assert (revoted.voted, revoted.generated) == (3, 0)
    assert vote_settings_path(layout, "validation").is_file()
    key = "n0001/a"
    pred = read_label_png(layout.predict_dir("validation") / f"{key}.png")
    np.testing.assert_array_equal(
        read_label_png(layout.refine_dir("validation") / f"{key}.png"),
        vote_by_masks(pred, random_masks(24, 32, n=6, seed=24032), "sampass", "protect"),
    )

    # A newer raw prediction re-votes just that image; --revote forces all.
    newer = layout.predict_dir("validation") / "n0002/c.png"
    stamp = os.stat(newer).st_mtime_ns + 10**9
    os.utime(newer, ns=(stamp, stamp))
    one = run(data, layout, source, mode="sampass", background_policy="protect")
    assert (one.voted, one.generated) == (1, 0)
    assert run(data, layout, source, mode="sampass", background_policy="protect", revote=True).voted == 3
    assert (
        run(data, layout, source, mode="sampass", background_policy="protect", recompute_masks=True).generated
        == 3
    )


def test_refine_split_shards_by_rank(tmp_path):
    data, layout = make_tree(tmp_path)
    source = FakeSource()
    assert run(data, layout, source, world=World(1, 2)).voted == 1  # every 2nd image from index 1
    assert run(data, layout, source, world=World(0, 2)).voted == 2
    assert source.calls == 3


def test_missing_prediction_is_an_error_naming_the_file(tmp_path):
    data, layout = make_tree(tmp_path)
    (layout.predict_dir("validation") / "n0002/c.png").unlink()
    with pytest.raises(RefineError, match="luss predict") as err:
        run(data, layout, FakeSource())
    assert err.value.problems == [str(layout.predict_dir("validation") / "n0002/c.png")]


def test_prediction_of_another_size_is_an_error(tmp_path):
    data, layout = make_tree(tmp_path)
    write_label_png(layout.predict_dir("validation") / "n0001/b.png", np.zeros((5, 5), np.int32))
    with pytest.raises(RefineError, match="image's size"):
        run(data, layout, FakeSource())


def test_cli_generator_options_cover_every_sam_parameter(tmp_path):
    from luss_cli.cmd_refine import GENERATOR_OPTIONS, build_generator_config

    assert set(GENERATOR_OPTIONS) | {"point_grids"} == set(GeneratorConfig.field_names())
    defaults = {name: getattr(GeneratorConfig(), name) for name in GENERATOR_OPTIONS}
    assert build_generator_config(defaults, None) == GeneratorConfig()
    grids = tmp_path / "grids.npz"
    np.savez(grids, layer0=np.array([[0.25, 0.5], [0.75, 0.5]]), layer1=np.array([[0.5, 0.5]]))
    config = build_generator_config({**defaults, "crop_n_layers": 1}, grids)
    assert config.points_per_side is None and len(config.point_grids) == 2

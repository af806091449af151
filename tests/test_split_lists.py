"""The official ImageNet-S lists ship with the package and load through importlib.resources."""

from __future__ import annotations

import pytest

from tools.data.split_lists import MERGES_919, load_split_lists, semi_source_wnid

# Line counts of LUSSeg/ImageNet-S data/ (formats.md 1.1).
COUNTS = {50: (50, 752, 1682, 500), 300: (300, 4097, 9088, 3000), 919: (919, 12419, 27423, 9190)}


@pytest.mark.parametrize("benchmark", sorted(COUNTS))
def test_counts_match_the_official_lists(benchmark):
    lists = load_split_lists(benchmark)
    counts = (len(lists.categories), len(lists.validation), len(lists.test), len(lists.train_semi))
    assert counts == COUNTS[benchmark]
    assert list(lists.categories) == sorted(lists.categories)
    assert [img for img, _ in lists.validation_masks] == [dst for _, dst in lists.validation]
    assert all(mask == img[: -len("JPEG")] + "png" for img, mask in lists.train_semi)


def test_919_merges_and_their_train_semi_images():
    lists = load_split_lists(919)
    assert set(MERGES_919).isdisjoint(lists.categories) and set(MERGES_919.values()) <= set(lists.categories)
    crossing = [img for img, _ in lists.train_semi if semi_source_wnid(img) != img.split("/")[0]]
    assert len(crossing) == 20 and {semi_source_wnid(i) for i in crossing} == set(MERGES_919)
    assert lists.train_sources("n04355933") == ("n04355933", "n04356056")
    assert load_split_lists(300).merges == {}


def test_restricted_to_keeps_only_those_classes():
    small = load_split_lists(50).restricted_to(["n01443537"])
    assert small.categories == ("n01443537",)
    assert {d.split("/")[0] for _, d in small.validation + small.test} == {"n01443537"}
    with pytest.raises(ValueError, match="not ImageNetS50 classes"):
        small.restricted_to(["n99999999"])

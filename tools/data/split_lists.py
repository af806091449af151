"""The official ImageNet-S split lists, shipped with luss as package data (``imagenet_s_lists/``).

They are the files of LUSSeg/ImageNet-S ``data/`` at commit b2312ba, gzipped (see the README there):

```
categories/ImageNetS_categories_im{C}.txt       wnids, sorted; class id = line number
mapping/ImageNetS_im{C}_mapping_{validation,test}.txt   <val/wnid>/<file>  <dest wnid>/<file>
names/ImageNetS_im{C}_validation.txt            <wnid>/<name>.JPEG  <wnid>/<name>.png
names/ImageNetSemi_im{C}_train.txt              <wnid>/<srcwnid>_<n>.JPEG  <wnid>/<srcwnid>_<n>.png
```
Mapping sources are paths under ILSVRC2012 val *sorted into wnid folders*; a flat val folder holds the
same file names without the folder. A train-semi image comes from ``train/<srcwnid>/``, which for 20 of
the 9,190 S919 images is a class merged into another (:data:`MERGES_919`).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, replace
from importlib import resources

BENCHMARKS = (50, 300, 919)
# ImageNet-S919 merges five ImageNet classes into others (key into value); S50 and S300 hold none of them.
MERGES_919: dict[str, str] = {
    "n04356056": "n04355933",
    "n04493381": "n02808440",
    "n03642806": "n03832673",
    "n04008634": "n03773504",
    "n03887697": "n15075141",
}
_PACKAGE = "tools.data"
_FOLDER = "imagenet_s_lists"

Pair = tuple[str, str]


def read_list(relative: str) -> list[str]:
    """Non-empty lines of one packaged list file, e.g. ``categories/ImageNetS_categories_im50.txt``."""
    resource = resources.files(_PACKAGE).joinpath(_FOLDER, relative + ".gz")
    with resource.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as text:
        return [line.strip() for line in text if line.strip()]


def _pairs(relative: str) -> tuple[Pair, ...]:
    out = []
    for line in read_list(relative):
        first, second = line.split()
        out.append((first, second))
    return tuple(out)


def semi_source_wnid(image: str) -> str:
    """The ImageNet train class a train-semi image comes from: ``n02808440/n04493381_27386.JPEG`` ->
    ``n04493381`` (the file name starts with it)."""
    return image.split("/")[-1].split("_")[0]


@dataclass(frozen=True)
class SplitLists:
    """Every file of one ImageNet-S benchmark, as the official lists name them."""

    benchmark: int
    categories: tuple[str, ...]
    validation: tuple[Pair, ...]  # (source under sorted ILSVRC2012 val, destination under validation/)
    test: tuple[Pair, ...]  # (source, destination under test/)
    validation_masks: tuple[Pair, ...]  # (image, mask) under validation/ and validation-segmentation/
    train_semi: tuple[Pair, ...]  # (image, mask) under train-semi/ and train-semi-segmentation/

    @property
    def name(self) -> str:
        return f"ImageNetS{self.benchmark}"

    @property
    def merges(self) -> dict[str, str]:
        """Merged ImageNet class -> ImageNet-S class it joins (S919 only)."""
        return dict(MERGES_919) if self.benchmark == 919 else {}

    def train_sources(self, wnid: str) -> tuple[str, ...]:
        """ImageNet train class folders whose images form ImageNet-S ``train/<wnid>/``."""
        return (wnid, *sorted(src for src, dst in self.merges.items() if dst == wnid))

    def restricted_to(self, wnids: set[str] | list[str]) -> SplitLists:
        """The same lists keeping only the classes ``wnids`` (destination folders), e.g. for a small test."""
        keep = set(wnids)
        unknown = keep - set(self.categories)
        if unknown:
            raise ValueError(f"not {self.name} classes: {sorted(unknown)}")

        def by_dest(pairs: tuple[Pair, ...]) -> tuple[Pair, ...]:
            return tuple(p for p in pairs if p[1].split("/")[0] in keep)

        return replace(
            self,
            categories=tuple(w for w in self.categories if w in keep),
            validation=by_dest(self.validation),
            test=by_dest(self.test),
            validation_masks=by_dest(self.validation_masks),
            train_semi=by_dest(self.train_semi),
        )


def load_split_lists(benchmark: int) -> SplitLists:
    """The packaged lists of ImageNet-S50, -300 or -919."""
    if benchmark not in BENCHMARKS:
        raise ValueError(f"ImageNet-S has benchmarks {BENCHMARKS}, not {benchmark}")
    c = benchmark
    return SplitLists(
        benchmark=c,
        categories=tuple(read_list(f"categories/ImageNetS_categories_im{c}.txt")),
        validation=_pairs(f"mapping/ImageNetS_im{c}_mapping_validation.txt"),
        test=_pairs(f"mapping/ImageNetS_im{c}_mapping_test.txt"),
        validation_masks=_pairs(f"names/ImageNetS_im{c}_validation.txt"),
        train_semi=_pairs(f"names/ImageNetSemi_im{c}_train.txt"),
    )

"""The ImageNet-S annotation zip (``ImageNetS50-a0fe9d82231f9bc4787ee76e304dfa51.zip`` and its S300/S919
siblings), read without extracting it whole and without trusting it.

The official ``datapreparation_anno.sh`` unzips it at the destination's root, so it is expected to hold
``ImageNetS50/validation-segmentation/<wnid>/<name>.png`` and ``ImageNetS50/train-semi-segmentation/...``
(inferred from the script, not seen). The same entries at the zip root, or under any one other folder,
are accepted too; a folder named ``ImageNetS<N>`` must be the chosen benchmark's. Entries are
screened by :mod:`tools.packing.safe_zip` (names, symlinks, zip bombs).
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tools.data.split_lists import SplitLists
from tools.errors import AnnotationZipError
from tools.packing.safe_zip import GiB, MiB, UnsafeZipError, ZipLimits, open_zip, read_entry, scan_entries

MASK_FOLDERS = ("validation-segmentation", "train-semi-segmentation")
# An S919 annotation zip is about 22,000 full-resolution PNGs; the limits leave a wide margin.
ANNOTATION_LIMITS = ZipLimits(
    max_zip_bytes=16 * GiB, max_entries=200_000, max_entry_bytes=256 * MiB, max_total_bytes=32 * GiB
)
_TOP = re.compile(r"^ImageNetS(\d+)$")
_FIX = (
    "Fix: download {zip} from the LUSSeg/ImageNet-S releases (tag ImageNet-S) and pass it to --annotations."
)


def official_zip_name(benchmark: int) -> str:
    return {
        50: "ImageNetS50-a0fe9d82231f9bc4787ee76e304dfa51.zip",
        300: "ImageNetS300-dd8e42e156bac415a35c3c239de297bf.zip",
        919: "ImageNetS919-5f7f58ae1003d21da9409a8576bf7680.zip",
    }[benchmark]


@dataclass(frozen=True)
class MaskEntry:
    """One mask to write: ``dest`` relative to the ImageNet-S root, ``member`` its zip entry."""

    dest: str
    member: str
    size: int


def _mask_prefixes(names: list[str]) -> set[str]:
    """The folders (``""`` = the zip root) that hold a ``validation-segmentation/`` or
    ``train-semi-segmentation/`` folder."""
    prefixes = set()
    for name in names:
        parts = name.split("/")
        if parts[0] == "__MACOSX":
            continue
        for i, part in enumerate(parts[:-1]):
            if part in MASK_FOLDERS:
                prefixes.add("/".join(parts[:i]))
                break
    return prefixes


def _expected(lists: SplitLists) -> list[str]:
    return [f"validation-segmentation/{mask}" for _, mask in lists.validation_masks] + [
        f"train-semi-segmentation/{mask}" for _, mask in lists.train_semi
    ]


def index_annotation_zip(zip_path: str | os.PathLike[str], lists: SplitLists) -> list[MaskEntry]:
    """Check that ``zip_path`` is the annotation zip of ``lists``'s benchmark holding every listed mask.

    Returns one :class:`MaskEntry` per listed mask; raises :class:`AnnotationZipError` naming the zip,
    what is wrong and the fix.
    """
    zip_path = Path(zip_path)
    fix = _FIX.format(zip=official_zip_name(lists.benchmark))
    try:
        zf = open_zip(zip_path, ANNOTATION_LIMITS)
    except UnsafeZipError as exc:
        raise AnnotationZipError(f"{exc} {fix}") from None
    with zf:
        scan = scan_entries(zf, ANNOTATION_LIMITS)
    if scan.fatal:
        raise AnnotationZipError(f"{zip_path}: {'; '.join(scan.problems)} {fix}")
    names = list(scan.files) + scan.blocked
    prefixes = _mask_prefixes(names + [d + "/" for d in scan.dirs])
    if len(prefixes) > 1:
        raise AnnotationZipError(
            f"{zip_path}: holds mask folders under several folders ({sorted(prefixes)}); an annotation zip "
            f"has one {lists.name}/ (or none). {fix}"
        )
    top = next(iter(prefixes), "")
    named = _TOP.match(top.split("/")[-1])
    if named and int(named.group(1)) != lists.benchmark:
        raise AnnotationZipError(
            f"{zip_path}: is the {named.group(0)} annotation zip, but --classes {lists.benchmark} needs "
            f"{lists.name}. {fix}"
        )
    prefix = f"{top}/" if top else ""
    wnids = {n[len(prefix) :].split("/")[1] for n in names if n.startswith(prefix + MASK_FOLDERS[0] + "/")}
    wnids.discard("")
    if not wnids:
        raise AnnotationZipError(
            f"{zip_path}: holds no {lists.name}/{MASK_FOLDERS[0]}/<wnid>/*.png (nor {MASK_FOLDERS[0]}/ "
            f"at its root); it is not an ImageNet-S annotation zip. {fix}"
        )
    if wnids != set(lists.categories):
        extra, missing = sorted(wnids - set(lists.categories)), sorted(set(lists.categories) - wnids)
        raise AnnotationZipError(
            f"{zip_path}: its {MASK_FOLDERS[0]}/ has {len(wnids)} classes, {lists.name} has "
            f"{len(lists.categories)} ({len(extra)} not in {lists.name}, e.g. {extra[:3]}; {len(missing)} "
            f"missing, e.g. {missing[:3]}): it belongs to another benchmark. {fix}"
        )
    unsafe = {p.split(":")[0].strip("'") for p in scan.problems}
    entries, problems = [], []
    for dest in _expected(lists):
        member = prefix + dest
        info = scan.files.get(member)
        if info is None:
            why = (
                "unsafe or unreadable in the zip" if member in unsafe or member in scan.blocked else "missing"
            )
            problems.append(f"{member}: {why}")
        else:
            entries.append(MaskEntry(dest=dest, member=member, size=info.file_size))
    if problems:
        raise AnnotationZipError(
            f"{zip_path}: {len(problems)} of the {len(entries) + len(problems)} masks the {lists.name} lists "
            f"name are missing or unreadable (the zip is incomplete or damaged). {fix}",
            problems,
        )
    return entries


class AnnotationReader:
    """Reads mask entries one by one from an open zip (one per thread: ZipFile is not thread-safe)."""

    def __init__(self, zip_path: str | os.PathLike[str]):
        self.zip_path = Path(zip_path)
        self._zf: zipfile.ZipFile | None = None

    def read(self, member: str) -> bytes:
        if self._zf is None:
            self._zf = open_zip(self.zip_path, ANNOTATION_LIMITS)
        try:
            return read_entry(self._zf, self._zf.getinfo(member), ANNOTATION_LIMITS)
        except (UnsafeZipError, KeyError) as exc:
            raise AnnotationZipError(f"{self.zip_path}: {exc} Fix: download the zip again.") from None

    def close(self) -> None:
        if self._zf is not None:
            self._zf.close()
            self._zf = None

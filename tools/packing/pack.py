"""Build the submission zip from a prediction folder, and check any submission zip.

The zip has no enclosing folder (the server unzips it in place)::

    <wnid>/                       one folder per test class
    <wnid>/<stem>.png             one prediction per test image (8-bit RGB, id = R + 256*G)
    match.json                    {"1": 34, ..., "C": 7, "0": 0}
    method.txt                    six "Label: value" lines

Entries are written in sorted order with a fixed timestamp, permissions and compression level, so
the same inputs give a byte-identical zip (with the same zlib). Everything is deflated: label PNGs are
tiny and their headers compress, so the zip is about 20 % smaller than with ``ZIP_STORED`` (formats.md
section 3.1: 2.71 MB -> 2.19 MB) for a cost of a second or two on S919.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tools.atomic_io import atomic_path
from tools.data.imagenet_s import ImageNetS
from tools.errors import SubmissionError
from tools.packing.method_info import MethodInfo
from tools.packing.protocols import (
    PROTOCOLS,
    PROVENANCE_NAME,
    protocol_problems,
    read_provenance,
    scheme_problems,
)
from tools.packing.rules import (
    MATCH_NAME,
    METHOD_NAME,
    ROOT_FILES,
    Expected,
    ParsedMatch,
    PngResult,
    PngTask,
    Problem,
    check_ids_in_match,
    check_layout,
    check_method_text,
    order_for_display,
    parse_match_json,
    run_png_checks,
    summarize,
)
from tools.packing.safe_zip import (
    DEFAULT_LIMITS,
    UnsafeZipError,
    ZipLimits,
    open_zip,
    read_entry,
    scan_entries,
)

ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip can store; any fixed value would do
COMPRESS_LEVEL = 6
MACOS_JUNK = "__MACOSX"


@dataclass(frozen=True)
class PackResult:
    """What was written."""

    path: Path
    num_images: int
    num_classes: int
    size_bytes: int  # of the zip
    png_bytes: int  # sum of the PNG files packed


def _dataset(data: ImageNetS | str | os.PathLike[str]) -> ImageNetS:
    return data if isinstance(data, ImageNetS) else ImageNetS(data)


# ------------------------------------------------------------------------------------------- folder


def list_prediction_dir(pred_dir: Path) -> tuple[list[str], list[str]]:
    """``(files, dirs)`` of a prediction folder, two levels deep, as ``/``-joined relative names.

    A folder inside a class folder is listed (so the layout rule reports it) but never descended,
    which also keeps a symlink loop from running forever.
    """
    files: list[str] = []
    dirs: list[str] = []
    with os.scandir(pred_dir) as top:
        for entry in top:
            if not entry.is_dir():
                files.append(entry.name)
                continue
            dirs.append(entry.name)
            with os.scandir(entry.path) as inner:
                for sub in inner:
                    (dirs if sub.is_dir() else files).append(f"{entry.name}/{sub.name}")
    return files, dirs


def check_prediction_dir(
    pred_dir: Path,
    expected: Expected,
    match_keys: Iterable[int] | None,
    workers: int = 0,
    progress: bool = False,
) -> tuple[list[Problem], list[PngResult]]:
    """Layout and per-PNG rules for a folder; ``match_keys`` (when given) must hold every id used.

    ``match.json`` / ``method.txt`` at the folder root are ignored: the zip gets ``--match`` and the
    method options instead; so is ``protocol.json`` (how the folder was made; never packed).
    """
    files, dirs = list_prediction_dir(pred_dir)
    skipped = (*ROOT_FILES, PROVENANCE_NAME)
    layout = check_layout([f for f in files if f not in skipped], dirs, expected)
    tasks = (
        PngTask(name, str(pred_dir / name), str(expected.pngs[name]), expected.num_classes)
        for name in layout.present
    )
    results = run_png_checks(tasks, len(layout.present), workers, progress, "Checking predictions")
    problems = list(layout.problems)
    for result in results:
        problems.extend(result.problems)
    if match_keys is not None:
        problems.extend(check_ids_in_match(results, match_keys))
    return problems, results


# ----------------------------------------------------------------------------------------------- zip


def _zip_info(name: str, is_dir: bool = False) -> zipfile.ZipInfo:
    """An entry header with nothing taken from the clock, the file system or the platform."""
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.create_system = 3  # Unix, so the permission bits below mean the same everywhere
    if is_dir:
        info.external_attr = (0o40755 << 16) | 0x10  # drwxr-xr-x + MS-DOS directory flag
        info.compress_type = zipfile.ZIP_STORED
    else:
        info.external_attr = 0o100644 << 16  # -rw-r--r--
        info.compress_type = zipfile.ZIP_DEFLATED
    return info


def canonical_match_json(match: dict[int, int]) -> bytes:
    """``{"1": .., ..., "C": .., "0": 0}``: the layout PASS writes, independent of the input's formatting."""
    ordered = {str(k): match[k] for k in sorted(match) if k != 0}
    ordered["0"] = match[0]
    return (json.dumps(ordered) + "\n").encode("utf-8")


def write_submission_zip(
    path: Path, pngs: list[tuple[str, Path, int]], match_bytes: bytes, method_text: str
) -> None:
    """Write the zip at ``path``; ``pngs`` are ``(name in zip, file, CRC-32 when validated)``.

    A PNG whose bytes changed since it was validated aborts the write (the caller's atomic
    temporary file is then discarded).
    """
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL) as zf:
        written_dirs: set[str] = set()
        for name, file, crc in sorted(pngs):
            folder = name.split("/")[0]
            if folder not in written_dirs:
                zf.writestr(_zip_info(folder + "/", is_dir=True), b"")
                written_dirs.add(folder)
            data = file.read_bytes()
            if zlib.crc32(data) != crc:
                raise SubmissionError(f"{file}: changed while packing; run `luss pack` again.")
            zf.writestr(_zip_info(name), data, compresslevel=COMPRESS_LEVEL)
        zf.writestr(_zip_info(MATCH_NAME), match_bytes, compresslevel=COMPRESS_LEVEL)
        zf.writestr(_zip_info(METHOD_NAME), method_text.encode("utf-8"), compresslevel=COMPRESS_LEVEL)


def _enclosing_folder(files: list[str], dirs: list[str], expected: Expected) -> str | None:
    """The single top folder every entry is inside, when that folder is not a class folder.

    macOS Finder adds a ``__MACOSX/`` folder next to the one zipped; it does not count (it is
    still reported as extra).
    """
    tops = {n.split("/")[0] for n in files + dirs} - {MACOS_JUNK}
    if len(tops) != 1:
        return None
    (top,) = tops
    if top in files or top in expected.wnids:  # a lone root file, or a zip of one class folder
        return None
    return top


def _strip(name: str, prefix: str | None) -> str:
    return name[len(prefix) + 1 :] if prefix and name.startswith(prefix + "/") else name


def check_submission_zip(
    zip_path: str | os.PathLike[str],
    data: ImageNetS | str | os.PathLike[str],
    workers: int = 0,
    *,
    deep: bool = True,
    limits: ZipLimits = DEFAULT_LIMITS,
    progress: bool = False,
    protocol: str | None = None,
) -> list[str]:
    """Every problem the server would have with ``zip_path`` (an empty list means it passes).

    The zip is read in memory only, through the guards of :mod:`tools.packing.safe_zip`.
    ``deep=False`` checks PNG headers (format, size) but does not decode pixels. ``protocol`` (when
    given) also checks method.txt's ``Training scheme`` line against that leaderboard's.
    """
    expected = Expected.from_dataset(_dataset(data))
    try:
        zf = open_zip(zip_path, limits)
    except UnsafeZipError as exc:
        return [Problem("zip", str(exc))]
    with zf:
        scan = scan_entries(zf, limits)
        problems: list[Problem] = [Problem("zip", f"{Path(zip_path).name}: {p}") for p in scan.problems]
        if scan.fatal:
            return problems
        prefix = _enclosing_folder(list(scan.files) + scan.blocked, scan.dirs, expected)
        if prefix:
            problems.append(
                Problem(
                    "enclosing-folder",
                    f"{prefix}/: every entry is inside this folder, but the server wants the <wnid>/ "
                    f"folders, {MATCH_NAME} and {METHOD_NAME} at the zip root. Zip the folder's content, "
                    f"not the folder (cd {prefix} && zip -r ../submission.zip .), or use `luss pack`.",
                )
            )
        files = {_strip(n, prefix): info for n, info in scan.files.items()}
        blocked = {_strip(n, prefix) for n in scan.blocked if n != prefix}
        dirs = [_strip(d, prefix) for d in scan.dirs if d != prefix]

        def read(name: str) -> bytes | None:
            try:
                return read_entry(zf, files[name], limits)
            except UnsafeZipError as exc:
                problems.append(Problem("zip", str(exc)))
                return None

        match_keys: frozenset[int] | None = None
        for root_file in ROOT_FILES:
            if root_file in files:
                raw = read(root_file)
                if raw is None:
                    continue
                if root_file == MATCH_NAME:
                    parsed = parse_match_json(raw, expected.num_classes)
                    problems.extend(parsed.problems)
                    match_keys = parsed.keys
                else:
                    problems.extend(check_method_text(raw))
                    if protocol is not None:
                        text = raw.decode("utf-8", errors="replace")
                        problems += [Problem("protocol", p) for p in scheme_problems(protocol, text)]
            elif root_file not in blocked:
                what = (
                    "the matching of predicted ids to classes (written by `luss predict --split validation`)"
                    if root_file == MATCH_NAME
                    else "the six-line method description"
                )
                kind = "match" if root_file == MATCH_NAME else "method"
                problems.append(Problem(kind, f"{root_file}: missing at the zip root; it holds {what}."))

        names = [n for n in list(files) + list(blocked) if n not in ROOT_FILES]
        layout = check_layout(names, dirs, expected)
        problems.extend(layout.problems)
        readable = [n for n in layout.present if n in files]

        def tasks() -> Iterator[PngTask]:
            for name in readable:
                raw = read(name)
                if raw is not None:
                    yield PngTask(name, raw, str(expected.pngs[name]), expected.num_classes, decode=deep)

        results = run_png_checks(tasks(), len(readable), workers, progress, "Checking zip")
    for result in results:
        problems.extend(result.problems)
    if deep and match_keys is not None:
        problems.extend(check_ids_in_match(results, match_keys))
    return order_for_display(problems)


# ---------------------------------------------------------------------------------------------- pack


def _read_match(
    match_path: str | os.PathLike[str] | None, num_classes: int, protocol: str, problems: list[Problem]
) -> ParsedMatch | None:
    """The checked match.json (appending its problems); the identity for a class-id protocol without one."""
    identity = {i: i for i in range(num_classes + 1)}
    ids_are_classes = protocol in PROTOCOLS and PROTOCOLS[protocol].ids_are_classes
    if match_path is None:
        if ids_are_classes:
            return ParsedMatch(identity, frozenset(identity), [])
        problems.append(
            Problem(
                "match",
                f"--match is required under the {protocol} protocol: the match.json that "
                "`luss predict --split validation` writes next to the validation predictions.",
            )
        )
        return None
    match_path = Path(match_path)
    try:
        raw_match = match_path.read_bytes()
    except OSError as exc:
        problems.append(
            Problem(
                "match",
                f"{match_path}: cannot be read ({exc.strerror}); it is written by "
                "`luss predict --split validation` next to the validation predictions.",
            )
        )
        return None
    match = parse_match_json(raw_match, num_classes, str(match_path))
    problems.extend(match.problems)
    if ids_are_classes and not match.problems and match.mapping != identity:
        problems.append(
            Problem(
                "protocol",
                f"{match_path}: is not the identity, but under the {protocol} protocol predictions are "
                "class ids already (no validation matching). Leave out --match.",
            )
        )
    return match


def pack_submission(
    pred_dir: str | os.PathLike[str],
    data: ImageNetS | str | os.PathLike[str],
    match_path: str | os.PathLike[str] | None,
    out_zip: str | os.PathLike[str],
    method: MethodInfo | None = None,
    workers: int = 0,
    *,
    progress: bool = False,
    protocol: str = "fully-unsupervised",
) -> PackResult:
    """Validate ``pred_dir`` + ``match_path`` + ``method`` for ``protocol``, then write ``out_zip``
    atomically.

    Raises :class:`SubmissionError` listing every problem, and writes nothing, if the submission
    would be refused (by the server, or by the protocol's leaderboard: :mod:`tools.packing.protocols`).
    Under ``distance`` and ``semi`` the predictions are class ids, so ``match_path`` may be ``None``
    (the identity is written) and must be the identity when given. The written zip is re-checked
    (headers, layout, match, method) before it replaces ``out_zip``, so a zip that appears there has passed.
    """
    dataset = _dataset(data)
    if method is None and protocol in PROTOCOLS:
        chosen = PROTOCOLS[protocol]
        method = MethodInfo(training_scheme=chosen.training_scheme, description=chosen.description)
    method = method or MethodInfo()
    pred_dir, out_zip = Path(pred_dir), Path(out_zip)
    if not pred_dir.is_dir():
        raise SubmissionError(
            f"{pred_dir}: prediction folder not found (expected <wnid>/<stem>.png per test image, "
            "as written by `luss predict --split test`)."
        )
    if out_zip.is_dir():
        raise SubmissionError(f"{out_zip}: is a folder; --out must be a .zip file path.")
    if out_zip.resolve().is_relative_to(pred_dir.resolve()):
        raise SubmissionError(f"{out_zip}: is inside the prediction folder {pred_dir}; write it elsewhere.")
    expected = Expected.from_dataset(dataset)

    problems: list[Problem] = [Problem("method", p) for p in method.problems()]
    if not problems and protocol in PROTOCOLS:  # the Training scheme line must be the protocol's
        problems += [
            Problem("protocol", p) for p in scheme_problems(protocol, method.to_text(), "--training-scheme")
        ]
    provenance = read_provenance(pred_dir)
    problems += [Problem("protocol", p) for p in protocol_problems(protocol, provenance, pred_dir)]
    match = _read_match(match_path, expected.num_classes, protocol, problems)
    match_keys = match.keys if match is not None else None
    dir_problems, results = check_prediction_dir(pred_dir, expected, match_keys, workers, progress)
    problems.extend(dir_problems)
    if problems:
        raise SubmissionError(
            f"{pred_dir}: not packed, {len(problems)} problems ({summarize(problems)}); nothing was written.",
            order_for_display(problems),
        )

    assert match is not None  # no problems means match.json parsed and is a bijection
    pngs = [(r.name, pred_dir / r.name, r.crc) for r in results]
    with atomic_path(out_zip) as tmp:
        write_submission_zip(tmp, pngs, canonical_match_json(match.mapping), method.to_text())
        post = check_submission_zip(tmp, dataset, workers, deep=False, progress=progress)
        if post:
            raise SubmissionError(f"{out_zip}: the written zip failed its own check (a bug in luss).", post)
    return PackResult(
        path=out_zip,
        num_images=len(pngs),
        num_classes=expected.num_classes,
        size_bytes=out_zip.stat().st_size,
        png_bytes=sum(p.stat().st_size for _, p, _ in pngs),
    )

"""The submission rules, shared by ``luss pack`` (before writing) and ``luss pack --check`` (any zip).

Each rule returns problems instead of raising, so one run reports everything wrong at once. A problem
is a plain string that names the offending file and the fix; it also carries a ``kind`` so a summary
can count them ("3 missing, 1 wrong-size").

What the server (and the official evaluator) needs, from formats.md sections 1.3, 2.1, 2.2 and 3.1:

* exactly one ``<wnid>/<stem>.png`` per test image, nothing else besides ``match.json`` and ``method.txt``;
* each PNG 8-bit RGB (colour type 2), the image's own size, ``id = R + 256*G``, ``B = 0``, ids in ``0..C``;
* ``match.json`` a one-to-one matching of ``1..C`` onto ``1..C`` plus ``"0": 0``; every predicted id a key;
* ``method.txt`` the six labelled lines.
"""

from __future__ import annotations

import io
import json
import re
import struct
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image

from tools.data.imagenet_s import ImageNetS
from tools.data.label_codec import decode_label_rgb
from tools.packing.method_info import parse_method_text
from tools.progress import progress_bar
from tools.workers import chunk_size, worker_count

MATCH_NAME = "match.json"
METHOD_NAME = "method.txt"
ROOT_FILES = (MATCH_NAME, METHOD_NAME)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_TYPES = {0: "greyscale (L)", 2: "RGB", 3: "palette (P)", 4: "greyscale+alpha (LA)", 6: "RGBA"}
MAX_PNG_BYTES = 64 * 1024 * 1024  # a label PNG is a few KB; refuse to load a file that cannot be one
# Below this many PNGs, starting worker processes costs more than it saves.
_POOL_MIN_TASKS = 256
_BATCH = 32  # PNGs per task sent to a worker (amortises pickling and scheduling)

# Problem kinds, in the order a summary lists them.
KINDS = (
    "zip",
    "enclosing-folder",
    "match",
    "protocol",
    "method",
    "missing",
    "extra",
    "case-duplicate",
    "png-format",
    "wrong-size",
    "blue-channel",
    "id-range",
    "id-not-in-match",
)


class Problem(str):
    """A problem message (a ``str``) that also remembers its kind, for per-kind counts."""

    kind: str

    def __new__(cls, kind: str, text: str) -> Problem:
        obj = super().__new__(cls, text)
        obj.kind = kind
        return obj

    def __reduce__(self):  # keep the kind when sent back from a worker process
        return (Problem, (self.kind, str(self)))


def count_kinds(problems: Iterable[str]) -> Counter[str]:
    """Problems per kind (plain strings count as ``other``)."""
    return Counter(getattr(p, "kind", "other") for p in problems)


def summarize(problems: Iterable[str]) -> str:
    """``"3 missing, 1 wrong-size"``: the per-kind counts, in :data:`KINDS` order."""
    counts = count_kinds(problems)
    order = [k for k in KINDS if k in counts] + sorted(k for k in counts if k not in KINDS)
    return ", ".join(f"{counts[k]} {k}" for k in order)


def order_for_display(problems: Iterable[str], per_kind: int = 3) -> list[str]:
    """The first ``per_kind`` problems of every kind first (in :data:`KINDS` order), then the rest.

    The CLI shows only the first 20 lines, so thousands of one kind must not hide the others.
    """
    rank = {k: i for i, k in enumerate(KINDS)}
    seen: Counter[str] = Counter()
    keyed = []
    for i, p in enumerate(problems):
        kind = getattr(p, "kind", "other")
        seen[kind] += 1
        keyed.append((seen[kind] > per_kind, rank.get(kind, len(KINDS)), i, p))
    return [p for *_, p in sorted(keyed, key=lambda t: t[:3])]


def format_ids(ids: Iterable[int], limit: int = 12) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3, 7"`` (at most ``limit`` runs, then ``...``)."""
    runs: list[str] = []
    values = sorted(set(ids))
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        runs.append(str(values[i]) if i == j else f"{values[i]}-{values[j]}")
        i = j + 1
    return ", ".join(runs[:limit]) + (", ..." if len(runs) > limit else "")


# --------------------------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class Expected:
    """What a submission for one dataset must contain: ``<wnid>/<stem>.png`` -> test image path."""

    pngs: dict[str, Path]
    wnids: frozenset[str]
    num_classes: int

    @classmethod
    def from_dataset(cls, data: ImageNetS) -> Expected:
        pngs = {s.png_name(): s.image_path for s in data.samples("test")}
        return cls(pngs=pngs, wnids=frozenset(n.split("/")[0] for n in pngs), num_classes=data.num_classes)


@dataclass
class Layout:
    """Result of the layout rule: ``present`` are the expected PNG names found (to be checked)."""

    present: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def check_layout(files: Iterable[str], dirs: Iterable[str], expected: Expected) -> Layout:
    """Names only: one PNG per test image, no extra/nested/non-PNG files, no case-only duplicates.

    ``files`` and ``dirs`` are ``/``-separated paths relative to the submission root, without
    ``match.json``/``method.txt`` (checked separately).
    """
    out = Layout()
    files = sorted(files)
    by_lower: dict[str, list[str]] = defaultdict(list)
    unknown_folders: dict[str, list[str]] = defaultdict(list)
    lower_expected = {n.lower(): n for n in expected.pngs}
    for name in files:
        by_lower[name.lower()].append(name)
        parts = name.split("/")
        if name in expected.pngs:
            out.present.append(name)
        elif len(parts) == 1:
            out.problems.append(
                Problem(
                    "extra",
                    f"{name}: unexpected file at the root; the root holds only <wnid>/ folders, "
                    f"{MATCH_NAME} and {METHOD_NAME}.",
                )
            )
        elif len(parts) > 2:
            out.problems.append(
                Problem("extra", f"{name}: nested too deep; predictions are <wnid>/<stem>.png, one level.")
            )
        elif parts[0] not in expected.wnids:
            unknown_folders[parts[0]].append(name)
        elif name.lower() in lower_expected:
            out.problems.append(
                Problem(
                    "extra",
                    f"{name}: name differs in case from the expected {lower_expected[name.lower()]} "
                    "(the server's file system is case-sensitive).",
                )
            )
        elif not name.endswith(".png"):
            out.problems.append(
                Problem("extra", f"{name}: not a .png prediction; only <wnid>/<stem>.png files belong here.")
            )
        else:
            out.problems.append(
                Problem(
                    "extra",
                    f"{name}: no test image {parts[0]}/{Path(parts[1]).stem}.* in the dataset "
                    "(a prediction for another split?).",
                )
            )
    for folder, names in sorted(unknown_folders.items()):
        out.problems.append(
            Problem(
                "extra",
                f"{folder}/: folder is not a test class folder ({len(names)} files, e.g. {names[0]}).",
            )
        )
    for group in by_lower.values():
        if len(group) > 1:
            out.problems.append(
                Problem(
                    "case-duplicate",
                    f"{' and '.join(group)}: names differ only in case; a case-insensitive file "
                    "system would merge them.",
                )
            )
    for d in sorted(set(dirs)):
        if "/" in d:
            out.problems.append(Problem("extra", f"{d}/: nested folder; predictions are one level deep."))
        elif d not in expected.wnids and d not in unknown_folders:
            out.problems.append(Problem("extra", f"{d}/: folder is not a test class folder."))
    present = set(out.present)
    for name in sorted(set(expected.pngs) - present):
        out.problems.append(
            Problem(
                "missing",
                f"{name}: missing; every test image needs exactly one prediction "
                f"(test image {expected.pngs[name]}).",
            )
        )
    return out


# ------------------------------------------------------------------------------------------------ PNG


@dataclass(frozen=True)
class PngTask:
    """One PNG to check. ``payload`` is its bytes (from a zip) or its path (from a folder)."""

    name: str
    payload: bytes | str
    image_path: str
    num_classes: int
    decode: bool = True  # False: header-only check (format and size), no pixel decoding


@dataclass(frozen=True)
class PngResult:
    """Problems of one PNG, the ids it uses (empty when not decoded) and the CRC-32 of its bytes."""

    name: str
    problems: tuple[Problem, ...]
    ids: tuple[int, ...] = ()
    crc: int = 0


def png_header(data: bytes) -> tuple[int, int, int, int] | None:
    """``(width, height, bit_depth, colour_type)`` from the IHDR chunk, or ``None`` if not a PNG."""
    if len(data) < 33 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    return width, height, depth, colour


def _read_payload(task: PngTask) -> bytes:
    if isinstance(task.payload, bytes):
        return task.payload
    path = Path(task.payload)
    if path.stat().st_size > MAX_PNG_BYTES:
        raise ValueError(f"{path.stat().st_size} bytes, too large for a label PNG")
    return path.read_bytes()


def check_png(task: PngTask) -> PngResult:
    """All per-file rules for one prediction PNG. Never raises for a bad file; reports it."""
    name = task.name

    def fail(kind: str, text: str, crc: int = 0) -> PngResult:
        return PngResult(name, (Problem(kind, f"{name}: {text}"),), crc=crc)

    try:
        data = _read_payload(task)
    except (OSError, ValueError) as exc:
        return fail("png-format", f"cannot be read ({exc}).")
    crc = zlib.crc32(data)
    header = png_header(data)
    if header is None:
        return fail("png-format", "not a PNG file (bad signature or header).", crc)
    width, height, depth, colour = header
    if colour != 2 or depth != 8:
        what = f"{depth}-bit {_COLOUR_TYPES.get(colour, f'colour type {colour}')}"
        return fail(
            "png-format",
            f"is a {what} PNG; expected 8-bit RGB (colour type 2) with id = R + 256*G, B = 0 "
            "(write it with tools.data.label_codec.write_label_png).",
            crc,
        )
    try:
        # Opening a JPEG reads its header only; .size is the stored size (no EXIF rotation),
        # which is what the ground truth has.
        with Image.open(task.image_path) as img:
            image_size = img.size
    except (OSError, ValueError) as exc:
        return fail("png-format", f"cannot read the size of its test image {task.image_path} ({exc}).", crc)
    if (width, height) != image_size:
        return fail(
            "wrong-size",
            f"is {width}x{height} but its test image {Path(task.image_path).name} is "
            f"{image_size[0]}x{image_size[1]}; predictions must be at the original size.",
            crc,
        )
    if not task.decode:
        return PngResult(name, (), crc=crc)
    try:
        # The IHDR size equals the image size, so decoding is bounded by a real image's pixels.
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            if img.mode != "RGB":
                return fail("png-format", f"decodes to mode {img.mode!r}, expected 'RGB'.", crc)
            rgb = np.asarray(img)
    except (OSError, ValueError, SyntaxError, zlib.error, Image.DecompressionBombError) as exc:
        return fail("png-format", f"cannot be decoded ({exc}); the file is corrupt.", crc)
    if rgb[:, :, 2].any():
        return fail(
            "blue-channel",
            "blue channel is not zero; this is not an id PNG (id = R + 256*G, B = 0). "
            "Was a colour visualisation saved instead of the ids?",
            crc,
        )
    # Ids are < 65536 by construction, so a bincount (linear) beats np.unique (a sort).
    ids = np.flatnonzero(np.bincount(decode_label_rgb(rgb).ravel()))
    bad = ids[ids > task.num_classes]
    if bad.size:
        return PngResult(
            name,
            (
                Problem(
                    "id-range",
                    f"{name}: ids {format_ids(bad.tolist())} are outside 0..{task.num_classes} "
                    "(0 = background, 1..C = predicted clusters).",
                ),
            ),
            tuple(int(i) for i in ids if i <= task.num_classes),
            crc,
        )
    return PngResult(name, (), tuple(int(i) for i in ids), crc)


def _check_batch(tasks: list[PngTask]) -> list[PngResult]:
    return [check_png(t) for t in tasks]


def _batches(tasks: Iterable[PngTask], size: int) -> Iterator[list[PngTask]]:
    batch: list[PngTask] = []
    for task in tasks:
        batch.append(task)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def run_png_checks(
    tasks: Iterable[PngTask],
    total: int,
    workers: int = 0,
    progress: bool = False,
    label: str = "Checking PNGs",
) -> list[PngResult]:
    """Check PNGs, in a process pool when worth it, with a rich progress bar; results sorted by name.

    ``tasks`` may be a lazy iterator (e.g. reading a zip): at most a few batches per worker are in
    flight, so memory stays bounded however large the submission.
    """
    n_workers = worker_count(workers, total, _POOL_MIN_TASKS)
    results: list[PngResult] = []
    with progress_bar(label, total, progress) as advance:

        def collect(batch_results: list[PngResult]) -> None:
            results.extend(batch_results)
            advance(len(batch_results))

        if n_workers == 1:
            for batch in _batches(tasks, _BATCH):
                collect(_check_batch(batch))
        else:
            # Small jobs get smaller batches, so every worker has some.
            size = chunk_size(total, n_workers, _BATCH)
            _run_pool(_batches(tasks, size), n_workers, collect)
    results.sort(key=lambda r: r.name)
    return results


def _run_pool(
    batches: Iterator[list[PngTask]], n_workers: int, collect: Callable[[list[PngResult]], None]
) -> None:
    # "spawn": workers do not inherit the parent's threads (rich's refresher) or a loaded framework.
    pool = ProcessPoolExecutor(n_workers, mp_context=get_context("spawn"))
    try:
        pending: set[Future[list[PngResult]]] = set()
        for batch in batches:
            pending.add(pool.submit(_check_batch, batch))
            if len(pending) >= 4 * n_workers:  # bounded: a lazy zip reader is not drained into memory
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    collect(fut.result())
        for fut in pending:
            collect(fut.result())
    except BaseException:
        # Ctrl-C or an error: drop queued batches instead of waiting for them all.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


# --------------------------------------------------------------------------------------- match.json

_INT_KEY = re.compile(r"0|[1-9][0-9]*")


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    counts = Counter(k for k, _ in pairs)
    dupes = [k for k, c in counts.items() if c > 1]
    if dupes:
        raise ValueError(f"duplicate keys {dupes[:5]}")
    return dict(pairs)


@dataclass(frozen=True)
class ParsedMatch:
    """A checked match.json. ``mapping`` is a valid matching only when ``problems`` is empty.

    ``keys`` are the integer keys present whatever their value (so a caller can still say which
    predicted ids have no entry); ``None`` when the file is not a JSON object at all.
    """

    mapping: dict[int, int]
    keys: frozenset[int] | None
    problems: list[Problem]


def parse_match_json(raw: bytes, num_classes: int, source: str = MATCH_NAME) -> ParsedMatch:
    """Parse ``{"<pred>": gt, ..., "0": 0}`` strictly; check it is a bijection of ``1..C`` plus ``0 -> 0``."""
    problems: list[Problem] = []

    def bad(text: str) -> None:
        problems.append(Problem("match", f"{source}: {text}"))

    try:
        obj = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except (UnicodeDecodeError, ValueError) as exc:
        bad(f'not valid JSON ({exc}). It should look like {{"1": 34, ..., "0": 0}}.')
        return ParsedMatch({}, None, problems)
    if not isinstance(obj, dict):
        bad(f'must be a JSON object {{"<predicted id>": <class id>, ...}}, got a {type(obj).__name__}.')
        return ParsedMatch({}, None, problems)
    mapping: dict[int, int] = {}
    keys: set[int] = set()
    for key, value in obj.items():
        if not _INT_KEY.fullmatch(key):  # "01" or " 1" would collide with "1" once int()-ed
            bad(f"key {key!r} is not a plain non-negative integer.")
            continue
        keys.add(int(key))
        if type(value) is not int:  # bool is an int subclass; true/false are not class ids
            bad(f"value of {key!r} is {json.dumps(value)}, not an integer class id.")
        else:
            mapping[int(key)] = value
    wanted = set(range(num_classes + 1))
    if wanted - keys:
        bad(f"missing keys {format_ids(wanted - keys)}; every id 0..{num_classes} needs an entry.")
    if keys - wanted:
        bad(f"keys {format_ids(keys - wanted)} are outside 0..{num_classes}.")
    if 0 in mapping and mapping[0] != 0:
        bad(f'"0" maps to {mapping[0]}; background must map to 0 ("0": 0).')
    targets = {k: v for k, v in mapping.items() if k != 0 and k in wanted}
    outside = sorted({v for v in targets.values() if not 1 <= v <= num_classes})
    if outside:
        bad(f"targets {format_ids(outside)} are not classes 1..{num_classes}.")
    shared = {v: sorted(k for k, t in targets.items() if t == v) for v in set(targets.values())}
    shared = {v: ks for v, ks in shared.items() if len(ks) > 1}
    if shared:
        shown = "; ".join(f"{', '.join(map(str, ks))} -> {v}" for v, ks in sorted(shared.items())[:5])
        bad(f"not one-to-one: several predicted ids map to the same class ({shown}).")
    unreached = set(range(1, num_classes + 1)) - set(targets.values())
    if unreached and not problems:
        bad(f"classes {format_ids(unreached)} are never a target; the matching must be one-to-one.")
    return ParsedMatch(mapping, frozenset(keys), problems)


def check_ids_in_match(results: Iterable[PngResult], keys: Iterable[int]) -> list[Problem]:
    """Every predicted id (0 included) must be a key of match.json, or the server fails on it."""
    keys = set(keys)
    users: dict[int, list[str]] = defaultdict(list)
    for result in results:
        for i in result.ids:
            if i not in keys:
                users[i].append(result.name)
    return [
        Problem(
            "id-not-in-match",
            f"{names[0]}: predicted id {i} is not a key of {MATCH_NAME} (used in {len(names)} files).",
        )
        for i, names in sorted(users.items())
    ]


# --------------------------------------------------------------------------------------- method.txt


def check_method_text(raw: bytes, source: str = METHOD_NAME) -> list[Problem]:
    """The six labelled, non-empty lines of ``method.txt``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [Problem("method", f"{source}: not UTF-8 text ({exc}).")]
    _, problems = parse_method_text(text, source)
    return [Problem("method", p) for p in problems]

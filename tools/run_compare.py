"""Comparing two run folders file by file: what the fault matrix (``bench/faults.py``) checks after a
killed-and-rerun stage against an uninterrupted run of the same seed.

PNGs, JSON, text and zips must match byte for byte (a zip member by member), ``.npy``/``.npz`` arrays
exactly, checkpoints tensor by tensor; only wall-clock facts are left out: the ``saved_at`` stamp of a
checkpoint, timing keys and the ``written`` count of a step's marker in JSON (and JSON-lines) files, and
``metrics.jsonl``
(img/s, and after a kill the epochs that ran
twice). A file on one side only (a leftover ``.tmp`` or ``.lock``, a missing output) is a difference.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import numpy as np

# JSON keys that hold wall-clock facts, not results; and "written", how many files the last command of a
# step wrote (a rerun after a kill writes only the rest; the files themselves are compared).
CLOCK_KEYS = ("saved_at", "seconds", "img_s", "elapsed", "time_s", "duration", "written")


def _drop_clock(obj):
    if isinstance(obj, dict):
        return {k: _drop_clock(v) for k, v in obj.items() if not any(c in k for c in CLOCK_KEYS)}
    if isinstance(obj, list):
        return [_drop_clock(v) for v in obj]
    return obj


def _tensors_equal(a, b, where: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        a, b = _drop_clock(a), _drop_clock(b)
        if a.keys() != b.keys():
            out.append(f"{where}: keys differ ({sorted(set(a) ^ set(b))[:3]})")
            return
        for key in a:
            _tensors_equal(a[key], b[key], f"{where}.{key}", out)
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or not np.array_equal(a, b):
            diff = (
                np.abs(a.astype(np.float64) - b.astype(np.float64)).max() if a.shape == b.shape else "shape"
            )
            out.append(f"{where}: max |diff| {diff}")
    elif isinstance(a, list | tuple) and isinstance(b, list | tuple) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _tensors_equal(x, y, f"{where}[{i}]", out)
    elif a != b:
        out.append(f"{where}: {a!r} != {b!r}")


def _same_file(rel: str, a: Path, b: Path) -> list[str]:
    """Differences between two versions of one output file (empty when they are the same)."""
    if a.read_bytes() == b.read_bytes():
        return []
    found: list[str] = []
    if a.suffix == ".pkl":
        with open(a, "rb") as fa, open(b, "rb") as fb:
            _tensors_equal(pickle.load(fa), pickle.load(fb), rel, found)
    elif a.suffix == ".json" or a.name == ".done" or a.name.endswith(".done"):
        if _drop_clock(json.loads(a.read_text())) != _drop_clock(json.loads(b.read_text())):
            found.append(f"{rel}: JSON differs")
    elif a.suffix == ".jsonl":  # one JSON record per line (RUN/config-history.jsonl)
        lines_a, lines_b = (
            [_drop_clock(json.loads(line)) for line in p.read_text().splitlines() if line.strip()]
            for p in (a, b)
        )
        if lines_a != lines_b:
            found.append(f"{rel}: JSON lines differ")
    elif a.suffix in (".npy", ".npz"):
        xa, xb = np.load(a), np.load(b)
        if a.suffix == ".npy":
            same = np.array_equal(xa, xb)
        else:
            same = xa.files == xb.files and all(np.array_equal(xa[k], xb[k]) for k in xa.files)
        if not same:
            found.append(f"{rel}: arrays differ")
    elif a.suffix == ".zip":
        with zipfile.ZipFile(a) as za, zipfile.ZipFile(b) as zb:
            names = za.namelist()
            if names != zb.namelist() or any(za.read(n) != zb.read(n) for n in names):
                found.append(f"{rel}: zip members differ")
    else:
        found.append(f"{rel}: bytes differ")
    return found


def _ignored(rel: str) -> bool:
    return Path(rel).name == "metrics.jsonl"


def compare_runs(reference: Path, trial: Path) -> tuple[int, int, list[str]]:
    """(files compared, identical, differences) between two run folders."""
    ref = {str(p.relative_to(reference)) for p in reference.rglob("*") if p.is_file()}
    got = {str(p.relative_to(trial)) for p in trial.rglob("*") if p.is_file()}
    differences = [f"{rel}: missing" for rel in sorted(ref - got)]
    differences += [f"{rel}: extra file" for rel in sorted(got - ref)]
    compared = identical = 0
    for rel in sorted(ref & got):
        if _ignored(rel):
            continue
        compared += 1
        found = _same_file(rel, reference / rel, trial / rel)
        identical += not found
        differences += found
    return compared, identical, differences

"""``match.json``: ``{"pred_id": class_id, ..., "0": 0}`` as the official tools write and read it.

ImageNet-S ``match.py`` writes it (``json.dumps`` turns the int keys into strings); ``evaluator.py
--match`` and the ImageNet-S server read it back with ``int(k)`` and relabel the prediction with a
plain dict lookup, so any many-to-one map works and every predicted id must be a key.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tools.atomic_io import atomic_write_json
from tools.errors import LussError

MatchDict = dict[int, int]


def _as_int(value: object) -> int | None:
    """An int from a JSON int or a decimal string of one; None otherwise (bools and floats refused)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip(), 10)
        except ValueError:
            return None
    return None


def load_match_file(path: str | os.PathLike[str]) -> MatchDict:
    """Read a match file -> ``{pred_id: class_id}``. Errors name the file and the bad entry."""
    path = Path(path)
    hint = 'Expected a JSON object {"pred_id": class_id, ..., "0": 0}, as `luss predict` writes.'
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LussError(f"{path}: match file not found.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LussError(f"{path}: cannot read the match file ({exc}).") from exc
    except json.JSONDecodeError as exc:
        raise LussError(f"{path}: not valid JSON ({exc}). {hint}") from exc
    if not isinstance(raw, dict):
        raise LussError(f"{path}: the match file holds a {type(raw).__name__}, not an object. {hint}")
    match: MatchDict = {}
    for key, value in raw.items():
        pred_id = _as_int(key)
        if pred_id is None or pred_id < 0:
            raise LussError(f"{path}: key {key!r} is not a non-negative integer id. {hint}")
        class_id = _as_int(value) if not isinstance(value, str) else None
        if class_id is None or class_id < 0:
            raise LussError(f"{path}: value {value!r} of key {key!r} is not a non-negative integer. {hint}")
        if pred_id in match:
            raise LussError(f"{path}: id {pred_id} appears twice (keys {key!r}).")
        match[pred_id] = class_id
    if 0 not in match:
        raise LussError(
            f'{path}: no entry for "0" (background). The official applier looks up every predicted '
            'id, background included; add "0": 0.'
        )
    return match


def save_match_file(path: str | os.PathLike[str], match: MatchDict) -> None:
    """Write a match atomically with string keys in id order; ``"0": 0`` is added when missing."""
    entries = {int(k): int(v) for k, v in match.items()}
    entries.setdefault(0, 0)
    atomic_write_json(path, {str(k): entries[k] for k in sorted(entries)})

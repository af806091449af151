"""The four ImageNet-S leaderboards ("protocols") and what each refuses.

Each protocol is its own CodaLab competition, and "miss-matched submissions will be deleted"
(formats.md 3.1). What they allow (ImageNet-S README):

| protocol | may use | ``Training scheme`` line |
|---|---|---|
| fully-unsupervised | no labels at all; clusters matched to classes on validation (match.json) | SSL |
| distance | unsupervised pretraining; class embeddings from the train-semi masks | SSL + distance matching |
| semi | fine-tuning on the train-semi 1 % pixel labels | SSL+Sup |
| free | anything except validation/test labels | Free |

Every luss prediction folder records how it was made in ``PRED/protocol.json``
(:class:`Provenance`: written by ``luss predict``, ``luss distance``, and copied by ``luss refine``).
For a folder without one, the run's ``RUN/config.yaml`` (``PRED`` is ``RUN/<stage>/<split>``) is read.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from tools.atomic_io import atomic_write_json

PROVENANCE_NAME = "protocol.json"


@dataclass(frozen=True)
class Protocol:
    name: str
    training_scheme: str  # the method.txt line
    leaderboard: str
    description: str
    ids_are_classes: bool  # predictions hold class ids, so match.json is the identity


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol(
            "fully-unsupervised",
            "SSL",
            "https://codalab.lisn.upsaclay.fr/competitions/1317",
            "Fully unsupervised: self-supervised pretraining, pixel-attention clustering into pseudo-labels, "
            "fine-tuning on the pseudo-labels; clusters matched to classes on validation.",
            ids_are_classes=False,
        ),
        Protocol(
            "distance",
            "SSL + distance matching",
            "https://codalab.lisn.upsaclay.fr/competitions/1315",
            "Distance matching: self-supervised pretraining only; class embeddings are the mean backbone "
            "features inside the train-semi masks, each pixel takes the nearest class by cosine similarity.",
            ids_are_classes=True,
        ),
        Protocol(
            "semi",
            "SSL+Sup",
            "https://codalab.lisn.upsaclay.fr/competitions/1318",
            "Semi-supervised: self-supervised pretraining, then fine-tuning on the train-semi 1 % pixel "
            "labels (10 images per class).",
            ids_are_classes=True,
        ),
        Protocol(
            "free",
            "Free",
            "https://codalab.lisn.upsaclay.fr/competitions/1316",
            "Free protocol: no validation or test labels used.",
            ids_are_classes=False,
        ),
    )
}


@dataclass(frozen=True)
class Provenance:
    """How a prediction folder was made: its protocol, which labels trained it, and whether any image's
    folder name was read as its class (forbidden by every protocol: it is test/validation labels)."""

    protocol: str
    labels: str = "none"  # none | train-semi
    folder_labels: bool = False
    source: str = PROVENANCE_NAME  # where this was read from (for messages)


def write_provenance(pred_dir: str | Path, provenance: Provenance) -> None:
    fields = {k: v for k, v in asdict(provenance).items() if k != "source"}
    atomic_write_json(Path(pred_dir) / PROVENANCE_NAME, fields)


def _from_config(config_file: Path) -> Provenance | None:
    from tools.config.loader import load_config

    try:
        config = load_config(str(config_file), [])
    except Exception:  # noqa: BLE001 - not a luss config: no evidence either way
        return None
    semi = config.finetune.labels == "train-semi"
    return Provenance(
        protocol="semi" if semi else "fully-unsupervised",
        labels="train-semi" if semi else "none",
        folder_labels=config.predict.use_folder_labels,
        source=str(config_file),
    )


def read_provenance(pred_dir: str | Path) -> Provenance | None:
    """``PRED/protocol.json``, else what ``RUN/config.yaml`` two levels up says, else ``None``."""
    pred_dir = Path(pred_dir)
    path = pred_dir / PROVENANCE_NAME
    if path.is_file():
        try:
            raw = json.loads(path.read_text())
            if not isinstance(raw, dict):
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeDecodeError):  # unreadable: evidence of nothing, refused below
            return Provenance(protocol="unreadable", source=str(path))
        return Provenance(
            protocol=str(raw.get("protocol", "")),
            labels=str(raw.get("labels", "none")),
            folder_labels=bool(raw.get("folder_labels", False)),
            source=str(path),
        )
    config_file = pred_dir.parent.parent / "config.yaml"
    return _from_config(config_file) if config_file.is_file() else None


def protocol_problems(protocol: str, provenance: Provenance | None, pred_dir: Path) -> list[str]:
    """Why predictions made as ``provenance`` may not be submitted under ``protocol`` (empty: they may)."""
    if protocol not in PROTOCOLS:
        return [f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}."]
    if provenance is None:
        if PROTOCOLS[protocol].ids_are_classes:
            return [
                f"{pred_dir}: no {PROVENANCE_NAME} (nor RUN/config.yaml) says these predictions were made "
                f"under the {protocol} protocol. Pack the folder `luss "
                f"{'distance' if protocol == 'distance' else 'predict'}` wrote."
            ]
        return []
    if provenance.folder_labels:
        return [
            f"{provenance.source}: predict.use_folder_labels is on, so image classes were read from "
            "validation/test folder names: labels that every ImageNet-S protocol forbids. Predict again "
            "without it."
        ]
    if provenance.protocol not in PROTOCOLS:
        return [
            f"{provenance.source}: unreadable or names no known protocol ({provenance.protocol!r}), so it "
            "says nothing about how these predictions were made. Fix: predict them again with luss."
        ]
    if protocol == "free" or provenance.protocol == protocol:
        return []
    fix = f"submit it with --protocol {provenance.protocol} (its own leaderboard)"
    return [
        f"{provenance.source}: these predictions were made under the {provenance.protocol} protocol "
        f"(labels: {provenance.labels}); the {protocol} leaderboard deletes them. Fix: {fix}."
    ]


def scheme_problems(protocol: str, method_text: str, source: str = "method.txt") -> list[str]:
    """The ``Training scheme`` line of a zip's method.txt must be ``protocol``'s (any line under free)."""
    from tools.packing.method_info import parse_method_text

    info, problems = parse_method_text(method_text, source)
    if info is None or protocol == "free":
        return []  # the method.txt rule reports a malformed file
    wanted = PROTOCOLS[protocol].training_scheme
    if info.training_scheme != wanted:
        return [
            f"{source}: 'Training scheme: {info.training_scheme}' is not the {protocol} protocol's "
            f"'{wanted}'. Fix: pack it again with `luss pack --protocol {protocol}`."
        ]
    return []

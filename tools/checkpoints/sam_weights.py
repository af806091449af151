"""Load the image-encoder weights of an official SAM checkpoint (``sam_vit_b_01ec64.pth``) strictly.

The checkpoint is a plain state dict of the whole ``Sam`` model. We keep the ``image_encoder.*`` keys,
strip the prefix, ignore SAM's prompt encoder, mask decoder and pixel statistics, and also ignore the
encoder's ``neck.*`` (``luss`` feeds every block to the Feature Aggregator and never uses the neck).
Every remaining key must match the Jittor encoder exactly, or a :class:`StateDictMismatchError` names it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tools.checkpoints.strict_load import StateDictMismatchError, assign_state_dict
from tools.checkpoints.torch_zip import CheckpointFormatError, load_torch_checkpoint

ENCODER_PREFIX = "image_encoder."
# Encoder sub-modules that exist in SAM but not in our encoder, dropped on purpose.
IGNORED_ENCODER_PREFIXES = ("neck.",)


@dataclass
class SamLoadReport:
    """What a load did: keys assigned to the encoder and checkpoint keys left out on purpose."""

    path: str
    loaded: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def split_sam_state(state: dict, path: str) -> tuple[dict[str, np.ndarray], list[str]]:
    """Split a SAM state dict into (encoder state with the prefix stripped, ignored keys)."""
    if not isinstance(state, dict):
        raise CheckpointFormatError(f"{path}: expected a state dict, found {type(state).__name__}")
    encoder: dict[str, np.ndarray] = {}
    ignored: list[str] = []
    for key, value in state.items():
        if not key.startswith(ENCODER_PREFIX):
            ignored.append(key)
            continue
        name = key[len(ENCODER_PREFIX) :]
        if name.startswith(IGNORED_ENCODER_PREFIXES):
            ignored.append(key)
        else:
            encoder[name] = value
    if not encoder:
        raise StateDictMismatchError(
            f"{path}: no '{ENCODER_PREFIX}*' keys; is this a SAM checkpoint (sam_vit_b_01ec64.pth)?",
            [f"no key starts with '{ENCODER_PREFIX}'"],
        )
    return encoder, ignored


def load_sam_encoder_weights(encoder, path: str | Path) -> SamLoadReport:
    """Assign the SAM image-encoder weights in ``path`` to ``encoder`` (a ``SamImageEncoder``), strictly.

    Raises ``CheckpointFormatError`` for an unreadable file, and ``StateDictMismatchError`` naming every
    missing or unexpected ``image_encoder.*`` key and every shape mismatch (expected vs found) otherwise.
    """
    path = str(path)
    encoder_state, ignored = split_sam_state(load_torch_checkpoint(path), path)
    loaded = assign_state_dict(encoder, encoder_state, path, key_prefix=ENCODER_PREFIX)
    return SamLoadReport(path=path, loaded=loaded, ignored=ignored)

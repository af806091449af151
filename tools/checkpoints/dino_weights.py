"""Load a DINO ViT backbone (for MaskCut saliency) from a user's checkpoint, strictly and without torch.

Accepted layouts (all read by :func:`tools.checkpoints.torch_zip.load_torch_checkpoint`):

* an official pretrained backbone file, a plain state dict (``dino_deitsmall16_pretrain.pth``,
  ``dino_vitbase8_pretrain.pth``, ...);
* a DINO training checkpoint (``checkpoint.pth`` of ``main_dino.py``) with ``teacher`` and ``student``
  entries whose keys carry ``backbone.`` (teacher) or ``module.backbone.`` (the DDP student) prefixes.
  The **teacher** is taken by default, as the DINO authors evaluate it; ``which="student"`` picks the
  other one;
* ``{'model': ...}`` whose keys carry ``teacher.backbone.`` / ``student.backbone.`` prefixes.

The DINO projection head (``head.*``) is dropped on purpose. The architecture comes from the weights:
embed dim from ``cls_token``, patch size from ``patch_embed.proj.weight``, depth from the block
indices, and DINO's ``embed_dim // 64`` heads (the reference built ViT-Tiny with 6 heads against a
3-head checkpoint; the shapes still fit, so only a rule like this one avoids that). Every remaining key
must then fit the Jittor ViT exactly, or a :class:`StateDictMismatchError` names it and the file.
Nothing is downloaded.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tools.checkpoints.strict_load import StateDictMismatchError, assign_state_dict
from tools.checkpoints.torch_zip import CheckpointFormatError, load_torch_checkpoint
from tools.errors import LussError

DINO_WEIGHTS = ("teacher", "student")
EXPECTED_FILE = (
    "an official DINO backbone file (e.g. dino_deitsmall16_pretrain.pth, dino_vitbase8_pretrain.pth) "
    "or a DINO training checkpoint (checkpoint.pth with 'teacher' and 'student' entries)"
)
# Wrappers DINO training puts around the ViT's keys, stripped in this order (as DINO's own loader does).
WRAPPER_PREFIXES = ("module.", "backbone.")
HEAD_PREFIX = "head."
HEAD_DIM = 64  # DINO's ViTs all use 64-d heads: tiny 192/3, small 384/6, base 768/12
_BLOCK_KEY = re.compile(r"^blocks\.(\d+)\.")


@dataclass(frozen=True)
class DinoArch:
    """A DINO ViT's shape, read from its weights."""

    embed_dim: int
    depth: int
    num_heads: int
    patch_size: int
    img_size: int  # the training resolution the stored pos_embed was made for
    mlp_hidden: int

    def describe(self) -> str:
        return (
            f"ViT {self.embed_dim}-d, {self.depth} blocks, {self.num_heads} heads, patch {self.patch_size} "
            f"(pos_embed for {self.img_size}x{self.img_size})"
        )


@dataclass
class DinoLoadReport:
    """What a load did: which part of the file, the architecture, assigned and dropped keys."""

    path: str
    source: str
    arch: DinoArch
    loaded: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def _shape(state: dict, key: str) -> tuple[int, ...]:
    return tuple(int(s) for s in np.asarray(state[key]).shape)


def select_network(checkpoint, path: str, which: str = "teacher") -> tuple[dict, str]:
    """The state dict of the chosen DINO network in a loaded file, and where in the file it was."""
    if which not in DINO_WEIGHTS:
        raise LussError(f"DINO weights {which!r}: choose 'teacher' (the default) or 'student'.")
    if not isinstance(checkpoint, dict):
        raise CheckpointFormatError(
            f"{path}: holds a {type(checkpoint).__name__}, not a state dict; expected {EXPECTED_FILE}."
        )
    if "teacher" in checkpoint or "student" in checkpoint:
        state = checkpoint.get(which)
        if not isinstance(state, dict):
            found = ", ".join(repr(k) for k in checkpoint)
            raise CheckpointFormatError(
                f"{path}: a DINO training checkpoint without a {which!r} state dict (entries: {found}); "
                f"choose the other one with cluster.saliency.dino_weights."
            )
        return state, f"{path} [{which!r}]"
    model = checkpoint.get("model")
    if isinstance(model, dict):
        prefix = f"{which}."
        state = {k[len(prefix) :]: v for k, v in model.items() if k.startswith(prefix)}
        if not state:
            raise CheckpointFormatError(
                f"{path}: its 'model' entry has no '{prefix}*' keys; expected {EXPECTED_FILE}."
            )
        return state, f"{path} ['model'] {prefix}"
    return checkpoint, path


def split_backbone(state: dict, source: str) -> tuple[dict[str, np.ndarray], list[str], str]:
    """Strip DINO's wrapper prefixes; return (ViT state, dropped head keys, the prefix the file used)."""
    backbone: dict[str, np.ndarray] = {}
    ignored: list[str] = []
    file_prefix = ""
    for key, value in state.items():
        name = str(key)
        for wrapper in WRAPPER_PREFIXES:
            if name.startswith(wrapper):
                name = name[len(wrapper) :]
        if name.startswith(HEAD_PREFIX):
            ignored.append(key)
            continue
        if not backbone:
            file_prefix = str(key)[: len(str(key)) - len(name)]
        backbone[name] = value
    if "cls_token" not in backbone:
        sample = ", ".join(repr(k) for k in list(state)[:6])
        raise StateDictMismatchError(
            f"{source}: no 'cls_token' key, so not a DINO ViT; expected {EXPECTED_FILE}. "
            f"Keys found: {sample}",
            [f"missing key '{file_prefix}cls_token'"],
        )
    return backbone, ignored, file_prefix


def infer_arch(state: dict[str, np.ndarray], source: str, num_heads: int | None = None) -> DinoArch:
    """Read the ViT's shape from its weights (see the module docstring for the rules)."""
    problems = []
    for key, ndim in (("cls_token", 3), ("pos_embed", 3), ("patch_embed.proj.weight", 4)):
        if key not in state:
            problems.append(f"missing key '{key}'")
        elif len(_shape(state, key)) != ndim:
            problems.append(f"'{key}' has shape {_shape(state, key)}, expected {ndim} dimensions")
    depth = 1 + max((int(m.group(1)) for k in state if (m := _BLOCK_KEY.match(k))), default=-1)
    if depth == 0:
        problems.append("no 'blocks.{i}.*' keys")
    if problems:
        raise StateDictMismatchError(f"{source}: not a DINO ViT state dict: {'; '.join(problems)}", problems)
    embed_dim = _shape(state, "cls_token")[-1]
    patch = _shape(state, "patch_embed.proj.weight")[-1]
    positions = _shape(state, "pos_embed")[1] - 1
    grid = math.isqrt(max(positions, 0))
    heads = num_heads if num_heads is not None else max(1, embed_dim // HEAD_DIM)
    if grid * grid != positions or embed_dim % heads:
        problem = (
            f"pos_embed has {positions} patch positions, not a square grid"
            if grid * grid != positions
            else f"embed dim {embed_dim} is not divisible into {heads} heads"
        )
        raise StateDictMismatchError(f"{source}: {problem}", [problem])
    fc1 = "blocks.0.mlp.fc1.weight"
    hidden = _shape(state, fc1)[0] if fc1 in state else 4 * embed_dim
    return DinoArch(embed_dim, depth, heads, patch, grid * patch, hidden)


def load_dino_vit(path: str | Path, which: str = "teacher", num_heads: int | None = None):
    """Build a :class:`models.dino_vit.DinoVisionTransformer` from the DINO checkpoint at ``path``.

    Returns ``(vit in eval mode, DinoLoadReport)``. Raises ``CheckpointFormatError`` for a missing or
    unreadable file or an unknown layout, and ``StateDictMismatchError`` naming each missing or unexpected
    key and each shape mismatch.
    """
    from models.dino_vit import DinoVisionTransformer

    path = str(path)
    if not Path(path).is_file():
        raise CheckpointFormatError(
            f"{path}: DINO checkpoint not found; expected {EXPECTED_FILE}. luss downloads nothing: "
            "fetch the file yourself and pass its path."
        )
    state, source = select_network(load_torch_checkpoint(path), path, which)
    backbone, ignored, file_prefix = split_backbone(state, source)
    arch = infer_arch(backbone, source, num_heads)
    vit = DinoVisionTransformer(
        img_size=arch.img_size,
        patch_size=arch.patch_size,
        embed_dim=arch.embed_dim,
        depth=arch.depth,
        num_heads=arch.num_heads,
        mlp_hidden=arch.mlp_hidden,
    )
    loaded = assign_state_dict(vit, backbone, source, key_prefix=file_prefix)
    vit.eval()
    return vit, DinoLoadReport(path=path, source=source, arch=arch, loaded=loaded, ignored=ignored)

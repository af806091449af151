"""Build a PyTorch SAM from a user-supplied checkpoint, and a mask source around its generator.

Nothing is ever downloaded: a missing, unreadable or mismatched checkpoint is a
:class:`SamCheckpointError` naming the expected file and where to get it. torch and
``segment_anything`` are imported inside the functions, so importing this module is free.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tools.errors import LussError
from tools.refine.generator_config import GeneratorConfig
from tools.refine.voting import MaskSet

MODEL_TYPES = ("vit_b", "vit_l", "vit_h")
CHECKPOINT_FILES = {
    "vit_b": "sam_vit_b_01ec64.pth",
    "vit_l": "sam_vit_l_0b3195.pth",
    "vit_h": "sam_vit_h_4b8939.pth",
}
CHECKPOINT_BYTES = {"vit_b": 375_042_383, "vit_l": 1_249_524_607, "vit_h": 2_564_550_879}
# Encoder width identifies the variant of a checkpoint (image_encoder.pos_embed is [1, 64, 64, D]).
EMBED_DIMS = {768: "vit_b", 1024: "vit_l", 1280: "vit_h"}
DOWNLOAD_PAGE = "https://github.com/facebookresearch/segment-anything#model-checkpoints"
MAX_LISTED_KEYS = 8

# image (H, W, 3) uint8 -> masks of that image
MaskSource = Callable[[np.ndarray], MaskSet]


class SamCheckpointError(LussError):
    """The SAM checkpoint is missing, unreadable, or not the requested model type."""


def expected_file_hint(model_type: str) -> str:
    name = CHECKPOINT_FILES[model_type]
    size_mb = CHECKPOINT_BYTES[model_type] / 1e6
    return (
        f"--model-type {model_type} expects the official SAM checkpoint {name} ({size_mb:,.0f} MB), "
        f"downloadable from {DOWNLOAD_PAGE}; pass its path with --sam-checkpoint "
        "(nothing is downloaded at run time)"
    )


def check_model_type(model_type: str) -> None:
    if model_type not in MODEL_TYPES:
        raise SamCheckpointError(f"unknown SAM model type {model_type!r}; expected one of {MODEL_TYPES}")


def load_sam_state_dict(path: str | os.PathLike[str], model_type: str) -> dict[str, Any]:
    """Read a SAM checkpoint as a state dict of tensors (``weights_only``: no code runs from the file)."""
    import torch

    check_model_type(model_type)
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "not found"
        raise SamCheckpointError(f"SAM checkpoint {path} {what}. {expected_file_hint(model_type)}.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types (UnpicklingError, RuntimeError, EOFError...)
        size = path.stat().st_size
        truncated = ""
        if path.name == CHECKPOINT_FILES[model_type] and size != CHECKPOINT_BYTES[model_type]:
            truncated = f" It is {size:,} bytes instead of {CHECKPOINT_BYTES[model_type]:,}: re-download it."
        raise SamCheckpointError(
            f"{path}: cannot be read as a PyTorch checkpoint ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}).{truncated} {expected_file_hint(model_type)}."
        ) from exc
    if isinstance(state, dict) and not any(str(k).startswith("image_encoder.") for k in state):
        # Fine-tuned SAM variants often wrap the weights; accept the usual wrappers.
        for wrapper in ("model", "state_dict"):
            if isinstance(state.get(wrapper), dict):
                state = state[wrapper]
                break
    if not isinstance(state, dict) or not any(str(k).startswith("image_encoder.") for k in state):
        raise SamCheckpointError(
            f"{path}: not a SAM checkpoint (no 'image_encoder.*' weights). {expected_file_hint(model_type)}."
        )
    return state


def detected_model_type(state: dict[str, Any]) -> str | None:
    """The SAM variant a state dict holds, from its encoder width; ``None`` if unrecognised."""
    pos = state.get("image_encoder.pos_embed")
    if pos is None or len(pos.shape) != 4:
        return None
    return EMBED_DIMS.get(int(pos.shape[-1]))


def check_state_dict(model: Any, state: dict[str, Any], path: Path, model_type: str) -> None:
    """Strict comparison of a state dict with the model: every key and shape must match."""
    found = detected_model_type(state)
    if found is not None and found != model_type:
        raise SamCheckpointError(
            f"{path} holds a SAM {found} checkpoint but --model-type is {model_type}: pass "
            f"--model-type {found}, or {CHECKPOINT_FILES[model_type]} for {model_type}."
        )
    expected = model.state_dict()
    shapes = [
        f"{k}: expected shape {tuple(v.shape)}, found {tuple(state[k].shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    missing = [f"missing key {k}" for k in expected if k not in state]
    unexpected = [f"unexpected key {k}" for k in state if k not in expected]
    problems = shapes + missing + unexpected  # shapes first: they say the most about what the file is
    if problems:
        counts = (
            f"{len(shapes)} shape mismatches, {len(missing)} missing keys, {len(unexpected)} unexpected keys"
        )
        listed = "; ".join(problems[:MAX_LISTED_KEYS])
        more = f"; ... ({len(problems) - MAX_LISTED_KEYS} more)" if len(problems) > MAX_LISTED_KEYS else ""
        variant = "an unrecognised SAM variant" if found is None else f"a SAM {found} checkpoint"
        raise SamCheckpointError(
            f"{path}: {variant} that does not match SAM {model_type} ({counts}): {listed}{more}. "
            f"{expected_file_hint(model_type)}."
        )


def select_device(requested: str = "auto", local_rank: int | None = None) -> str:
    """``cuda:<i>`` when CUDA is available (and not forced off by ``LUSS_FORCE_CPU=1``), else ``cpu``.

    With several GPUs each local rank takes ``local_rank % device_count``, so ``mpirun -np 4`` spreads.
    """
    import torch

    if requested not in ("auto", "cpu") and not requested.startswith("cuda"):
        raise LussError(f"unknown device {requested!r}; use auto, cpu, cuda or cuda:<index>")
    if requested == "cpu":
        return "cpu"
    cuda_ok = torch.cuda.is_available() and os.environ.get("LUSS_FORCE_CPU") != "1"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise LussError(f"--device {requested}: CUDA is not available to PyTorch on this machine")
        return requested
    if not cuda_ok:
        return "cpu"
    if local_rank is None:
        local_rank = int(os.environ.get("OMPI_COMM_WORLD_LOCAL_RANK", os.environ.get("LOCAL_RANK", "0")))
    return f"cuda:{local_rank % torch.cuda.device_count()}"


def build_sam(checkpoint: str | os.PathLike[str], model_type: str = "vit_b", device: str = "cpu") -> Any:
    """The ``segment_anything`` SAM of ``model_type`` with the checkpoint's weights, in eval mode."""
    import torch
    from segment_anything import sam_model_registry

    check_model_type(model_type)
    path = Path(checkpoint)
    state = load_sam_state_dict(path, model_type)
    # Check keys and shapes on a weightless skeleton first: instant, even for ViT-H.
    with torch.device("meta"):
        skeleton = sam_model_registry[model_type](checkpoint=None)
    check_state_dict(skeleton, state, path, model_type)
    sam = sam_model_registry[model_type](checkpoint=None)  # never given the path: we load strictly below
    sam.load_state_dict(state, strict=True)
    return sam.to(device).eval()


def make_mask_source(sam: Any, config: GeneratorConfig) -> MaskSource:
    """A callable image -> :class:`MaskSet` running ``SamAutomaticMaskGenerator`` with ``config``."""
    from segment_anything import SamAutomaticMaskGenerator

    if config.output_mode == "coco_rle":
        # pycocotools' compressed RLE would need another dependency just to be decoded again.
        raise LussError("output_mode coco_rle is not supported here; use binary_mask or uncompressed_rle")
    generator = SamAutomaticMaskGenerator(sam, **config.sam_kwargs())

    def generate(image: np.ndarray) -> MaskSet:
        records = generator.generate(image)
        return MaskSet.from_records(records, image_size=(int(image.shape[0]), int(image.shape[1])))

    return generate

"""The checkpoints `bench_checkpoint_load.py` reads, written with ``torch.save`` in a PyTorch process.

Official layouts, random values:

* ``sam_vit_b_01ec64.pth``: the whole ``Sam`` ViT-B state dict (375 MB fp32), by ``segment_anything``'s
  own ``build_sam_vit_b`` (:func:`tools.rehearsal.weights.write_sam_vit_b`);
* ``dino_deitsmall16_pretrain.pth``: DINO ViT-S/16 backbone state dict (86 MB), plus the same in fp16
  and in bf16;
* ``checkpoint.pth``: what DINO's ``main_dino.py`` saves for a ViT-S/16 run: ``student`` (DDP keys
  ``module.backbone.*`` / ``module.head.*``), ``teacher`` (``backbone.*`` / ``head.*``), both with the
  official ``DINOHead`` (2048-d MLP, 256-d bottleneck, weight-normed 65536-way last layer), the AdamW
  ``optimizer`` state (DINO's two parameter groups), ``epoch``, ``args`` (an ``argparse.Namespace``),
  ``dino_loss`` (its ``center``) and ``fp16_scaler`` (about 705 MB);
* ``views.pth``: tensors that are views (transposed, offset into a shared storage), 0-d and empty
  tensors (also saved as ``views.pth.tar``, the suffix PASS's checkpoints carry); ``dtypes.pth``:
  float64 and every integer and bool dtype;
* ``flipped.pth``: a small tensor with one byte of its storage flipped after saving (a damaged download
  that is not truncated: only the zip's CRC-32 tells);
* ``malicious.pth`` / ``malicious_legacy.pth``: a pickle whose ``__reduce__`` is ``os.system("touch
  MARKER")`` (zip and pre-1.6 legacy format): a reader that runs it leaves the marker file behind.
"""

from __future__ import annotations

import argparse
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tools.rehearsal.weights import dino_state, write_sam_vit_b

DINO_S16 = {"embed": 384, "depth": 12, "patch": 16, "grid": 14}
DINO_HEAD = {"hidden": 2048, "bottleneck": 256, "out_dim": 65536}  # main_dino.py defaults


@dataclass(frozen=True)
class Case:
    """One checkpoint file of the benchmark; ``refuse`` says why a reader must refuse it (if it must)."""

    label: str
    file: str
    refuse: str = ""  # "code": a pickle that runs code; "corrupt": a storage with a flipped byte


CASES = (
    Case("SAM ViT-B (sam_vit_b_01ec64.pth)", "sam_vit_b_01ec64.pth"),
    Case("DINO ViT-S/16 (dino_deitsmall16_pretrain.pth)", "dino_deitsmall16_pretrain.pth"),
    Case("DINO ViT-S/16, fp16", "dino_deitsmall16_fp16.pth"),
    Case("DINO ViT-S/16, bf16", "dino_deitsmall16_bf16.pth"),
    Case("DINO training checkpoint.pth, ViT-S/16", "checkpoint.pth"),
    Case("views, 0-d, empty (tiny)", "views.pth"),
    Case("the same, named .pth.tar (PASS's suffix)", "views.pth.tar"),
    Case("float64, int and bool dtypes (tiny)", "dtypes.pth"),
    Case("one flipped byte in a storage (tiny)", "flipped.pth", refuse="corrupt"),
    Case("pickled os.system (zip format)", "malicious.pth", refuse="code"),
    Case("pickled os.system (legacy format)", "malicious_legacy.pth", refuse="code"),
)
MARKER = "code_ran.marker"  # what the malicious pickles create when a reader executes them


def dino_head(embed: int, seed: int):
    """Random weights of DINO's ``DINOHead`` (3-layer MLP, weight-normed last layer), official key names."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    hidden, bottleneck, out_dim = DINO_HEAD["hidden"], DINO_HEAD["bottleneck"], DINO_HEAD["out_dim"]
    state = {}
    for index, (out_features, in_features) in zip(
        (0, 2, 4), ((hidden, embed), (hidden, hidden), (bottleneck, hidden)), strict=True
    ):
        state[f"mlp.{index}.weight"] = torch.randn(out_features, in_features, generator=gen) * 0.02
        state[f"mlp.{index}.bias"] = torch.zeros(out_features)
    state["last_layer.weight_g"] = torch.ones(out_dim, 1)
    state["last_layer.weight_v"] = torch.randn(out_dim, bottleneck, generator=gen) * 0.02
    return state


def _adamw_state(student: dict):
    """The state dict of DINO's AdamW over ``student`` after one step (its two parameter groups)."""
    import torch

    params = {name: torch.nn.Parameter(value.clone()) for name, value in student.items()}
    plain = [p for n, p in params.items() if n.endswith(".bias") or p.ndim == 1]
    decayed = [p for n, p in params.items() if not (n.endswith(".bias") or p.ndim == 1)]
    optimizer = torch.optim.AdamW([{"params": decayed}, {"params": plain, "weight_decay": 0.0}], lr=5e-4)
    for p in params.values():
        p.grad = torch.full_like(p, 1e-3)
    optimizer.step()
    return optimizer.state_dict()


def dino_training_checkpoint(seed: int = 0) -> dict:
    """What ``main_dino.py`` saves (``save_dict``) for a ViT-S/16 run, with random weights."""
    import torch

    embed = DINO_S16["embed"]
    student = {f"module.backbone.{k}": v for k, v in dino_state(**DINO_S16, seed=seed).items()}
    student.update({f"module.head.{k}": v for k, v in dino_head(embed, seed).items()})
    teacher = {f"backbone.{k}": v for k, v in dino_state(**DINO_S16, seed=seed + 1).items()}
    teacher.update({f"head.{k}": v for k, v in dino_head(embed, seed + 1).items()})
    args = argparse.Namespace(
        arch="vit_small",
        patch_size=16,
        out_dim=DINO_HEAD["out_dim"],
        norm_last_layer=True,
        momentum_teacher=0.996,
        use_fp16=True,
        weight_decay=0.04,
        clip_grad=3.0,
        batch_size_per_gpu=64,
        epochs=100,
        lr=0.0005,
        optimizer="adamw",
        global_crops_scale=(0.4, 1.0),
        local_crops_number=8,
        local_crops_scale=(0.05, 0.4),
        data_path="/path/to/imagenet/train/",
        seed=0,
        dist_url="env://",
    )
    return {
        "student": student,
        "teacher": teacher,
        "optimizer": _adamw_state(student),
        "epoch": 100,
        "args": args,
        "dino_loss": {"center": torch.randn(1, DINO_HEAD["out_dim"])},
        "fp16_scaler": {
            "scale": 65536.0,
            "growth_factor": 2.0,
            "backoff_factor": 0.5,
            "growth_interval": 2000,
            "_growth_tracker": 0,
        },
    }


def views() -> dict:
    """Tensors the official files do not hold but a reader must get right: views, 0-d, empty."""
    import torch

    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    return {
        "transposed": base.t(),
        "offset_slice": base[1:3, 2:5],  # shares base's storage at an offset, non-contiguous
        "scalar": torch.tensor(3.25),
        "empty": torch.zeros(0, 3),
    }


def dtypes() -> dict:
    """One small tensor of every other dtype a state dict may hold (BatchNorm's int64 counter, masks)."""
    import torch

    return {
        "float64": torch.tensor([1e-300, 2.0], dtype=torch.float64),
        "int64": torch.tensor([2**40, -1]),
        "int32": torch.tensor([7, -7], dtype=torch.int32),
        "int16": torch.tensor([300, -300], dtype=torch.int16),
        "int8": torch.tensor([-128, 127], dtype=torch.int8),
        "uint8": torch.tensor([0, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False]),
    }


class _RunsCode:
    """Unpickling this runs ``touch MARKER``: the harmless stand-in for a hostile checkpoint."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def _flip_a_byte(obj: dict, path: Path) -> None:
    """``torch.save(obj, path)``, then flip one byte inside its first storage."""
    import torch

    torch.save(obj, path)
    with zipfile.ZipFile(path) as archive:
        storage = next(i for i in archive.infolist() if "/data/" in i.filename)
    data = bytearray(path.read_bytes())
    data[storage.header_offset + 1000] ^= 0xFF  # past the member's local header, inside its 4,000 bytes
    path.write_bytes(bytes(data))


def write_cases(folder: Path) -> dict[str, object]:
    """Write every case into ``folder``; return ``{file name: the object saved}`` (for the reference)."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    write_sam_vit_b(folder / "sam_vit_b_01ec64.pth")
    saved: dict[str, object] = {
        "sam_vit_b_01ec64.pth": torch.load(folder / "sam_vit_b_01ec64.pth", mmap=True, weights_only=True)
    }
    dino = dino_state(**DINO_S16)
    saved["dino_deitsmall16_pretrain.pth"] = dino
    saved["dino_deitsmall16_fp16.pth"] = {k: v.half() for k, v in dino.items()}
    saved["dino_deitsmall16_bf16.pth"] = {k: v.bfloat16() for k, v in dino.items()}
    saved["checkpoint.pth"] = dino_training_checkpoint()
    saved["views.pth"] = saved["views.pth.tar"] = views()
    saved["dtypes.pth"] = dtypes()
    for name, obj in saved.items():
        if name not in ("sam_vit_b_01ec64.pth", "flipped.pth"):
            torch.save(obj, folder / name)
    saved["flipped.pth"] = {"weight": torch.arange(1000, dtype=torch.float32)}
    _flip_a_byte(saved["flipped.pth"], folder / "flipped.pth")
    evil = {"weight": torch.ones(2), "payload": _RunsCode(folder / MARKER)}
    torch.save(evil, folder / "malicious.pth")
    torch.save(evil, folder / "malicious_legacy.pth", _use_new_zipfile_serialization=False)
    return saved

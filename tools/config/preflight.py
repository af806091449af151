"""Inputs a whole run will need, checked before its first stage starts (``make train`` calls this).

A preset whose cluster stage runs MaskCut on DINO keys needs the user's DINO checkpoint; one whose
backbone is a frozen SAM encoder needs the SAM checkpoint. Finding that out after Stage 1 (a day on four
GPUs) is too late, so ``python -m tools.config.preflight --preset P [--sam-checkpoint F]
[--dino-checkpoint F]`` exits 2 with the fix before any work.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools.config.schema import LussConfig


def missing_inputs(config: LussConfig, sam_checkpoint: str | None, dino_checkpoint: str | None) -> list[str]:
    """One sentence per input the run will need and lacks (empty when it can start)."""
    problems = []
    m, saliency = config.model, config.cluster.saliency
    from tools.config.validate import needs_sam_weights

    if needs_sam_weights(m, sam_checkpoint or m.sam_checkpoint):
        problems.append(
            f"preset {config.preset}: the frozen SAM ViT-B encoder needs its weights: SAM_CKPT=/path/"
            "sam_vit_b_01ec64.pth (luss pretrain --sam-checkpoint)."
        )
    if saliency.enabled and saliency.features == "dino" and not (dino_checkpoint or saliency.dino_checkpoint):
        problems.append(
            f"preset {config.preset}: MaskCut saliency runs on DINO ViT keys (as SAMPASS did): "
            "DINO_CKPT=/path/dino_deitsmall16_pretrain.pth (luss cluster --dino-checkpoint), or "
            "--set cluster.saliency.features=backbone|sam."
        )
    for flag, path in (("SAM_CKPT", sam_checkpoint), ("DINO_CKPT", dino_checkpoint)):
        if path and not Path(path).is_file():
            problems.append(f"{flag}={path}: no such file.")
    return problems


def main(argv: list[str] | None = None) -> int:
    from tools.config.loader import load_config
    from tools.runtime import configure_runtime

    # The architecture registry imports Jittor: pick the device first, as every `luss` command does
    # (without it, a machine with an nvcc but no GPU fails inside Jittor's CUDA probe).
    configure_runtime()

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--sam-checkpoint")
    parser.add_argument("--dino-checkpoint")
    args = parser.parse_args(argv)
    problems = missing_inputs(load_config(args.preset), args.sam_checkpoint, args.dino_checkpoint)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 2 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""Every ``segment_anything.SamAutomaticMaskGenerator`` parameter, with SAM's own defaults.

The defaults are those of upstream ``automatic_mask_generator.py`` (formats.md §7.1), which SAMPASS
``test.py`` used unchanged. :meth:`GeneratorConfig.fingerprint_dict` names the parameters that change
which masks come out; the cache is keyed on it, so editing any of them re-runs SAM, while
``points_per_batch`` and ``output_mode`` (speed and transport only) do not invalidate it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

OUTPUT_MODES = ("binary_mask", "uncompressed_rle", "coco_rle")
# Parameters that do not change the masks, only how fast or in which form they arrive.
NON_SEMANTIC_FIELDS = frozenset({"points_per_batch", "output_mode"})


@dataclass(frozen=True)
class GeneratorConfig:
    """Keyword arguments of ``SamAutomaticMaskGenerator`` (all but ``model``)."""

    points_per_side: int | None = 32
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.7
    crop_n_layers: int = 0
    crop_nms_thresh: float = 0.7
    crop_overlap_ratio: float = 512 / 1500
    crop_n_points_downscale_factor: int = 1
    # One [n, 2] grid of (x, y) in [0, 1] per crop layer; exclusive with points_per_side.
    point_grids: tuple[tuple[tuple[float, float], ...], ...] | None = None
    min_mask_region_area: int = 0
    output_mode: str = "binary_mask"

    def __post_init__(self) -> None:
        # Checked here so a bad value is a clear error before SAM is loaded, not an assert inside it.
        if (self.points_per_side is None) == (self.point_grids is None):
            raise ValueError("give exactly one of points_per_side and point_grids")
        if self.points_per_side is not None and self.points_per_side < 1:
            raise ValueError(f"points_per_side must be >= 1, got {self.points_per_side}")
        if self.points_per_batch < 1:
            raise ValueError(f"points_per_batch must be >= 1, got {self.points_per_batch}")
        if self.crop_n_layers < 0 or self.crop_n_points_downscale_factor < 1:
            raise ValueError("crop_n_layers must be >= 0 and crop_n_points_downscale_factor >= 1")
        if self.point_grids is not None and len(self.point_grids) != self.crop_n_layers + 1:
            raise ValueError(
                f"point_grids holds {len(self.point_grids)} grids; crop_n_layers={self.crop_n_layers} "
                f"needs {self.crop_n_layers + 1} (one per crop layer)"
            )
        if self.min_mask_region_area < 0:
            raise ValueError(f"min_mask_region_area must be >= 0, got {self.min_mask_region_area}")
        if self.output_mode not in OUTPUT_MODES:
            raise ValueError(f"output_mode must be one of {OUTPUT_MODES}, got {self.output_mode!r}")

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @staticmethod
    def grids_from_arrays(grids: list[np.ndarray]) -> tuple[tuple[tuple[float, float], ...], ...]:
        """Numpy ``[n, 2]`` grids -> the hashable nested tuples this frozen dataclass stores."""
        out = []
        for grid in grids:
            grid = np.asarray(grid, dtype=np.float64)
            if grid.ndim != 2 or grid.shape[1] != 2:
                raise ValueError(f"a point grid must be [n, 2] (x, y in 0..1), got shape {grid.shape}")
            out.append(tuple((float(x), float(y)) for x, y in grid))
        return tuple(out)

    def sam_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``SamAutomaticMaskGenerator(model, **kwargs)``."""
        kwargs = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if self.point_grids is not None:
            kwargs["point_grids"] = [np.asarray(g, dtype=np.float64) for g in self.point_grids]
        return kwargs

    def fingerprint_dict(self) -> dict[str, Any]:
        """The parameters that decide which masks SAM returns (JSON-ready)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name in NON_SEMANTIC_FIELDS:
                continue
            value = getattr(self, f.name)
            out[f.name] = [list(map(list, g)) for g in value] if f.name == "point_grids" and value else value
        return out


def cache_fingerprint(config: GeneratorConfig, model_type: str, checkpoint_name: str) -> tuple[str, str]:
    """(short hash, canonical JSON) of everything that decides the cached masks.

    The checkpoint is identified by its file name, which for the official files carries a hash
    prefix (``sam_vit_b_01ec64.pth``); a re-vote therefore works on a machine that has the cache but
    not the checkpoint.
    """
    payload = {
        "model_type": model_type,
        "checkpoint": checkpoint_name,
        "generator": config.fingerprint_dict(),
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16], text

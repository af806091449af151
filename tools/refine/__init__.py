"""SAM semantic voting on network predictions (``luss refine``).

* :mod:`tools.refine.voting`: the vote itself (pure numpy) and :class:`MaskSet`;
* :mod:`tools.refine.mask_cache`: the compact per-image ``.npz`` cache of SAM masks;
* :mod:`tools.refine.generator_config`: every ``SamAutomaticMaskGenerator`` parameter;
* :mod:`tools.refine.sam_model`: SAM from a user-supplied checkpoint, with clear errors (torch lazily);
* :mod:`tools.refine.refiner`: the sharded, resumable per-split loop.
"""

from tools.refine.generator_config import GeneratorConfig, cache_fingerprint
from tools.refine.mask_cache import load_mask_cache, save_mask_cache
from tools.refine.voting import BACKGROUND_POLICIES, VOTE_MODES, MaskSet, vote_by_masks

__all__ = [
    "BACKGROUND_POLICIES",
    "VOTE_MODES",
    "GeneratorConfig",
    "MaskSet",
    "cache_fingerprint",
    "load_mask_cache",
    "save_mask_cache",
    "vote_by_masks",
]

"""Stage-1 losses: SwAV swapped prediction (Sinkhorn codes, queue), P2P, D2S, prototype helpers.

Every function takes Jittor Vars and plain numbers; nothing here reads files or sets global state.
Cross-rank sums go through an ``all_reduce(var, op)`` callable (see :mod:`models.losses.collectives`).
"""

from models.losses.collectives import AllReduce, identity_all_reduce, mpi_all_reduce
from models.losses.d2s import d2s_loss
from models.losses.p2p import p2p_loss
from models.losses.prototypes import frozen_prototype_ids, normalize_prototypes, prototype_parameters
from models.losses.saliency import saliency_bce
from models.losses.sinkhorn import sinkhorn_knopp
from models.losses.swav import SwAVQueue, swapped_prediction_loss, swav_codes, swav_loss
from models.losses.total import PretrainLossWeights, combine_pretrain_losses

__all__ = [
    "AllReduce",
    "PretrainLossWeights",
    "SwAVQueue",
    "combine_pretrain_losses",
    "d2s_loss",
    "frozen_prototype_ids",
    "identity_all_reduce",
    "mpi_all_reduce",
    "normalize_prototypes",
    "p2p_loss",
    "prototype_parameters",
    "saliency_bce",
    "sinkhorn_knopp",
    "swapped_prediction_loss",
    "swav_codes",
    "swav_loss",
]

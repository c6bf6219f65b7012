"""The AutoTail-BSFGM objective: gate, tail prior and losses."""

from ._losses import (
    AutoTailLoss,
    autotail_value_and_grad,
    balanced_softmax_loss,
    smoothed_cross_entropy,
)
from ._tail import (
    TailPrior,
    compute_tail_prior,
    imbalance_index,
    prior_offsets,
    tail_mask,
    tail_prior,
)

__all__ = [
    "AutoTailLoss",
    "autotail_value_and_grad",
    "TailPrior",
    "balanced_softmax_loss",
    "compute_tail_prior",
    "imbalance_index",
    "prior_offsets",
    "smoothed_cross_entropy",
    "tail_mask",
    "tail_prior",
]

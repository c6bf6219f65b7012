"""Training: one loop with pluggable regimes, parallel strategies and callbacks.

* :mod:`~sktail.training.loop`: :class:`Trainer`, the loop itself;
* :mod:`~sktail.training.regimes`: all layers, top ``k`` layers;
* :mod:`~sktail.training.cached_features`: the head on features computed once;
* :mod:`~sktail.training.parallel`: this process alone or one rank of a DDP job;
* :mod:`~sktail.training.process_group`: joining ``torch.distributed``;
* :mod:`~sktail.training.callbacks`: best epoch, epoch log, progress bar,
  checkpoints, and :func:`observe` to add callbacks to ``fit``;
* :mod:`~sktail.training.checkpoint`: the checkpoint file of one run;
* :mod:`~sktail.training.optim`: batch order, optimizer, schedule.
"""

from .cached_features import CachedFeatures
from .callbacks import BestEpoch, Callback, Checkpoint, observe
from .checkpoint import Checkpointer, fit_fingerprint
from .data_parallel import DataParallel, shard_rows
from .loop import Trainer, TrainingConfig, TrainingState
from .optim import build_optimizer, length_bucketed_batches, linear_warmup_decay
from .parallel import NonFiniteError, SingleProcess
from .regimes import AllLayers, Regime, TopLayers, regime_for
from .reporting import EpochLog, ProgressBar

__all__ = [
    "AllLayers",
    "BestEpoch",
    "CachedFeatures",
    "Callback",
    "Checkpoint",
    "Checkpointer",
    "DataParallel",
    "EpochLog",
    "NonFiniteError",
    "ProgressBar",
    "Regime",
    "SingleProcess",
    "TopLayers",
    "Trainer",
    "TrainingConfig",
    "TrainingState",
    "build_optimizer",
    "fit_fingerprint",
    "length_bucketed_batches",
    "linear_warmup_decay",
    "observe",
    "regime_for",
    "shard_rows",
]

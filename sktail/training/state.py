"""The settings of one training run and where it stands (saved in checkpoints)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["TrainingConfig", "TrainingState"]


@dataclass
class TrainingConfig:
    """Resolved settings of one training run (no ``"auto"`` left).

    The optimisation settings follow ``docs/method.md`` §7, the FGM ones §6.

    Attributes
    ----------
    epochs : int
        Passes over the training data.
    batch_size : int
        Rows per batch.
    learning_rate : float
        Peak learning rate of the AdamW optimizer.
    weight_decay : float
        AdamW weight decay (applied to weight matrices only).
    warmup_ratio : float
        Share of the optimizer steps over which the learning rate warms up
        linearly before decaying linearly to 0.
    max_grad_norm : float
        Gradient-norm clipping threshold.
    fgm_epsilon : float
        FGM radius.
    fgm_weight : float
        Weight of the adversarial loss.
    grad_accumulation_steps : int
        Batches whose gradients are summed before each optimizer step.
    device : torch.device
        Training device.
    autocast_dtype : torch.dtype or None
        Mixed-precision dtype.
    use_scaler : bool
        Whether fp16 gradient scaling is used.
    precision : str
        The estimator's ``precision`` setting (the inference path of frozen
        features follows it, see :func:`sktail.devices.resolve_inference_precision`).
    verbose : int
        0 is silent; 1 or more prints one line per epoch and shows progress
        bars over the batches.
    monitor : str or None
        Key of the epoch record whose best value picks the kept epoch
        (``"val_accuracy"``, docs/method.md's rule, or
        ``"val_balanced_accuracy"``); None keeps the last epoch.

    See Also
    --------
    TrainingState : Where a run stands.
    Trainer : The loop that runs with these settings.

    Examples
    --------
    >>> from sktail.training import TrainingConfig
    >>> config = TrainingConfig(epochs=3, batch_size=16, learning_rate=2e-5)
    >>> config.device, config.autocast_dtype, config.grad_accumulation_steps
    (device(type='cpu'), None, 1)
    """

    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    fgm_epsilon: float = 0.3
    fgm_weight: float = 0.5
    grad_accumulation_steps: int = 1
    device: torch.device = torch.device("cpu")
    autocast_dtype: torch.dtype | None = None
    use_scaler: bool = False
    verbose: int = 0
    precision: str = "auto"
    monitor: str | None = "val_accuracy"


@dataclass
class TrainingState:
    """Where a run stands; saved in checkpoints.

    Attributes
    ----------
    epoch : int
        The next epoch to run (1-based).
    progress : dict or None
        Inside an epoch: its batch order, the next batch and the running loss.
    history : list of dict
        One record per finished epoch.
    best_epoch : int
        The epoch whose weights are kept.
    best_score : float
        Its validation score (minus infinity before any).
    best_weights : dict or None
        CPU copies of its weights (None: keep the current ones).

    See Also
    --------
    TrainingConfig : The settings of a run.
    BestEpoch : The callback that updates the best epoch.

    Examples
    --------
    >>> from sktail.training import TrainingState
    >>> state = TrainingState()
    >>> state.epoch, state.best_epoch, state.best_score
    (1, 0, -inf)
    """

    epoch: int = 1
    progress: dict | None = None
    history: list = field(default_factory=list)
    best_epoch: int = 0
    best_score: float = -np.inf
    best_weights: dict | None = None

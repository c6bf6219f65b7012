"""The stratified hold-out used for best-epoch selection."""

from __future__ import annotations

import numpy as np

__all__ = ["stratified_holdout"]


def stratified_holdout(y, fraction: float, rng: np.random.RandomState):
    """Split row indices into training and validation, stratified by class.

    Every class keeps at least one training row (classes with a single row
    are never held out), so the tail prior never sees a zero count. The
    validation size is ``round(fraction * n)``, shared among classes in
    proportion to their size (largest remainders first).

    Parameters
    ----------
    y : ndarray of int
        Class index of each row.
    fraction : float
        Share of the rows to hold out, in (0, 1).
    rng : numpy.random.RandomState
        Source of the shuffle.

    Returns
    -------
    train_rows, validation_rows : ndarray of int
        Sorted row indices.

    Examples
    --------
    >>> y = np.array([0] * 8 + [1] * 2)
    >>> train, val = stratified_holdout(y, 0.2, np.random.RandomState(0))
    >>> len(train), len(val), sorted(set(y[train].tolist()))
    (8, 2, [0, 1])
    """
    y = np.asarray(y)
    classes, counts = np.unique(y, return_counts=True)
    capacity = counts - 1
    target = min(int(round(fraction * len(y))), int(capacity.sum()))
    exact = counts / counts.sum() * target
    take = np.minimum(np.floor(exact).astype(int), capacity)
    for k in np.argsort(-(exact - take), kind="stable"):
        if take.sum() >= target:
            break
        if take[k] < capacity[k]:
            take[k] += 1
    validation = []
    for cls, n_val in zip(classes, take):
        rows = np.flatnonzero(y == cls)
        validation.extend(rng.permutation(rows)[:n_val])
    validation = np.sort(np.asarray(validation, dtype=np.int64))
    train = np.setdiff1d(np.arange(len(y)), validation)
    return train, validation

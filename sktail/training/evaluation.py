"""Validation metrics of the loop, from per-class counts (summable over processes)."""

from __future__ import annotations

import numpy as np

__all__ = ["class_hits", "validation_scores"]


def class_hits(logits: np.ndarray, y, n_classes: int) -> np.ndarray:
    """Rows and correct predictions of each true class.

    Parameters
    ----------
    logits : ndarray of shape (n_rows, n_classes)
        Scores of the rows.
    y : array-like of int, shape (n_rows,)
        True class indices.
    n_classes : int
        Number of classes.

    Returns
    -------
    ndarray of shape (2, n_classes)
        Row 0: rows per true class; row 1: correctly predicted rows per class.
    """
    truth = np.asarray(y)
    hit = truth[logits.argmax(axis=1) == truth]
    return np.stack([np.bincount(truth, minlength=n_classes), np.bincount(hit, minlength=n_classes)])


def validation_scores(total, correct) -> dict:
    """Accuracy and balanced accuracy from per-class counts.

    Parameters
    ----------
    total : array-like of shape (n_classes,)
        Validation rows of each true class.
    correct : array-like of shape (n_classes,)
        Correctly predicted rows of each true class.

    Returns
    -------
    dict
        ``val_accuracy`` and ``val_balanced_accuracy`` (the mean recall over
        the classes present, as :func:`sklearn.metrics.balanced_accuracy_score`).
    """
    total = np.asarray(total, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    n = total.sum()
    present = total > 0
    accuracy = float(correct.sum() / n) if n else float("nan")
    balanced = float(np.mean(correct[present] / total[present])) if present.any() else float("nan")
    return {"val_accuracy": accuracy, "val_balanced_accuracy": balanced}

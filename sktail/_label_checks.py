"""Checks of the label arrays and class counts that the metrics take (:mod:`sktail.metrics`)."""

from collections.abc import Mapping

import numpy as np

__all__ = ["as_1d", "check_counts", "check_paired"]


def as_1d(values, name):
    """Return `values` as a non-empty 1-D array, or raise."""
    if isinstance(values, str):
        raise TypeError(f"{name} must be an array-like of labels, not a single string.")
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got an array of shape {array.shape}.")
    if array.size == 0:
        raise ValueError(f"{name} is empty.")
    return array


def check_paired(**arrays):
    """Validate several label arrays of equal length; return them as a tuple."""
    checked = {name: as_1d(values, name) for name, values in arrays.items()}
    lengths = {name: len(array) for name, array in checked.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"Inputs must have the same length, got {lengths}.")
    return tuple(checked.values())


def _split_counts(class_counts):
    """Return `(labels, counts)` from a mapping or a `(labels, counts)` pair."""
    if isinstance(class_counts, Mapping):
        return list(class_counts.keys()), list(class_counts.values())
    if not isinstance(class_counts, (tuple, list)) or len(class_counts) != 2:
        raise TypeError(
            "class_counts must be a mapping label -> count or a pair (labels, counts), "
            f"got {type(class_counts).__name__}."
        )
    return class_counts


def check_counts(class_counts):
    """Validate `class_counts`; return labels (list) and counts (float array)."""
    labels, counts = _split_counts(class_counts)
    labels = as_1d(labels, "class_counts labels").tolist()
    counts = as_1d(counts, "class_counts counts")
    if len(labels) != len(counts):
        raise ValueError(f"class_counts has {len(labels)} labels but {len(counts)} counts.")
    if len(set(labels)) != len(labels):
        raise ValueError("class_counts labels must be unique.")
    if counts.dtype.kind not in "iuf":
        raise TypeError(f"class_counts counts must be numbers, got dtype {counts.dtype}.")
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ValueError("class_counts counts must be finite and non-negative.")
    return labels, counts.astype(float)

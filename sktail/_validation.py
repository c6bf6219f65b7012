"""Input checks shared by the estimator: texts, labels, sample weights."""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

__all__ = ["check_sample_weight", "check_texts", "check_labels", "label_kind"]


def _first_bad(values, predicate):
    for i, v in enumerate(values):
        if predicate(v):
            return i, v
    return None


def _not_text(value) -> bool:
    """True unless ``value`` is a str that can be encoded as UTF-8 (no lone surrogates)."""
    if not isinstance(value, str):
        return True
    if value.isascii():
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def label_kind(value) -> str:
    """The kind of a label: ``"str"``, ``"number"`` (int, float, bool) or its type name.

    Parameters
    ----------
    value : object
        One label.

    Returns
    -------
    str
    """
    if isinstance(value, str):
        return "str"
    if isinstance(value, (Real, np.number, np.bool_)):
        return "number"
    return type(value).__name__


def check_texts(X, *, name: str = "X") -> list:
    """Validate a 1-D collection of strings and return it as a list.

    Accepts lists, tuples, 1-D numpy arrays, pandas Series and single-column
    DataFrames. Rejects a bare string, bytes, non-string elements (naming the
    first offending index), nested sequences and 2-D input with several columns.

    Parameters
    ----------
    X : array-like of str
        The texts.
    name : str, default="X"
        Name used in error messages.

    Returns
    -------
    list of str
    """
    if isinstance(X, (str, bytes)):
        raise TypeError(f"{name} must be a collection of texts, not a single {type(X).__name__}; wrap it in a list.")
    if isinstance(X, dict):
        raise TypeError(f"{name} must be a list-like of str, got a dict.")
    if hasattr(X, "columns") and hasattr(X, "iloc"):  # pandas DataFrame
        if X.shape[1] != 1:
            raise ValueError(f"{name} must be 1-D texts; got a DataFrame with {X.shape[1]} columns.")
        X = X.iloc[:, 0]
    if hasattr(X, "to_numpy"):
        X = X.to_numpy(dtype=object)
    if isinstance(X, np.ndarray):
        if X.ndim == 2 and X.shape[1] == 1:
            X = X[:, 0]
        if X.ndim != 1:
            raise ValueError(f"{name} must be 1-D texts; got an array of shape {X.shape}.")
        X = X.tolist()
    try:
        texts = list(X)
    except TypeError:
        raise TypeError(f"{name} must be a list-like of str, got {type(X).__name__}.") from None
    if not texts:
        raise ValueError(f"{name} is empty: at least one text is required.")
    bad = _first_bad(texts, _not_text)
    if bad is not None:
        i, v = bad
        if isinstance(v, str):
            raise ValueError(
                f"{name}[{i}] contains a lone surrogate code point and cannot be encoded as UTF-8; "
                "decode the source with errors='replace'."
            )
        missing = v is None or (isinstance(v, float) and math.isnan(v)) or type(v).__name__ in ("NAType", "NaTType")
        kind = "missing (None/NaN)" if missing else type(v).__name__
        raise TypeError(f"{name}[{i}] is {kind}; every element of {name} must be a str.")
    return texts


def check_labels(y, n_samples: int, *, name: str = "y", x_name: str = "X") -> np.ndarray:
    """Validate a 1-D label vector (any hashable, not missing) of the right length.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Class labels.
    n_samples : int
        Expected length.
    name : str, default="y"
        Name used in error messages.
    x_name : str, default="X"
        Name of the matching texts in error messages.

    Returns
    -------
    ndarray of shape (n_samples,)
    """
    from sklearn.utils.multiclass import check_classification_targets, type_of_target

    if isinstance(y, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of labels, not a single {type(y).__name__}.")
    if hasattr(y, "to_numpy"):
        y = y.to_numpy()
    arr = np.asarray(y, dtype=object) if not isinstance(y, np.ndarray) else y
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one label per text); got shape {arr.shape}. Multilabel targets are not supported.")
    if len(arr) != n_samples:
        raise ValueError(f"{x_name} and {name} have different lengths: {n_samples} texts but {len(arr)} labels.")
    bad = _first_bad(arr.tolist(), lambda v: v is None or (isinstance(v, Real) and not isinstance(v, bool) and math.isnan(v)))
    if bad is not None:
        raise ValueError(f"{name}[{bad[0]}] is missing (None/NaN); every text needs a label.")
    bad = _first_bad(arr.tolist(), lambda v: isinstance(v, (list, tuple, set, dict, np.ndarray)))
    if bad is not None:
        raise ValueError(f"{name}[{bad[0]}] is a {type(bad[1]).__name__}; multilabel targets are not supported.")
    if arr.dtype == object:
        kinds = {type(v) for v in arr.tolist()}
        label_kinds = {label_kind(v) for v in arr.tolist()}
        if len(label_kinds) > 1:
            raise TypeError(f"{name} mixes label types ({', '.join(sorted(k.__name__ for k in kinds))}); use one type.")
        if label_kinds == {"number"}:  # a list of ints: give it a numeric dtype, as np.asarray would
            arr = np.asarray(arr.tolist())
    if type_of_target(arr) == "continuous":
        raise ValueError(f"{name} looks continuous (float values); classification needs discrete labels.")
    check_classification_targets(arr)
    return arr


def check_sample_weight(sample_weight, n_samples: int) -> np.ndarray | None:
    """Validate non-negative, finite per-text weights with a positive sum.

    Parameters
    ----------
    sample_weight : array-like of shape (n_samples,) or None
        Weights; None means all ones.
    n_samples : int
        Expected length.

    Returns
    -------
    ndarray of float64 or None
    """
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.ndim != 1 or len(w) != n_samples:
        raise ValueError(f"sample_weight must have shape ({n_samples},), got {w.shape}.")
    bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
    if bad.size:
        raise ValueError(f"sample_weight[{bad[0]}] is {w[bad[0]]}; weights must be finite and non-negative.")
    if w.sum() <= 0:
        raise ValueError("sample_weight sums to 0; at least one text needs a positive weight.")
    return w

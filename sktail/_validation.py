"""Input checks shared by the estimator: texts, labels, sample weights."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, MappingView, Set
from numbers import Real

import numpy as np

__all__ = ["check_sample_weight", "check_texts", "check_labels", "label_kind", "nested_encoder_options"]

#: Smallest ratio of a positive sample weight to the largest that training accepts.
_WEIGHT_RANGE = 1e-30


def _first_bad(values, predicate):
    for i, v in enumerate(values):
        if predicate(v):
            return i, v
    return None


def _reject_unordered(values, name: str) -> None:
    """Refuse containers without a defined order (sets, dicts and their views).

    Their iteration order is arbitrary, so texts would be paired with the wrong
    labels or weights, and predictions could not be mapped back to the inputs.
    """
    if isinstance(values, (Set, Mapping, MappingView)):
        kind = type(values).__name__
        raise TypeError(
            f"{name} is a {kind}, which has no defined order: its elements could not be matched "
            f"row by row with the other inputs or the predictions. Pass a list, tuple, numpy array "
            f"or pandas Series, built in an order you control."
        )


def _materialise(values):
    """A list of the elements of a one-pass iterator (a generator); anything else unchanged."""
    if isinstance(values, Iterator):
        return list(values)
    return values


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

    Accepts lists, tuples, 1-D numpy arrays, pandas Series, single-column
    DataFrames and iterators (a generator is read once). Rejects a bare
    string, bytes, unordered containers (``set``, ``frozenset``, ``dict`` and
    its views), non-string elements (naming the first offending index), nested
    sequences and 2-D input with several columns.

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
    _reject_unordered(X, name)
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

    Accepts the same containers as :func:`check_texts`: lists, tuples, numpy
    arrays, pandas Series, one-column arrays and iterators (a generator is
    read once). Unordered containers (``set``, ``frozenset``, ``dict`` and its
    views) are rejected.

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
    _reject_unordered(y, name)
    y = _materialise(y)
    if hasattr(y, "to_numpy"):
        y = y.to_numpy()
    arr = np.asarray(y, dtype=object) if not isinstance(y, np.ndarray) else y
    if arr.ndim == 0:
        raise TypeError(f"{name} must be a sequence of labels (one per text), got {type(y).__name__}.")
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
    """Validate non-negative, finite per-text weights and bring them into float32 range.

    The loss is a weighted *mean*, so only the ratios of the weights matter.
    The weights are multiplied by a power of two so that the largest lies in
    ``[1, 2)``: the scaling is exact, training gives bit-identical results to
    the unscaled weights, and weights such as ``1e300`` (beyond float32, in
    which the loss is computed) train like ones. Weights that are all zero,
    negative, non-finite, or whose positive values span a range float32
    cannot hold (the smallest below ``1e-30`` times the largest) are rejected.

    Parameters
    ----------
    sample_weight : array-like of shape (n_samples,) or None
        Weights; None means all ones. Lists, tuples, arrays, Series and
        iterators (read once) are accepted; unordered containers are not.
    n_samples : int
        Expected length.

    Returns
    -------
    ndarray of float64 or None
        The rescaled weights (largest in ``[1, 2)``).

    Raises
    ------
    ValueError
        Naming ``sample_weight`` (and the first offending index) for a wrong
        shape, a negative, NaN or infinite weight, all zeros, or too wide a range.
    TypeError
        For an unordered container or non-numeric values.
    """
    if sample_weight is None:
        return None
    _reject_unordered(sample_weight, "sample_weight")
    sample_weight = _materialise(sample_weight)
    try:
        w = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"sample_weight must be numbers, one per text: {error}") from None
    if w.ndim != 1 or len(w) != n_samples:
        raise ValueError(f"sample_weight must have shape ({n_samples},), got {w.shape}.")
    bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
    if bad.size:
        raise ValueError(f"sample_weight[{bad[0]}] is {w[bad[0]]}; weights must be finite and non-negative.")
    largest = w.max()
    if largest <= 0:
        raise ValueError("sample_weight sums to 0; at least one text needs a positive weight.")
    smallest = w[w > 0].min()
    if smallest < _WEIGHT_RANGE * largest:
        i = int(np.flatnonzero(w == smallest)[0])
        raise ValueError(
            f"sample_weight[{i}] is {smallest}, less than {_WEIGHT_RANGE:g} times the largest weight "
            f"({largest}); float32 training cannot represent that ratio. Use 0 to leave a text out."
        )
    # An exact power-of-two scaling: the float32 weighted means do not change.
    return np.ldexp(w, 1 - np.frexp(largest)[1])


_OPTIONS = "encoder_options"


def nested_encoder_options(params: dict, current) -> dict:
    """Fold ``encoder_options__NAME`` keys of a ``set_params`` call into one ``encoder_options``.

    Parameters
    ----------
    params : dict
        The keyword arguments of ``set_params``.
    current : dict or None
        The estimator's ``encoder_options`` now (not changed).

    Returns
    -------
    dict
        ``params`` without the nested keys and, when there were any, with
        ``encoder_options`` set to a new dict: ``params["encoder_options"]``
        (or ``current``) updated with the nested values.

    Raises
    ------
    ValueError
        For a nested key without an option name, one nested twice
        (``encoder_options__a__b``), or a base that is not a dict or None.
    """
    prefix = _OPTIONS + "__"
    nested = {key[len(prefix):]: value for key, value in params.items() if key.startswith(prefix)}
    if not nested:
        return params
    for name in nested:
        if not name or "__" in name:
            raise ValueError(
                f"set_params({prefix}{name}=...): encoder options are one level deep; use "
                f"{prefix}OPTION=value, e.g. {prefix}embedding_dim=32."
            )
    base = params.get(_OPTIONS, current)
    if base is not None and not isinstance(base, Mapping):
        raise ValueError(
            f"set_params({prefix}{next(iter(nested))}=...) needs encoder_options to be a dict or None, "
            f"not {type(base).__name__}."
        )
    out = {key: value for key, value in params.items() if not key.startswith(prefix)}
    out[_OPTIONS] = {**(base or {}), **nested}
    return out

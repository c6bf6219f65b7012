"""Typed JSON for model files: numpy arrays and scalars that come back with their dtype.

:func:`to_json` turns parameters and fitted attributes into JSON data and
:func:`from_json` turns that data back into equal objects (``str`` and ``int``
labels keep their dtype, object arrays their elements). Only plain data
types are accepted in either direction.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np

__all__ = ["check_fitted", "from_json", "to_json"]

_ARRAY_KINDS = "biufU"


def to_json(value, where: str):
    """Encode ``value`` as JSON data that :func:`from_json` turns back into an equal object.

    Parameters
    ----------
    value : object
        None, bool, str, int, float, numpy arrays and scalars of kinds
        ``biufU`` (or 1-D object arrays of such values), lists, tuples and
        dicts with str keys of these.
    where : str
        What is encoded, for error messages.

    Returns
    -------
    object
        JSON-serialisable data.

    Raises
    ------
    TypeError
        For any other type.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            if value.ndim != 1:
                raise TypeError(f"cannot save {where}: object arrays must be 1-D.")
            return {"__ndarray__": [to_json(v, where) for v in value.tolist()], "dtype": "object"}
        if value.dtype.kind not in _ARRAY_KINDS:
            raise TypeError(f"cannot save {where}: arrays of dtype {value.dtype} are not supported.")
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.str, "shape": list(value.shape)}
    if isinstance(value, np.generic):
        if value.dtype.kind not in _ARRAY_KINDS:
            raise TypeError(f"cannot save {where}: numpy scalars of dtype {value.dtype} are not supported.")
        return {"__npscalar__": value.item(), "dtype": value.dtype.str}
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [to_json(v, where) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"cannot save {where}: dictionary keys must be str.")
        return {k: to_json(v, where) for k, v in value.items()}
    raise TypeError(f"cannot save {where}: values of type {type(value).__name__} are not supported.")


def _dtype(text) -> np.dtype:
    dtype = np.dtype(str(text))
    if dtype.kind not in _ARRAY_KINDS:
        raise ValueError(f"model.json names the unsupported dtype {text!r}.")
    return dtype


def from_json(value):
    """Decode data written by :func:`to_json`.

    Parameters
    ----------
    value : object
        Parsed JSON.

    Returns
    -------
    object
        Arrays and numpy scalars with their stored dtype; other values as parsed.

    Raises
    ------
    ValueError, TypeError
        For an unsupported dtype or an array whose items do not fit its shape.
    """
    if isinstance(value, list):
        return [from_json(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__ndarray__" in value:
        items = value["__ndarray__"]
        if value["dtype"] == "object":
            out = np.empty(len(items), dtype=object)
            out[:] = [from_json(v) for v in items]
            return out
        return np.array(items, dtype=_dtype(value["dtype"])).reshape(value["shape"])
    if "__npscalar__" in value:
        return _dtype(value["dtype"]).type(value["__npscalar__"])
    return {k: from_json(v) for k, v in value.items()}


# -- the fitted attributes of a model file, each checked against its type and range ---------
def _integer(value, low):
    return isinstance(value, Integral) and not isinstance(value, (bool, np.bool_)) and value >= low


def _finite(value, low=-math.inf, *, open_low=False):
    if not isinstance(value, Real) or isinstance(value, (bool, np.bool_)) or not math.isfinite(value):
        return False
    return value > low if open_low else value >= low


def _vector(value, n, kinds) -> bool:
    return isinstance(value, np.ndarray) and value.ndim == 1 and (n is None or len(value) == n) and value.dtype.kind in kinds


_SCALARS = {
    "max_length_": ("an int >= 1", lambda v: _integer(v, 1)),
    "epochs_": ("an int >= 1", lambda v: _integer(v, 1)),
    "batch_size_": ("an int >= 1", lambda v: _integer(v, 1)),
    "learning_rate_": ("a finite float > 0", lambda v: _finite(v, 0, open_low=True)),
    "weight_decay_": ("a finite float >= 0", lambda v: _finite(v, 0)),
    "imbalance_index_": ("a finite float", _finite),
    "tail_gate_on_": ("a bool", lambda v: isinstance(v, (bool, np.bool_))),
    "best_epoch_": ("an int >= 0 or null", lambda v: v is None or _integer(v, 0)),
    "n_iter_": ("an int >= 0", lambda v: _integer(v, 0)),
    "world_size_": ("an int >= 1", lambda v: _integer(v, 1)),
    "best_validation_score_": ("a finite float or null", lambda v: v is None or _finite(v)),
    "history_": ("a list of objects with str keys",
                 lambda v: isinstance(v, list) and all(isinstance(r, dict) for r in v)),
}
#: Attributes predictions need: a file without them cannot be used.
_REQUIRED = ("classes_", "max_length_", "batch_size_")


def _check_classes(classes) -> None:
    if not _vector(classes, None, "biufUO") or len(classes) < 2:
        raise ValueError("classes_ must be a 1-D array of at least 2 labels")
    if classes.dtype == object:
        kinds = {"str" if isinstance(c, str) else "number" if isinstance(c, Real) else type(c).__name__
                 for c in classes.tolist()}
        if len(kinds) != 1 or not kinds <= {"str", "number"}:
            raise ValueError(f"classes_ must be labels of one type, str or number, got {sorted(kinds)}")
    if classes.dtype.kind == "f" and not np.all(np.isfinite(classes)):
        raise ValueError("classes_ holds NaN or infinite labels")
    unique = np.unique(classes)
    if len(unique) != len(classes):
        raise ValueError(f"classes_ holds duplicate labels ({len(classes) - len(unique)} repeated)")
    if not all(a == b for a, b in zip(unique.tolist(), classes.tolist())):
        raise ValueError("classes_ is not sorted (fit stores the sorted unique labels)")


def check_fitted(fitted: dict) -> dict:
    """Check the fitted attributes read from ``model.json`` against their types and ranges.

    Parameters
    ----------
    fitted : dict
        Attribute name -> value, as :func:`from_json` decoded them.

    Returns
    -------
    dict
        ``fitted`` unchanged.

    Raises
    ------
    ValueError
        Naming the first attribute that is missing (``classes_``,
        ``max_length_``, ``batch_size_``), of the wrong type, out of range or
        inconsistent with ``classes_`` (duplicate or unsorted classes, counts
        or offsets of another length, tail classes that are not classes).
        Attributes sktail does not know are left as they are.
    """
    missing = [name for name in _REQUIRED if name not in fitted]
    if missing:
        raise ValueError(f"model.json lacks the fitted attributes {missing}")
    for name, (expected, valid) in _SCALARS.items():
        if name in fitted and not valid(fitted[name]):
            raise ValueError(f"model.json: the fitted attribute {name} is {fitted[name]!r}; it must be {expected}")
    classes = fitted["classes_"]
    try:
        _check_classes(classes)
    except TypeError as error:  # labels numpy cannot order
        raise ValueError(f"classes_ cannot be ordered: {error}") from None
    n = len(classes)
    counts = fitted.get("class_counts_")
    if counts is not None and not (_vector(counts, n, "iu") and np.all(counts >= 0)):
        raise ValueError(f"model.json: class_counts_ must be {n} non-negative ints, one per class")
    offsets = fitted.get("prior_offsets_")
    if offsets is not None and not (_vector(offsets, n, "f") and np.all(np.isfinite(offsets))):
        raise ValueError(f"model.json: prior_offsets_ must be {n} finite floats, one per class")
    tail = fitted.get("tail_classes_")
    if tail is not None:
        known = set(classes.tolist())
        if not (_vector(tail, None, "biufUO") and len(set(tail.tolist())) == len(tail) <= n
                and set(tail.tolist()) <= known):
            raise ValueError("model.json: tail_classes_ must be distinct labels of classes_")
    return fitted

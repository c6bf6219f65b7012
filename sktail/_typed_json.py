"""Typed JSON for model files: numpy arrays and scalars that come back with their dtype.

:func:`to_json` turns parameters and fitted attributes into JSON data and
:func:`from_json` turns that data back into equal objects (``str`` and ``int``
labels keep their dtype, object arrays their elements). Only plain data
types are accepted in either direction.
"""

from __future__ import annotations

import numpy as np

__all__ = ["from_json", "to_json"]

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

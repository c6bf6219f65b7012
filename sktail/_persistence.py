"""Model files without pickle: :func:`save` and :func:`load`.

A model file is one zip archive holding only data:

* ``manifest.json``: the format name, the format version, the sktail version
  that wrote it and the SHA-256 of every other member;
* ``model.json``: the estimator's parameters, its fitted attributes (arrays
  with their dtype, so string and integer labels come back as they were) and
  the encoder's settings;
* ``network.safetensors``: the network weights;
* ``encoder/<name>``: the encoder's data files (the jieba-bag vocabulary, or a
  Hugging Face tokenizer and ``config.json``).

Loading reads these members into memory, checks every checksum, parses JSON
and safetensors and rebuilds the network from its configuration: nothing is
unpickled, imported by name or executed. Writing is atomic: the archive is
written to a temporary file in the target folder, flushed to disk and renamed
over ``path``, so a crash while saving leaves the previous file intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ._atomic import atomic_write, check_destination

__all__ = ["FORMAT", "FORMAT_VERSION", "ModelFileError", "load", "save"]

FORMAT = "sktail-model"
FORMAT_VERSION = 1
_MANIFEST = "manifest.json"
_MODEL = "model.json"
_WEIGHTS = "network.safetensors"
_ENCODER_DIR = "encoder/"
_DATA_SUFFIXES = (".json", ".txt", ".model")
_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
#: Encoder families a model file may name, and the classes that rebuild them.
_ENCODERS = {"jieba-bag": "BagEncoder", "huggingface": "HFEncoder"}
_NOT_SAVED = ("encoder_", "network_")


class ModelFileError(ValueError):
    """Raised when a file is not a valid sktail model file (foreign, truncated or altered)."""


# -- typed JSON for fitted attributes ----------------------------------------------
_ARRAY_KINDS = "biufU"


def _to_json(value, where: str):
    """Encode ``value`` as JSON data that :func:`_from_json` turns back into an equal object."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            if value.ndim != 1:
                raise TypeError(f"cannot save {where}: object arrays must be 1-D.")
            return {"__ndarray__": [_to_json(v, where) for v in value.tolist()], "dtype": "object"}
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
        return [_to_json(v, where) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"cannot save {where}: dictionary keys must be str.")
        return {k: _to_json(v, where) for k, v in value.items()}
    raise TypeError(f"cannot save {where}: values of type {type(value).__name__} are not supported.")


def _dtype(text) -> np.dtype:
    dtype = np.dtype(str(text))
    if dtype.kind not in _ARRAY_KINDS:
        raise ModelFileError(f"model.json names the unsupported dtype {text!r}.")
    return dtype


def _from_json(value):
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__ndarray__" in value:
        items = value["__ndarray__"]
        if value["dtype"] == "object":
            out = np.empty(len(items), dtype=object)
            out[:] = [_from_json(v) for v in items]
            return out
        return np.array(items, dtype=_dtype(value["dtype"])).reshape(value["shape"])
    if "__npscalar__" in value:
        return _dtype(value["dtype"]).type(value["__npscalar__"])
    return {k: _from_json(v) for k, v in value.items()}


# -- writing -------------------------------------------------------------------------
def _encoder_type(encoder) -> str:
    for kind, class_name in _ENCODERS.items():
        if type(encoder).__name__ == class_name and type(encoder).__module__.startswith("sktail.encoders."):
            return kind
    raise TypeError(
        f"cannot save an estimator whose encoder is a {type(encoder).__name__}; "
        f"model files support the encoders {sorted(_ENCODERS)}. Use pickle/joblib instead."
    )


def _params(estimator) -> dict:
    params = estimator.get_params(deep=False)
    if not (params["random_state"] is None or isinstance(params["random_state"], (int, np.integer))):
        params["random_state"] = None  # a RandomState instance only matters to fit; it is not data
    return {k: _to_json(v, f"parameter {k}") for k, v in params.items()}


def _weights_bytes(network) -> bytes:
    from safetensors.torch import save as safetensors_save

    # Copies are contiguous and unshared, which safetensors requires.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in network.state_dict().items()}
    return safetensors_save(tensors, metadata={"format": "pt"})


def _members(estimator) -> dict:
    encoder = estimator.encoder_
    encoder_config, encoder_files = encoder.to_config()
    for name in encoder_files:
        _check_member_name(_ENCODER_DIR + name)
    fitted = {
        k: _to_json(v, f"attribute {k}") for k, v in vars(estimator).items()
        if k.endswith("_") and not k.startswith("_") and k not in _NOT_SAVED
    }
    model = {
        "estimator": type(estimator).__name__,
        "params": _params(estimator),
        "fitted": fitted,
        "encoder": {"type": _encoder_type(encoder), "config": encoder_config, "files": sorted(encoder_files)},
    }
    members = {_MODEL: json.dumps(model, indent=1, sort_keys=True).encode("utf-8"), _WEIGHTS: _weights_bytes(estimator.network_)}
    members.update({_ENCODER_DIR + name: data for name, data in encoder_files.items()})
    return members


def save(estimator, path) -> Path:
    """Write a fitted :class:`~sktail.AutoTailClassifier` to a model file.

    Parameters
    ----------
    estimator : AutoTailClassifier
        A fitted classifier with a ``"jieba-bag"`` or Hugging Face encoder.
    path : str or path-like
        Destination file (conventionally ``*.sktail``); its folder must exist.
        An existing regular file is replaced atomically and keeps its
        permissions; a new file gets ``0o666`` less the umask. A symbolic link
        is written through: its target is replaced, the link kept.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.
    TypeError
        If a parameter or fitted attribute cannot be stored as data.
    IsADirectoryError, FileNotFoundError, ValueError
        If ``path`` is a directory, its folder does not exist, or it is not a
        regular file (a device, a pipe, a socket, or a link to one). These
        are checked before anything is serialised.

    See Also
    --------
    load : Read the file back.
    """
    from sklearn.utils.validation import check_is_fitted

    from ._version import __version__

    check_is_fitted(estimator)
    check_destination(path)  # before the (possibly long) serialisation
    members = _members(estimator)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "sktail_version": __version__,
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in members.items()},
    }

    def write(handle):
        with zipfile.ZipFile(handle, "w") as archive:
            for name, data in [(_MANIFEST, json.dumps(manifest, indent=1).encode("utf-8")), *members.items()]:
                info = zipfile.ZipInfo(name, date_time=_TIMESTAMP)
                info.compress_type = zipfile.ZIP_STORED if name == _WEIGHTS else zipfile.ZIP_DEFLATED
                archive.writestr(info, data)

    return atomic_write(path, write)


# -- reading -------------------------------------------------------------------------
def _check_member_name(name: str):
    if name in (_MODEL, _WEIGHTS):
        return
    base = name[len(_ENCODER_DIR):] if name.startswith(_ENCODER_DIR) else ""
    if not base or "/" in base or "\\" in base or base.startswith(".") or not base.endswith(_DATA_SUFFIXES):
        raise ModelFileError(
            f"unexpected member {name!r}: a model file holds only {_MODEL}, {_WEIGHTS} and "
            f"encoder data files ({', '.join(_DATA_SUFFIXES)})."
        )


def _json(data: bytes, name: str):
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ModelFileError(f"{name} is not valid JSON: {error}") from None


#: What the zip reader raises on damaged bytes (CRC, inflate, header and name errors).
_DAMAGED_ZIP_ERRORS = (
    zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, UnicodeDecodeError, struct.error,
)


def _read_members(path) -> dict:
    """Every member of a model file, after the format, version and checksum checks."""
    try:
        archive = zipfile.ZipFile(path)
    except (*_DAMAGED_ZIP_ERRORS, ValueError):
        raise ModelFileError(
            f"{os.fspath(path)!r} is not an sktail model file (not a zip archive; truncated or foreign?)."
        ) from None
    with archive:
        names = archive.namelist()
        if _MANIFEST not in names:
            raise ModelFileError(f"{os.fspath(path)!r} is not an sktail model file: it has no {_MANIFEST}.")
        try:
            manifest = _json(archive.read(_MANIFEST), _MANIFEST)
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                raise ModelFileError(f"{os.fspath(path)!r} is not an sktail model file (format is not {FORMAT!r}).")
            version = manifest.get("format_version")
            if version != FORMAT_VERSION:
                raise ModelFileError(
                    f"{os.fspath(path)!r} has model format version {version!r}; this sktail reads "
                    f"version {FORMAT_VERSION}. Load it with the sktail version that wrote it "
                    f"({manifest.get('sktail_version', 'unknown')})."
                )
            checksums = manifest.get("files")
            if not isinstance(checksums, dict) or len(names) != len(set(names)) or set(names) != {_MANIFEST, *checksums}:
                raise ModelFileError("the archive's members do not match its manifest (files added or removed).")
            members = {}
            for name, expected in checksums.items():
                _check_member_name(name)
                data = archive.read(name)
                if hashlib.sha256(data).hexdigest() != expected:
                    raise ModelFileError(f"checksum mismatch for {name}: the model file was altered or corrupted.")
                members[name] = data
        except (*_DAMAGED_ZIP_ERRORS, OSError, RuntimeError) as error:  # CRC, inflate or read errors
            raise ModelFileError(f"{os.fspath(path)!r} is corrupted: {error}") from None
    for name in (_MODEL, _WEIGHTS):
        if name not in members:
            raise ModelFileError(f"the model file has no {name}.")
    return members


def _encoder_class(kind):
    if kind == "jieba-bag":
        from .encoders._bag import BagEncoder

        return BagEncoder
    if kind == "huggingface":
        from .encoders._hf import HFEncoder

        return HFEncoder
    raise ModelFileError(f"unknown encoder type {kind!r} in model.json (known: {sorted(_ENCODERS)}).")


def _rebuild(members: dict):
    from safetensors import SafetensorError
    from safetensors.torch import load as safetensors_load

    from .classifier import AutoTailClassifier

    model = _json(members[_MODEL], _MODEL)
    try:
        if model["estimator"] != "AutoTailClassifier":
            raise ModelFileError(f"model.json holds a {model['estimator']!r}, not an AutoTailClassifier.")
        params = _from_json(model["params"])
        unknown = set(params) - set(AutoTailClassifier().get_params(deep=False))
        if unknown:
            raise ModelFileError(f"model.json has parameters this sktail does not know: {sorted(unknown)}.")
        estimator = AutoTailClassifier(**params)
        for name, value in _from_json(model["fitted"]).items():
            if not (name.endswith("_") and not name.startswith("_")) or name in _NOT_SAVED:
                raise ModelFileError(f"model.json sets the attribute {name!r}, which is not a fitted attribute.")
            setattr(estimator, name, value)
        spec = model["encoder"]
        files = {name: members[_ENCODER_DIR + name] for name in spec["files"]}
        estimator.encoder_ = _encoder_class(spec["type"]).from_config(spec["config"], files)
        state_dict = safetensors_load(members[_WEIGHTS])
        estimator.network_ = estimator._network_from_state_dict(state_dict)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError, OSError, SafetensorError) as error:
        raise ModelFileError(f"the model file is inconsistent: {type(error).__name__}: {error}") from None
    return estimator


def load(path):
    """Read a model file written by :func:`save` (or :meth:`AutoTailClassifier.save`).

    Nothing in the file is unpickled or executed: JSON, safetensors and
    tokenizer data are parsed, every member's SHA-256 is checked against the
    manifest, and the network is rebuilt from its configuration. The loaded
    estimator predicts exactly like the saved one.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.

    Returns
    -------
    AutoTailClassifier
        The fitted classifier.

    Raises
    ------
    ModelFileError
        (a ``ValueError``) if the file is not an sktail model file, is
        truncated or altered, or has an unsupported format version.
    FileNotFoundError
        If ``path`` does not exist.

    See Also
    --------
    save : Write a model file.

    Examples
    --------
    >>> import sktail, tempfile, os
    >>> texts = ["深度学习模型", "水稻种植技术"] * 4
    >>> clf = sktail.AutoTailClassifier(epochs=2, validation_fraction=None, random_state=0)
    >>> clf = clf.fit(texts, ["工学", "农学"] * 4)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.sktail")
    >>> _ = clf.save(path)
    >>> (sktail.load(path).predict_proba(texts) == clf.predict_proba(texts)).all()
    np.True_
    """
    return _rebuild(_read_members(path))

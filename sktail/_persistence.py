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

Loading checks every member's declared size against the ``MAX_*`` limits and
the manifest before inflating anything, reads the members in bounded chunks
while hashing them, checks every checksum, parses JSON and the safetensors
header, checks the header's tensor shapes against the network the
configuration builds on the meta device (nothing allocated), and only then
builds the network and loads the weights: nothing is unpickled, imported by
name or executed. Writing is atomic: the archive is
written to a temporary file in the target folder, flushed to disk and renamed
over ``path``, so a crash while saving leaves the previous file intact.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np

from ._atomic import atomic_write, check_destination
from ._model_file_read import (  # the layout, the error and the checks of reading
    _ENCODER_DIR,
    _MANIFEST,
    _MODEL,
    _WEIGHTS,
    FORMAT,
    FORMAT_VERSION,
    ModelFileError,
    ReadLimits,
    checked_weights,
    read_members,
)
from ._model_file_read import _expected_tensors as _expected_tensors  # still importable from here
from ._model_file_read import check_member_name as _check_member_name
from ._model_file_read import parse_json as _json
from ._typed_json import check_fitted as _check_fitted
from ._typed_json import from_json as _from_json
from ._typed_json import to_json as _to_json

__all__ = ["FORMAT", "FORMAT_VERSION", "ModelFileError", "load", "save"]

_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
_NOT_SAVED = ("encoder_", "network_")

# -- loading limits: checked on the zip headers before a byte is inflated ------------------
#: Most members a model file may have (sktail writes 3 plus the encoder's files).
MAX_MEMBERS = 64
#: Largest ``manifest.json``.
MAX_MANIFEST_BYTES = 1 << 20
#: Largest ``model.json`` (parameters, fitted attributes, pruning ids: a few MB at most).
MAX_MODEL_JSON_BYTES = 64 << 20
#: Largest single ``encoder/`` file (a multilingual ``tokenizer.json`` is about 17 MB).
MAX_ENCODER_FILE_BYTES = 64 << 20
#: Largest total of all members but the weights.
MAX_DATA_BYTES = 256 << 20
#: Largest ``network.safetensors`` (stored uncompressed, so never more than the file's
#: own bytes; 8 GiB holds 2 billion float32 weights, a base BERT is about 0.4 GiB).
MAX_WEIGHTS_BYTES = 8 << 30
#: Largest JSON header of ``network.safetensors``.
MAX_SAFETENSORS_HEADER_BYTES = 16 << 20


def _limits() -> ReadLimits:
    """The loading limits in force: the ``MAX_*`` values of this module as they are now."""
    return ReadLimits(
        members=MAX_MEMBERS, manifest_bytes=MAX_MANIFEST_BYTES, model_json_bytes=MAX_MODEL_JSON_BYTES,
        encoder_file_bytes=MAX_ENCODER_FILE_BYTES, data_bytes=MAX_DATA_BYTES, weights_bytes=MAX_WEIGHTS_BYTES,
        safetensors_header_bytes=MAX_SAFETENSORS_HEADER_BYTES,
    )


# -- writing -------------------------------------------------------------------------
def _encoder_type(encoder) -> str:
    """The registered family id of ``encoder`` (what model files store)."""
    from .encoders._registry import family_of

    try:
        return family_of(encoder).id
    except TypeError as error:
        raise TypeError(f"cannot save this estimator: {error}. Use pickle/joblib instead.") from None


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
    # In name order: the same model gives the same bytes whatever order the encoder listed them in.
    members.update({_ENCODER_DIR + name: encoder_files[name] for name in sorted(encoder_files)})
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
        "sizes": {name: len(data) for name, data in members.items()},
    }

    def write(handle):
        with zipfile.ZipFile(handle, "w") as archive:
            for name, data in [(_MANIFEST, json.dumps(manifest, indent=1).encode("utf-8")), *members.items()]:
                info = zipfile.ZipInfo(name, date_time=_TIMESTAMP)
                info.compress_type = zipfile.ZIP_STORED if name == _WEIGHTS else zipfile.ZIP_DEFLATED
                archive.writestr(info, data)

    return atomic_write(path, write)


# -- reading (the checks are in _model_file_read) ----------------------------------------
def _encoder_class(kind):
    """The encoder class of the family ``kind`` named in ``model.json``."""
    from .encoders._registry import get_family, registered_families

    try:
        return get_family(kind).resolve()
    except KeyError:
        raise ModelFileError(
            f"unknown encoder type {kind!r} in model.json (known: {registered_families()})."
        ) from None


def _check_params(estimator) -> None:
    """The parameters of ``model.json`` within the estimator's own constraints."""
    validate = getattr(estimator, "_validate_params", None)
    if validate is None:
        return
    try:
        validate()
    except ValueError as error:
        raise ModelFileError(f"the model file is inconsistent: model.json holds an invalid parameter: {error}") from None


def _rebuild(members: dict, estimator_class, limits: ReadLimits):
    model = _json(members[_MODEL], _MODEL)
    try:
        if model["estimator"] != estimator_class.__name__:
            raise ModelFileError(f"model.json holds a {model['estimator']!r}, not an {estimator_class.__name__}.")
        params = _from_json(model["params"])
        unknown = set(params) - set(estimator_class().get_params(deep=False))
        if unknown:
            raise ModelFileError(f"model.json has parameters this sktail does not know: {sorted(unknown)}.")
        estimator = estimator_class(**params)
        _check_params(estimator)
        fitted = _from_json(model["fitted"])
        for name in fitted:
            if not (isinstance(name, str) and name.endswith("_") and not name.startswith("_")) or name in _NOT_SAVED:
                raise ModelFileError(f"model.json sets the attribute {name!r}, which is not a fitted attribute.")
        try:
            _check_fitted(fitted)
        except ValueError as error:
            raise ModelFileError(f"the model file is inconsistent: {error}.") from None
        for name, value in fitted.items():
            setattr(estimator, name, value)
        spec = model["encoder"]
        files = {name: members[_ENCODER_DIR + name] for name in spec["files"]}
        estimator.encoder_ = _encoder_class(spec["type"]).from_config(spec["config"], files)
        state_dict = checked_weights(estimator, members[_WEIGHTS], max_header_bytes=limits.safetensors_header_bytes)
        estimator.network_ = estimator._network_from_state_dict(state_dict)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError, OSError) as error:
        raise ModelFileError(f"the model file is inconsistent: {type(error).__name__}: {error}") from None
    return estimator


def load(path, estimator_class):
    """Read a model file written by :func:`save` into an estimator of ``estimator_class``.

    Nothing in the file is unpickled or executed: JSON, safetensors and
    tokenizer data are parsed, every member's SHA-256 is checked against the
    manifest, and the network is rebuilt from its configuration.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.
    estimator_class : type
        The estimator class named in the file (``AutoTailClassifier``).

    Returns
    -------
    estimator
        The fitted estimator.

    Raises
    ------
    ModelFileError
        (a ``ValueError``) if the file is not an sktail model file, is
        truncated or altered, or has an unsupported format version.
    FileNotFoundError
        If ``path`` does not exist.
    """
    limits = _limits()
    return _rebuild(read_members(path, limits), estimator_class, limits)

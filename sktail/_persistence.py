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
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ._atomic import atomic_write, check_destination
from ._typed_json import from_json as _from_json
from ._typed_json import to_json as _to_json

__all__ = ["FORMAT", "FORMAT_VERSION", "ModelFileError", "load", "save"]

FORMAT = "sktail-model"
FORMAT_VERSION = 1
_MANIFEST = "manifest.json"
_MODEL = "model.json"
_WEIGHTS = "network.safetensors"
_ENCODER_DIR = "encoder/"
_DATA_SUFFIXES = (".json", ".txt", ".model")
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


class ModelFileError(ValueError):
    """Raised when a file is not a valid sktail model file (foreign, truncated or altered).

    A ``ValueError``: loading never runs code from the file, so a bad file can
    only be refused.

    See Also
    --------
    sktail.load : Reads model files.

    Examples
    --------
    >>> import os, tempfile
    >>> import sktail
    >>> path = os.path.join(tempfile.mkdtemp(), "notes.txt")
    >>> with open(path, "w") as handle:
    ...     _ = handle.write("not a model")
    >>> try:
    ...     sktail.load(path)
    ... except sktail.ModelFileError:
    ...     print("refused")
    refused
    """


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


def _not_a_model_file(path, head: bytes) -> ModelFileError:
    where = repr(os.fspath(path))
    if head[:1] == b"\x80":  # pickle protocol 2+: pickle.dump, joblib.dump, torch.save(_use_new_zipfile_serialization=False)
        return ModelFileError(
            f"{where} is not an sktail model file: this looks like a pickle/joblib file. Load it with "
            "joblib.load (or pickle.load), and only if you trust its source: unpickling runs code."
        )
    return ModelFileError(f"{where} is not an sktail model file (not a zip archive; truncated or foreign?).")


def _member_limit(name: str) -> int:
    if name == _MANIFEST:
        return MAX_MANIFEST_BYTES
    if name == _MODEL:
        return MAX_MODEL_JSON_BYTES
    if name == _WEIGHTS:
        return MAX_WEIGHTS_BYTES
    return MAX_ENCODER_FILE_BYTES


def _check_sizes(infos: dict, manifest: dict) -> None:
    """Refuse declared member sizes over the limits or unlike the manifest's, before reading."""
    sizes = manifest.get("sizes")  # absent from files of sktail 0.1.0
    if sizes is not None and (not isinstance(sizes, dict) or set(sizes) != set(manifest["files"])):
        raise ModelFileError("the manifest's member sizes do not match its member list.")
    data_total = 0
    for name, info in infos.items():
        if name == _MANIFEST:
            continue
        if info.file_size > _member_limit(name):
            raise ModelFileError(
                f"{name} declares {info.file_size} bytes, over the limit of {_member_limit(name)} for this "
                "member (sktail._persistence.MAX_*_BYTES); refusing to inflate it."
            )
        if sizes is not None and sizes[name] != info.file_size:
            raise ModelFileError(
                f"checksum mismatch for {name}: its zip header declares {info.file_size} bytes but the "
                f"manifest records {sizes[name]!r}, so its SHA-256 cannot match; the model file was "
                "altered or corrupted."
            )
        if name == _WEIGHTS:
            if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
                raise ModelFileError(f"{_WEIGHTS} is compressed; sktail writes (and reads) it uncompressed.")
        else:
            data_total += info.file_size
    if data_total > MAX_DATA_BYTES:
        raise ModelFileError(
            f"the model file's JSON and encoder members declare {data_total} bytes in all, over the limit "
            f"of {MAX_DATA_BYTES}; refusing to inflate them."
        )


def _read_checked(archive, info, expected=None):
    """A member read in bounded chunks; its SHA-256 computed while it streams."""
    from ._safe_read import read_member

    try:
        data, digest = read_member(archive, info, into_bytearray=info.filename == _WEIGHTS)
    except ValueError as error:
        raise ModelFileError(f"the model file is corrupted: {error}") from None
    if expected is not None and digest != expected:
        raise ModelFileError(f"checksum mismatch for {info.filename}: the model file was altered or corrupted.")
    return data


def _read_members(path) -> dict:
    """Every member of a model file, after the format, version, size and checksum checks.

    The declared (zip header) sizes are checked against the limits above and
    the manifest before any member is inflated, and each member is read in
    chunks, never past its declared size, hashed as it streams.
    """
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head != b"PK\x03\x04":  # sktail writes the archive from the first byte
        raise _not_a_model_file(path, head)
    try:
        archive = zipfile.ZipFile(path)
    except (*_DAMAGED_ZIP_ERRORS, ValueError):
        raise _not_a_model_file(path, head) from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            raise ModelFileError(f"{os.fspath(path)!r} has {len(infos)} members; a model file has at most {MAX_MEMBERS}.")
        names = [info.filename for info in infos]
        infos = {info.filename: info for info in infos}
        if _MANIFEST not in names:
            raise ModelFileError(f"{os.fspath(path)!r} is not an sktail model file: it has no {_MANIFEST}.")
        try:
            if infos[_MANIFEST].file_size > MAX_MANIFEST_BYTES:
                raise ModelFileError(f"{_MANIFEST} declares {infos[_MANIFEST].file_size} bytes; not an sktail model file.")
            manifest = _json(_read_checked(archive, infos[_MANIFEST]), _MANIFEST)
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
            for name in checksums:
                _check_member_name(name)
            _check_sizes(infos, manifest)
            members = {name: _read_checked(archive, infos[name], expected) for name, expected in checksums.items()}
        except (*_DAMAGED_ZIP_ERRORS, OSError, RuntimeError) as error:  # CRC, inflate or read errors
            raise ModelFileError(f"{os.fspath(path)!r} is corrupted: {error}") from None
    for name in (_MODEL, _WEIGHTS):
        if name not in members:
            raise ModelFileError(f"the model file has no {name}.")
    return members


def _encoder_class(kind):
    """The encoder class of the family ``kind`` named in ``model.json``."""
    from .encoders._registry import get_family

    from .encoders._registry import registered_families

    try:
        return get_family(kind).resolve()
    except KeyError:
        raise ModelFileError(
            f"unknown encoder type {kind!r} in model.json (known: {registered_families()})."
        ) from None


def _expected_tensors(estimator, n_entries: int) -> dict:
    """Name -> (shape, dtype) of the network the configuration builds, made on the meta device.

    Nothing is allocated, and building stops once it registers far more
    modules or parameters than the weights file has tensors (a configuration
    asking for a million layers). The layout is the one
    ``_network_from_state_dict`` builds: encoder network, dropout, linear head.
    """
    import torch
    from torch.nn.modules import module as torch_module


    budget = {"modules": 4 * n_entries + 256, "parameters": 2 * n_entries + 64}

    def spend(kind):
        def hook(*args):
            budget[kind] -= 1
            if budget[kind] < 0:
                raise ModelFileError(
                    "the model file is inconsistent: network.safetensors does not match the encoder "
                    f"configuration (model.json, encoder/), which builds far more {kind} than the "
                    f"weights hold tensors ({n_entries})."
                )
        return hook

    hooks = [
        torch_module.register_module_module_registration_hook(spend("modules")),
        torch_module.register_module_parameter_registration_hook(spend("parameters")),
    ]
    try:
        with torch.device("meta"):
            network = estimator.encoder_.build_classifier(len(estimator.classes_), 0.0, pretrained=False)
    finally:
        for hook in hooks:
            hook.remove()
    return {name: (tuple(t.shape), t.dtype) for name, t in network.state_dict().items()}


def _weights(estimator, buffer) -> dict:
    """The state dict in ``buffer``, after its header matched the network the configuration builds."""
    from ._safe_read import safetensors_entries, tensors_from_buffer

    entries = safetensors_entries(buffer, max_header_bytes=MAX_SAFETENSORS_HEADER_BYTES)
    expected = _expected_tensors(estimator, len(entries))
    if set(entries) != set(expected):
        missing, unexpected = sorted(set(expected) - set(entries)), sorted(set(entries) - set(expected))
        raise ModelFileError(
            "the model file is inconsistent: network.safetensors does not match the encoder "
            f"configuration, which builds tensors the weights lack {missing[:5]}, while the weights "
            f"hold tensors it does not build {unexpected[:5]}."
        )
    for name, (shape, dtype) in expected.items():
        entry = entries[name]
        if entry.shape != shape or entry.dtype != dtype:
            raise ModelFileError(
                "the model file is inconsistent: network.safetensors does not match the encoder "
                f"configuration: {name} is {str(entry.dtype)[6:]} {list(entry.shape)} in the weights "
                f"but the configuration builds {str(dtype)[6:]} {list(shape)}."
            )
    return tensors_from_buffer(buffer, entries)


def _rebuild(members: dict, estimator_class):
    model = _json(members[_MODEL], _MODEL)
    try:
        if model["estimator"] != estimator_class.__name__:
            raise ModelFileError(f"model.json holds a {model['estimator']!r}, not an {estimator_class.__name__}.")
        params = _from_json(model["params"])
        unknown = set(params) - set(estimator_class().get_params(deep=False))
        if unknown:
            raise ModelFileError(f"model.json has parameters this sktail does not know: {sorted(unknown)}.")
        estimator = estimator_class(**params)
        for name, value in _from_json(model["fitted"]).items():
            if not (name.endswith("_") and not name.startswith("_")) or name in _NOT_SAVED:
                raise ModelFileError(f"model.json sets the attribute {name!r}, which is not a fitted attribute.")
            setattr(estimator, name, value)
        spec = model["encoder"]
        files = {name: members[_ENCODER_DIR + name] for name in spec["files"]}
        estimator.encoder_ = _encoder_class(spec["type"]).from_config(spec["config"], files)
        state_dict = _weights(estimator, members[_WEIGHTS])
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
    return _rebuild(_read_members(path), estimator_class)

"""Reading and verifying a model file before anything is built from it.

The layout of the format (member names, format name and version), its
error (:class:`ModelFileError`) and the checks :func:`sktail._persistence.load`
makes before it builds an estimator: member names, declared zip sizes against
the limits and the manifest, bounded reads hashed as they stream, checksums,
JSON, and the safetensors header against the tensors the configuration
builds on the meta device. The limits are given by the caller
(:class:`ReadLimits`); ``sktail._persistence.MAX_*`` are the ones in force.
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass

__all__ = [
    "FORMAT", "FORMAT_VERSION", "ModelFileError", "ReadLimits", "check_member_name", "parse_json",
    "read_members", "checked_weights",
]

FORMAT = "sktail-model"
FORMAT_VERSION = 1
_MANIFEST = "manifest.json"
_MODEL = "model.json"
_WEIGHTS = "network.safetensors"
_ENCODER_DIR = "encoder/"
_DATA_SUFFIXES = (".json", ".txt", ".model")


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


@dataclass(frozen=True)
class ReadLimits:
    """The most a model file may hold, checked on the zip headers before a byte is inflated.

    Attributes
    ----------
    members : int
        Most members.
    manifest_bytes : int
        Largest ``manifest.json``.
    model_json_bytes : int
        Largest ``model.json``.
    encoder_file_bytes : int
        Largest single ``encoder/`` file.
    data_bytes : int
        Largest total of all members but the weights.
    weights_bytes : int
        Largest ``network.safetensors``.
    safetensors_header_bytes : int
        Largest JSON header of ``network.safetensors``.
    """

    members: int
    manifest_bytes: int
    model_json_bytes: int
    encoder_file_bytes: int
    data_bytes: int
    weights_bytes: int
    safetensors_header_bytes: int


def check_member_name(name: str):
    """Refuse a member name the format does not have.

    Parameters
    ----------
    name : str
        A member name: ``model.json``, ``network.safetensors`` or an
        ``encoder/`` data file (no folders, no hidden files).

    Raises
    ------
    ModelFileError
        For any other name.
    """
    if name in (_MODEL, _WEIGHTS):
        return
    base = name[len(_ENCODER_DIR):] if name.startswith(_ENCODER_DIR) else ""
    if not base or "/" in base or "\\" in base or base.startswith(".") or not base.endswith(_DATA_SUFFIXES):
        raise ModelFileError(
            f"unexpected member {name!r}: a model file holds only {_MODEL}, {_WEIGHTS} and "
            f"encoder data files ({', '.join(_DATA_SUFFIXES)})."
        )


def parse_json(data: bytes, name: str):
    """The JSON value of a member.

    Parameters
    ----------
    data : bytes
        The member's bytes (UTF-8).
    name : str
        The member's name, for the error message.

    Returns
    -------
    object
        The parsed value.

    Raises
    ------
    ModelFileError
        If ``data`` is not UTF-8 JSON.
    """
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


def _member_limit(name: str, limits: ReadLimits) -> int:
    if name == _MANIFEST:
        return limits.manifest_bytes
    if name == _MODEL:
        return limits.model_json_bytes
    if name == _WEIGHTS:
        return limits.weights_bytes
    return limits.encoder_file_bytes


def _check_sizes(infos: dict, manifest: dict, limits: ReadLimits) -> None:
    """Refuse declared member sizes over the limits or unlike the manifest's, before reading."""
    sizes = manifest.get("sizes")  # absent from files of sktail 0.1.0
    if sizes is not None and (not isinstance(sizes, dict) or set(sizes) != set(manifest["files"])):
        raise ModelFileError("the manifest's member sizes do not match its member list.")
    data_total = 0
    for name, info in infos.items():
        if name == _MANIFEST:
            continue
        if info.file_size > _member_limit(name, limits):
            raise ModelFileError(
                f"{name} declares {info.file_size} bytes, over the limit of {_member_limit(name, limits)} for "
                "this member (sktail._persistence.MAX_*_BYTES); refusing to inflate it."
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
    if data_total > limits.data_bytes:
        raise ModelFileError(
            f"the model file's JSON and encoder members declare {data_total} bytes in all, over the limit "
            f"of {limits.data_bytes}; refusing to inflate them."
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


def _check_regular_file(path) -> None:
    """Refuse a directory, FIFO, socket or device before opening it (a FIFO would block)."""
    import stat

    mode = os.stat(path).st_mode  # FileNotFoundError for a missing file, as before
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(f"{os.fspath(path)!r} is a directory, not a model file.")
    if not stat.S_ISREG(mode):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        raise ModelFileError(
            f"{os.fspath(path)!r} is {kind}, not a regular file; a model file is a regular file "
            "written by AutoTailClassifier.save."
        )


def read_members(path, limits: ReadLimits) -> dict:
    """Every member of a model file, after the format, version, size and checksum checks.

    The declared (zip header) sizes are checked against ``limits`` and the
    manifest before any member is inflated, and each member is read in
    chunks, never past its declared size, hashed as it streams.

    Parameters
    ----------
    path : str or path-like
        The model file.
    limits : ReadLimits
        The limits in force.

    Returns
    -------
    dict
        Member name -> bytes (a ``bytearray`` for the weights), without the
        manifest.

    Raises
    ------
    ModelFileError
        If the file is not a model file, breaks a limit, is of another format
        version, or is truncated or altered.
    """
    _check_regular_file(path)
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
        if len(infos) > limits.members:
            raise ModelFileError(f"{os.fspath(path)!r} has {len(infos)} members; a model file has at most {limits.members}.")
        names = [info.filename for info in infos]
        infos = {info.filename: info for info in infos}
        if _MANIFEST not in names:
            raise ModelFileError(f"{os.fspath(path)!r} is not an sktail model file: it has no {_MANIFEST}.")
        try:
            if infos[_MANIFEST].file_size > limits.manifest_bytes:
                raise ModelFileError(f"{_MANIFEST} declares {infos[_MANIFEST].file_size} bytes; not an sktail model file.")
            manifest = parse_json(_read_checked(archive, infos[_MANIFEST]), _MANIFEST)
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
                check_member_name(name)
            _check_sizes(infos, manifest, limits)
            members = {name: _read_checked(archive, infos[name], expected) for name, expected in checksums.items()}
        except (*_DAMAGED_ZIP_ERRORS, OSError, RuntimeError) as error:  # CRC, inflate or read errors
            raise ModelFileError(f"{os.fspath(path)!r} is corrupted: {error}") from None
    for name in (_MODEL, _WEIGHTS):
        if name not in members:
            raise ModelFileError(f"the model file has no {name}.")
    return members


# -- the weights against the configuration ---------------------------------------------
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


def checked_weights(estimator, buffer, *, max_header_bytes: int) -> dict:
    """The state dict in ``buffer``, after its header matched the network the configuration builds.

    Parameters
    ----------
    estimator : AutoTailClassifier
        The estimator being rebuilt, with ``encoder_`` and ``classes_`` set.
    buffer : bytearray
        The bytes of ``network.safetensors``.
    max_header_bytes : int
        Largest safetensors JSON header.

    Returns
    -------
    dict
        Tensor name -> tensor (viewing ``buffer``, not copied).

    Raises
    ------
    ModelFileError
        If the tensor names, shapes or dtypes differ from those the
        configuration builds.
    """
    from ._safe_read import check_finite_tensors, safetensors_entries, tensors_from_buffer

    entries = safetensors_entries(buffer, max_header_bytes=max_header_bytes)
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
    tensors = tensors_from_buffer(buffer, entries)
    try:
        check_finite_tensors(tensors)
    except ValueError as error:
        raise ModelFileError(f"the model file is inconsistent: {error} Refit the model.") from None
    return tensors

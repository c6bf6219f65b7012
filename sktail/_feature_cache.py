"""On-disk cache of pooled encoder features, shared by every fit that uses it.

With ``train_encoder="none"`` the encoder never changes, so the pooled feature
of a text depends only on the encoder's weights and on the text's token ids.
The cache stores those features under

    <directory>/<namespace>/<block>.npz

* ``namespace`` is a digest of the encoder network (its module structure and
  every tensor of its ``state_dict``) and of the autocast dtype the features
  were computed in: any change of the weights, of the architecture or of the
  precision lands in a fresh namespace.
* Each text's key is a digest of its token ids, which already reflect the
  tokenizer and ``max_length``; a changed text gets a new key. Keys are per
  text, so cross-validation folds and grid-search candidates that share texts
  share their features, and each text is encoded once in total.
* A block holds the keys and features written by one fit (the texts it did not
  find). Its file name is the digest of its sorted keys, so two writers of the
  same texts write the same name. Every block is written to a temporary file
  in the same folder and moved into place with :func:`os.replace`, which is
  atomic: readers see a whole block or none, and concurrent fits cannot
  corrupt the cache. Keys repeated across blocks are harmless.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from ._atomic import atomic_write

__all__ = ["FeatureCache", "network_fingerprint", "resolve_cache_location", "text_keys"]

FORMAT_VERSION = 1
_KEY_BYTES = 16
_SUFFIX = ".npz"

logger = logging.getLogger("sktail")


def resolve_cache_location(feature_cache) -> Path | None:
    """The cache directory named by a ``feature_cache`` parameter.

    Parameters
    ----------
    feature_cache : None, str, os.PathLike or joblib.Memory
        A directory, or a :class:`joblib.Memory` whose ``location`` is used
        (as scikit-learn's ``Pipeline(memory=...)`` accepts either). None, or
        a Memory without a location, disables the cache.

    Returns
    -------
    pathlib.Path or None
        The directory (not created yet), or None when caching is off.
    """
    if feature_cache is None:
        return None
    if isinstance(feature_cache, (str, os.PathLike)):
        return Path(feature_cache).expanduser()
    if hasattr(feature_cache, "location"):
        location = feature_cache.location
        return None if location is None else Path(location).expanduser()
    raise TypeError(
        "feature_cache must be None, a directory path or a joblib.Memory, "
        f"got {type(feature_cache).__name__}."
    )


def _update_with_tensor(digest, name: str, tensor: torch.Tensor) -> None:
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    digest.update(f"{name}\0{flat.dtype}\0{tuple(tensor.shape)}\0".encode())
    digest.update(flat.view(torch.uint8).numpy().tobytes())


def network_fingerprint(network: torch.nn.Module, *extra: str) -> str:
    """Digest of a network's structure and weights (the cache namespace).

    Parameters
    ----------
    network : torch.nn.Module
        The feature extractor; its ``repr`` (layers, sizes, activations,
        normalisation constants) and every ``state_dict`` tensor are hashed.
    *extra : str
        Further settings the features depend on (e.g. the autocast dtype).

    Returns
    -------
    str
        32 hexadecimal digits.
    """
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"sktail-features-v{FORMAT_VERSION}\0{type(network).__qualname__}\0".encode())
    digest.update(repr(network).encode())
    for item in extra:
        digest.update(b"\0" + str(item).encode())
    for name, tensor in network.state_dict().items():
        _update_with_tensor(digest, name, tensor)
    return digest.hexdigest()


def text_keys(ids) -> np.ndarray:
    """One cache key per text: a digest of its token ids.

    Parameters
    ----------
    ids : sequence of ndarray
        Token ids of each text, as the encoder's network receives them.

    Returns
    -------
    ndarray of dtype ``S16``, shape (n_texts,)
        Equal ids give equal keys.
    """
    keys = np.empty(len(ids), dtype=f"S{_KEY_BYTES}")
    for row, a in enumerate(ids):
        data = np.ascontiguousarray(a, dtype=np.int64).tobytes()
        keys[row] = hashlib.blake2b(data, digest_size=_KEY_BYTES).digest()
    return keys


def _read_only(folder: Path) -> bool:
    """Whether new files cannot be made in ``folder`` (permissions or a read-only mount)."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return True
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


class FeatureCache:
    """Features of texts under one encoder namespace of a cache directory.

    The location is checked when the cache is opened, before anything is
    encoded: a file or a dangling link in place of the folder disables the
    cache, a folder that cannot be written is only read; both with a
    ``RuntimeWarning``. A write that fails later is warned about too, and the
    fit goes on without the cache.

    Parameters
    ----------
    root : str or os.PathLike
        The cache directory (created on the first write).
    namespace : str
        Digest of the encoder, see :func:`network_fingerprint`.
    width : int, default=None
        The width of the features; blocks of another width are skipped.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> cache = FeatureCache(tempfile.mkdtemp(), "0" * 32)
    >>> keys = text_keys([np.array([2, 7, 3]), np.array([2, 5, 3])])
    >>> _ = cache.store(keys[:1], np.ones((1, 4), dtype=np.float32))
    >>> features, found = cache.lookup(keys)
    >>> found.tolist(), features[0].tolist()
    ([True, False], [1.0, 1.0, 1.0, 1.0])
    """

    def __init__(self, root, namespace: str, width: int | None = None):
        self.root = Path(root)
        self.namespace = namespace
        self.width = width
        self.readable, self.writable = self._check_location()

    def _check_location(self):
        """Whether the cache can be read and written, warned about before any encoding."""
        root = self.root
        probe = root
        while not os.path.lexists(probe) and probe.parent != probe:
            probe = probe.parent
        if not probe.is_dir():
            if probe.is_symlink() and not probe.exists():
                kind = "a dangling symbolic link"
            else:
                kind = "a file" if probe.is_file() else "not a folder"
            where = "" if probe == root else f" (its parent {probe})"
            warnings.warn(
                f"feature_cache={str(root)!r}{where} is {kind}, so the feature cache can neither be read nor "
                "written: features are computed without it. Pass a folder path (it is created if missing).",
                RuntimeWarning, stacklevel=4,
            )
            return False, False
        if _read_only(probe):
            warnings.warn(
                f"feature_cache={str(root)!r} cannot be written ({probe} is read-only or not writable): "
                "features found in it are used, new ones are computed but not stored.",
                RuntimeWarning, stacklevel=4,
            )
            return probe == root or root.is_dir(), False
        return True, True

    @property
    def directory(self) -> Path:
        """Folder of this namespace's blocks."""
        return self.root / self.namespace

    def _blocks(self):
        if not (self.readable and self.directory.is_dir()):
            return []
        blocks = []
        for path in sorted(self.directory.iterdir()):
            if path.suffix != _SUFFIX or path.name.startswith("."):
                continue
            if not path.is_file():  # a FIFO would block the read, a folder or device is no block
                warnings.warn(f"Ignoring feature-cache entry {path}: not a regular file.", RuntimeWarning, stacklevel=4)
                continue
            blocks.append(path)
        return blocks

    def _read(self, path: Path, width: int | None):
        try:
            with np.load(path, allow_pickle=False) as data:
                keys, features = data["keys"], data["features"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            warnings.warn(f"Ignoring unreadable feature-cache file {path}: {error}", RuntimeWarning, stacklevel=3)
            return None
        problem = None
        if features.ndim != 2 or keys.ndim != 1 or len(keys) != len(features):
            problem = "keys and features do not pair up"
        elif keys.dtype != np.dtype(f"S{_KEY_BYTES}") or features.dtype.kind != "f":
            problem = f"keys of dtype {keys.dtype} or features of dtype {features.dtype}"
        elif width is not None and features.shape[1] != width:
            problem = f"features {features.shape[1]} wide where the encoder gives {width}"
        elif not np.isfinite(features).all():
            problem = "NaN or infinite features"
        if problem is not None:
            warnings.warn(f"Ignoring malformed feature-cache file {path}: {problem}.", RuntimeWarning, stacklevel=3)
            return None
        return keys, features

    def lookup(self, keys, width: int | None = None):
        """Features of the keys found in the cache.

        Blocks that cannot be read, are not regular files, or hold features
        of another width than ``width`` (or than the first block read), or
        non-finite ones, are skipped with a ``RuntimeWarning``.

        Parameters
        ----------
        keys : ndarray of dtype ``S16``
            Keys from :func:`text_keys`.
        width : int, default=None
            The encoder's feature width; defaults to the cache's ``width``.

        Returns
        -------
        features : ndarray of float32, shape (n_keys, hidden_size), or None
            Rows of keys not found are zero; None when nothing was found.
        found : ndarray of bool, shape (n_keys,)
        """
        wanted = {key: row for row, key in enumerate(keys.tolist())}
        found = np.zeros(len(keys), dtype=bool)
        features = None
        width = self.width if width is None else width
        for path in self._blocks():
            block = self._read(path, width)
            if block is None:
                continue
            block_keys, block_features = block
            width = block_features.shape[1]
            for source, key in enumerate(block_keys.tolist()):
                row = wanted.get(key)
                if row is None or found[row]:
                    continue
                if features is None:
                    features = np.zeros((len(keys), block_features.shape[1]), dtype=np.float32)
                if block_features.shape[1] != features.shape[1]:
                    continue
                features[row] = block_features[source]
                found[row] = True
            if found.all():
                break
        # Duplicated keys in the request were filled once, in their representative row.
        for row, key in enumerate(keys.tolist()):
            filled = wanted[key]
            if filled != row and found[filled]:
                features[row], found[row] = features[filled], True
        return features, found

    def store(self, keys, features) -> Path:
        """Write one block atomically (temporary file, then :func:`os.replace`).

        Parameters
        ----------
        keys : ndarray of dtype ``S16``, shape (n,)
            Keys of the rows.
        features : ndarray of shape (n, hidden_size)
            Their features (stored as float32).

        Returns
        -------
        pathlib.Path or None
            The block's file, named by the digest of its sorted keys; None
            when the cache cannot be written (a ``RuntimeWarning`` says why,
            and the fit goes on without storing).
        """
        if not self.writable:
            return None
        keys = np.asarray(keys, dtype=f"S{_KEY_BYTES}")
        features = np.asarray(features, dtype=np.float32)
        order = np.argsort(keys, kind="stable")
        keys, features = keys[order], features[order]
        name = hashlib.blake2b(keys.tobytes(), digest_size=16).hexdigest() + _SUFFIX
        target = self.directory / name
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            atomic_write(target, lambda handle: np.savez(handle, keys=keys, features=features))
        except (OSError, ValueError) as error:
            self.writable = False
            warnings.warn(
                f"Could not write the feature cache {self.directory} ({type(error).__name__}: {error}); "
                "continuing without storing features.", RuntimeWarning, stacklevel=3,
            )
            return None
        logger.debug("feature cache: wrote %d rows to %s", len(keys), target)
        return target

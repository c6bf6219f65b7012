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


class FeatureCache:
    """Features of texts under one encoder namespace of a cache directory.

    Parameters
    ----------
    root : str or os.PathLike
        The cache directory (created on the first write).
    namespace : str
        Digest of the encoder, see :func:`network_fingerprint`.

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

    def __init__(self, root, namespace: str):
        self.root = Path(root)
        self.namespace = namespace

    @property
    def directory(self) -> Path:
        """Folder of this namespace's blocks."""
        return self.root / self.namespace

    def _blocks(self):
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.iterdir() if p.suffix == _SUFFIX and not p.name.startswith("."))

    @staticmethod
    def _read(path: Path):
        try:
            with np.load(path, allow_pickle=False) as data:
                keys, features = data["keys"], data["features"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            warnings.warn(f"Ignoring unreadable feature-cache file {path}: {error}", RuntimeWarning, stacklevel=3)
            return None
        if features.ndim != 2 or len(keys) != len(features):
            warnings.warn(f"Ignoring malformed feature-cache file {path}.", RuntimeWarning, stacklevel=3)
            return None
        return keys, features

    def lookup(self, keys):
        """Features of the keys found in the cache.

        Parameters
        ----------
        keys : ndarray of dtype ``S16``
            Keys from :func:`text_keys`.

        Returns
        -------
        features : ndarray of float32, shape (n_keys, hidden_size), or None
            Rows of keys not found are zero; None when nothing was found.
        found : ndarray of bool, shape (n_keys,)
        """
        wanted = {key: row for row, key in enumerate(keys.tolist())}
        found = np.zeros(len(keys), dtype=bool)
        features = None
        for path in self._blocks():
            block = self._read(path)
            if block is None:
                continue
            block_keys, block_features = block
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
        pathlib.Path
            The block's file, named by the digest of its sorted keys.
        """
        keys = np.asarray(keys, dtype=f"S{_KEY_BYTES}")
        features = np.asarray(features, dtype=np.float32)
        order = np.argsort(keys, kind="stable")
        keys, features = keys[order], features[order]
        name = hashlib.blake2b(keys.tobytes(), digest_size=16).hexdigest() + _SUFFIX
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / name
        atomic_write(target, lambda handle: np.savez(handle, keys=keys, features=features))
        logger.debug("feature cache: wrote %d rows to %s", len(keys), target)
        return target

"""Crash-safe training: the checkpoint file of one ``fit`` and its identity.

A :class:`Checkpointer` writes the trainer's state (network, optimizer,
scheduler, gradient scaler, numpy and torch RNG states, epoch, position inside
the epoch and the epoch's batch order) atomically to
``<checkpoint_dir>/sktail-<fingerprint>.ckpt``. The fingerprint hashes
everything that determines the run (parameters, data, split and seed), so a
second ``fit`` with the same arguments finds the file and resumes, while a
different job sharing the folder never picks it up.

The file is a ``torch.save`` archive that also holds the SHA-256 of its content
(every tensor's dtype, shape and bytes and every other value, see
:func:`content_digest`): :meth:`Checkpointer.load` recomputes it after reading
with ``torch.load(weights_only=True)``, so a damaged file is reported with a
warning and not used, and training starts over instead of resuming from
altered weights.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from .._atomic import atomic_write

__all__ = [
    "CHECKPOINT_VERSION", "Checkpointer", "DamagedCheckpointError", "content_digest", "fit_fingerprint",
    "read_checkpoint",
]

CHECKPOINT_VERSION = 2


class DamagedCheckpointError(ValueError):
    """A checkpoint file whose content does not match its checksum."""


def _update(digest, value) -> None:
    """Feed a canonical encoding of ``value`` (tensors, containers, scalars) to ``digest``."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"T{tensor.dtype}{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    elif isinstance(value, dict):
        digest.update(f"D{len(value)}".encode())
        for key in sorted(value, key=repr):
            _update(digest, key)
            _update(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"L{len(value)}".encode())
        for item in value:
            _update(digest, item)
    else:
        digest.update(f"S{type(value).__name__}:{value!r};".encode())


def content_digest(value) -> str:
    """SHA-256 of a checkpoint's content: every tensor's dtype, shape and bytes, and every other value.

    Parameters
    ----------
    value : object
        Tensors, dicts, lists, tuples and plain scalars.

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    digest = hashlib.sha256()
    _update(digest, value)
    return digest.hexdigest()


def read_checkpoint(path) -> dict:
    """Deserialise a checkpoint file and verify its checksum.

    Parameters
    ----------
    path : str or path-like
        A file written by :meth:`Checkpointer.save`.

    Returns
    -------
    dict
        The saved payload (``version``, ``fingerprint``, ``trainer``, ``sha256``).

    Raises
    ------
    DamagedCheckpointError
        If the file holds no checksum or its content no longer matches it.
    """
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or "sha256" not in payload:
        raise DamagedCheckpointError("it holds no checksum")
    body = {k: v for k, v in payload.items() if k != "sha256"}
    if content_digest(body) != payload["sha256"]:
        raise DamagedCheckpointError("its content does not match its checksum (the file was altered)")
    return payload


def fit_fingerprint(params: dict, arrays: dict, texts: dict) -> str:
    """SHA-256 identity of a training run.

    Parameters
    ----------
    params : dict
        Settings of the run; values are hashed through their ``repr`` when
        they are not JSON data.
    arrays : dict of str to ndarray or None
        Numeric inputs (labels, weights, row indices, seed).
    texts : dict of str to list of str
        Text inputs (training and validation texts).

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps(params, sort_keys=True, default=repr).encode("utf-8"))
    for name in sorted(arrays):
        value = arrays[name]
        digest.update(name.encode("utf-8"))
        if value is None:
            digest.update(b"none")
            continue
        value = np.ascontiguousarray(value)
        digest.update(f"{value.dtype.str}{value.shape}".encode())
        digest.update(value.tobytes() if value.dtype != object else repr(value.tolist()).encode("utf-8"))
    for name in sorted(texts):
        digest.update(name.encode("utf-8") + len(texts[name]).to_bytes(8, "little"))
        for text in texts[name]:
            data = text.encode("utf-8")
            digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


class Checkpointer:
    """Atomic checkpoints of one training run in a folder.

    Parameters
    ----------
    directory : str or path-like
        Folder of the checkpoint file (created if missing).
    fingerprint : str
        Identity of the run, see :func:`fit_fingerprint`.
    interval : float, default=600.0
        Minimum seconds between two checkpoints inside an epoch; every epoch
        end is checkpointed regardless. 0 checkpoints after every optimizer step.

    Attributes
    ----------
    path : pathlib.Path
        The checkpoint file.
    """

    def __init__(self, directory, fingerprint: str, interval: float = 600.0):
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.fingerprint = fingerprint
        self.interval = float(interval)
        self.path = directory / f"sktail-{fingerprint[:24]}.ckpt"
        self._last = time.monotonic()

    def due(self) -> bool:
        """Whether ``interval`` seconds have passed since the last checkpoint."""
        return time.monotonic() - self._last >= self.interval

    def save(self, state: dict):
        """Write the trainer state atomically (the previous checkpoint survives any crash).

        Parameters
        ----------
        state : dict
            :meth:`Trainer.state_dict` output (tensors and plain Python data).
        """
        payload = {"version": CHECKPOINT_VERSION, "fingerprint": self.fingerprint, "trainer": state}
        payload["sha256"] = content_digest(payload)
        atomic_write(self.path, lambda handle: torch.save(payload, handle))
        self._last = time.monotonic()

    def load(self) -> dict | None:
        """The saved trainer state, or None when there is no usable checkpoint.

        The file is read with ``torch.load(weights_only=True)``, which only
        rebuilds tensors and plain containers, and its checksum is verified. A damaged or unreadable file, or one
        from another run, is ignored with a warning (and later overwritten).

        Returns
        -------
        dict or None
        """
        if not self.path.exists():
            return None
        try:
            payload = read_checkpoint(self.path)
        except DamagedCheckpointError as error:
            warnings.warn(f"Ignoring the unreadable checkpoint {self.path}: {error}; training starts over.",
                          RuntimeWarning, stacklevel=3)
            return None
        except Exception as error:  # noqa: BLE001 - any unreadable file means "start over"
            warnings.warn(f"Ignoring the unreadable checkpoint {self.path}: {error}", RuntimeWarning, stacklevel=3)
            return None
        if (
            not isinstance(payload, dict) or payload.get("version") != CHECKPOINT_VERSION
            or payload.get("fingerprint") != self.fingerprint
        ):
            warnings.warn(f"Ignoring the checkpoint {self.path}: it belongs to another run.", RuntimeWarning, stacklevel=3)
            return None
        return payload["trainer"]

    def remove(self):
        """Delete the checkpoint (the run has finished)."""
        self.path.unlink(missing_ok=True)

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
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from .._atomic import atomic_write
from .state import TrainingState

__all__ = [
    "CHECKPOINT_VERSION", "Checkpointer", "DamagedCheckpointError", "content_digest", "fit_fingerprint",
    "capture_state", "read_checkpoint", "restore_state",
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


def _checkpoint_folder(directory) -> Path:
    """``directory`` as an existing folder (created if missing), or a clear error."""
    directory = Path(directory).expanduser()
    probe = directory
    while not os.path.lexists(probe) and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        kind = "a dangling symbolic link" if probe.is_symlink() and not probe.exists() else "a file"
        what = f"is {kind}" if probe == directory else f"lies inside {probe}, which is {kind}"
        raise ValueError(
            f"checkpoint_dir={str(directory)!r} {what}, not a folder: checkpoints are files inside a "
            "folder. Pass a folder path (it is created if missing), or checkpoint_dir=None."
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(
            f"checkpoint_dir={str(directory)!r} cannot be created ({error.strerror or error}); pass a "
            "writable folder, or checkpoint_dir=None."
        ) from error
    return directory


class Checkpointer:
    """Atomic checkpoints of one training run in a folder.

    Parameters
    ----------
    directory : str or path-like
        Folder of the checkpoint file (created if missing). A regular file or
        a dangling link there raises a ``ValueError`` naming ``checkpoint_dir``.
    fingerprint : str
        Identity of the run, see :func:`fit_fingerprint`.
    interval : float, default=600.0
        Minimum seconds between two checkpoints inside an epoch; every epoch
        end is checkpointed regardless. 0 checkpoints after every optimizer step.

    Attributes
    ----------
    path : pathlib.Path
        The checkpoint file, ``sktail-<fingerprint[:24]>.ckpt`` in ``directory``.

    See Also
    --------
    fit_fingerprint : The identity of a run.
    read_checkpoint : Read a checkpoint file and verify its checksum.
    Checkpoint : The callback that resumes from, writes and removes the file.

    Examples
    --------
    >>> import tempfile
    >>> import torch
    >>> from sktail.training import Checkpointer
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     checkpointer = Checkpointer(folder, "0123abcd", interval=0)
    ...     checkpointer.save({"epoch": 2, "weights": torch.ones(3)})
    ...     state = checkpointer.load()
    ...     checkpointer.remove()
    ...     checkpointer.load() is None
    True
    >>> state["epoch"], state["weights"].tolist()
    (2, [1.0, 1.0, 1.0])
    """

    def __init__(self, directory, fingerprint: str, interval: float = 600.0):
        directory = _checkpoint_folder(directory)
        self.fingerprint = fingerprint
        self.interval = float(interval)
        self.path = directory / f"sktail-{fingerprint[:24]}.ckpt"
        self._last = time.monotonic()

    def due(self) -> bool:
        """Tell whether ``interval`` seconds have passed since the last checkpoint.

        Returns
        -------
        bool
            True when a checkpoint inside an epoch is due.
        """
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
        """Read the saved trainer state, or None when there is no usable checkpoint.

        The file is read with ``torch.load(weights_only=True)``, which only
        rebuilds tensors and plain containers, and its checksum is verified. A damaged or unreadable file, or one
        from another run, is ignored with a warning (and later overwritten).

        Returns
        -------
        dict or None
            The ``state`` given to :meth:`save`; None when the file is missing,
            damaged, unreadable or from another run.
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


def capture_state(trainer) -> dict:
    """Everything needed to continue ``trainer``'s run exactly from this point.

    Parameters
    ----------
    trainer : Trainer
        The loop.

    Returns
    -------
    dict
        Network, optimizer, scheduler and scaler states, numpy and torch
        RNG states, the epoch, the position inside it with its batch order
        and running loss, the history and the best epoch so far. Only
        tensors and plain Python data (``torch.load(weights_only=True)``).
    """
    state = trainer.state
    kind, keys, pos, has_gauss, gauss = trainer.rng.get_state()
    progress = None
    if state.progress is not None:
        progress = {
            "batches": [torch.from_numpy(np.asarray(b, dtype=np.int64)) for b in state.progress["batches"]],
            "next": state.progress["next"], "total": state.progress["total"],
        }
    rng = {"numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                     "has_gauss": int(has_gauss), "gauss": float(gauss)},
           "torch": torch.get_rng_state()}
    if trainer.device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(trainer.device)
    return {
        "network": trainer.cpu_weights(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
        "scaler": trainer.scaler.state_dict(),
        "rng": rng,
        "epoch": state.epoch,
        "progress": progress,
        "history": [dict(h) for h in state.history],
        "best": {"epoch": state.best_epoch, "score": float(state.best_score), "state": state.best_weights},
    }

def restore_state(trainer, saved: dict) -> None:
    """Restore a :func:`capture_state` into ``trainer`` (after its scheduler is built).

    Parameters
    ----------
    trainer : Trainer
        The loop.
    saved : dict
        Output of :meth:`state_dict`; with ``ranks`` (written by a
        data-parallel run), this rank's torch RNG state and running loss
        are taken from it.
    """
    trainer.network.load_state_dict(saved["network"])
    trainer.optimizer.load_state_dict(saved["optimizer"])
    trainer.scheduler.load_state_dict(saved["scheduler"])
    if saved["scaler"]:
        trainer.scaler.load_state_dict(saved["scaler"])
    rng = saved["rng"]["numpy"]
    trainer.rng.set_state(("MT19937", rng["keys"].numpy().astype(np.uint32), rng["pos"], rng["has_gauss"], rng["gauss"]))
    ranks = saved.get("ranks")
    if (1 if ranks is None else len(ranks)) != trainer.parallel.world_size:
        raise ValueError(
            f"the checkpoint was written by {1 if ranks is None else len(ranks)} processes, "
            f"not {trainer.parallel.world_size}."
        )
    own = {"torch": saved["rng"]["torch"], "total": None} if ranks is None else ranks[trainer.parallel.rank]
    torch.set_rng_state(own["torch"])
    if trainer.device.type == "cuda" and "cuda" in saved["rng"]:
        torch.cuda.set_rng_state(saved["rng"]["cuda"], trainer.device)
    progress = saved["progress"]
    best = saved["best"]
    trainer.state = TrainingState(
        epoch=int(saved["epoch"]),
        progress=None if progress is None else {
            "batches": [b.numpy() for b in progress["batches"]], "next": int(progress["next"]),
            "total": float(progress["total"] if own["total"] is None else own["total"]),
        },
        history=[dict(h) for h in saved["history"]],
        best_epoch=best["epoch"], best_score=best["score"], best_weights=best["state"],
    )

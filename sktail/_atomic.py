"""The one atomic file writer: model files, checkpoints, the feature cache, downloads, e5.

A file is written to a temporary sibling, flushed and ``fsync``-ed, given the
permissions that :func:`open` would give, and moved into place with
:func:`os.replace`: a reader sees the old file or the whole new one, and a crash
at any point leaves the old file untouched. A Ctrl-C (SIGINT) that arrives while
the content is written is held back until the file is in place or removed, then
raised as :class:`KeyboardInterrupt`, so the writer never sees a half-interrupted
stream.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import stat
import tempfile
import threading
import time
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_text", "check_destination", "remove_stale_temporaries", "replace_directory"]

_UMASK_LOCK = threading.Lock()


def _current_umask() -> int:
    """The process umask, read without changing it where the system allows (Linux)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    # Elsewhere the umask can only be read by setting it: another thread creating a
    # file in this instant gets 0o022 instead of the process umask.
    with _UMASK_LOCK:
        umask = os.umask(0o022)
        os.umask(umask)
    return umask


def _default_mode() -> int:
    """``0o666`` less the process umask: the mode :func:`open` gives a new file."""
    return 0o666 & ~_current_umask()


def check_destination(path) -> Path:
    """The regular file that writing ``path`` replaces (following a symlink).

    Parameters
    ----------
    path : str or path-like
        Destination of a write.

    Returns
    -------
    pathlib.Path
        ``path`` itself, or the file a symbolic link points to: writing
        through a link replaces its target and keeps the link.

    Raises
    ------
    IsADirectoryError
        If ``path`` is a directory.
    ValueError
        If ``path`` exists and is not a regular file (a device, a pipe, a
        socket), or is a link that points at one.
    FileNotFoundError
        If the folder of ``path`` does not exist.
    """
    path = Path(path)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    if target.is_dir():
        raise IsADirectoryError(f"{path} is a directory; give a file path.")
    if target.exists() and not stat.S_ISREG(target.stat().st_mode):
        raise ValueError(f"{path} exists and is not a regular file; refusing to replace it.")
    if not target.parent.is_dir():
        raise FileNotFoundError(f"the folder {target.parent} does not exist.")
    return target


@contextlib.contextmanager
def _sigint_held():
    """Hold back SIGINT for the block (main thread only), then raise it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    except ValueError:  # not the main interpreter
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


#: Age after which a temporary of a writer that cannot be checked (another machine, an
#: older sktail) counts as abandoned: a live writer keeps touching its file.
STALE_AFTER_SECONDS = 24 * 3600
_HOST = hashlib.blake2b(socket.gethostname().encode("utf-8", "replace"), digest_size=4).hexdigest()
# ".NAME.<host>-<pid>.<random>.tmp" (this writer) and ".NAME.<random>.tmp" (sktail before it).
_OURS = re.compile(r"([0-9a-f]{8})-([0-9]+)\.[a-z0-9_]{8}")
_LEGACY = re.compile(r"[a-z0-9_]{8}")


def _temporary_prefix(target: Path) -> str:
    return f".{target.name}.{_HOST}-{os.getpid()}."


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # someone else's live process, or no way to tell
        return True
    return True


def remove_stale_temporaries(target) -> list:
    """Delete the temporaries that killed writers of ``target`` left in its folder.

    A write killed with SIGKILL (or by a power cut) leaves its
    ``.NAME.*.tmp`` file behind. One whose writer ran on this machine and no
    longer exists is removed at once; one of another machine or of an older
    sktail once it is :data:`STALE_AFTER_SECONDS` old. Temporaries of live
    writers, and of other targets, are never touched.

    Parameters
    ----------
    target : str or path-like
        The file about to be written.

    Returns
    -------
    list of pathlib.Path
        The files removed.
    """
    target = Path(target)
    head = f".{target.name}."
    removed = []
    try:
        entries = os.listdir(target.parent)
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        if not (entry.startswith(head) and entry.endswith(".tmp")):
            continue
        middle = entry[len(head):-len(".tmp")]
        path = target.parent / entry
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode):
            continue
        ours = _OURS.fullmatch(middle)
        if ours is not None and ours.group(1) == _HOST:
            stale = int(ours.group(2)) != os.getpid() and not _process_alive(int(ours.group(2)))
        elif ours is not None or _LEGACY.fullmatch(middle):
            stale = now - info.st_mtime > STALE_AFTER_SECONDS
        else:
            continue  # a temporary of another target whose name starts like this one
        if stale:
            with contextlib.suppress(OSError):
                os.unlink(path)
                removed.append(path)
    return removed


def atomic_write(path, write) -> Path:
    """Write a file through a temporary sibling and an atomic rename.

    Parameters
    ----------
    path : str or path-like
        Destination; its folder must exist. An existing regular file keeps
        its permissions; a new one gets ``0o666`` less the umask. A symbolic
        link is written through (its target is replaced, the link kept).
    write : callable
        ``write(fileobj)`` writes the content to a binary file object.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    IsADirectoryError, ValueError, FileNotFoundError
        From :func:`check_destination`, before anything is written.

    Notes
    -----
    The temporary is named ``.NAME.<host>-<pid>.<random>.tmp``; abandoned
    ones of the same target are removed first (:func:`remove_stale_temporaries`).
    KeyboardInterrupt
        When SIGINT arrived during the write (the file is then complete and
        in place, or the write failed and the old file is untouched).
    """
    target = check_destination(path)
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else _default_mode()
    remove_stale_temporaries(target)
    with _sigint_held():
        fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(target), suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_folder(target.parent)
    return Path(path)


def atomic_write_text(path, text: str) -> Path:
    """:func:`atomic_write` of UTF-8 text with ``\\n`` line ends.

    Parameters
    ----------
    path : str or path-like
        Destination.
    text : str
        The content.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    data = text.encode("utf-8")
    return atomic_write(path, lambda handle: handle.write(data))


def replace_directory(staging, target) -> bool:
    """Move a finished ``staging`` folder to ``target``, replacing an old ``target``.

    Parameters
    ----------
    staging : str or path-like
        A complete folder, on the same file system as ``target``.
    target : str or path-like
        Where it goes; an existing folder there is first moved aside and
        deleted, so readers see the old folder or the new one.

    Returns
    -------
    bool
        False when another process installed ``target`` at the same moment
        (``staging`` is then left for the caller to remove).
    """
    staging, target = Path(staging), Path(target)
    if target.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, retired)
        shutil.rmtree(retired, ignore_errors=True)
    try:
        os.replace(staging, target)
    except OSError:
        if not target.exists():
            raise
        return False
    _fsync_folder(target.parent)
    return True


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; a no-op where folders cannot be opened)."""
    with contextlib.suppress(OSError):
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

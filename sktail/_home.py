"""Location of sktail's on-disk cache (converted encoders and the like)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_entries", "clear_cache", "get_sktail_home"]


def get_sktail_home() -> Path:
    """Return sktail's cache directory, creating it if needed.

    The directory is, in order of precedence, ``$SKTAIL_HOME``,
    ``$XDG_CACHE_HOME/sktail`` or ``~/.cache/sktail``.

    Returns
    -------
    pathlib.Path
        Absolute path of an existing directory.
    """
    explicit = os.environ.get("SKTAIL_HOME")
    if explicit:
        home = Path(explicit)
    else:
        cache_root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        home = Path(cache_root) / "sktail"
    home = home.expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


def cache_entries(home=None):
    """Each top-level entry of the cache folder with its size on disk.

    Parameters
    ----------
    home : path-like, default=None
        The cache folder; ``None`` uses :func:`get_sktail_home`.

    Returns
    -------
    list of (str, int)
        Entry name and size in bytes (a folder counts every file below it;
        links are not followed), sorted by name.
    """
    home = Path(home) if home is not None else get_sktail_home()
    entries = []
    for entry in sorted(home.iterdir()) if home.is_dir() else ():
        if entry.is_dir() and not entry.is_symlink():
            size = sum(p.lstat().st_size for p in entry.rglob("*") if p.is_file() or p.is_symlink())
        else:
            size = entry.lstat().st_size
        entries.append((entry.name, size))
    return entries


def clear_cache(home=None):
    """Delete every entry of the cache folder (the folder itself stays).

    Parameters
    ----------
    home : path-like, default=None
        The cache folder; ``None`` uses :func:`get_sktail_home`.

    Returns
    -------
    int
        Bytes freed.
    """
    import shutil

    home = Path(home) if home is not None else get_sktail_home()
    freed = 0
    for name, size in cache_entries(home):
        path = home / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
        freed += size
    return freed

"""Location of sktail's on-disk cache (converted encoders and the like)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["get_sktail_home"]


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

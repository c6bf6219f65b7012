"""Progress bars and log lines that do not break each other."""

from __future__ import annotations

import sys

__all__ = ["progress_bar", "write_line"]


def progress_bar(iterable, *, enabled: bool, desc: str, unit: str = "batch", leave: bool = True):
    """Wrap ``iterable`` in a :mod:`tqdm` bar on stderr when ``enabled``.

    :mod:`tqdm` is imported only here, and only when a bar is asked for; when it
    is not installed (``pip install "sktail[progress]"``) the iterable is
    returned unchanged.

    Parameters
    ----------
    iterable : iterable
        What to iterate over.
    enabled : bool
        Show a bar (``verbose >= 1``) or not.
    desc : str
        Label of the bar.
    unit : str, default="batch"
        What one step counts.
    leave : bool, default=True
        Keep the finished bar on screen.

    Returns
    -------
    iterable
        ``iterable`` itself or a :class:`tqdm.tqdm` over it.
    """
    if not enabled:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, desc=desc, unit=unit, leave=leave, dynamic_ncols=True)


def write_line(line: str):
    """Print ``line`` to stdout without breaking an active progress bar."""
    tqdm = sys.modules.get("tqdm")
    if tqdm is not None:
        tqdm.tqdm.write(line, file=sys.stdout)
    else:
        print(line, flush=True)

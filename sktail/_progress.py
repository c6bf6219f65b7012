"""Progress bars, log lines and notices, all on stderr, that do not break each other.

Data (predictions, reports) go to stdout or to files; everything this module
writes is about the work in progress and goes to stderr, in library use as in
the ``sktail`` command.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["bar_options", "notice", "progress_bar", "write_line"]

#: How to hide a :func:`notice`, quoted in every notice.
SILENCE_HINT = "logging.getLogger('sktail').setLevel('WARNING') hides this line"


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
    return tqdm(iterable, desc=desc, unit=unit, leave=leave, **bar_options())


def bar_options() -> dict:
    """:mod:`tqdm` settings for stderr: live on a terminal, sparse when redirected.

    On a terminal the bar redraws as usual. When stderr is a file or a pipe
    (a log), the bar is drawn in ASCII at most every 30 seconds, so a log
    gets a handful of lines per phase instead of thousands of frames.

    Returns
    -------
    dict
        Keyword arguments for :class:`tqdm.tqdm`.
    """
    try:
        interactive = sys.stderr.isatty()
    except (AttributeError, ValueError):
        interactive = False
    if interactive:
        return {"dynamic_ncols": True}
    return {"mininterval": 30.0, "maxinterval": 60.0, "ncols": 100, "ascii": True}


def write_line(line: str):
    """Print ``line`` to stderr without breaking an active progress bar.

    Parameters
    ----------
    line : str
        The text, without a line end.
    """
    tqdm = sys.modules.get("tqdm")
    if tqdm is not None:
        tqdm.tqdm.write(line, file=sys.stderr)
    else:
        print(line, file=sys.stderr, flush=True)


def notice(message: str) -> bool:
    """Tell a quiet (``verbose=0``) user about minutes of work, in one line on stderr.

    The line reads ``sktail: <message> (<how to hide it>)``. It is shown unless
    the ``sktail`` logger was given a level above ``INFO``
    (``logging.getLogger("sktail").setLevel("WARNING")``, which the ``sktail``
    command does unless ``--verbose`` is given twice); it is also logged at
    ``DEBUG``.

    Parameters
    ----------
    message : str
        What is being done, without a line end.

    Returns
    -------
    bool
        Whether the line was written to stderr.
    """
    logger = logging.getLogger("sktail")
    logger.debug(message)
    if logger.level > logging.INFO:
        return False
    write_line(f"sktail: {message} ({SILENCE_HINT})")
    return True

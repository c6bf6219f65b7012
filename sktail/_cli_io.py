"""The files and streams of the ``sktail`` command: inputs, outputs, ``--set`` values, messages.

Everything here raises :class:`UsageError` for a problem with the command
line or its input files (``sktail`` exits with status 2); nothing here knows
the estimator.
"""

from __future__ import annotations

import difflib
import json
import os
import sys
import tempfile
from pathlib import Path

__all__ = ["UsageError", "parse_settings"]


class UsageError(Exception):
    """A problem with the command line or its input files (exit status 2)."""


# -- input files ----------------------------------------------------------------------
def _existing_file(path, what):
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{what} '{path}' not found")
    if path.is_dir():
        raise UsageError(f"{what} '{path}' is a folder, not a file")
    return path


def _check_encoder_folder(encoder):
    """Refuse an ``--encoder`` that names a local folder which is missing or not a model folder."""
    if not isinstance(encoder, str):
        return
    path = Path(os.path.expanduser(encoder))
    # An explicit path, or an existing path that cannot be a preset name; presets and hub ids
    # ("hfl/chinese-macbert-base") are left to the encoder, which resolves presets first.
    looks_local = encoder.startswith((".", "~", os.sep)) or path.is_file() or (os.sep in encoder and path.exists())
    if not looks_local:
        return
    if not path.is_dir():
        raise UsageError(f"--encoder '{encoder}': {'not a folder' if path.exists() else 'no such folder'}; "
                         "give a preset name, a Hugging Face id or a model folder")
    if not (path / "config.json").is_file():
        raise UsageError(f"--encoder '{encoder}': the folder has no config.json; a model folder holds "
                         "config.json, the weights and the tokenizer files")


def _read_labelled(path, what, args=None):
    """Texts and labels of a TSV file: ``text<TAB>label`` lines, or ``--columns`` of a wider file."""
    from ._labelled_tsv import parse_columns, read_labelled_tsv

    path = _existing_file(path, what)
    try:
        columns = parse_columns(getattr(args, "columns", None))
        texts, labels = read_labelled_tsv(path, columns=columns, header=getattr(args, "header", None))
    except ValueError as error:
        raise UsageError(str(error)) from error
    if not texts:
        raise UsageError(f"{what} '{path}' has no rows")
    return texts, labels


def _read_inputs(path, fmt):
    from .datasets import load_texts

    if path == "-":
        # Bytes, decoded by the same UTF-8 check as a file (line and byte of a bad sequence).
        stream = getattr(sys.stdin, "buffer", None)
        data = stream.read() if stream is not None else sys.stdin.read().encode("utf-8", "surrogateescape")
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / f"stdin.{fmt or 'txt'}"
            copy.write_bytes(data)
            try:
                return _read_inputs(str(copy), fmt or "txt")
            except UsageError as error:
                raise UsageError(str(error).replace(str(copy), "<stdin>")) from None
    path = _existing_file(path, "input file")
    if fmt is None and path.suffix.lower() not in (".txt", ".tsv", ".jsonl"):
        fmt = "txt"
    try:
        texts = load_texts(path, format=fmt)
    except ValueError as error:
        raise UsageError(str(error)) from error
    if not texts:
        raise UsageError(f"input file '{path}' has no texts")
    return texts


# -- --set values ---------------------------------------------------------------------
def _parse_value(text):
    """A ``--set`` value: JSON (numbers, true/false/null, lists, objects) or a plain string."""
    python_words = {"True": True, "False": False, "None": None}
    if text in python_words:
        return python_words[text]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_settings(items, valid):
    """Turn ``KEY=VALUE`` strings into estimator parameters.

    ``encoder_options.NAME=VALUE`` sets one key of the ``encoder_options`` dict.

    Parameters
    ----------
    items : list of str
        The ``--set`` arguments.
    valid : iterable of str
        Accepted parameter names.

    Returns
    -------
    dict
        Parameter name -> value.

    Raises
    ------
    UsageError
        For an item without ``=`` or an unknown name.
    """
    valid = set(valid)
    params = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--set expects KEY=VALUE, got '{item}'")
        value = _parse_value(raw)
        if key.startswith("encoder_options."):
            params.setdefault("encoder_options", {})[key.split(".", 1)[1]] = value
            continue
        if key not in valid:
            close = difflib.get_close_matches(key, sorted(valid), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise UsageError(
                f"unknown parameter '{key}' in --set {item}; {hint}valid keys: {', '.join(sorted(valid))}"
            )
        if key == "encoder_options" and isinstance(params.get(key), dict) and isinstance(value, dict):
            value = {**value, **params[key]}
        params[key] = value
    return params


# -- messages and outputs -------------------------------------------------------------
def _say(args, message):
    if getattr(args, "verbose", 0) >= 0:
        print(message, file=sys.stderr, flush=True)


#: Characters other than ``\n`` and ``\r`` that ``str.splitlines`` breaks lines at.
_OTHER_LINE_BREAKS = dict.fromkeys(map(ord, "\v\f\x1c\x1d\x1e\x85\u2028\u2029"), " ")


def _clean_text(text):
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ").translate(_OTHER_LINE_BREAKS)


def _escape_label(label):
    r"""A label as one TSV field: ``\t``, ``\n`` and ``\r`` escaped, other line breaks as spaces."""
    text = str(label)
    if "\t" in text or text.splitlines() != [text]:
        text = text.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
        text = text.translate(_OTHER_LINE_BREAKS)
    return text


def _check_output(path, what, *, replaced=True):
    """Refuse an output path before any work: a folder, a missing folder, or (``replaced``) a non-file."""
    from ._atomic import check_destination

    if path is None or path == "-":
        return
    try:
        if replaced:
            check_destination(path)  # the model file replaces what is there: only a regular file
        elif Path(path).is_dir():
            raise IsADirectoryError(f"{path} is a directory; give a file path.")
        elif not Path(path).parent.is_dir():
            raise FileNotFoundError(f"the folder {Path(path).parent} does not exist.")
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot write the {what} to '{path}': {error}") from None


def _open_output(path):
    if path is None or path == "-":
        return sys.stdout, False
    _check_output(path, "predictions", replaced=False)
    return Path(path).open("w", encoding="utf-8", newline="\n"), True

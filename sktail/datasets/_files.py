"""Readers for text files: ``text<TAB>label`` training files and prediction inputs."""

from __future__ import annotations

import json
from pathlib import Path


def _read_lines(path):
    r"""Decode a UTF-8 file (BOM allowed) and return its lines without line endings.

    Lines are split on ``"\n"`` only (a ``"\r"`` before it is dropped), so other
    Unicode line separators inside a text do not split it.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        lineno = raw.count(b"\n", 0, exc.start) + 1
        raise ValueError(
            f"{path}: line {lineno} is not valid UTF-8 ({exc.reason} at byte {exc.start})."
        ) from None
    lines = text.split("\n")
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def load_tsv(path):
    r"""Load a labelled ``text<TAB>label`` file.

    The file is UTF-8 (a byte-order mark is allowed) with one example per line
    and no header. Each line is split on its **last** tab, so the text itself may
    contain tabs. Windows line endings are accepted, blank lines (such as
    trailing empty lines) are skipped, and whitespace around the label is
    removed.

    Parameters
    ----------
    path : str or path-like
        The file to read.

    Returns
    -------
    texts : list of str
        The text of each example.
    labels : list of str
        The label of each example.

    Raises
    ------
    ValueError
        If a non-blank line has no tab, an empty text or an empty label, or the
        file is not valid UTF-8. The message names the file and the 1-based
        line number.

    See Also
    --------
    load_texts : Load unlabelled texts for prediction.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from sktail.datasets import load_tsv
    >>> path = Path(tempfile.mkdtemp()) / "train.tsv"
    >>> _ = path.write_text("小麦施肥研究\t农学\n量子拓扑\t理学\n", encoding="utf-8")
    >>> load_tsv(path)
    (['小麦施肥研究', '量子拓扑'], ['农学', '理学'])
    """
    texts, labels = [], []
    for lineno, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        if "\t" not in line:
            raise ValueError(
                f"{path}: line {lineno} has no tab; expected 'text<TAB>label', got {line[:60]!r}."
            )
        text, label = line.rsplit("\t", 1)
        label = label.strip()
        if not label:
            raise ValueError(f"{path}: line {lineno} has an empty label.")
        if not text.strip():
            raise ValueError(f"{path}: line {lineno} has an empty text.")
        texts.append(text)
        labels.append(label)
    return texts, labels


_TEXT_FORMATS = {".txt": "txt", ".tsv": "tsv", ".jsonl": "jsonl"}


def load_texts(path, *, format=None):
    r"""Load texts to predict on, one per line.

    Parameters
    ----------
    path : str or path-like
        The file to read, UTF-8 (a byte-order mark is allowed).
    format : {"txt", "tsv", "jsonl"}, default=None
        How to read the file. ``"txt"``: each line is a text. ``"tsv"``: the
        text is the first tab-separated column (any label or id columns after
        it are ignored). ``"jsonl"``: each line is a JSON object with a string
        ``"text"`` field. ``None`` picks the format from the file extension
        (``.txt``, ``.tsv`` or ``.jsonl``). Blank lines are skipped in every
        format.

    Returns
    -------
    texts : list of str
        The texts, in file order.

    Raises
    ------
    ValueError
        If the format is unknown or cannot be inferred, or a JSONL line is not
        an object with a string ``"text"`` field (the message names the file
        and the 1-based line number).

    See Also
    --------
    load_tsv : Load labelled training data.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from sktail.datasets import load_texts
    >>> path = Path(tempfile.mkdtemp()) / "inputs.jsonl"
    >>> _ = path.write_text('{"text": "水稻种植"}\n{"text": "刑法研究"}\n', encoding="utf-8")
    >>> load_texts(path)
    ['水稻种植', '刑法研究']
    """
    path = Path(path)
    if format is None:
        format = _TEXT_FORMATS.get(path.suffix.lower())
        if format is None:
            raise ValueError(
                f"{path}: cannot infer the input format from the extension {path.suffix!r}; "
                "use a .txt, .tsv or .jsonl file or pass format='txt', 'tsv' or 'jsonl'."
            )
    elif format not in ("txt", "tsv", "jsonl"):
        raise ValueError(f"format must be 'txt', 'tsv', 'jsonl' or None, got {format!r}.")

    texts = []
    for lineno, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        if format == "txt":
            texts.append(line)
        elif format == "tsv":
            texts.append(line.split("\t", 1)[0])
        else:
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: line {lineno} is not valid JSON ({exc.msg}).") from None
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise ValueError(
                    f"{path}: line {lineno} must be a JSON object with a string 'text' field."
                )
            texts.append(record["text"])
    return texts

"""Labelled TSV files for the command line: ``text<TAB>label``, or named columns of a wider file.

A line is never guessed at: without ``columns`` every non-blank line must have
exactly one tab, so a ``text<TAB>label<TAB>source`` file is refused instead of
training on ``source``. With ``columns`` (0-based indices, or header names when
the file has a header row) any number of columns is read. Errors name the
file, the 1-based line number and what to do.
"""

from __future__ import annotations

__all__ = ["HEADER_WORDS", "check_label", "parse_columns", "read_labelled_tsv"]

_COLUMNS_HINT = (
    "name the text and label columns with --columns TEXT,LABEL (0-based indices such as "
    "--columns 0,2, or column names with --header)"
)


def parse_columns(spec):
    """Parse a ``--columns TEXT,LABEL`` value.

    Parameters
    ----------
    spec : str or None
        Two comma-separated columns: 0-based indices or header names.

    Returns
    -------
    tuple of (int or str) or None
        ``(text, label)``; indices as int, names as str.

    Raises
    ------
    ValueError
        Unless ``spec`` names exactly two different columns.
    """
    if spec is None:
        return None
    parts = [part.strip() for part in spec.split(",")]
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"--columns expects TEXT,LABEL (two columns), got {spec!r}")
    columns = tuple(int(part) if part.isdigit() else part for part in parts)
    if columns[0] == columns[1]:
        raise ValueError(f"--columns names the same column for the text and the label: {spec!r}")
    return columns


def check_label(label: str, where: str) -> str:
    """Refuse labels that would break a ``text<TAB>label`` row (tabs, line breaks).

    Parameters
    ----------
    label : str
        One label.
    where : str
        ``"FILE: line N"`` for the message.

    Returns
    -------
    str
        ``label``.

    Raises
    ------
    ValueError
        If ``label`` holds a tab or any character that splits lines.
    """
    if "\t" in label or label.splitlines() != [label]:
        raise ValueError(
            f"{where} has the label {label!r}, which holds a tab or a line break; labels must be "
            "one line without tabs so that 'sktail predict' writes one row per text."
        )
    return label


#: Column names that a first row's label field holds when the row is a header, not data.
HEADER_WORDS = frozenset({
    "label", "labels", "category", "categories", "class", "classes", "classname", "tag", "tags",
    "target", "y", "discipline", "subject", "topic", "labelname", "categoryname", "gold",
    "标签", "类别", "分类", "类目", "学科", "类型", "标注",
})


def _looks_like_header(label: str, labels: list) -> bool:
    """A first-row label that names a column (``label``, ``category``, ...) and occurs only once."""
    word = "".join(ch for ch in label.casefold() if ch not in " _-.:#")
    return word in HEADER_WORDS and labels.count(label) == 1


def _resolve(columns, header_fields, path):
    if header_fields is None:
        names = [c for c in columns if isinstance(c, str)]
        if names:
            raise ValueError(f"{path}: --columns names {names} need --header (the file's first line names its columns)")
        return columns
    resolved = []
    for column in columns:
        if isinstance(column, int):
            resolved.append(column)
        elif column in header_fields:
            if header_fields.count(column) > 1:
                raise ValueError(f"{path}: the header names the column {column!r} more than once; use its index")
            resolved.append(header_fields.index(column))
        else:
            raise ValueError(f"{path}: the header has no column {column!r}; it has {header_fields}")
    return tuple(resolved)


def read_labelled_tsv(path, *, columns=None, header=None):
    """Read texts and labels from a TSV file.

    Parameters
    ----------
    path : str or path-like
        A UTF-8 file (a byte-order mark and Windows line ends are accepted);
        blank lines are skipped.
    columns : tuple (text, label) of int or str, default=None
        Columns to read (see :func:`parse_columns`). None: every line must be
        exactly ``text<TAB>label``.
    header : bool or None, default=None
        True: the first non-blank line names the columns and is not data.
        False: every line is data. None: as False, but a first row whose
        label is a column name (``label``, ``category``, ``类别``, ...,
        see :data:`HEADER_WORDS`) seen nowhere else is refused: it would
        become a class of one example.

    Returns
    -------
    texts, labels : list of str
        Labels stripped of surrounding whitespace.

    Raises
    ------
    ValueError
        Naming the file and line: invalid UTF-8, a wrong number of columns, a
        missing column, an empty text or label, a label with a tab or line
        break, unknown column names, a header row read as data (``header=None``).
    """
    from .datasets._files import _read_lines

    lines = [(n, line) for n, line in enumerate(_read_lines(path), start=1) if line.strip()]
    header_fields = None
    if header and lines:
        header_fields = [field.strip() for field in lines.pop(0)[1].split("\t")]
    if columns is None:
        if header_fields is not None and len(header_fields) != 2:
            raise ValueError(
                f"{path}: the header has {len(header_fields)} columns {header_fields}; {_COLUMNS_HINT}"
            )
        text_at, label_at = 0, 1
    else:
        text_at, label_at = _resolve(columns, header_fields, path)
    texts, labels = [], []
    for lineno, line in lines:
        fields = line.split("\t")
        where = f"{path}: line {lineno}"
        if columns is None and len(fields) != 2:
            if len(fields) == 1:
                raise ValueError(f"{where} has no tab; expected 'text<TAB>label', got {line[:60]!r}.")
            raise ValueError(
                f"{where} has {len(fields)} tab-separated columns, but 'text<TAB>label' has 2; "
                f"{_COLUMNS_HINT}."
            )
        if max(text_at, label_at) >= len(fields):
            raise ValueError(
                f"{where} has {len(fields)} columns; --columns reads columns {text_at} and {label_at}."
            )
        text, label = fields[text_at], fields[label_at].strip()
        if not label:
            raise ValueError(f"{where} has an empty label.")
        if not text.strip():
            raise ValueError(f"{where} has an empty text.")
        texts.append(text)
        labels.append(check_label(label, where))
    if header is None and labels and _looks_like_header(labels[0], labels):
        raise ValueError(
            f"{path}: line {lines[0][0]} looks like a header row (its label {labels[0]!r} names a column "
            "and occurs nowhere else), which would train a class of one example. Pass --header if the "
            "first line names the columns, or --no-header if it is data."
        )
    return texts, labels

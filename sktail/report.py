"""Evaluation reports: scores, frequency bands, per-class table, plots and markdown.

:func:`build_report` gathers the scores of docs/method.md section 8 for one set of
predictions (overall accuracy, macro-F1, balanced accuracy, accuracy in the
tail/mid/head frequency bands of the training counts) together with a per-class table
and the confusion matrix. :func:`format_report` renders it as plain text,
:func:`write_report` as a folder holding ``report.md``, ``metrics.json`` and,
when matplotlib is installed (``pip install "sktail[plots]"``), the PNG plots
drawn by :func:`plot_confusion_matrix` and :func:`plot_per_class_accuracy`.
``sktail evaluate MODEL TEST.tsv --report DIR`` is a thin wrapper over them.

Two notions of "tail" meet here; the report keeps their names apart. A **frequency
band** (tail, mid, head) is a third of the classes sorted by training count
(docs/method.md section 8, an evaluation view). The **prior tail set** is the classes whose
count is at most the median count (docs/method.md section 3, ``clf.tail_classes_``): those
that get the tail-prior offset during training. On the CSL title split the prior tail
set has 7 classes, the tail band 5. Both use the counts the model was trained on, i.e.
after its validation hold-out (``clf.class_counts_``).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from .metrics import band_accuracy, evaluation_report, frequency_bands

__all__ = [
    "build_report",
    "format_report",
    "plot_confusion_matrix",
    "plot_per_class_accuracy",
    "report_markdown",
    "unseen_labels_message",
    "write_report",
]

_BAND_COLORS = {"tail": "#d62728", "mid": "#ff7f0e", "head": "#1f77b4"}
# Fonts with CJK glyphs that matplotlib may find on Linux, macOS and Windows.
_CJK_FONTS = (
    "Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans SC", "Source Han Sans SC",
    "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "SimHei", "Microsoft YaHei",
    "PingFang SC", "Heiti SC", "AR PL UMing CN", "Droid Sans Fallback",
)


def _none_if_nan(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def build_report(y_true, y_pred, classes, class_counts, tail_classes=None):
    """Scores, bands, per-class table and confusion matrix of one set of predictions.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels. Labels unseen in training are allowed: they count as
        errors in the overall scores and are left out of the bands.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    classes : array-like of shape (n_classes,)
        The model's classes (``clf.classes_``).
    class_counts : array-like of shape (n_classes,)
        Training rows per class (``clf.class_counts_``, counted after the
        validation hold-out); they define the frequency bands.
    tail_classes : array-like, default=None
        The prior tail set (``clf.tail_classes_``). When given, each class
        row gets ``prior_tail`` (bool), so the report can show both notions.

    Returns
    -------
    dict
        JSON-ready: ``n_samples``, ``accuracy``, ``macro_f1``,
        ``balanced_accuracy``, ``band_accuracy`` (band -> accuracy or None;
        absent with fewer than 3 classes), ``unseen_labels`` (sorted),
        ``unseen_rows`` (label -> number of test rows, for each unseen label),
        ``classes`` (one dict per class with ``label``, ``train_count``,
        ``band``, ``support``, ``precision``, ``recall`` and ``f1``, from the
        most to the least frequent training class) and ``confusion_matrix``
        (``labels`` and ``matrix``, rows true, columns predicted, in the same
        class order followed by any unseen label).

    See Also
    --------
    sktail.metrics.evaluation_report : The overall scores.
    write_report : Write the report to a folder.

    Examples
    --------
    >>> from sktail.report import build_report
    >>> report = build_report(["文学", "文学", "哲学", "法学"], ["文学", "哲学", "哲学", "法学"],
    ...                       classes=["哲学", "文学", "法学"], class_counts=[5, 20, 10])
    >>> report["accuracy"], report["band_accuracy"]
    (0.75, {'tail': 1.0, 'mid': 1.0, 'head': 0.5})
    >>> [row["label"] for row in report["classes"]]
    ['文学', '法学', '哲学']
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    classes = np.asarray(classes)
    counts = np.asarray(class_counts)
    with warnings.catch_warnings():
        # scikit-learn warns when a predicted class has no test row (always the case
        # when the test labels are another label set); the report names unseen
        # labels itself (see unseen_labels_message), so its raw warning is noise.
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        warnings.filterwarnings("ignore", message="A single label was found")
        report = evaluation_report(y_true, y_pred)
    known = np.isin(y_true, classes)
    unseen = sorted(set(y_true[~known].tolist()), key=str)
    report["unseen_labels"] = unseen
    report["unseen_rows"] = {label: int(np.sum(y_true == label)) for label in unseen}
    prior_tail = None if tail_classes is None else set(np.asarray(tail_classes).tolist())
    bands = {}
    if len(classes) >= 3:
        bands = frequency_bands((classes, counts))
        if known.any():
            scores = band_accuracy(y_true[known], y_pred[known], (classes, counts))
            report["band_accuracy"] = {k: _none_if_nan(v) for k, v in scores.items()}
    order = np.argsort(-counts, kind="stable")
    ordered = classes[order].tolist()
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=ordered, zero_division=0.0
    )
    report["classes"] = [
        {
            "label": label,
            "train_count": int(counts[i]),
            "band": bands.get(label),
            "support": int(support[j]),
            "precision": float(precision[j]),
            "recall": float(recall[j]) if support[j] else None,
            "f1": float(f1[j]),
        }
        for j, (i, label) in enumerate(zip(order, ordered))
    ]
    if prior_tail is not None:
        for row in report["classes"]:
            row["prior_tail"] = row["label"] in prior_tail
    matrix_labels = ordered + unseen
    matrix = confusion_matrix(y_true, y_pred, labels=matrix_labels)
    report["confusion_matrix"] = {"labels": matrix_labels, "matrix": matrix.tolist()}
    return _jsonable(report)


def _jsonable(value):
    """Turn NumPy scalars inside ``value`` into plain Python values."""
    if isinstance(value, dict):
        return {_jsonable(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _pct(value):
    return "n/a" if value is None else f"{100 * value:.2f}"


def format_report(report):
    """Plain-text summary of a :func:`build_report` result (percentages).

    Parameters
    ----------
    report : dict
        The output of :func:`build_report`.

    Returns
    -------
    str
        A few aligned lines: the overall scores, then the band accuracies.

    Examples
    --------
    >>> from sktail.report import build_report, format_report
    >>> report = build_report(["a", "b", "c"], ["a", "b", "b"], ["a", "b", "c"], [9, 5, 1])
    >>> print(format_report(report))
    rows               3
    accuracy           66.67
    macro_f1           55.56
    balanced_accuracy  66.67
    frequency bands: thirds of the classes by training count
      tail accuracy    0.00
      mid accuracy     100.00
      head accuracy    100.00
    """
    rows = [("rows", str(report["n_samples"]))]
    rows += [(name, _pct(report[name])) for name in ("accuracy", "macro_f1", "balanced_accuracy")]
    bands = [(f"  {band} accuracy", _pct(v)) for band, v in report.get("band_accuracy", {}).items()]
    if report.get("unseen_labels"):
        rows.append(("unseen labels", _unseen_list(report)))
    width = max(len(name) for name, _ in rows + bands) + 2
    lines = [f"{name:<{width}}{value}" for name, value in rows]
    if bands:
        lines[4:4] = ["frequency bands: thirds of the classes by training count"]
        lines[5:5] = [f"{name:<{width}}{value}" for name, value in bands]
    return "\n".join(lines)


def _rows(n):
    return f"{n} row" if n == 1 else f"{n} rows"


def _unseen_list(report):
    counts = report.get("unseen_rows", {})
    return ", ".join(
        f"{label} ({_rows(counts[label])})" if label in counts else str(label)
        for label in report["unseen_labels"]
    )


def unseen_labels_message(report):
    """One sentence about the test labels the model never saw in training, or None.

    Parameters
    ----------
    report : dict
        The output of :func:`build_report`.

    Returns
    -------
    str or None
        Names each unseen label with its number of test rows and says how
        they are scored; ``None`` when every test label is a training class.

    Examples
    --------
    >>> from sktail.report import build_report, unseen_labels_message
    >>> report = build_report(["a", "b", "z"], ["a", "b", "a"], ["a", "b"], [9, 5])
    >>> print(unseen_labels_message(report))
    1 of 3 test rows have a label the model never saw in training: z (1 row). They count as errors in accuracy, macro-F1 and balanced accuracy and are left out of the frequency bands.
    """
    if not report.get("unseen_labels"):
        return None
    n_rows = sum(report.get("unseen_rows", {}).values())
    return (
        f"{n_rows} of {report['n_samples']} test rows have a label the model never saw in "
        f"training: {_unseen_list(report)}. They count as errors in accuracy, macro-F1 and "
        "balanced accuracy and are left out of the frequency bands."
    )


def _md_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _per_class_table(rows):
    prior = any("prior_tail" in r for r in rows)
    header = ["#", "label", "train count", "frequency band"] + (["prior tail set"] if prior else [])
    header += ["test rows", "precision (%)", "recall (%)", "F1 (%)"]
    body = [
        (i, r["label"], r["train_count"], r["band"] or "")
        + (("yes" if r.get("prior_tail") else "",) if prior else ())
        + (r["support"], _pct(r["precision"]), _pct(r["recall"]), _pct(r["f1"]))
        for i, r in enumerate(rows)
    ]
    return _md_table(header, body)


def report_markdown(report, *, title="Evaluation report", details=None, images=None):
    """Render a :func:`build_report` result as a markdown document.

    Parameters
    ----------
    report : dict
        The output of :func:`build_report`.
    title : str, default="Evaluation report"
        The first heading.
    details : dict, default=None
        Extra ``name -> value`` lines listed under the title (model file,
        test file, ...).
    images : dict, default=None
        ``caption -> relative path`` of plots to embed.

    Returns
    -------
    str
        The markdown text.
    """
    parts = [f"# {title}", ""]
    for name, value in (details or {}).items():
        parts.append(f"- **{name}**: {value}")
    parts += [
        "",
        "## Overall",
        "",
        _md_table(
            ["metric", "value (%)"],
            [(name.replace("_", " "), _pct(report[name]))
             for name in ("accuracy", "macro_f1", "balanced_accuracy")],
        ),
        "",
        f"{report['n_samples']} test rows.",
    ]
    if report.get("unseen_labels"):
        parts.append(
            f"Labels not seen in training (counted as errors, left out of the bands): "
            f"{_unseen_list(report)}."
        )
    if "band_accuracy" in report:
        members = {}
        for row in report["classes"]:
            members.setdefault(row["band"], []).append(row)
        band_rows = [
            (band, len(members.get(band, [])), sum(r["support"] for r in members.get(band, [])), _pct(acc))
            for band, acc in report["band_accuracy"].items()
        ]
        parts += [
            "",
            "## Frequency bands",
            "",
            "Classes sorted by training count (counted after the validation hold-out) and cut "
            "into three groups of equal class count. These bands are an evaluation view; they "
            "are not the prior tail set (the classes at or below the median count that get the "
            "tail-prior offset in training, listed by `sktail info`).",
            "",
            _md_table(["band", "classes", "test rows", "accuracy (%)"], band_rows),
        ]
    parts += [
        "",
        "## Per class",
        "",
        "Sorted from the most to the least frequent training class; `#` is the index used in the plots.",
        "",
        _per_class_table(report["classes"]),
    ]
    for caption, path in (images or {}).items():
        parts += ["", f"## {caption}", "", f"![{caption}]({path})"]
    return "\n".join(parts) + "\n"


# Parts of the file names of fonts with CJK glyphs (lower case, without "-", "_", " ").
_CJK_FILE_HINTS = (
    "notosanscjk", "notoserifcjk", "notosanssc", "notosanstc", "sourcehansans", "sourcehanserif",
    "wqy", "wenquanyi", "simhei", "simsun", "msyh", "pingfang", "droidsansfallback", "uming",
    "ukai", "arplumingcn",
)

#: What to install when no font can draw Chinese class names (shown in the warning).
FONT_HINT = (
    "install a font with Chinese glyphs, for example 'apt-get install fonts-noto-cjk' "
    "(Debian/Ubuntu), 'dnf install google-noto-sans-cjk-fonts' (Fedora) or "
    "'pip install mplfonts' (about 85 MB; sktail finds its Noto Sans CJK SC without further setup)"
)


def _font_files():
    """Font files matplotlib may not have registered: system folders and the mplfonts package."""
    import importlib.util

    from matplotlib import font_manager

    files = list(font_manager.findSystemFonts())
    spec = importlib.util.find_spec("mplfonts")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            files += [str(p) for p in sorted(Path(folder).rglob("*")) if p.suffix.lower() in
                      (".ttf", ".otf", ".ttc", ".otc")]
    return files


def _find_cjk_font():
    """Register a CJK font file matplotlib does not know yet; return its family name or None."""
    from matplotlib import font_manager

    for path in _font_files():
        stem = Path(path).name.lower().replace("-", "").replace("_", "").replace(" ", "")
        if not any(hint in stem for hint in _CJK_FILE_HINTS):
            continue
        try:
            font_manager.fontManager.addfont(path)
            return font_manager.FontProperties(fname=path).get_name()
        except (OSError, RuntimeError, ValueError):
            continue
    return None


_FONT_SEARCH = {}


def _tick_font():
    """A font family with CJK glyphs, or None when none is installed (searched once per process)."""
    if "font" not in _FONT_SEARCH:
        from matplotlib import font_manager

        available = {f.name for f in font_manager.fontManager.ttflist}
        font = next((name for name in _CJK_FONTS if name in available), None)
        _FONT_SEARCH["font"] = font if font is not None else _find_cjk_font()
    return _FONT_SEARCH["font"]


def _tick_labels(labels):
    """Tick labels and font: the labels themselves when they can be drawn, else indices.

    Falling back to indices warns once per call, naming what to install.
    """
    if all(str(label).isascii() for label in labels):
        return [str(label) for label in labels], None
    font = _tick_font()
    if font is None:
        warnings.warn(
            "No font with Chinese glyphs was found, so the plots label classes by their index "
            f"(the '#' column of the per-class table in report.md). To see class names, {FONT_HINT}.",
            UserWarning,
            stacklevel=3,
        )
        return [str(i) for i in range(len(labels))], None
    return [str(label) for label in labels], font


def _new_figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def plot_confusion_matrix(report, path):
    """Draw the row-normalised confusion matrix of a report to a PNG file.

    Rows are true classes, columns predictions, from the most to the least
    frequent training class. Cells show the share of the row; counts are
    written in the cells when there are at most 20 classes. Class names are
    used as tick labels when a font can draw them, else the class indices of
    the report's per-class table.

    Parameters
    ----------
    report : dict
        The output of :func:`build_report`.
    path : str or path-like
        The PNG file to write.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    cm = report["confusion_matrix"]
    matrix = np.asarray(cm["matrix"], dtype=float)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    ticks, font = _tick_labels(cm["labels"])
    size = max(4.0, 0.45 * len(ticks) + 2)
    figure = _new_figure(size + 1, size)
    ax = figure.add_subplot()
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=ax, label="share of the true class")
    positions = np.arange(len(ticks))
    ax.set_xticks(positions, ticks, rotation=90, fontfamily=font)
    ax.set_yticks(positions, ticks, fontfamily=font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix (rows: true class)")
    if len(ticks) <= 20:
        for (i, j), count in np.ndenumerate(matrix):
            if count:
                color = "white" if shares[i, j] > 0.5 else "black"
                ax.text(j, i, int(count), ha="center", va="center", fontsize=7, color=color)
    figure.savefig(path, dpi=120)
    return Path(path)


def plot_per_class_accuracy(report, path):
    """Draw per-class accuracy (recall) as bars coloured by frequency band.

    Parameters
    ----------
    report : dict
        The output of :func:`build_report`.
    path : str or path-like
        The PNG file to write.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    rows = report["classes"]
    ticks, font = _tick_labels([r["label"] for r in rows])
    ticks = [f"{t} (n={r['train_count']})" for t, r in zip(ticks, rows)]
    figure = _new_figure(7, max(3.0, 0.3 * len(rows) + 1.5))
    ax = figure.add_subplot()
    positions = np.arange(len(rows))
    values = [0.0 if r["recall"] is None else r["recall"] for r in rows]
    colors = [_BAND_COLORS.get(r["band"], "#7f7f7f") for r in rows]
    ax.barh(positions, values, color=colors)
    ax.set_yticks(positions, ticks, fontfamily=font)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy on the class's test rows (recall)")
    ax.set_title("Per-class accuracy, most frequent training class first")
    bands = [b for b in _BAND_COLORS if any(r["band"] == b for r in rows)]
    if bands:
        from matplotlib.patches import Patch

        ax.legend(handles=[Patch(color=_BAND_COLORS[b], label=f"{b} band") for b in bands], loc="lower right")
    figure.savefig(path, dpi=120)
    return Path(path)


def write_report(report, directory, *, title="Evaluation report", details=None, plots=True):
    """Write ``report.md``, ``metrics.json`` and the PNG plots to a folder.

    Parameters
    ----------
    report : dict
        The output of :func:`build_report`.
    directory : str or path-like
        The folder (created if missing).
    title : str, default="Evaluation report"
        Heading of ``report.md``.
    details : dict, default=None
        Extra lines for ``report.md`` (see :func:`report_markdown`).
    plots : bool, default=True
        Draw ``confusion_matrix.png`` and ``per_class_accuracy.png``. Needs
        matplotlib; raises :class:`ImportError` naming the extra to install
        when it is missing.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written, images = [], {}
    if plots:
        try:
            import matplotlib  # noqa: F401
        except ImportError as error:
            raise ImportError(
                'Plots need matplotlib: pip install "sktail[plots]" (or pass plots=False).'
            ) from error
        images["Confusion matrix"] = plot_confusion_matrix(report, directory / "confusion_matrix.png").name
        images["Per-class accuracy"] = plot_per_class_accuracy(report, directory / "per_class_accuracy.png").name
        written += [directory / name for name in images.values()]
    metrics = directory / "metrics.json"
    metrics.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    markdown = directory / "report.md"
    markdown.write_text(report_markdown(report, title=title, details=details, images=images), encoding="utf-8")
    return [markdown, metrics, *written]

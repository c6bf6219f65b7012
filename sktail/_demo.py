"""``sktail demo``: TF-IDF + LinearSVC, the label-smoothed baseline and AutoTail-BSFGM on one split.

The data are, in order: a folder given with ``--data`` (``train.tsv`` and
``dev.tsv``), the CSL title task when its files are already in the data folder
(downloaded only when asked, ``--download``), else the generated demo corpus of
:func:`sktail.datasets.load_demo_corpus`. Nothing touches the network by default.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from .datasets import _urlopen_bytes, fetch_csl, load_demo_corpus, load_tsv

__all__ = ["BASELINE", "DemoData", "load_demo_data", "load_folder", "run_demo", "format_demo_table"]

#: Settings that switch every AutoTail component off: the label-smoothed baseline.
BASELINE = {"tail_gate": False, "bs_weight": 0.0, "fgm_epsilon": 0.0}

DOWNLOAD_TIMEOUT = 10.0

#: One line that explains the band columns of the table.
BANDS_LINE = ("tail / mid / head acc: accuracy on the rarest, middle and most frequent third of the "
              "classes, by training count")


@dataclass
class DemoData:
    """A train/test split and a sentence saying where it comes from."""

    train_texts: list
    train_labels: list
    test_texts: list
    test_labels: list
    source: str


def load_folder(folder):
    """Read ``train.tsv`` and ``dev.tsv`` (or ``test.tsv``) from ``folder``.

    Parameters
    ----------
    folder : str or path-like
        A folder with ``text<TAB>label`` files.

    Returns
    -------
    DemoData
        The split read from the folder.

    Raises
    ------
    FileNotFoundError
        If ``train.tsv`` or both ``dev.tsv`` and ``test.tsv`` are missing.
    ValueError
        If a file is malformed (see :func:`~sktail.datasets.load_tsv`).
    """
    folder = Path(folder)
    train = folder / "train.tsv"
    test = next((folder / name for name in ("dev.tsv", "test.tsv") if (folder / name).is_file()), None)
    if not train.is_file() or test is None:
        raise FileNotFoundError(
            f"--data {folder}: expected train.tsv and dev.tsv (or test.tsv), 'text<TAB>label' "
            f"per line; found {sorted(p.name for p in folder.glob('*.tsv')) or 'no .tsv file'}"
        )
    train_texts, train_labels = load_tsv(train)
    test_texts, test_labels = load_tsv(test)
    return DemoData(
        train_texts, train_labels, test_texts, test_labels,
        f"{folder} ({len(train_texts)} {train.name} / {len(test_texts)} {test.name} rows, "
        f"{len(set(train_labels))} classes)",
    )


def load_demo_data(data_home=None, *, download=False, timeout=DOWNLOAD_TIMEOUT):
    """The CSL title train/dev split if available, else the built-in demo corpus.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Where :func:`~sktail.datasets.fetch_csl` looks for ``csl-title/``.
    download : bool, default=False
        Try to download missing CSL files, each with ``timeout`` seconds.
        Off by default: the demo never touches the network unless asked.
    timeout : float, default=10.0
        Network timeout of one download.

    Returns
    -------
    DemoData
        The split and a one-line description of its source (including why
        the CSL files were not used, when they were not, and how to use them).
    """

    def downloader(url):
        return _urlopen_bytes(url, timeout=timeout)

    try:
        train = fetch_csl("title", data_home=data_home, subset="train",
                          download_if_missing=download, downloader=downloader)
        test = fetch_csl("title", data_home=data_home, subset="dev",
                         download_if_missing=download, downloader=downloader)
    except (OSError, ValueError) as error:
        demo = load_demo_corpus()
        reason = str(error).split(". ")[0]
        if download:
            hint = ("the download failed (no network?); put train.tsv and dev.tsv in a folder "
                    "and pass --data DIR")
        else:
            hint = ("pass --data DIR with your own train.tsv and dev.tsv (text<TAB>label), or "
                    "--download to fetch the CSL title files (needs a network)")
        return DemoData(
            demo.train.data, demo.train.target, demo.test.data, demo.test.target,
            f"built-in generated demo corpus ({len(demo.train.data)} train / "
            f"{len(demo.test.data)} test texts, {len(demo.target_names)} classes); "
            f"CSL title data not used: {reason}; {hint}",
        )
    return DemoData(
        train.data, train.target, test.data, test.target,
        f"CSL title -> category ({len(train.data)} train / {len(test.data)} dev titles, "
        f"{len(train.target_names)} classes)",
    )


def _tfidf_svc():
    """The honest reference: TF-IDF character 1-3-grams + a class-balanced linear SVM."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    return make_pipeline(
        TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True),
        LinearSVC(class_weight="balanced"),
    )


def run_demo(data, *, random_state=0, verbose=0, say=print, tfidf=True, **params):
    """Fit TF-IDF + LinearSVC, the baseline and AutoTail-BSFGM on ``data``; score them on its test part.

    Parameters
    ----------
    data : DemoData
        The split.
    random_state : int, default=0
        Seed shared by both models (same hold-out split, same initialisation).
    verbose : int, default=0
        Passed to both estimators.
    say : callable, default=print
        Receives one progress message per model.
    tfidf : bool, default=True
        Also fit TF-IDF character 1-3-grams (sublinear tf) +
        ``LinearSVC(class_weight="balanced")``, the strong classical reference.
    **params
        Further :class:`~sktail.AutoTailClassifier` parameters for both models.

    Returns
    -------
    rows : list of dict
        One per model: ``model``, ``seconds`` and the
        :func:`~sktail.report.build_report` scores on the test part.
    mcnemar : McNemarResult
        Exact McNemar test of the two models' paired test predictions.
    """
    import numpy as np

    from .classifier import AutoTailClassifier
    from .metrics import mcnemar_exact
    from .report import build_report

    rows, predictions = [], []
    if tfidf:
        say(f"training TF-IDF + LinearSVC on {len(data.train_texts)} texts ...")
        start = time.perf_counter()
        reference = _tfidf_svc().fit(data.train_texts, data.train_labels)
        predicted = reference.predict(data.test_texts)
        seconds = time.perf_counter() - start
        classes, counts = np.unique(np.asarray(data.train_labels), return_counts=True)
        report = build_report(data.test_labels, predicted, classes, counts)
        rows.append({"model": TFIDF_NAME, "seconds": seconds, **report})
    for name, settings in (("label smoothing (baseline)", BASELINE), ("AutoTail-BSFGM", {})):
        say(f"training {name} on {len(data.train_texts)} texts ...")
        start = time.perf_counter()
        clf = AutoTailClassifier(random_state=random_state, verbose=verbose, **{**params, **settings})
        clf.fit(data.train_texts, data.train_labels)
        predicted = clf.predict(data.test_texts)
        seconds = time.perf_counter() - start
        report = build_report(data.test_labels, predicted, clf.classes_, clf.class_counts_)
        rows.append({"model": name, "seconds": seconds, **report})
        predictions.append(predicted)
    return rows, mcnemar_exact(data.test_labels, *predictions)


TFIDF_NAME = "TF-IDF + LinearSVC (balanced)"


def format_demo_table(rows):
    """The demo's result table: one line per model, scores in percent.

    Parameters
    ----------
    rows : list of dict
        The first output of :func:`run_demo`.

    Returns
    -------
    str
        An aligned plain-text table.
    """
    bands = list(rows[0].get("band_accuracy", {}))
    header = ["model", "accuracy", "bal. acc", *(f"{b} acc" for b in bands), "seconds"]
    body = []
    for row in rows:
        cells = [row["model"], f"{100 * row['accuracy']:.2f}", f"{100 * row['balanced_accuracy']:.2f}"]
        for band in bands:
            value = row["band_accuracy"][band]
            cells.append("n/a" if value is None else f"{100 * value:.2f}")
        cells.append(f"{row['seconds']:.1f}")
        body.append(cells)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(cells):
        first = cells[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:]))])

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, body)])

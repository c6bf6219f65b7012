"""``sktail demo``: the label-smoothed baseline against AutoTail-BSFGM on one split.

The data are the CSL title task when its files are cached (or can be
downloaded quickly), else the generated demo corpus of
:func:`sktail.datasets.load_demo_corpus`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .datasets import _urlopen_bytes, fetch_csl, load_demo_corpus

__all__ = ["BASELINE", "DemoData", "load_demo_data", "run_demo", "format_demo_table"]

#: Settings that switch every AutoTail component off: the label-smoothed baseline.
BASELINE = {"tail_gate": False, "bs_weight": 0.0, "fgm_epsilon": 0.0}

DOWNLOAD_TIMEOUT = 10.0


@dataclass
class DemoData:
    """A train/test split and a sentence saying where it comes from."""

    train_texts: list
    train_labels: list
    test_texts: list
    test_labels: list
    source: str


def load_demo_data(data_home=None, *, download=True, timeout=DOWNLOAD_TIMEOUT):
    """The CSL title train/dev split if available, else the built-in demo corpus.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Where :func:`~sktail.datasets.fetch_csl` looks for ``csl-title/``.
    download : bool, default=True
        Try to download missing CSL files, each with ``timeout`` seconds.
    timeout : float, default=10.0
        Network timeout of one download.

    Returns
    -------
    DemoData
        The split and a one-line description of its source (including why
        the CSL files were not used, when they were not).
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
        return DemoData(
            demo.train.data, demo.train.target, demo.test.data, demo.test.target,
            f"built-in generated demo corpus ({len(demo.train.data)} train / "
            f"{len(demo.test.data)} test texts, {len(demo.target_names)} classes); "
            f"CSL title data not used: {reason}",
        )
    return DemoData(
        train.data, train.target, test.data, test.target,
        f"CSL title -> category ({len(train.data)} train / {len(test.data)} dev titles, "
        f"{len(train.target_names)} classes)",
    )


def run_demo(data, *, random_state=0, verbose=0, say=print, **params):
    """Fit the baseline and AutoTail-BSFGM on ``data`` and score both on its test part.

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
    from .classifier import AutoTailClassifier
    from .metrics import mcnemar_exact
    from .report import build_report

    rows, predictions = [], []
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

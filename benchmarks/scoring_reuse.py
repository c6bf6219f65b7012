"""Does scoring reuse the default encoder's features? A grid search and predict-then-predict_proba, timed.

Two measurements with the default ``tfidf-e5`` encoder, public API only:

* the README's ``GridSearchCV(clf, {"tail_gate": [False, "auto"], "fgm_epsilon": [0, 0.3]})``
  with ``feature_cache`` on the first ``--texts`` training texts (``cv=2``): the whole
  search's wall time against the sum of its fits (``cv_results_["mean_fit_time"]``
  times the folds, plus the refit); the goal is at most 1.5 times;
* ``predict`` then ``predict_proba`` on the same ``--predict-texts`` unseen texts, without
  a cache: the second call against the first; the goal is at most 10%. ::

    python -m benchmarks.scoring_reuse DATA/csl-title --texts 2000 --predict-texts 1000

The JSON record goes to stdout (and to ``--out`` when given).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
from sklearn.model_selection import GridSearchCV

from sktail import AutoTailClassifier
from sktail.datasets import load_tsv

GRID = {"tail_gate": [False, "auto"], "fgm_epsilon": [0, 0.3]}


def grid_search(texts, labels, cache_dir) -> dict:
    """Time the README's grid search with a feature cache.

    Parameters
    ----------
    texts, labels : list
        Training rows.
    cache_dir : str
        An empty folder for ``feature_cache``.

    Returns
    -------
    dict
        Wall seconds of the search, the summed fit seconds and their ratio.
    """
    clf = AutoTailClassifier(feature_cache=cache_dir, random_state=0)
    search = GridSearchCV(clf, GRID, cv=2, refit=True)
    start = time.perf_counter()
    search.fit(texts, labels)
    wall = time.perf_counter() - start
    fits = float(np.sum(search.cv_results_["mean_fit_time"]) * 2 + search.refit_time_)
    scores = float(np.sum(search.cv_results_["mean_score_time"]) * 2)
    return {"search_seconds": round(wall, 1), "sum_of_fit_seconds": round(fits, 1),
            "sum_of_score_seconds": round(scores, 1), "ratio": round(wall / fits, 2), "goal": "<= 1.5"}


def predict_twice(train, unseen) -> dict:
    """Time ``predict`` then ``predict_proba`` on the same unseen texts (no feature cache).

    Parameters
    ----------
    train : tuple (texts, labels)
        Rows to fit on.
    unseen : list of str
        Texts to score.

    Returns
    -------
    dict
        Seconds of both calls and their ratio.
    """
    clf = AutoTailClassifier(random_state=0).fit(*train)
    start = time.perf_counter()
    labels = clf.predict(unseen)
    first = time.perf_counter() - start
    start = time.perf_counter()
    proba = clf.predict_proba(unseen)
    second = time.perf_counter() - start
    assert (clf.classes_[proba.argmax(1)] == labels).all()
    return {"predict_seconds": round(first, 2), "predict_proba_seconds": round(second, 3),
            "ratio": round(second / first, 4), "goal": "<= 0.10"}


def main(argv=None) -> int:
    """Run both measurements from the command line.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments; None reads ``sys.argv``.

    Returns
    -------
    int
        The exit status.
    """
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scoring_reuse", description=__doc__.split("\n")[0])
    parser.add_argument("data", help="folder with train.tsv and dev.tsv (text<TAB>label)")
    parser.add_argument("--texts", type=int, default=2000, help="training texts of the grid search")
    parser.add_argument("--predict-texts", type=int, default=1000, help="dev texts scored twice")
    parser.add_argument("--out", help="also write the JSON record to this file")
    args = parser.parse_args(argv)
    texts, labels = load_tsv(os.path.join(args.data, "train.tsv"))
    dev, _ = load_tsv(os.path.join(args.data, "dev.tsv"))
    train = (texts[: args.texts], labels[: args.texts])
    with tempfile.TemporaryDirectory() as cache_dir:
        record = {"texts": len(train[0]), "grid_search": grid_search(*train, cache_dir)}
    record["predict_then_predict_proba"] = {"texts": len(dev[: args.predict_texts]),
                                            **predict_twice(train, dev[: args.predict_texts])}
    text = json.dumps(record, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Which epoch to keep: selection rules of one encoder compared over seeds on a train/dev split.

Per seed, two fits of the full method (AutoTail-BSFGM, the encoder's ``"auto"``
schedule):

* **hold-out**: 10% of the training rows (stratified, ``random_state=seed``)
  passed as ``validation_data``; the weights of every epoch are kept (a
  :class:`sktail.training.Callback` under :func:`sktail.training.observe`) and
  scored on the hold-out (accuracy, balanced accuracy, log-loss) and on dev.
  Rules: the epoch of the best hold-out accuracy (the paper's), balanced
  accuracy or loss, and the last epoch.
* **every row**: no hold-out; the last epoch, and the mean of the weights of
  the last 2, 3 and 4 epochs.

Dev is only ever scored, never used to choose. Prints one line per seed and a
summary (mean, min, max and max - min of dev balanced accuracy per rule), and
writes the per-epoch numbers to ``--out``.

Usage::

    python -m benchmarks.epoch_selection /work/shared/data/csl-title --encoder jieba-bag \\
        --seeds 0 1 2 3 4 5 6 7 8 9 --out benchmarks/out/epoch-selection.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score, log_loss
from sklearn.model_selection import train_test_split

if __package__ in (None, ""):  # run as ``python benchmarks/epoch_selection.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sktail import AutoTailClassifier  # noqa: E402
from sktail.datasets import load_tsv  # noqa: E402
from sktail.training import Callback, observe  # noqa: E402

__all__ = ["EpochWeights", "main", "summarise"]


class EpochWeights(Callback):
    """Keep a CPU copy of the network's weights at the end of every epoch."""

    def __init__(self):
        self.weights = []

    def on_epoch_end(self, trainer, record):
        """Append ``trainer``'s weights."""
        self.weights.append(trainer.cpu_weights())


def _scores(clf, weights, texts, labels):
    clf.network_.load_state_dict(weights)
    proba = clf.predict_proba(texts)
    predicted = clf.classes_[proba.argmax(axis=1)]
    return [100 * accuracy_score(labels, predicted), 100 * balanced_accuracy_score(labels, predicted),
            float(log_loss(labels, proba, labels=clf.classes_))]


def _mean_weights(snapshots):
    first = snapshots[0]
    return {name: (sum(s[name].double() for s in snapshots) / len(snapshots)).to(first[name].dtype)
            if first[name].is_floating_point() else snapshots[-1][name] for name in first}


def _fit(params, texts, labels, validation=None):
    recorder = EpochWeights()
    with observe(recorder):
        clf = AutoTailClassifier(**params).fit(texts, labels, validation_data=validation)
    return clf, recorder.weights


def run_seed(seed, train, dev, params):
    """Per-epoch hold-out and dev scores of the two fits of one seed."""
    X, y = train
    Xt, Xv, yt, yv = train_test_split(X, y, test_size=0.1, stratify=y, random_state=seed)
    clf, snapshots = _fit({**params, "random_state": seed}, Xt, yt, (Xv, yv))
    holdout = [{"val": _scores(clf, w, Xv, yv), "dev": _scores(clf, w, *dev)} for w in snapshots]
    clf, snapshots = _fit({**params, "random_state": seed, "validation_fraction": 0}, X, y)
    every_row = {"last": _scores(clf, snapshots[-1], *dev)}
    for k in (2, 3, 4):
        every_row[f"mean of last {k}"] = _scores(clf, _mean_weights(snapshots[-k:]), *dev)
    return {"seed": seed, "holdout": holdout, "every_row": every_row}


def summarise(runs):
    """Dev accuracy and balanced accuracy of every rule over the seeds.

    Parameters
    ----------
    runs : list of dict
        Outputs of :func:`run_seed`.

    Returns
    -------
    dict
        Rule -> {"acc": [...], "bal": [...], "epochs": [...]} (one entry per seed).
    """
    rules = {}

    def add(rule, scores, epoch):
        entry = rules.setdefault(rule, {"acc": [], "bal": [], "epochs": []})
        entry["acc"].append(scores[0])
        entry["bal"].append(scores[1])
        entry["epochs"].append(epoch)

    for run in runs:
        epochs = run["holdout"]
        for rule, column, sign in (("hold-out, best accuracy", 0, 1), ("hold-out, best balanced accuracy", 1, 1),
                                   ("hold-out, lowest loss", 2, -1)):
            best = int(np.argmax([sign * e["val"][column] for e in epochs]))  # the first best epoch
            add(rule, epochs[best]["dev"], best + 1)
        add("hold-out, last epoch", epochs[-1]["dev"], len(epochs))
        for rule, scores in run["every_row"].items():
            add(f"every row, {rule}", scores, None)
    return rules


def main(argv=None):
    """Run the seeds and print the summary (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.epoch_selection",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("data", help="folder with train.tsv and dev.tsv")
    parser.add_argument("--encoder", default="jieba-bag")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(range(10)))
    parser.add_argument("--params", type=json.loads, default={}, help="further AutoTailClassifier parameters")
    parser.add_argument("--out", required=True, help="JSON file with every per-epoch score")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    train, dev = load_tsv(Path(args.data) / "train.tsv"), load_tsv(Path(args.data) / "dev.tsv")
    params = {"encoder": args.encoder, **args.params}
    runs = []
    for seed in args.seeds:
        runs.append(run_seed(seed, train, dev, params))
        last = runs[-1]["every_row"]["last"]
        print(json.dumps({"seed": seed, "every row, last": [round(v, 2) for v in last[:2]]}), flush=True)
    summary = summarise(runs)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"params": params, "runs": runs, "summary": summary}, indent=1) + "\n",
                              encoding="utf-8")
    print("| rule | seeds | accuracy | balanced acc. (min–max) | range | epochs kept |")
    print("|---|---|---|---|---|---|")
    for rule, entry in summary.items():
        bal = np.asarray(entry["bal"])
        epochs = "" if entry["epochs"][0] is None else ", ".join(map(str, entry["epochs"]))
        print(f"| {rule} | {len(bal)} | {np.mean(entry['acc']):.2f} | {bal.mean():.2f} "
              f"({bal.min():.2f}–{bal.max():.2f}) | {np.ptp(bal):.2f} | {epochs} |")


if __name__ == "__main__":
    main()

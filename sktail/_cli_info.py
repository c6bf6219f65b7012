"""``sktail info``, ``sktail demo`` and ``sktail cache``: describing models, the demo, the cache.

As in :mod:`sktail._cli_fit`, the estimator reaches these commands from
:mod:`sktail.cli`: ``info`` is handed the function that reads a model file
and ``demo`` the estimator class.
"""

from __future__ import annotations

import json

from ._cli_io import UsageError, _say, parse_settings
from ._version import __version__

__all__ = ["cache", "demo", "info", "model_summary"]


# -- sktail info ----------------------------------------------------------------------
def model_summary(clf):
    """A JSON-ready description of a fitted model (what ``sktail info`` prints).

    Parameters
    ----------
    clf : AutoTailClassifier
        A fitted estimator.

    Returns
    -------
    dict
        Encoder, classes with training counts (counted after the validation
        hold-out), membership of the prior tail set (``tail``: docs/method.md's
        median rule, the classes that get a prior offset) and frequency band
        (``frequency_band``: thirds of the classes by count, as in ``sktail
        evaluate``), gate, resolved settings, parameters that differ from the
        defaults, and the training history.
    """
    from .metrics import frequency_bands

    defaults = type(clf)().get_params()  # AutoTailClassifier's defaults
    tail = set(clf.tail_classes_.tolist())
    bands = frequency_bands((clf.classes_, clf.class_counts_)) if len(clf.classes_) >= 3 else {}
    return {
        "sktail_version": __version__,
        "encoder": clf.encoder_.describe(),
        "n_classes": len(clf.classes_),
        "classes": [
            {"label": label, "train_count": int(n), "tail": label in tail,
             "frequency_band": bands.get(label), "offset": float(off)}
            for label, n, off in zip(clf.classes_.tolist(), clf.class_counts_, clf.prior_offsets_)
        ],
        "imbalance_index": float(clf.imbalance_index_),
        "tail_gate_on": bool(clf.tail_gate_on_),
        "resolved": {name: getattr(clf, name + "_") for name in ("max_length", "epochs", "batch_size", "learning_rate")},
        "params": {k: v for k, v in clf.get_params().items() if v != defaults.get(k)},
        "best_epoch": int(clf.best_epoch_),
        "best_validation_score": clf.best_validation_score_,
        "history": clf.history_,
    }


def _format_summary(summary, path):
    lines = [
        f"model file       {path}",
        f"encoder          {summary['encoder']}",
        f"classes          {summary['n_classes']}",
        f"imbalance index  {summary['imbalance_index']:.3f} (tail gate {'on' if summary['tail_gate_on'] else 'off'})",
        "settings         " + ", ".join(f"{k}={v}" for k, v in summary["resolved"].items()),
        "changed params   " + (", ".join(f"{k}={v!r}" for k, v in summary["params"].items()) or "none"),
    ]
    score = summary["best_validation_score"]
    kept = f"epoch {summary['best_epoch']} of {len(summary['history'])}"
    lines.append(f"kept             {kept}" + ("" if score is None else f" (validation accuracy {100 * score:.2f}%)"))
    n_tail = sum(row["tail"] for row in summary["classes"])
    lines += [
        "",
        f"prior tail set   {n_tail} of {summary['n_classes']} classes: count <= median count "
        "(these get the prior offset)",
        "frequency band   tail/mid/head = thirds of the classes by count (the bands of 'sktail evaluate')",
        "train count      rows per class after the validation hold-out",
        "",
        "label\ttrain count\tprior tail set\tfrequency band\toffset",
    ]
    for row in summary["classes"]:
        lines.append(f"{row['label']}\t{row['train_count']}\t{'yes' if row['tail'] else ''}\t"
                     f"{row.get('frequency_band') or ''}\t{row['offset']:.3f}")
    return "\n".join(lines)


def info(args, load_model):
    """``sktail info``: describe a saved model.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``sktail info`` command line.
    load_model : callable
        Reads a model file into a fitted estimator.

    Returns
    -------
    int
        The exit status, 0.
    """
    clf = load_model(args.model)
    summary = model_summary(clf)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=2, default=str))
    else:
        print(_format_summary(summary, args.model))
    return 0


# -- sktail demo ----------------------------------------------------------------------
def _demo_keys(estimator):
    from ._demo import BASELINE

    return set(estimator().get_params()) - set(BASELINE) - {"random_state", "verbose"}


def demo(args, estimator):
    """``sktail demo``: baseline vs AutoTail-BSFGM on CSL titles or the built-in corpus.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``sktail demo`` command line.
    estimator : type
        The estimator class (``AutoTailClassifier``), whose parameters ``--set``
        may change.

    Returns
    -------
    int
        The exit status, 0.

    Raises
    ------
    UsageError
        For an unusable ``--data`` folder or ``--set`` item.
    """
    from ._demo import BANDS_LINE, format_demo_table, load_demo_data, load_folder, run_demo

    if args.data is not None:
        try:
            data = load_folder(args.data)
        except (OSError, ValueError) as error:
            raise UsageError(str(error)) from error
    else:
        data = load_demo_data(args.data_home, download=args.download)
    print(f"data: {data.source}")
    params = parse_settings(args.set, _demo_keys(estimator))
    rows, mcnemar = run_demo(
        data, random_state=args.seed, verbose=max(args.verbose, 0),
        say=lambda message: _say(args, message), **params,
    )
    print(format_demo_table(rows))
    print(BANDS_LINE)
    print(f"exact McNemar test, baseline vs AutoTail-BSFGM: b={mcnemar.b}, c={mcnemar.c}, "
          f"p={mcnemar.pvalue:.3g}")
    print("seconds: fit and predict; the first sktail model's also include one-off start-up "
          "(tokenizer dictionary, PyTorch modules).")
    print("one seed and one split: differences of a point or two are within seed-to-seed noise.")
    return 0


# -- sktail cache ---------------------------------------------------------------------
def _size(n_bytes):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n_bytes < 1024 or unit == "GiB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024


def cache(args):
    """``sktail cache``: show (or with ``--clear`` empty) sktail's cache folder.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``sktail cache`` command line.

    Returns
    -------
    int
        The exit status, 0.
    """
    from ._home import cache_entries, clear_cache, get_sktail_home

    home = get_sktail_home()
    if args.clear:
        freed = clear_cache(home)
        print(f"cleared {home}: freed {_size(freed)}")
        return 0
    entries = cache_entries(home)
    total = sum(size for _, size in entries)
    if args.json:
        print(json.dumps({"location": str(home), "total_bytes": total,
                          "entries": [{"name": n, "bytes": s} for n, s in entries]}, indent=2))
        return 0
    print(f"location  {home}  (set SKTAIL_HOME, or XDG_CACHE_HOME, to move it)")
    for name, size in entries:
        print(f"{_size(size):>10}  {name}")
    print(f"{_size(total):>10}  in all" + ("" if entries else " (empty)"))
    return 0

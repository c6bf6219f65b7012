"""``sktail fit``, ``sktail predict`` and ``sktail evaluate``: training, labelling and scoring.

The estimator reaches these commands from :mod:`sktail.cli`, the one
command module above the facade: ``fit`` is handed the estimator class and
``predict`` and ``evaluate`` the function that reads a model file.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from ._cli_io import (
    UsageError,
    _check_encoder_folder,
    _check_output,
    _clean_text,
    _escape_label,
    _open_output,
    _read_inputs,
    _read_labelled,
    _say,
    parse_settings,
)

__all__ = ["DEFAULT_SEED", "evaluate", "fit", "predict"]

DEFAULT_SEED = 0  # random_state of ``sktail fit`` when neither --seed nor --set random_state is given


def _save_model(clf, path):
    """Write a fitted estimator to ``path`` in the pickle-free model format."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise UsageError(f"cannot write the model: folder '{path.parent}' does not exist")
    clf.save(path)


def fit(args, estimator):
    """``sktail fit``: train on a TSV file and save the model.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``sktail fit`` command line.
    estimator : type
        The estimator class (``AutoTailClassifier``).

    Returns
    -------
    int
        The exit status, 0.

    Raises
    ------
    UsageError
        For an unusable output path, input file, ``--set`` item, parameter
        value or encoder.
    """
    from sklearn.utils._param_validation import InvalidParameterError

    valid = estimator().get_params()
    params = parse_settings(args.set, valid)
    params_from_set = set(params)
    if args.encoder is not None:
        params["encoder"] = args.encoder
    if args.seed is not None:
        params["random_state"] = args.seed
    elif "random_state" not in params:
        params["random_state"] = DEFAULT_SEED  # reproducible by default
    params.setdefault("verbose", max(args.verbose, 0))
    _check_output(args.output, "model")  # before any training
    _check_encoder_folder(params.get("encoder"))
    texts, labels = _read_labelled(args.train, "training file", args)
    fit_kwargs = {}
    if args.validation is not None:
        fit_kwargs["validation_data"] = _read_labelled(args.validation, "validation file", args)
    output = Path(args.output)
    clf = estimator(**params)
    _say(args, f"training on {len(texts)} texts from {args.train} ({len(set(labels))} classes), "
               f"seed {params['random_state']} (--seed to change)")
    try:
        clf.fit(texts, labels, **fit_kwargs)
    except (InvalidParameterError, ValueError) as error:
        # invalid parameter values, a single class, unknown validation labels, ...
        raise UsageError(str(error)) from error
    except OSError as error:
        if not str(error).startswith("Could not load the encoder"):
            raise
        raise UsageError(str(error)) from error  # an unusable --encoder folder or id
    if "verbose" not in params_from_set:
        clf.set_params(verbose=0)  # the saved model predicts silently, as in library use
    _save_model(clf, output)
    score = clf.best_validation_score_
    kept = f"epoch {clf.best_epoch_} of {clf.n_iter_}"
    if score is not None:
        kept += f", validation accuracy {100 * score:.2f}%"
    _say(args, f"saved {output} ({kept}; tail gate {'on' if clf.tail_gate_on_ else 'off'}, "
               f"imbalance index {clf.imbalance_index_:.3f})")
    return 0


def predict(args, load_model):
    """``sktail predict``: label texts from a file, in input order.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``sktail predict`` command line.
    load_model : callable
        Reads a model file into a fitted estimator; called after the output
        path is checked.

    Returns
    -------
    int
        The exit status, 0.
    """
    _check_output(args.output, "predictions", replaced=False)  # before loading and scoring
    clf = load_model(args.model)
    texts = _read_inputs(args.input, args.format)
    clf.set_params(verbose=max(args.verbose, 0))
    if args.proba:
        proba = clf.predict_proba(texts)
        labels = clf.classes_[proba.argmax(axis=1)]
    else:
        labels = clf.predict(texts)
    out, close = _open_output(args.output)
    try:
        if args.proba:
            out.write("\t".join(["text", "label", *map(_escape_label, clf.classes_)]) + "\n")
            for text, label, row in zip(texts, labels, proba):
                out.write("\t".join([_clean_text(text), _escape_label(label), *(f"{p:.6f}" for p in row)]) + "\n")
        else:
            for text, label in zip(texts, labels):
                out.write(f"{_clean_text(text)}\t{_escape_label(label)}\n")
    finally:
        if close:
            out.close()
        else:
            out.flush()
    if close:
        _say(args, f"wrote {len(texts)} predictions to {args.output}")
    return 0


def evaluate(args, load_model):
    """``sktail evaluate``: score a model on a labelled TSV file.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``sktail evaluate`` command line.
    load_model : callable
        Reads a model file into a fitted estimator.

    Returns
    -------
    int
        The exit status, 0.
    """
    from .report import build_report, format_report, unseen_labels_message, write_report

    clf = load_model(args.model)
    texts, labels = _read_labelled(args.test, "test file", args)
    clf.set_params(verbose=max(args.verbose, 0))
    predicted = clf.predict(texts)
    report = build_report(labels, predicted, clf.classes_, clf.class_counts_, clf.tail_classes_)
    unseen = unseen_labels_message(report)
    if unseen is not None:
        _say(args, f"note: {unseen}")
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        print(format_report(report))
    if args.report is not None:
        details = {"model": args.model, "test file": args.test, "encoder": clf.encoder_.describe()}
        plots = True
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            plots = False
            _say(args, 'matplotlib is not installed: the report has no plots (pip install "sktail[plots]")')
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            files = write_report(report, args.report, details=details, plots=plots)
        for message in dict.fromkeys(str(w.message) for w in caught):  # once each, in order
            _say(args, f"note: {message}")
        _say(args, f"wrote {', '.join(str(f) for f in files)}")
    return 0

"""The ``sktail`` command line: a thin argparse wrapper over :class:`~sktail.AutoTailClassifier`.

Subcommands::

    sktail fit TRAIN.tsv -o MODEL [--encoder NAME] [--set KEY=VALUE ...] [--validation DEV.tsv] [--columns TEXT,LABEL] [--header]
    sktail predict MODEL INPUT [-o OUT] [--proba] [--format {txt,tsv,jsonl}]
    sktail evaluate MODEL TEST.tsv [--report DIR] [--json]
    sktail info MODEL [--json]
    sktail demo [--data DIR | --data-home DIR [--download]]
    sktail cache [--clear] [--json]

Exit status: 0 on success, 1 when a run fails (for example training stops
on a non-finite loss), 2 for a usage error or an unusable input (missing or
malformed file, unknown ``--set`` key, invalid parameter value), 130 when
interrupted. Data go to stdout (or ``-o``); messages, warnings and progress
bars go to stderr.

Model files are sktail's pickle-free format (:meth:`AutoTailClassifier.save`,
:func:`sktail.load`): JSON settings, safetensors weights and tokenizer data, so
loading a file never runs code from it.
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import os
import sys
import tempfile
import warnings
from pathlib import Path

from ._version import __version__

__all__ = ["main", "build_parser"]

PROG = "sktail"
DEFAULT_SEED = 0  # random_state of ``sktail fit`` when neither --seed nor --set random_state is given


class UsageError(Exception):
    """A problem with the command line or its input files (exit status 2)."""


# -- model files ----------------------------------------------------------------
def _save_model(clf, path):
    """Write a fitted estimator to ``path`` in the pickle-free model format."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise UsageError(f"cannot write the model: folder '{path.parent}' does not exist")
    clf.save(path)


def _load_model(path):
    """Read a model file written by :func:`_save_model` (never unpickles)."""
    path = _existing_file(path, "model file")
    from ._persistence import ModelFileError
    from .classifier import load

    try:
        return load(path)
    except ModelFileError as error:
        raise UsageError(f"'{path}' is not a usable sktail model file: {error}") from error


# -- helpers --------------------------------------------------------------------
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
        texts, labels = read_labelled_tsv(path, columns=columns, header=getattr(args, "header", False))
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


# -- subcommands ------------------------------------------------------------------
def cmd_fit(args):
    """``sktail fit``: train on a TSV file and save the model."""
    from sklearn.utils._param_validation import InvalidParameterError

    from .classifier import AutoTailClassifier

    valid = AutoTailClassifier().get_params()
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
    clf = AutoTailClassifier(**params)
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


def cmd_predict(args):
    """``sktail predict``: label texts from a file, in input order."""
    _check_output(args.output, "predictions", replaced=False)  # before loading and scoring
    clf = _load_model(args.model)
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


def cmd_evaluate(args):
    """``sktail evaluate``: score a model on a labelled TSV file."""
    from .report import build_report, format_report, unseen_labels_message, write_report

    clf = _load_model(args.model)
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
    from .classifier import AutoTailClassifier
    from .metrics import frequency_bands

    defaults = AutoTailClassifier().get_params()
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


def cmd_info(args):
    """``sktail info``: describe a saved model."""
    clf = _load_model(args.model)
    summary = model_summary(clf)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=2, default=str))
    else:
        print(_format_summary(summary, args.model))
    return 0


def cmd_demo(args):
    """``sktail demo``: baseline vs AutoTail-BSFGM on CSL titles or the built-in corpus."""
    from ._demo import BANDS_LINE, format_demo_table, load_demo_data, load_folder, run_demo

    if args.data is not None:
        try:
            data = load_folder(args.data)
        except (OSError, ValueError) as error:
            raise UsageError(str(error)) from error
    else:
        data = load_demo_data(args.data_home, download=args.download)
    print(f"data: {data.source}")
    params = parse_settings(args.set, _demo_keys())
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


def _size(n_bytes):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n_bytes < 1024 or unit == "GiB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024


def cmd_cache(args):
    """``sktail cache``: show (or with ``--clear`` empty) sktail's cache folder."""
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


def _demo_keys():
    from ._demo import BASELINE
    from .classifier import AutoTailClassifier

    return set(AutoTailClassifier().get_params()) - set(BASELINE) - {"random_state", "verbose"}


# -- parser -------------------------------------------------------------------------
def _add_column_options(p):
    p.add_argument("--columns", metavar="TEXT,LABEL",
                   help="read these two columns of a wider TSV file: 0-based indices (e.g. 0,2) or, "
                        "with --header, column names; without it every line must be text<TAB>label")
    p.add_argument("--header", action="store_true",
                   help="the first line of the TSV files names the columns and is not data")


def build_parser():
    """The ``sktail`` argument parser.

    Returns
    -------
    argparse.ArgumentParser
        The parser of ``sktail`` and its subcommands; each subcommand's
        namespace carries its handler in ``func``.
    """
    common = argparse.ArgumentParser(add_help=False)
    noise = common.add_argument_group("output")
    noise.add_argument("-v", "--verbose", action="count", default=0,
                       help="more output: progress bars for predict, evaluate and demo (fit shows "
                            "its bars and per-epoch lines by default); -vv adds debug logging")
    noise.add_argument("-q", "--quiet", dest="verbose", action="store_const", const=-1,
                       help="only print results and errors (no bars, epoch lines or notes)")

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Class-balance-aware fine-tuning of text encoders on long-tailed label sets "
                    "(AutoTail-BSFGM).",
        epilog="Run 'sktail COMMAND --help' for the options of a command. Model files are "
               "pickle-free (JSON settings, safetensors weights, tokenizer data): loading one "
               "never executes code from it.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("fit", parents=[common], help="train a model on a text<TAB>label file",
                       description="Train an AutoTailClassifier on a UTF-8 'text<TAB>label' file and save it.")
    p.add_argument("train", metavar="TRAIN.tsv", help="training data, one 'text<TAB>label' per line")
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="where to write the model file")
    p.add_argument("--encoder", help="encoder name: jieba-bag (default), e5-small, macbert-base, "
                                     "roberta-wwm-ext, a Hugging Face id or a local folder")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="any AutoTailClassifier parameter, e.g. --set epochs=2 --set tail_gate=false "
                        "--set encoder_options.embedding_dim=64 (values are parsed as JSON when they can be)")
    p.add_argument("--validation", metavar="DEV.tsv",
                   help="held-out 'text<TAB>label' file for best-epoch selection (replaces the internal split)")
    p.add_argument("--seed", type=int,
                   help=f"random_state of the estimator (default: {DEFAULT_SEED}, so that two runs "
                        "on the same data and machine give the same model)")
    _add_column_options(p)
    p.set_defaults(func=cmd_fit, verbose_default=1)

    p = sub.add_parser("predict", parents=[common], help="label texts with a saved model",
                       description="Predict the label of each input text; output rows keep the input order.")
    p.add_argument("model", metavar="MODEL", help="model file written by 'sktail fit'")
    p.add_argument("input", metavar="INPUT",
                   help="texts: .txt (one per line), .tsv (text in the first column) or .jsonl "
                        "(a 'text' field); '-' reads stdin")
    p.add_argument("-o", "--output", metavar="OUT", help="output TSV file (default: stdout)")
    p.add_argument("--proba", action="store_true",
                   help="add one probability column per class, after a header line")
    p.add_argument("--format", choices=("txt", "tsv", "jsonl"),
                   help="input format (default: from the extension; txt for others and stdin)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("evaluate", parents=[common], help="score a saved model on a labelled file",
                       description="Accuracy, macro-F1, balanced accuracy and accuracy in the tail/mid/head "
                                   "frequency bands (thirds of the classes by training count, after the "
                                   "validation hold-out; not the same as the prior tail set of 'sktail info').")
    p.add_argument("model", metavar="MODEL", help="model file written by 'sktail fit'")
    p.add_argument("test", metavar="TEST.tsv", help="labelled 'text<TAB>label' file")
    p.add_argument("--report", metavar="DIR",
                   help="write report.md, metrics.json and PNG plots (confusion matrix, per-class accuracy) to DIR")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    _add_column_options(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("info", parents=[common], help="describe a saved model",
                       description="Encoder, classes and training counts (after the validation hold-out), "
                                   "prior tail set (median rule) and frequency bands, settings and training "
                                   "history.")
    p.add_argument("model", metavar="MODEL", help="model file written by 'sktail fit'")
    p.add_argument("--json", action="store_true", help="print the description as JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("demo", parents=[common], help="TF-IDF, baseline and AutoTail-BSFGM on a long-tailed corpus",
                       description="Train TF-IDF + LinearSVC(class_weight='balanced'), the label-smoothed baseline "
                                   "and AutoTail-BSFGM (same seed) and compare them on held-out data: your own "
                                   "files with --data, the CSL title task when its files are in the data folder, "
                                   "else the built-in generated corpus. Nothing is downloaded unless --download "
                                   "is given.")
    p.add_argument("--data", metavar="DIR",
                   help="folder with your own train.tsv and dev.tsv ('text<TAB>label' per line)")
    p.add_argument("--data-home", metavar="DIR",
                   help="folder holding csl-title/ (default: $SKTAIL_DATA or ~/sktail_data)")
    p.add_argument("--download", action="store_true",
                   help="download the CSL title files into the data folder when they are missing "
                        "(10-second timeout; research use only)")
    p.add_argument("--no-download", action="store_true", help=argparse.SUPPRESS)  # the default now
    p.add_argument("--seed", type=int, default=0, help="random_state of both models (default: 0)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="AutoTailClassifier parameter for both models, e.g. --set epochs=4")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("cache", parents=[common], help="show or clear sktail's cache folder",
                       description="Show where sktail keeps its cache (the e5-small encoder converted on "
                                   "first use, about 465 MiB) and the size of each entry. The folder is "
                                   "$SKTAIL_HOME, else $XDG_CACHE_HOME/sktail, else ~/.cache/sktail.")
    p.add_argument("--clear", action="store_true",
                   help="delete every entry now, without asking (rebuilt on next use)")
    p.add_argument("--json", action="store_true", help="print the location and sizes as JSON")
    p.set_defaults(func=cmd_cache)
    return parser


def _configure_logging(verbose):
    logger = logging.getLogger("sktail")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(name)s: %(levelname)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose >= 2 else logging.WARNING)


def main(argv=None):
    """Run the ``sktail`` command line.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments without the program name; ``None`` reads ``sys.argv``.

    Returns
    -------
    int
        The exit status.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose == 0 and getattr(args, "verbose_default", 0):
        args.verbose = args.verbose_default
    _configure_logging(args.verbose)
    try:
        with warnings.catch_warnings():
            if args.verbose < 0:
                warnings.simplefilter("ignore")
            return args.func(args)
    except UsageError as error:
        print(f"{PROG} {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (``sktail predict ... | head``): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as error:
        print(f"{PROG} {args.command}: error: {type(error).__name__}: {error}", file=sys.stderr)
        if args.verbose >= 2:
            raise
        return 1

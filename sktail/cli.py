"""The ``sktail`` command line: a thin argparse wrapper over :class:`~sktail.AutoTailClassifier`.

Subcommands::

    sktail fit TRAIN.tsv -o MODEL [--encoder NAME] [--set KEY=VALUE ...] [--validation DEV.tsv] [--columns TEXT,LABEL] [--header | --no-header]
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
import logging
import os
import sys
import warnings

from . import _cli_fit, _cli_info
from ._cli_fit import DEFAULT_SEED
from ._cli_info import model_summary as model_summary
from ._cli_io import UsageError, _existing_file
from ._cli_io import parse_settings as parse_settings
from ._version import __version__

__all__ = ["main", "build_parser"]

PROG = "sktail"

# The commands are implemented in _cli_fit (fit, predict, evaluate) and _cli_info (info, demo,
# cache), over the files and messages of _cli_io. Of the command modules only this one imports
# the estimator: each cmd_* below hands its command the estimator class or _load_model, looked
# up here when the command runs.


# -- model files ----------------------------------------------------------------
def _load_model(path):
    """Read a model file written by ``sktail fit`` (never unpickles)."""
    path = _existing_file(path, "model file")
    from ._persistence import ModelFileError
    from .classifier import load

    try:
        return load(path)
    except ModelFileError as error:
        raise UsageError(f"'{path}' is not a usable sktail model file: {error}") from error


# -- subcommands ------------------------------------------------------------------
def cmd_fit(args):
    """``sktail fit``: train on a TSV file and save the model."""
    from .classifier import AutoTailClassifier

    return _cli_fit.fit(args, AutoTailClassifier)


def cmd_predict(args):
    """``sktail predict``: label texts from a file, in input order."""
    return _cli_fit.predict(args, _load_model)


def cmd_evaluate(args):
    """``sktail evaluate``: score a model on a labelled TSV file."""
    return _cli_fit.evaluate(args, _load_model)


def cmd_info(args):
    """``sktail info``: describe a saved model."""
    return _cli_info.info(args, _load_model)


def cmd_demo(args):
    """``sktail demo``: baseline vs AutoTail-BSFGM on CSL titles or the built-in corpus."""
    from .classifier import AutoTailClassifier

    return _cli_info.demo(args, AutoTailClassifier)


def cmd_cache(args):
    """``sktail cache``: show (or with ``--clear`` empty) sktail's cache folder."""
    return _cli_info.cache(args)


# -- parser -------------------------------------------------------------------------
def _add_column_options(p):
    p.add_argument("--columns", metavar="TEXT,LABEL",
                   help="read these two columns of a wider TSV file: 0-based indices (e.g. 0,2) or, "
                        "with --header, column names; without it every line must be text<TAB>label")
    p.add_argument("--header", action=argparse.BooleanOptionalAction, default=None,
                   help="--header: the first line of the TSV files names the columns and is not data; "
                        "--no-header: every line is data. Without either, a first line whose label is a "
                        "column name (label, category, ...) is refused")


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
    p.add_argument("--encoder", help="encoder name: tfidf-e5 (default), jieba-bag, e5-small, macbert-base, "
                                     "roberta-wwm-ext, a Hugging Face id or a local folder")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="any AutoTailClassifier parameter, e.g. --set epochs=2 --set tail_gate=false "
                        "--set encoder_options.dense_scale=0.3 (values are parsed as JSON when they can be)")
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

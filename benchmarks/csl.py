"""Compare baselines and the AutoTail-BSFGM ablations on one ``train``/``dev`` split.

Examples
--------
The built-in encoder, all seven configurations, five seeds::

    python -m benchmarks.csl /work/shared/data/csl-title --out benchmarks/out/title-bag

e5-small on a GPU, three seeds, AutoTail configurations only::

    python -m benchmarks.csl DATA --encoder e5-small --device cuda --seeds 13 42 3407 \\
        --configs baseline full --out benchmarks/out/title-e5

The paper's configuration (docs/method.md §7; MacBERT-base weights and a GPU)::

    python -m benchmarks.csl DATA --paper --out benchmarks/out/title-macbert

Parallel sweeps (say one process per core, each with its own ``--out``)
are pooled before the report::

    python -m benchmarks.csl --merge out/run-a out/run-b --out out/pooled

The output folder receives ``results.json`` (every per-seed number and the
predictions), ``summary.json``, ``results.md`` and two PNG plots. Runs
already in ``results.json`` are skipped, so an interrupted sweep resumes.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as ``python benchmarks/csl.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.report import write_report  # noqa: E402
from benchmarks.runner import (  # noqa: E402
    DEFAULT_CONFIGS,
    build_configs,
    load_split,
    merge_results,
    resolve_data_dir,
    run_benchmark,
)

__all__ = ["main", "parse_args"]

PAPER_SEEDS = (13, 42, 3407)
DEFAULT_SEEDS = (13, 42, 3407, 7, 2024)


def parse_args(argv=None):
    """Parse the command line (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.csl", description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", help="folder with train.tsv and dev.tsv (default: $SKTAIL_DATA)")
    parser.add_argument("--out", required=True, help="output folder (results.json, results.md, PNGs)")
    parser.add_argument("--configs", nargs="+", default=None,
                        help=f"configurations to run (default: {' '.join(DEFAULT_CONFIGS)}; "
                             "with --paper: baseline full)")
    parser.add_argument("--seeds", nargs="+", type=int, default=None,
                        help=f"seeds (default: {' '.join(map(str, DEFAULT_SEEDS))}; with --paper: 13 42 3407)")
    parser.add_argument("--encoder", default="jieba-bag", help="encoder= of AutoTailClassifier")
    parser.add_argument("--encoder-options", type=json.loads, default=None,
                        help='JSON encoder_options, e.g. \'{"prune_vocabulary": true}\'')
    parser.add_argument("--params", type=json.loads, default=None,
                        help='JSON of further AutoTailClassifier parameters, e.g. \'{"max_length": 256}\'')
    parser.add_argument("--device", default="auto", help="training device (auto, cpu, cuda, cuda:1, mps)")
    parser.add_argument("--paper", action="store_true",
                        help="the paper's setting: encoder macbert-base, seeds 13 42 3407, baseline and full")
    parser.add_argument("--train-split", default="train", help="stem of the training TSV (default: train)")
    parser.add_argument("--eval-split", default="dev", help="stem of the evaluated TSV (default: dev)")
    parser.add_argument("--max-train", type=int, default=None, help="stratified subset of the training rows")
    parser.add_argument("--max-eval", type=int, default=None, help="stratified subset of the evaluated rows")
    parser.add_argument("--title", default=None, help="heading of results.md")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--fresh", action="store_true", help="ignore runs already in results.json")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: rebuild results.md, summary.json and the plots from results.json")
    parser.add_argument("--merge", nargs="+", default=None, metavar="FOLDER",
                        help="run nothing: pool the results.json of these folders (same split) into --out "
                             "and report on them")
    args = parser.parse_args(argv)
    if args.paper:
        if args.encoder == "jieba-bag":
            args.encoder = "macbert-base"
        args.seeds = args.seeds or list(PAPER_SEEDS)
        args.configs = args.configs or ["baseline", "full"]
    args.seeds = args.seeds or list(DEFAULT_SEEDS)
    args.configs = args.configs or list(DEFAULT_CONFIGS)
    return args


def main(argv=None):
    """Run the benchmark and write its report; returns the output folder."""
    args = parse_args(argv)
    out = Path(args.out)
    if args.merge:
        merge_results(args.merge, out / "results.json")
    if args.report_only or args.merge:
        payload = json.loads((out / "results.json").read_text(encoding="utf-8"))
        title = args.title or Path(payload["meta"]["source"]).name
        written = write_report(payload, out, title=title, order=args.configs, plots=not args.no_plots)
        print(written["markdown"].read_text(encoding="utf-8"))
        return out
    data_dir = resolve_data_dir(args.data)
    split = load_split(data_dir, train=args.train_split, evaluate=args.eval_split,
                       max_train=args.max_train, max_eval=args.max_eval)
    configs = build_configs(args.configs, encoder=args.encoder, params=args.params,
                            encoder_options=args.encoder_options, device=args.device)
    command = "python -m benchmarks.csl " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    meta = {"command": command, "encoder": args.encoder, "encoder_options": args.encoder_options,
            "params": args.params, "device": args.device}
    payload = run_benchmark(split, configs, args.seeds, out / "results.json", meta=meta,
                            resume=not args.fresh, log=lambda line: print(line, flush=True))
    title = args.title or f"{data_dir.name}, {args.encoder}"
    written = write_report(payload, out, title=title, order=args.configs, plots=not args.no_plots)
    print(written["markdown"].read_text(encoding="utf-8"))
    return out


if __name__ == "__main__":
    main()

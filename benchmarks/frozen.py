"""Frozen and partly frozen encoders on the CSL title task.

Two comparisons, each over several seeds, scored on the dev split:

* ``--mode none``: ``train_encoder="none"``, the label-smoothed baseline
  against the full AutoTail-BSFGM method. The features of the training and
  dev texts are computed once, timed, and stored in ``feature_cache``; every
  fit then reads them from there, and the dev predictions are the fitted head
  applied to the cached dev features (checked once against ``predict``, which
  runs the whole encoder). A fit without a cache costs the training texts'
  encoding time plus the fit time reported.
* ``--mode partial``: the full method with ``train_encoder=K`` (``--layers``)
  against ``train_encoder="all"``: accuracy and fit time side by side.

Examples
--------
CPU, frozen encoder, five seeds::

    SKTAIL_DATA=../shared/data python benchmarks/frozen.py --encoder e5-small \\
        --mode none --device cpu --seeds 13 42 3407 7 99 --out frozen-none.json

GPU, top two layers against full fine-tuning::

    SKTAIL_DATA=../shared/data python benchmarks/frozen.py --encoder e5-small \\
        --mode partial --layers 2 --device cuda --seeds 13 42 3407 --out frozen-partial.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from sktail import AutoTailClassifier
from sktail.datasets import load_tsv
from sktail.devices import resolve_device, resolve_precision
from sktail.encoders import make_encoder
from sktail.inference import extract_features, open_feature_cache
from sktail.metrics import evaluation_report, mcnemar_exact

BASELINE = {"tail_gate": False, "bs_weight": 0.0, "fgm_epsilon": 0.0}
METHOD: dict = {}


def _data_dir(arg: str | None) -> Path:
    root = arg or os.environ.get("SKTAIL_DATA")
    if not root:
        sys.exit("Give the data folder with --data or SKTAIL_DATA (it holds csl-title/train.tsv and dev.tsv).")
    return Path(root).expanduser()


def _subsample(texts, labels, n, seed=0):
    """A stratified subset of ``n`` training rows (all rows when n is None)."""
    if n is None or n >= len(texts):
        return texts, labels
    from sklearn.model_selection import train_test_split

    keep, _ = train_test_split(np.arange(len(texts)), train_size=n, stratify=labels, random_state=seed)
    keep = np.sort(keep)
    return [texts[i] for i in keep], [labels[i] for i in keep]


def _configs(args):
    if args.mode == "none":
        common = {"train_encoder": "none", "feature_cache": args.feature_cache}
        return [("baseline", {**BASELINE, **common}), ("AutoTail-BSFGM", {**METHOD, **common})]
    return [
        (f"AutoTail-BSFGM, train_encoder={args.layers}", {**METHOD, "train_encoder": args.layers}),
        ("AutoTail-BSFGM, train_encoder='all'", {**METHOD, "train_encoder": "all"}),
    ]


def _prefill(args, train_texts, dev_texts):
    """Encode the training and dev texts into the feature cache, timing each part."""
    encoder = make_encoder(args.encoder)
    max_length = encoder.defaults["max_length"]
    device = resolve_device(args.device)
    dtype, _ = resolve_precision("auto", device)
    network = encoder.build_network().to(device)
    cache = open_feature_cache(args.feature_cache, network, dtype)
    seconds, encoded, features = {}, {}, {}
    for part, texts in (("train", train_texts), ("dev", dev_texts)):
        start = time.perf_counter()
        ids = encoder.fit_tokenize(texts, max_length)
        features[part], encoded[part] = extract_features(
            network, encoder, ids, batch_size=64, device=device, autocast_dtype=dtype, cache=cache
        )
        seconds[part] = time.perf_counter() - start
        print(f"{part}: {len(texts)} texts, {encoded[part]} encoded now, {seconds[part]:.1f} s", flush=True)
    return {"seconds": seconds, "encoded": encoded}, features["dev"]


def _head_predict(clf, dev_features):
    with torch.no_grad():
        logits = clf.network_.head(torch.from_numpy(dev_features)).numpy()
    return clf.classes_[logits.argmax(axis=1)]


def _run(name, params, seed, data, args, dev_features=None, check=False):
    train_texts, train_labels, dev_texts, dev_labels = data
    clf = AutoTailClassifier(
        encoder=args.encoder, device=args.device, random_state=seed, verbose=args.verbose, **params
    )
    start = time.perf_counter()
    clf.fit(train_texts, train_labels)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    if dev_features is None or check:
        pred = clf.predict(dev_texts)
    else:
        pred = _head_predict(clf, dev_features)
    predict_s = time.perf_counter() - start
    if dev_features is not None and check:
        agreement = float(np.mean(_head_predict(clf, dev_features) == pred))
        print(f"head on cached dev features vs predict(): {100 * agreement:.2f}% identical labels", flush=True)
    counts = (clf.classes_, clf.class_counts_)
    row = {
        "config": name, "seed": seed, "fit_s": fit_s, "predict_s": predict_s,
        "best_epoch": clf.best_epoch_, "epochs": clf.epochs_,
        **evaluation_report(dev_labels, pred, counts),
    }
    print(json.dumps(row, ensure_ascii=False), flush=True)
    return row, [str(p) for p in pred]


def _summary(rows, predictions, dev_labels, names):
    lines = [
        "| config | seeds | acc | macro-F1 | bal. acc | tail | mid | head | fit s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        mine = [r for r in rows if r["config"] == name]

        def cell(key, band=None, rows=mine):
            values = [100 * (r["band_accuracy"][band] if band else r[key]) for r in rows]
            return f"{np.mean(values):.2f} ± {np.std(values):.2f}"

        fit = [r["fit_s"] for r in mine]
        lines.append(
            f"| {name} | {len(mine)} | {cell('accuracy')} | {cell('macro_f1')} | {cell('balanced_accuracy')} "
            f"| {cell(None, 'tail')} | {cell(None, 'mid')} | {cell(None, 'head')} | {np.mean(fit):.1f} |"
        )
    a, b = names
    seeds = [r["seed"] for r in rows if r["config"] == a]
    y = np.concatenate([dev_labels] * len(seeds))
    pa = np.concatenate([predictions[(a, s)] for s in seeds])
    pb = np.concatenate([predictions[(b, s)] for s in seeds])
    test = mcnemar_exact(y, pa, pb)
    lines.append("")
    lines.append(
        f"McNemar, pooled over {len(seeds)} seeds ({a} vs {b}): b={test.b}, c={test.c}, p={test.pvalue:.3g}"
    )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", default="e5-small", help="encoder name or local model folder")
    parser.add_argument("--mode", choices=["none", "partial"], default="none")
    parser.add_argument("--layers", type=int, default=2, help="top layers trained in --mode partial")
    parser.add_argument("--seeds", type=int, nargs="+", default=[13, 42, 3407, 7, 99])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data", default=None, help="folder holding csl-title/ (default: $SKTAIL_DATA)")
    parser.add_argument("--task", default="csl-title")
    parser.add_argument("--max-train", type=int, default=None, help="stratified subset of the training rows")
    parser.add_argument("--feature-cache", default=None, help="feature cache folder (--mode none; default: a temporary folder)")
    parser.add_argument("--out", default=None, help="write the rows and the summary as JSON here")
    parser.add_argument("--verbose", type=int, default=0)
    args = parser.parse_args(argv)

    root = _data_dir(args.data) / args.task
    train_texts, train_labels = _subsample(*load_tsv(root / "train.tsv"), args.max_train)
    dev_texts, dev_labels = load_tsv(root / "dev.tsv")
    data = (train_texts, train_labels, dev_texts, dev_labels)
    temporary = None
    if args.mode == "none" and args.feature_cache is None:
        temporary = tempfile.TemporaryDirectory(prefix="sktail-features-")
        args.feature_cache = temporary.name
    configs = _configs(args)
    print(f"{args.task}: {len(train_texts)} training and {len(dev_texts)} dev texts; encoder={args.encoder}; "
          f"device={args.device}; torch threads={torch.get_num_threads()}", flush=True)

    rows, predictions, encode_s, dev_features = [], {}, None, None
    if args.mode == "none":
        encode_s, dev_features = _prefill(args, train_texts, dev_texts)
    for seed in args.seeds:
        for name, params in configs:
            check = dev_features is not None and not rows
            row, pred = _run(name, params, seed, data, args, dev_features, check)
            rows.append(row)
            predictions[(name, seed)] = np.asarray(pred)
    summary = _summary(rows, predictions, np.asarray(dev_labels), [c[0] for c in configs])
    if encode_s is not None:
        seconds, encoded = encode_s["seconds"], encode_s["encoded"]
        summary += (
            f"\nFeatures before the fits: {seconds['train']:.1f} s for the {len(train_texts)} training texts "
            f"({encoded['train']} encoded, the rest read from the cache), {seconds['dev']:.1f} s for the "
            f"{len(dev_texts)} dev texts ({encoded['dev']} encoded). Fit s above read the cached features; "
            "a fit without a cache adds the time of encoding its training texts."
        )
    print(summary, flush=True)
    if args.out:
        meta = {
            "argv": sys.argv, "encoder": args.encoder, "device": args.device, "mode": args.mode,
            "n_train": len(train_texts), "n_dev": len(dev_texts), "torch": torch.__version__,
            "python": platform.python_version(), "threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        }
        Path(args.out).write_text(
            json.dumps(
                {"meta": meta, "encode_s": encode_s, "rows": rows, "summary": summary}, ensure_ascii=False, indent=1
            ),
            encoding="utf-8",
        )
    if temporary is not None:
        temporary.cleanup()


if __name__ == "__main__":
    main()

"""CPU inference paths of e5-small side by side: throughput, fidelity, frozen-model accuracy, scoring.

In one process, on the same texts and weights (``docs/speed.md``):

* ``throughput``: texts/s of the pooled features of CSL titles (``max_length``
  128) and abstracts (cut at 256 tokens) for each inference path (torch fp32,
  ONNX Runtime fp32, ONNX Runtime int8), in ``--rounds`` alternating rounds,
  with the median ratio to fp32; the one-off build time (export, quantisation,
  session load) of each ONNX path; the minimum and mean cosine of each path's
  features to the fp32 ones over all the texts.
* ``frozen``: dev accuracy and balanced accuracy of
  ``AutoTailClassifier(encoder="e5-small", train_encoder="none")`` fitted on
  ``--n-train`` title training rows with ``precision="fp32"`` and
  ``precision="int8"``, same seeds. The JSON records which path each fit's
  features took (the feature-cache namespaces).
* ``predict``: ``predict_proba`` texts/s of one fine-tuned e5-small model
  (``--finetune-rows`` rows, one epoch: only throughput matters) over
  ``--predict-texts`` titles, fp32 against ``"int8"``, and ``predict_dask``
  on a ``LocalCluster`` of ``--dask-workers`` one-thread workers.

Usage::

    SKTAIL_DATA=/work/shared/data python benchmarks/cpu_inference.py --threads 2 --parts throughput
    SKTAIL_DATA=/work/shared/data python benchmarks/cpu_inference.py --threads 2 --parts frozen predict

Prints one JSON object per part and writes them all to ``--out``.
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
from sktail.devices import InferencePrecision, cpu_features, resolve_inference_precision
from sktail.encoders import HFEncoder
from sktail.inference import encode_features, open_feature_cache

PATHS = ("fp32", "onnx-fp32", "onnx-int8")
CPU = torch.device("cpu")


def _data(args, task, split):
    root = Path(args.data or os.environ.get("SKTAIL_DATA", "")).expanduser()
    path = root / task / f"{split}.tsv"
    if not path.is_file():
        sys.exit(f"{path} not found: give --data or SKTAIL_DATA (the folder holding csl-title/ and csl-abstract/).")
    return load_tsv(path)


def _cosine(a, b):
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def _emit(results, name, payload):
    results[name] = payload
    print(json.dumps({name: payload}, ensure_ascii=False), flush=True)


def throughput(args, results):
    encoder = HFEncoder("e5-small")
    network = encoder.build_network().eval()
    titles = _data(args, "csl-title", "dev")[0][: args.n_titles]
    abstracts = _data(args, "csl-abstract", "dev")[0][: args.n_abstracts]
    sets = {"titles": encoder.tokenize(titles, 128), "abstracts": encoder.tokenize(abstracts, 256)}
    build = {}
    for name in PATHS[1:]:  # first call: export, quantisation, session; timed on a few texts
        start = time.perf_counter()
        encode_features(network, encoder, sets["titles"][:8], batch_size=64, device=CPU,
                        precision=InferencePrecision(name))
        build[name] = time.perf_counter() - start
    rates = {part: {name: [] for name in PATHS} for part in sets}
    features = {}
    for _ in range(args.rounds):
        for part, ids in sets.items():
            for name in PATHS:
                start = time.perf_counter()
                features[part, name] = encode_features(network, encoder, ids, batch_size=args.batch_size,
                                                       device=CPU, precision=InferencePrecision(name))
                rates[part][name].append(len(ids) / (time.perf_counter() - start))
    table = {}
    for part in sets:
        for name in PATHS:
            cos = _cosine(features[part, name], features[part, "fp32"])
            ratio = np.median(np.asarray(rates[part][name]) / np.asarray(rates[part]["fp32"]))
            table[f"{part}/{name}"] = {
                "texts_per_s": float(np.median(rates[part][name])), "rounds": rates[part][name],
                "ratio_to_fp32": float(ratio), "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean()),
                "n_texts": len(sets[part]),
                "mean_tokens": float(np.mean([len(a) for a in sets[part]])),
            }
    _emit(results, "throughput", {"build_s": build, "paths": table})


def _namespaces(cache_dir):
    return sorted(p.name for p in Path(cache_dir).iterdir() if p.is_dir())


def frozen(args, results):
    train_texts, train_labels = _data(args, "csl-title", "train")
    train_texts, train_labels = train_texts[: args.n_train], train_labels[: args.n_train]
    dev_texts, dev_labels = _data(args, "csl-title", "dev")
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    rows = []
    with tempfile.TemporaryDirectory(prefix="sktail-cpu-features-") as cache:
        for precision in ("fp32", "int8"):
            for seed in args.seeds:
                before = set(_namespaces(cache))
                clf = AutoTailClassifier(encoder="e5-small", train_encoder="none", precision=precision,
                                         feature_cache=cache, random_state=seed)
                start = time.perf_counter()
                clf.fit(train_texts, train_labels)
                fit_s = time.perf_counter() - start
                start = time.perf_counter()
                pred = clf.predict(dev_texts)
                row = {
                    "precision": precision, "seed": seed, "fit_s": fit_s,
                    "predict_s": time.perf_counter() - start,
                    "predict_path": resolve_inference_precision(precision, CPU, clf.network_).name,
                    "new_cache_namespaces": sorted(set(_namespaces(cache)) - before),
                    "accuracy": float(accuracy_score(dev_labels, pred)),
                    "balanced_accuracy": float(balanced_accuracy_score(dev_labels, pred)),
                }
                print(json.dumps(row), flush=True)
                rows.append(row)
        network = HFEncoder("e5-small").build_network()
        names = {name: open_feature_cache(cache, network, precision=InferencePrecision(name)).namespace
                 for name in PATHS}
    summary = {}
    for precision in ("fp32", "int8"):
        mine = [r for r in rows if r["precision"] == precision]
        summary[precision] = {key: float(np.mean([r[key] for r in mine])) for key in ("accuracy", "balanced_accuracy")}
    _emit(results, "frozen", {"rows": rows, "namespaces_by_path": names, "mean": summary})


def predict(args, results):
    train_texts, train_labels = _data(args, "csl-title", "train")
    texts = (train_texts * (args.predict_texts // len(train_texts) + 1))[: args.predict_texts]
    clf = AutoTailClassifier(encoder="e5-small", epochs=1, validation_fraction=None, random_state=0,
                             precision="fp32")
    start = time.perf_counter()
    clf.fit(train_texts[: args.finetune_rows], train_labels[: args.finetune_rows])
    out = {"finetune_s": time.perf_counter() - start, "n_texts": len(texts), "threads": torch.get_num_threads()}
    probabilities = {}
    for precision in ("fp32", "int8", "int8"):  # the first "int8" call includes the one-off build
        clf.set_params(precision=precision)
        start = time.perf_counter()
        probabilities[precision] = clf.predict_proba(texts)
        seconds = time.perf_counter() - start
        key = precision if precision not in out else "int8 (built)"
        out[key] = {"texts_per_s": len(texts) / seconds,
                    "texts_per_s_per_core": len(texts) / seconds / torch.get_num_threads(),
                    "path": resolve_inference_precision(precision, CPU, clf.network_).name}
    out["max_abs_proba_diff"] = float(np.abs(probabilities["int8"] - probabilities["fp32"]).max())
    out["label_agreement"] = float(np.mean(probabilities["int8"].argmax(1) == probabilities["fp32"].argmax(1)))
    if args.dask_workers:
        out["dask"] = _dask(clf, texts, args)
    _emit(results, "predict", out)


def _dask(clf, texts, args):
    import dask.dataframe as dd
    import pandas as pd
    from distributed import Client, LocalCluster

    from sktail.distributed import predict_dask

    out = {}
    with LocalCluster(n_workers=args.dask_workers, threads_per_worker=1, processes=True) as cluster, \
            Client(cluster) as client:
        out["worker_torch_threads"] = list(client.run(torch.get_num_threads).values())
        series = dd.from_pandas(pd.Series(texts, name="title"), npartitions=4 * args.dask_workers)
        for precision in ("fp32", "int8"):
            clf.set_params(precision=precision)
            predict_dask(clf, series.head(64 * args.dask_workers, npartitions=-1, compute=False)).compute()  # warm
            start = time.perf_counter()
            predict_dask(clf, series, proba=True).compute()
            seconds = time.perf_counter() - start
            out[precision] = {"texts_per_s": len(texts) / seconds,
                              "texts_per_s_per_core": len(texts) / seconds / args.dask_workers}
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=None, help="folder holding csl-title/ and csl-abstract/ (default: $SKTAIL_DATA)")
    parser.add_argument("--parts", nargs="+", choices=["throughput", "frozen", "predict"], default=["throughput"])
    parser.add_argument("--threads", type=int, default=2, help="torch (and ONNX Runtime) intra-op threads")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--n-titles", type=int, default=1000)
    parser.add_argument("--n-abstracts", type=int, default=500)
    parser.add_argument("--n-train", type=int, default=8000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[13, 42, 3407])
    parser.add_argument("--finetune-rows", type=int, default=64)
    parser.add_argument("--predict-texts", type=int, default=10000)
    parser.add_argument("--dask-workers", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = {"meta": {"argv": sys.argv, "threads": args.threads, "torch": torch.__version__,
                        "python": platform.python_version(), "cpu": cpu_features(),
                        "cpu_name": platform.processor() or platform.machine(),
                        "auto_path": resolve_inference_precision("auto", CPU, HFEncoder("e5-small").build_network()).name}}
    print(json.dumps(results["meta"]), flush=True)
    for part in args.parts:
        {"throughput": throughput, "frozen": frozen, "predict": predict}[part](args, results)
    if args.out:
        Path(args.out).write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()

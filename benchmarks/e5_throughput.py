"""Throughput of the default encoder's e5 channel: frozen multilingual-e5-small features, texts/s.

What a ``tfidf-e5`` fit or predict spends most of its time on is running the
frozen e5-small over each text once. This script times exactly that, through
public names only (:class:`sktail.encoders.HybridEncoder` and
:func:`sktail.inference.encode_features`), on the inference path ``predict``
takes (``precision="auto"``, or ``--precision``), with the batch size the default resolves
(``inference_batch_size(256)``). The TF-IDF channel and the head are not timed:
they take seconds. ::

    python -m benchmarks.e5_throughput DATA/csl-title/train.tsv --max-length 128 --texts 1000
    python -m benchmarks.e5_throughput DATA/csl-abstract/train.tsv --max-length 256 --texts 500

Each run first builds e5 in memory and encodes a few texts (timed apart as
``warmup_seconds``), then encodes ``--texts`` texts ``--repeats`` times and
reports the best, with the torch thread count. The JSON record goes to stdout
(and to ``--out`` when given).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import torch

from sktail.datasets import load_tsv
from sktail.devices import resolve_inference_precision
from sktail.encoders import HybridEncoder
from sktail.inference import encode_features, inference_batch_size

#: The default encoder's training batch size (``HybridEncoder.defaults``).
DEFAULT_BATCH = HybridEncoder.defaults["batch_size"]


def measure(texts, *, max_length: int, device: str = "cpu", repeats: int = 2, precision: str = "auto") -> dict:
    """Time the frozen e5 features of ``texts`` as the default encoder computes them.

    Parameters
    ----------
    texts : list of str
        Texts to encode (the timed set).
    max_length : int
        Most e5 tokens per text (128 for titles, 256 for abstracts).
    device : str, default="cpu"
        Where e5 runs.
    repeats : int, default=2
        Timed passes over ``texts``; the fastest is reported.
    precision : str, default="auto"
        The estimator's ``precision`` (``"auto"``: bf16 on CPUs with native
        bf16 instructions, else fp32; ``"fp32"`` for what other CPUs run).

    Returns
    -------
    dict
        Texts, tokens, seconds, texts/s and the settings of the run.
    """
    encoder = HybridEncoder(max_length=max_length)
    ids = encoder.fit_tokenize(list(texts), max_length)
    network = encoder.build_network().to(device)
    device = torch.device(device)
    precision = resolve_inference_precision(precision, device, network)
    batch_size = inference_batch_size(DEFAULT_BATCH)
    options = {"batch_size": batch_size, "device": device, "precision": precision}
    start = time.perf_counter()
    encode_features(network, encoder, ids[:8], **options)  # builds e5 in memory once per process
    warmup = time.perf_counter() - start
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        encode_features(network, encoder, ids, **options)
        seconds.append(time.perf_counter() - start)
    best = min(seconds)
    tokens = [len(encoder.split_ids(a)[2]) for a in ids]
    return {
        "texts": len(ids), "max_length": max_length, "mean_e5_tokens": round(sum(tokens) / len(tokens), 1),
        "batch_size": batch_size, "precision": precision.name, "device": str(device),
        "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "warmup_seconds": round(warmup, 2), "seconds": [round(s, 2) for s in seconds],
        "texts_per_s": round(len(ids) / best, 1), "python": platform.python_version(),
        "torch": torch.__version__,
    }


def main(argv=None) -> int:
    """Run the measurement from the command line.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments; None reads ``sys.argv``.

    Returns
    -------
    int
        The exit status.
    """
    parser = argparse.ArgumentParser(prog="python -m benchmarks.e5_throughput", description=__doc__.split("\n")[0])
    parser.add_argument("tsv", help="a text<TAB>label file (its first --texts texts are encoded)")
    parser.add_argument("--max-length", type=int, default=128, help="e5 tokens per text (256 for abstracts)")
    parser.add_argument("--texts", type=int, default=1000, help="texts to encode")
    parser.add_argument("--repeats", type=int, default=2, help="timed passes; the fastest is reported")
    parser.add_argument("--device", default="cpu", help="torch device")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                        help="the estimator's precision (auto: bf16 on CPUs with native bf16, else fp32)")
    parser.add_argument("--out", help="also write the JSON record to this file")
    args = parser.parse_args(argv)
    texts, _ = load_tsv(args.tsv)
    record = {"file": os.path.basename(os.path.dirname(os.path.abspath(args.tsv))) + "/" + os.path.basename(args.tsv),
              **measure(texts[: args.texts], max_length=args.max_length, device=args.device,
                        repeats=args.repeats, precision=args.precision)}
    text = json.dumps(record, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

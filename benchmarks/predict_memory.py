"""Peak memory of ``predict_proba`` over 20,000 and 200,000 short texts.

Fits a small built-in-encoder model on synthetic titles (or on the CSL titles
when ``SKTAIL_DATA`` points at a folder holding ``csl-title/train.tsv``),
saves it, then scores N texts in a fresh subprocess per N and reports:

* ``traced_peak_mb`` (with ``--trace``): peak of Python and numpy
  allocations during the call (``tracemalloc``, which slows the call down
  several times), the input list excluded;
* ``rss_peak_growth_mb``: peak resident memory during the call minus the
  resident memory just before it (sampled every 2 ms from ``/proc``, or the
  ``ru_maxrss`` high-water mark elsewhere);
* ``output_mb``: size of the returned float64 probability array.

Run from the repository root: ``python benchmarks/predict_memory.py [--sizes 20000 200000] [--trace]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _PeakSampler(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.peak = _rss_mb()
        self._done = threading.Event()

    def run(self):
        while not self._done.is_set():
            self.peak = max(self.peak, _rss_mb())
            time.sleep(0.002)

    def stop(self) -> float:
        self._done.set()
        self.join()
        return max(self.peak, _rss_mb())


def _texts(n: int) -> list:
    from sktail.datasets import make_long_tail_text

    pool, _ = make_long_tail_text((400,) * 5, random_state=1)
    return [f"{pool[i % len(pool)]}{i}" for i in range(n)]


def _fit(path: str):
    import sktail

    data = os.environ.get("SKTAIL_DATA")
    if data and os.path.exists(os.path.join(data, "csl-title", "train.tsv")):
        from sktail.datasets import load_tsv

        texts, labels = load_tsv(os.path.join(data, "csl-title", "train.tsv"))
    else:
        from sktail.datasets import make_long_tail_text

        texts, labels = make_long_tail_text((400, 200, 100, 50, 30), random_state=0)
    clf = sktail.AutoTailClassifier(epochs=1, validation_fraction=None, random_state=0)
    clf.fit(texts, labels).save(path)


def _child(model: str, n: int, trace: bool) -> dict:
    import tracemalloc

    import sktail

    clf = sktail.load(model)
    texts = _texts(n)
    clf.predict_proba(texts[:100])  # warm-up: jieba dictionary, torch kernels
    before = _rss_mb()
    sampler = _PeakSampler()
    sampler.start()
    if trace:
        tracemalloc.start()
    start = time.perf_counter()
    proba = clf.predict_proba(texts)
    seconds = time.perf_counter() - start
    traced_peak = tracemalloc.get_traced_memory()[1] / 2**20 if trace else float("nan")
    tracemalloc.stop()
    peak = sampler.stop()
    return {
        "n_texts": n, "seconds": round(seconds, 2), "output_mb": round(proba.nbytes / 2**20, 2),
        "traced_peak_mb": round(traced_peak, 2), "rss_peak_growth_mb": round(peak - before, 2),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--trace", action="store_true", help="also measure with tracemalloc (slow)")
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child[0], int(args.child[1]), args.trace)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "model.sktail")
        _fit(model)
        rows = []
        for n in args.sizes:
            out = subprocess.run([sys.executable, __file__, "--child", model, str(n), *(["--trace"] if args.trace else [])], capture_output=True, text=True)
            if out.returncode:
                raise RuntimeError(f"the run over {n} texts failed:\n{out.stderr}")
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print("| texts | seconds | output MB | traced peak MB | RSS peak growth MB |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['n_texts']:,} | {r['seconds']} | {r['output_mb']} | {r['traced_peak_mb']} | {r['rss_peak_growth_mb']} |")


if __name__ == "__main__":
    main()

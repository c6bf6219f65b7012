"""Whole-process CPU times of the encoders on the CSL title split: first fit, refit, predict.

Each step runs in a fresh Python process, timed from its start to its exit
(imports, tokenisation and model loading included), as a user's script or
``sktail`` command would run:

* ``fit``: ``AutoTailClassifier(encoder=..., feature_cache=DIR, random_state=13)``
  on the training rows of an empty feature cache, then ``save``;
* ``refit``: the same fit again in a new process, reading the feature cache;
* ``predict``: ``sktail.load`` of the saved model and ``predict`` of the first
  ``--predict-texts`` rows of the dev split.

``tfidf-svc`` is TF-IDF character 1-3-grams + ``LinearSVC(class_weight="balanced")``
in a scikit-learn ``Pipeline``, saved with joblib. The 1-minute load average
before each step is recorded: times are only comparable on an idle machine.

Usage::

    python -m benchmarks.cpu_timing /work/shared/data/csl-title --out docs/cpu-timing.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["main", "run_step", "STEPS"]

_PRELUDE = """
import json, sys, time
start = time.perf_counter()
from sktail.datasets import load_tsv
data, work, n_predict = sys.argv[1], sys.argv[2], int(sys.argv[3])
"""

_FIT = _PRELUDE + """
from sktail import AutoTailClassifier
X, y = load_tsv(data + "/train.tsv")
params = json.loads(sys.argv[4])
clf = AutoTailClassifier(**params, feature_cache=work + "/features", random_state=13).fit(X, y)
clf.save(work + "/model.sktail")
import os
print(json.dumps({"rows": len(X), "epochs": clf.n_iter_, "inner_s": time.perf_counter() - start,
                  "model_mib": os.path.getsize(work + "/model.sktail") / 2**20}))
"""

_PREDICT = _PRELUDE + """
import os
texts = load_tsv(data + "/dev.tsv")[0][:n_predict]
if os.path.exists(work + "/model.joblib"):
    import joblib
    clf = joblib.load(work + "/model.joblib")
else:
    import sktail
    clf = sktail.load(work + "/model.sktail")
loaded = time.perf_counter()
labels = clf.predict(texts)
print(json.dumps({"texts": len(labels), "load_s": loaded - start, "predict_s": time.perf_counter() - loaded}))
"""

_SVC_FIT = _PRELUDE + """
import joblib
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC
X, y = load_tsv(data + "/train.tsv")
model = make_pipeline(TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True),
                      LinearSVC(class_weight="balanced")).fit(X, y)
joblib.dump(model, work + "/model.joblib")
import os
print(json.dumps({"rows": len(X), "inner_s": time.perf_counter() - start,
                  "model_mib": os.path.getsize(work + "/model.joblib") / 2**20}))
"""

#: Encoder name -> (AutoTailClassifier parameters or None for tfidf-svc, steps).
STEPS = {
    "tfidf-e5": ({"encoder": "tfidf-e5"}, ("fit", "refit", "predict")),
    "jieba-bag": ({"encoder": "jieba-bag"}, ("fit", "predict")),
    "e5-small-frozen": ({"encoder": "e5-small", "train_encoder": "none"}, ("fit", "refit", "predict")),
    "tfidf-svc": (None, ("fit", "predict")),
}


def run_step(code: str, args: list[str]) -> dict:
    """Run ``code`` in a fresh interpreter; its wall time, peak memory and printed JSON.

    Parameters
    ----------
    code : str
        The program.
    args : list of str
        Its ``sys.argv[1:]``.

    Returns
    -------
    dict
        ``wall_s``, ``user_s``, ``sys_s``, ``max_rss_mib``, ``load_1min`` and
        the program's own JSON line.
    """
    load = os.getloadavg()[0]
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"step failed with status {status}: {output}")
    record = {"wall_s": round(wall, 2), "user_s": round(usage.ru_utime, 2), "sys_s": round(usage.ru_stime, 2),
              "max_rss_mib": round(usage.ru_maxrss / 1024, 1), "load_1min": round(load, 2)}
    record.update(json.loads(output.strip().splitlines()[-1]))
    return record


def main(argv=None):
    """Run the steps of the chosen encoders and write the JSON (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cpu_timing", description=__doc__.splitlines()[0])
    parser.add_argument("data", help="folder with train.tsv and dev.tsv")
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--encoders", nargs="+", default=list(STEPS), choices=list(STEPS))
    parser.add_argument("--predict-texts", type=int, default=1000)
    args = parser.parse_args(argv)
    results = {"cpu_count": os.cpu_count(), "python": sys.version.split()[0], "runs": {}}
    for name in args.encoders:
        params, steps = STEPS[name]
        with tempfile.TemporaryDirectory(prefix=f"sktail-timing-{name}-") as work:
            common = [args.data, work, str(args.predict_texts)]
            runs = {}
            for step in steps:
                if step == "predict":
                    code, extra = _PREDICT, []
                elif params is None:
                    code, extra = _SVC_FIT, []
                else:
                    code, extra = _FIT, [json.dumps(params)]
                runs[step] = run_step(code, common + extra)
                print(json.dumps({"encoder": name, "step": step, **runs[step]}), flush=True)
        results["runs"][name] = runs
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

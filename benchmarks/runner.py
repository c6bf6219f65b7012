"""Run benchmark configurations over seeds on one ``train``/``dev`` split.

Each configuration is an estimator factory ``seed -> estimator``. A run fits
on the training split, predicts the evaluation split, and records every score
of :func:`sktail.metrics.evaluation_report`, the per-class accuracy, the
predictions themselves (for the paired McNemar test), the fit time and the
prediction throughput. Records are appended to a JSON file after every run,
so a long sweep can be stopped and resumed.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from sktail.datasets import load_tsv
from sktail.metrics import evaluation_report, per_class_accuracy

__all__ = [
    "BASELINE",
    "AUTOTAIL_CONFIGS",
    "Config",
    "Split",
    "autotail_config",
    "build_configs",
    "linear_config",
    "load_split",
    "machine_info",
    "merge_results",
    "resolve_data_dir",
    "run_benchmark",
    "run_one",
]

#: Name of the reference configuration of the McNemar tests and the deltas.
BASELINE = "baseline"

#: The ablation ladder: AutoTailClassifier parameters of each configuration.
AUTOTAIL_CONFIGS = {
    "baseline": {"tail_gate": False, "bs_weight": 0.0, "fgm_epsilon": 0.0},
    "gate": {"tail_gate": "auto", "bs_weight": 0.0, "fgm_epsilon": 0.0},
    "bs": {"tail_gate": False, "bs_weight": 0.1, "fgm_epsilon": 0.0},
    "fgm": {"tail_gate": False, "bs_weight": 0.0, "fgm_epsilon": 0.3},
    "full": {},
}

LINEAR_CONFIGS = ("tfidf-svc", "tfidf-lr")

DEFAULT_CONFIGS = (*LINEAR_CONFIGS, *AUTOTAIL_CONFIGS)


@dataclass
class Split:
    """Texts and labels of one split, read from ``text<TAB>label`` TSV files.

    Attributes
    ----------
    train_texts, train_labels, eval_texts, eval_labels : list of str
        The two splits.
    class_counts : dict
        Label -> number of training rows (defines the frequency bands).
    source : str
        Where the split was read from.
    """

    train_texts: list
    train_labels: list
    eval_texts: list
    eval_labels: list
    source: str = ""
    class_counts: dict = field(init=False)

    def __post_init__(self):
        self.class_counts = dict(sorted(Counter(self.train_labels).items()))


@dataclass
class Config:
    """One compared method: a name and an estimator factory.

    Attributes
    ----------
    name : str
        Short name used in tables, plots and the JSON file.
    make : callable
        ``seed -> estimator`` with ``fit(texts, labels)`` and ``predict(texts)``.
    params : dict
        JSON-ready description of the configuration.
    """

    name: str
    make: Callable
    params: dict


def resolve_data_dir(data_dir=None) -> Path:
    """The split directory: ``data_dir``, else the ``SKTAIL_DATA`` variable.

    Parameters
    ----------
    data_dir : str or path-like, default=None
        Folder holding the TSV splits.

    Returns
    -------
    pathlib.Path
    """
    value = data_dir if data_dir is not None else os.environ.get("SKTAIL_DATA")
    if not value:
        raise ValueError(
            "No data directory: pass one on the command line or set SKTAIL_DATA to a folder "
            "holding train.tsv and dev.tsv (text<TAB>label)."
        )
    path = Path(value)
    if not path.is_dir():
        raise FileNotFoundError(f"Data directory {str(path)!r} does not exist.")
    return path


def _subsample(texts, labels, n, seed=0):
    """A stratified subset of ``n`` rows (every class kept), in the original order."""
    from sklearn.model_selection import train_test_split

    if n is None or n >= len(texts):
        return texts, labels
    rows = np.arange(len(texts))
    keep, _ = train_test_split(rows, train_size=n, stratify=labels, random_state=seed)
    keep = np.sort(keep)
    return [texts[i] for i in keep], [labels[i] for i in keep]


def load_split(data_dir, *, train="train", evaluate="dev", max_train=None, max_eval=None) -> Split:
    """Read ``<train>.tsv`` and ``<evaluate>.tsv`` from a folder.

    Parameters
    ----------
    data_dir : str or path-like
        Folder with the TSV files.
    train, evaluate : str, default="train", "dev"
        File stems of the training and evaluation splits.
    max_train, max_eval : int, default=None
        Keep a stratified subset of this many rows (fixed seed 0), for quick
        runs of slow encoders.

    Returns
    -------
    Split
    """
    data_dir = Path(data_dir)
    train_texts, train_labels = load_tsv(data_dir / f"{train}.tsv")
    eval_texts, eval_labels = load_tsv(data_dir / f"{evaluate}.tsv")
    train_texts, train_labels = _subsample(train_texts, train_labels, max_train)
    eval_texts, eval_labels = _subsample(eval_texts, eval_labels, max_eval)
    unseen = sorted(set(eval_labels) - set(train_labels))
    if unseen:
        raise ValueError(f"{evaluate}.tsv has labels absent from {train}.tsv: {unseen[:5]}.")
    return Split(train_texts, train_labels, eval_texts, eval_labels, source=str(data_dir))


# -- configurations ------------------------------------------------------------
def linear_config(name: str) -> Config:
    """TF-IDF character 1-3-grams (sublinear tf) + a balanced linear model.

    Parameters
    ----------
    name : {"tfidf-svc", "tfidf-lr"}
        ``LinearSVC`` or ``LogisticRegression``, both ``class_weight="balanced"``.

    Returns
    -------
    Config
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    models = {
        "tfidf-svc": lambda seed: LinearSVC(class_weight="balanced", random_state=seed),
        "tfidf-lr": lambda seed: LogisticRegression(class_weight="balanced", max_iter=2000, random_state=seed),
    }
    if name not in models:
        raise ValueError(f"Unknown linear configuration {name!r}; expected one of {sorted(models)}.")

    def make(seed):
        vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
        return make_pipeline(vectorizer, models[name](seed))

    model = "LinearSVC" if name == "tfidf-svc" else "LogisticRegression(max_iter=2000)"
    return Config(name, make, {"features": "tfidf char 1-3 sublinear_tf", "model": model,
                               "class_weight": "balanced"})


def autotail_config(name: str, encoder="jieba-bag", *, params=None, encoder_options=None,
                    device="auto") -> Config:
    """An :class:`~sktail.AutoTailClassifier` of the ablation ladder.

    Parameters
    ----------
    name : str
        A key of :data:`AUTOTAIL_CONFIGS`.
    encoder : str, default="jieba-bag"
        ``encoder=`` of the classifier.
    params : dict, default=None
        Extra classifier parameters shared by every configuration (e.g.
        ``{"max_length": 256}``); the ladder's own switches win.
    encoder_options : dict, default=None
        ``encoder_options=`` of the classifier.
    device : str, default="auto"
        Training device.

    Returns
    -------
    Config
    """
    from sktail import AutoTailClassifier

    if name not in AUTOTAIL_CONFIGS:
        raise ValueError(f"Unknown configuration {name!r}; expected one of {sorted(AUTOTAIL_CONFIGS)}.")
    kwargs = {**(params or {}), **AUTOTAIL_CONFIGS[name], "encoder": encoder, "device": device}
    if encoder_options:
        kwargs["encoder_options"] = dict(encoder_options)

    def make(seed):
        return AutoTailClassifier(**kwargs, random_state=seed)

    return Config(name, make, {k: v for k, v in kwargs.items()})


def build_configs(names=DEFAULT_CONFIGS, **autotail_kwargs) -> list:
    """Configurations by name (linear baselines and the AutoTail ladder).

    Parameters
    ----------
    names : iterable of str, default=DEFAULT_CONFIGS
        ``"tfidf-svc"``, ``"tfidf-lr"`` or keys of :data:`AUTOTAIL_CONFIGS`.
    **autotail_kwargs
        Passed to :func:`autotail_config`.

    Returns
    -------
    list of Config
    """
    return [linear_config(n) if n in LINEAR_CONFIGS else autotail_config(n, **autotail_kwargs) for n in names]


# -- running -----------------------------------------------------------------------
def _fit_info(estimator) -> dict:
    """What a fitted AutoTailClassifier learnt about the data (empty otherwise)."""
    info = {}
    for name in ("best_epoch_", "n_iter_", "imbalance_index_", "tail_gate_on_", "best_validation_score_"):
        value = getattr(estimator, name, None)
        if value is not None:
            info[name.rstrip("_")] = value.item() if hasattr(value, "item") else value
    if hasattr(estimator, "encoder_"):
        info["encoder"] = estimator.encoder_.describe()
    return info


def run_one(config: Config, split: Split, seed: int) -> dict:
    """Fit one configuration with one seed and score it on the evaluation split.

    Parameters
    ----------
    config : Config
        The method.
    split : Split
        Training and evaluation data.
    seed : int
        ``random_state`` of the estimator.

    Returns
    -------
    dict
        ``config``, ``seed``, the :func:`~sktail.metrics.evaluation_report`
        scores, ``per_class_accuracy``, ``fit_seconds``,
        ``fit_cpu_seconds`` (process CPU time, all threads), ``predict_texts_per_s``,
        ``fit_info`` and ``predictions``.
    """
    estimator = config.make(seed)
    start, cpu_start = time.perf_counter(), time.process_time()
    estimator.fit(split.train_texts, split.train_labels)
    fit_seconds = time.perf_counter() - start
    fit_cpu_seconds = time.process_time() - cpu_start
    start = time.perf_counter()
    predictions = estimator.predict(split.eval_texts)
    predict_seconds = time.perf_counter() - start
    predictions = [str(p) for p in predictions]
    record = {"config": config.name, "seed": int(seed)}
    record.update(evaluation_report(split.eval_labels, predictions, split.class_counts))
    record["per_class_accuracy"] = per_class_accuracy(
        split.eval_labels, predictions, labels=list(split.class_counts)
    )
    record["per_class_accuracy"] = {
        k: (None if v != v else v) for k, v in record["per_class_accuracy"].items()
    }
    record["fit_seconds"] = fit_seconds
    record["fit_cpu_seconds"] = fit_cpu_seconds
    record["predict_texts_per_s"] = len(split.eval_texts) / max(predict_seconds, 1e-9)
    record["fit_info"] = _fit_info(estimator)
    record["predictions"] = predictions
    return record


def machine_info() -> dict:
    """Host, CPU count, load average, library versions and GPU name (if any)."""
    import sklearn
    import torch

    info = {
        "host": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "scikit-learn": sklearn.__version__,
    }
    if hasattr(os, "getloadavg"):
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _load_results(path: Path):
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    return None


def _write_json(path: Path, payload):
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(path)


def run_benchmark(split: Split, configs, seeds, out_path, *, meta=None, resume=True, log=print) -> dict:
    """Run every configuration with every seed, saving the JSON after each run.

    The loop is seed-major (every configuration with the first seed, then
    the second seed, ...), so a sweep stopped early still holds paired runs.

    Parameters
    ----------
    split : Split
        Training and evaluation data.
    configs : list of Config
        Methods to compare, run in this order for each seed.
    seeds : iterable of int
        Seeds; the same seeds for every configuration.
    out_path : str or path-like
        JSON file of results; with ``resume=True`` the (config, seed) runs it
        already holds are not repeated.
    meta : dict, default=None
        Extra description stored under ``"meta"`` (command, encoder, ...).
    resume : bool, default=True
        Keep and skip the runs already in ``out_path``.
    log : callable, default=print
        Receives one progress line per run.

    Returns
    -------
    dict
        ``{"meta": ..., "class_counts": ..., "eval_labels": ..., "configs": ..., "runs": [...]}``.
    """
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    previous = _load_results(out_path) if resume else None
    runs = list(previous["runs"]) if previous else []
    done = {(r["config"], r["seed"]) for r in runs}
    payload = {
        "meta": {**(previous or {}).get("meta", {}), **(meta or {}), "machine": machine_info(),
                 "source": split.source, "n_train": len(split.train_texts),
                 "n_eval": len(split.eval_texts), "seeds": [int(s) for s in seeds]},
        "class_counts": split.class_counts,
        "eval_labels": list(split.eval_labels),
        "configs": {**(previous or {}).get("configs", {}), **{c.name: c.params for c in configs}},
        "runs": runs,
    }
    for seed in seeds:
        for config in configs:
            if (config.name, int(seed)) in done:
                continue
            record = run_one(config, split, int(seed))
            record["load_average"] = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
            runs.append(record)
            _write_json(out_path, payload)
            log(
                f"{config.name:>10} seed={seed:<5} acc={record['accuracy']:.4f} "
                f"bal={record['balanced_accuracy']:.4f} f1={record['macro_f1']:.4f} "
                f"fit={record['fit_seconds']:.1f}s"
            )
    _write_json(out_path, payload)
    return payload


def merge_results(paths, out_path) -> dict:
    """Pool the runs of several ``results.json`` files of the same split into one.

    Sweeps run in parallel (one process per configuration or seed, each
    writing its own folder) are joined this way before the report.

    Parameters
    ----------
    paths : iterable of str or path-like
        ``results.json`` files, or folders holding one.
    out_path : str or path-like
        The pooled ``results.json`` to write.

    Returns
    -------
    dict
        The pooled payload; its ``meta`` is the first file's, with the
        merged files listed under ``"merged_from"``.

    Raises
    ------
    ValueError
        If the files were evaluated on different splits, give one
        configuration name different settings, or hold the same
        (configuration, seed) run with different predictions.
    """
    files = [Path(p) / "results.json" if Path(p).is_dir() else Path(p) for p in paths]
    if not files:
        raise ValueError("merge_results needs at least one results.json.")
    payloads = [json.loads(f.read_text(encoding="utf-8")) for f in files]
    first = payloads[0]
    merged = {"meta": {**first["meta"], "merged_from": [str(f) for f in files]},
              "class_counts": first["class_counts"], "eval_labels": first["eval_labels"],
              "configs": {}, "runs": []}
    seen = {}
    for path, payload in zip(files, payloads):
        if payload["eval_labels"] != first["eval_labels"] or payload["class_counts"] != first["class_counts"]:
            raise ValueError(f"{path} was evaluated on another split than {files[0]}; it cannot be pooled.")
        for name, params in payload["configs"].items():
            if merged["configs"].setdefault(name, params) != params:
                raise ValueError(f"configuration {name!r} has other settings in {path}: {params} "
                                 f"against {merged['configs'][name]}.")
        for run in payload["runs"]:
            key = (run["config"], run["seed"])
            if key in seen:
                if seen[key]["predictions"] != run["predictions"]:
                    raise ValueError(f"run {key} appears twice with different predictions (again in {path}).")
                continue
            seen[key] = run
            merged["runs"].append(run)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    _write_json(out_path, merged)
    return merged
